"""Everything the accounts issue adds to the identity app, in one place for ``services/identity/app.py``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from services.identity.accounts import config
from services.identity.accounts import models as _account_models  # noqa: F401  (registers tables)
from services.identity.accounts.router import router as accounts_router
from services.identity.audit import models as _audit_models  # noqa: F401
from services.identity.audit.router import router as audit_router
from services.identity.notifications import models as _notification_models  # noqa: F401
from services.identity.notifications.consumer import notifications_consumer
from services.identity.privacy.router import router as privacy_router
from services.identity.profile import models as _profile_models  # noqa: F401
from services.identity.profile.router import router as profile_router
from services.identity.settings import IdentitySettings
from services.identity.sms import models as _sms_models  # noqa: F401
from services.identity.sms.router import router as dev_sms_router
from services.identity.sms.sender import build_sender
from services.identity.verification import models as _verification_models  # noqa: F401
from services.identity.verification.router import router as verification_router
from shared.app import ConsumerSpec
from shared.settings import PlatformSettings

ACCOUNT_ROUTERS: list[APIRouter] = [accounts_router, profile_router, privacy_router, audit_router, verification_router]
ACCOUNT_DEV_ROUTERS: list[APIRouter] = [dev_sms_router]


def account_consumers(settings: IdentitySettings, platform: PlatformSettings | None) -> list[ConsumerSpec]:
    """Also checks the SMS configuration (the prod profile refuses the dev outbox) at app creation."""
    config.configure(settings)
    return [notifications_consumer(build_sender(settings, platform or PlatformSettings()))]


async def start_accounts(app: FastAPI) -> None:
    config.configure(app.state.settings)
    app.state.sms_sender = build_sender(app.state.settings, app.state.platform)

from fastapi import FastAPI

from services.identity.accounts.wiring import (
    ACCOUNT_DEV_ROUTERS,
    ACCOUNT_ROUTERS,
    account_consumers,
    start_accounts,
)
from services.identity.clients import models as _client_models  # noqa: F401  (registers tables)
from services.identity.clients.router import router as clients_router
from services.identity.db import Base
from services.identity.keys import models as _key_models  # noqa: F401
from services.identity.keys.lifecycle import start_keyring, stop_keyring
from services.identity.keys.router import router as keys_router
from services.identity.oauth import models as _oauth_models  # noqa: F401
from services.identity.oauth.consent_router import router as consent_router
from services.identity.oauth.logout import router as logout_router
from services.identity.oauth.pages import router as oauth_pages
from services.identity.oauth.router import router as oauth_router
from services.identity.oauth.runtime import start_oauth, stop_oauth
from services.identity.settings import IdentitySettings
from shared.app import ServiceParts, create_service_app
from shared.settings import PlatformSettings


def create_app(settings: IdentitySettings | None = None, platform: PlatformSettings | None = None) -> FastAPI:
    settings = settings or IdentitySettings()
    return create_service_app(
        "identity",
        settings=settings,
        platform=platform,
        metadata=Base.metadata,
        title="Da Nang identity",
        description="Electronic identity accounts and the OpenID Connect provider (Da Nang ID).",
        parts=ServiceParts(
            routers=[
                keys_router,
                oauth_router,
                oauth_pages,
                logout_router,
                consent_router,
                clients_router,
                *ACCOUNT_ROUTERS,
            ],
            dev_routers=ACCOUNT_DEV_ROUTERS,
            consumers=account_consumers(settings, platform),
            on_startup=[start_keyring, start_oauth, start_accounts],
            on_shutdown=[stop_keyring, stop_oauth],
        ),
    )

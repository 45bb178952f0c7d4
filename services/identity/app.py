from fastapi import FastAPI

from services.identity.clients import models as _client_models  # noqa: F401  (registers tables)
from services.identity.db import Base
from services.identity.keys import models as _key_models  # noqa: F401
from services.identity.keys.lifecycle import start_keyring, stop_keyring
from services.identity.keys.router import router as keys_router
from services.identity.settings import IdentitySettings
from shared.app import ServiceParts, create_service_app
from shared.settings import PlatformSettings


def create_app(settings: IdentitySettings | None = None, platform: PlatformSettings | None = None) -> FastAPI:
    return create_service_app(
        "identity",
        settings=settings or IdentitySettings(),
        platform=platform,
        metadata=Base.metadata,
        title="Da Nang identity",
        description="Electronic identity accounts and the OpenID Connect provider (Da Nang ID).",
        parts=ServiceParts(
            routers=[keys_router],
            on_startup=[start_keyring],
            on_shutdown=[stop_keyring],
        ),
    )

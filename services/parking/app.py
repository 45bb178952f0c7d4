"""Find a lot, choose a space, book a time window and pay by mobile money."""

from fastapi import FastAPI

from services.parking.db import Base
from services.parking.lots import models as _lot_models  # noqa: F401  (metadata)
from services.parking.lots.inventory import InventoryCache
from services.parking.lots.router import operator as lots_operator
from services.parking.lots.router import public as lots_public
from services.parking.lots.router import quotes
from services.parking.reservations import models as _reservation_models  # noqa: F401
from services.parking.reservations.consumers import payment_consumer, start_expiry_task, stop_expiry_task
from services.parking.reservations.router import operator as reservations_operator
from services.parking.reservations.router import router as reservations
from services.parking.settings import ParkingSettings
from shared.app import ServiceParts, create_service_app
from shared.clients.payments import PaymentsClient
from shared.service_auth import ServiceTokenProvider
from shared.settings import PlatformSettings


def create_app(
    settings: ParkingSettings | None = None,
    platform: PlatformSettings | None = None,
    *,
    payment_tokens: ServiceTokenProvider | None = None,
) -> FastAPI:
    """The parking app; ``payment_tokens`` replaces the client-credentials token source (tests)."""
    platform = platform or PlatformSettings()
    settings = settings or ParkingSettings()
    app_ref: dict[str, FastAPI] = {}

    async def start_payments(app: FastAPI) -> None:
        tokens = payment_tokens or ServiceTokenProvider.client_credentials(
            app.state.http,
            platform.service_url("identity") + "/oauth2/token",
            settings.client_id,
            settings.client_secret,
            "payments.write",
        )
        app.state.payments = PaymentsClient(app.state.http, platform.service_url("payments"), tokens)

    async def start_inventory(app: FastAPI) -> None:
        app.state.inventory = InventoryCache(app.state.db)

    app = create_service_app(
        "parking",
        settings=settings,
        platform=platform,
        metadata=Base.metadata,
        title="Da Nang parking",
        description="Find a lot, choose a space, book a time window and pay by mobile money.",
        parts=ServiceParts(
            routers=[lots_public, quotes, lots_operator, reservations_operator, reservations],
            consumers=[payment_consumer(app_ref)],
            on_startup=[start_payments, start_inventory, start_expiry_task],
            on_shutdown=[stop_expiry_task],
            tags=[
                {"name": "lots", "description": "Search lots and their availability"},
                {"name": "reservations", "description": "Book, pay, extend and cancel"},
                {"name": "operator", "description": "Lot operators (agency client credentials)"},
            ],
        ),
    )
    app_ref["app"] = app
    return app

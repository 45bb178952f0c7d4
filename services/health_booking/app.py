"""Medical appointments: facilities, schedules, slots, bookings and visit records."""

from __future__ import annotations

from fastapi import FastAPI

from services.health_booking import maintenance
from services.health_booking.appointments import models as _appointment_models  # noqa: F401  (metadata)
from services.health_booking.appointments import router as appointments
from services.health_booking.appointments.consumers import payment_consumer
from services.health_booking.db import Base
from services.health_booking.directory import models as _directory_models  # noqa: F401
from services.health_booking.directory import router as directory
from services.health_booking.fhir import router as fhir
from services.health_booking.payments import build_payments_client
from services.health_booking.records import models as _record_models  # noqa: F401
from services.health_booking.records import router as records
from services.health_booking.schedules import models as _schedule_models  # noqa: F401
from services.health_booking.schedules import router as schedules
from services.health_booking.settings import HealthBookingSettings
from shared.app import ServiceParts, create_service_app
from shared.db import utcnow
from shared.service_auth import ServiceTokenProvider
from shared.settings import PlatformSettings


def create_app(
    settings: HealthBookingSettings | None = None,
    platform: PlatformSettings | None = None,
    *,
    service_tokens: ServiceTokenProvider | None = None,
    background: bool = True,
) -> FastAPI:
    """``service_tokens`` replaces the client-credentials token source (tests); ``background=False``
    leaves the maintenance loop off so tests drive it with :func:`maintenance.run_once`."""
    holder: dict[str, FastAPI] = {}

    async def on_startup(app: FastAPI) -> None:
        app.state.payments = build_payments_client(app, service_tokens)
        if background:
            await maintenance.start(app)

    async def on_shutdown(app: FastAPI) -> None:
        if background:
            await maintenance.stop(app)

    app = create_service_app(
        "health_booking",
        settings=settings or HealthBookingSettings(),
        platform=platform,
        metadata=Base.metadata,
        title="Da Nang health booking",
        description="Medical appointments: facilities, schedules, slots, bookings and visit records.",
        parts=ServiceParts(
            routers=[
                directory.router,
                schedules.router,
                appointments.router,
                records.router,
                fhir.router,
                directory.agency,
                schedules.agency,
                appointments.agency,
                records.agency,
            ],
            consumers=[payment_consumer(lambda: holder["app"])],
            on_startup=[on_startup],
            on_shutdown=[on_shutdown],
        ),
    )
    app.state.clock = utcnow
    holder["app"] = app
    return app

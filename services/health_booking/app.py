from fastapi import FastAPI

from services.health_booking.db import Base
from services.health_booking.settings import HealthBookingSettings
from shared.app import ServiceParts, create_service_app
from shared.settings import PlatformSettings


def create_app(settings: HealthBookingSettings | None = None, platform: PlatformSettings | None = None) -> FastAPI:
    return create_service_app(
        "health_booking",
        settings=settings or HealthBookingSettings(),
        platform=platform,
        metadata=Base.metadata,
        title="Da Nang health booking",
        description="Medical appointments: facilities, schedules, slots, bookings and visit records.",
        parts=ServiceParts(),
    )

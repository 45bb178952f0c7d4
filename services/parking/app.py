from fastapi import FastAPI

from services.parking.db import Base
from services.parking.settings import ParkingSettings
from shared.app import ServiceParts, create_service_app
from shared.settings import PlatformSettings


def create_app(settings: ParkingSettings | None = None, platform: PlatformSettings | None = None) -> FastAPI:
    return create_service_app(
        "parking",
        settings=settings or ParkingSettings(),
        platform=platform,
        metadata=Base.metadata,
        title="Da Nang parking",
        description="Find a lot, choose a space, book a time window and pay by mobile money.",
        parts=ServiceParts(),
    )

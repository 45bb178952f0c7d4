from fastapi import FastAPI

from services.tuition.db import Base
from services.tuition.settings import TuitionSettings
from shared.app import ServiceParts, create_service_app
from shared.settings import PlatformSettings


def create_app(settings: TuitionSettings | None = None, platform: PlatformSettings | None = None) -> FastAPI:
    return create_service_app(
        "tuition",
        settings=settings or TuitionSettings(),
        platform=platform,
        metadata=Base.metadata,
        title="Da Nang tuition",
        description="School fees: students, guardians, invoices, exemptions and cashless payment.",
        parts=ServiceParts(),
    )

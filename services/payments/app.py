from fastapi import FastAPI

from services.payments.db import Base
from services.payments.settings import PaymentsSettings
from shared.app import ServiceParts, create_service_app
from shared.settings import PlatformSettings


def create_app(settings: PaymentsSettings | None = None, platform: PlatformSettings | None = None) -> FastAPI:
    return create_service_app(
        "payments",
        settings=settings or PaymentsSettings(),
        platform=platform,
        metadata=Base.metadata,
        title="Da Nang payments",
        description="City fees paid by mobile money: payments, refunds, receipts, ledger and reconciliation.",
        parts=ServiceParts(),
    )

"""City fees paid by mobile money: payments, refunds, receipts, ledger and reconciliation."""

from fastapi import FastAPI

from services.payments.db import Base
from services.payments.ledger import models as _ledger_models  # noqa: F401  (registers tables)
from services.payments.payments import models as _payment_models  # noqa: F401
from services.payments.payments.router import router as payments_router
from services.payments.payments.service import PaymentsContext
from services.payments.provider.client import ProviderClient
from services.payments.reconciliation.service import start_reconciler, stop_reconciler
from services.payments.settings import PaymentsSettings
from services.payments.webhooks.handler import make_handler
from services.payments.webhooks.router import WEBHOOK_RECEIVED
from services.payments.webhooks.router import router as webhooks_router
from shared.app import ConsumerSpec, ServiceParts, create_service_app
from shared.events import Outbox
from shared.settings import PlatformSettings


def build_context(settings: PaymentsSettings, platform: PlatformSettings, outbox: Outbox) -> PaymentsContext:
    base_url = settings.provider_url or platform.sandbox_provider_url
    client = ProviderClient(
        base_url,
        settings.provider_api_key,
        timeout_s=settings.provider_timeout_s,
        connect_timeout_s=settings.provider_connect_timeout_s,
        retries=settings.provider_retries,
        backoff_s=settings.provider_backoff_s,
    )
    return PaymentsContext(settings=settings, outbox=outbox, providers={"sandbox": client})


def create_app(settings: PaymentsSettings | None = None, platform: PlatformSettings | None = None) -> FastAPI:
    settings = settings or PaymentsSettings()
    platform = platform or PlatformSettings()
    holder: dict[str, PaymentsContext] = {}

    async def on_startup(app: FastAPI) -> None:
        # The provider's httpx client belongs to the lifespan (one pool per process).
        ctx = build_context(settings, platform, app.state.outbox)
        holder["ctx"] = ctx
        app.state.payments = ctx
        await start_reconciler(app)

    async def on_shutdown(app: FastAPI) -> None:
        await stop_reconciler(app)
        for client in app.state.payments.providers.values():
            await client.aclose()

    async def on_webhook(session, event):  # type: ignore[no-untyped-def]
        await make_handler(holder["ctx"])(session, event)

    return create_service_app(
        "payments",
        settings=settings,
        platform=platform,
        metadata=Base.metadata,
        title="Da Nang payments",
        description="City fees paid by mobile money: payments, refunds, receipts, ledger and reconciliation.",
        parts=ServiceParts(
            routers=[webhooks_router, payments_router],
            consumers=[
                ConsumerSpec(group="payments.webhooks", sources=["payments"], handlers={WEBHOOK_RECEIVED: on_webhook})
            ],
            on_startup=[on_startup],
            on_shutdown=[on_shutdown],
        ),
    )

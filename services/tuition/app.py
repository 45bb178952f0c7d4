"""School fees: students, guardians, invoices, exemptions and cashless payment."""

from fastapi import FastAPI

from services.tuition.billing import models as _billing_models  # noqa: F401  (registers tables)
from services.tuition.billing.router import router as billing_router
from services.tuition.db import Base
from services.tuition.guardians import models as _guardian_models  # noqa: F401
from services.tuition.guardians.consumers import identity_consumer
from services.tuition.paying import models as _paying_models  # noqa: F401
from services.tuition.paying.consumers import payments_consumer
from services.tuition.paying.router import router as paying_router
from services.tuition.reminders import models as _reminder_models  # noqa: F401
from services.tuition.reports.router import router as reports_router
from services.tuition.runtime import TuitionRuntime
from services.tuition.settings import TuitionSettings
from services.tuition.students import models as _student_models  # noqa: F401
from services.tuition.students.router import router as students_router
from shared.app import ServiceParts, create_service_app
from shared.service_auth import ServiceTokenProvider
from shared.settings import PlatformSettings

DESCRIPTION = """School fees: students, guardians, invoices, exemptions and cashless payment.

Schools are agency clients (client credentials; scopes `tuition.students.write`, `tuition.invoices.write`);
guardians use their own token with scope `tuition`.

**Money** is integer đồng. **Exemptions** (Decree 81/2021/NĐ-CP: 100 %, 70 %, 50 %) reduce `tuition` lines only;
the reduction of a line is `(amount * percent + 50) // 100` (nearest đồng, halves up, in the family's favour);
when a student qualifies under several categories the highest percentage applies.
**Instalments**: a total T in n instalments is `T // n` each with the remainder (under n đồng) added to the
first, so instalments always sum to exactly T.
**Imports** (JSON or CSV) are `all_or_nothing` (422 naming every bad row and field, nothing stored) or
`per_row` (a report of every row's outcome).
"""

TAGS = [
    {"name": "students", "description": "Schools (agency clients) manage students, link codes and exemptions"},
    {"name": "guardians", "description": "Guardians link to students and see their invoices"},
    {"name": "fees", "description": "Fee items, collection rounds and invoice generation/import"},
    {"name": "invoices", "description": "Invoices, adjustments, voids and their audit trail"},
    {"name": "payments", "description": "One payment for several invoices; receipts"},
    {"name": "reports", "description": "Collected and outstanding per class and round"},
]


def create_app(
    settings: TuitionSettings | None = None,
    platform: PlatformSettings | None = None,
    *,
    payment_tokens: ServiceTokenProvider | None = None,
) -> FastAPI:
    """The tuition app; ``payment_tokens`` replaces the client-credentials token source (tests)."""
    settings = settings or TuitionSettings()
    runtime = TuitionRuntime(settings)
    runtime.tokens = payment_tokens
    app = create_service_app(
        "tuition",
        settings=settings,
        platform=platform,
        metadata=Base.metadata,
        title="Da Nang tuition",
        description=DESCRIPTION,
        parts=ServiceParts(
            routers=[students_router, billing_router, paying_router, reports_router],
            consumers=[payments_consumer(runtime), identity_consumer()],
            on_startup=[runtime.start],
            on_shutdown=[runtime.stop],
            tags=TAGS,
        ),
    )
    app.state.tuition = runtime
    return app

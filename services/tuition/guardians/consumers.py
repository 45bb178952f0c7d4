"""Identity events: when a person erases their account, their guardian links go with it."""

from __future__ import annotations

import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from services.tuition.guardians.models import Guardianship
from shared.app import ConsumerSpec
from shared.events import CloudEvent

log = structlog.get_logger("tuition.guardians")
ACCOUNT_ERASED = "identity.account.erased"


async def on_account_erased(session: AsyncSession, event: CloudEvent) -> None:
    """Remove the person's links to students. Payment orders stay: they are accounting records and
    carry only the opaque subject id, never a name or phone number."""
    sub = event.data.get("sub")
    if not isinstance(sub, str) or not sub:
        return
    result = await session.execute(delete(Guardianship).where(Guardianship.guardian_sub == sub))
    log.info("guardian_links_erased", links=result.rowcount)  # type: ignore[attr-defined]


def identity_consumer() -> ConsumerSpec:
    return ConsumerSpec(group="tuition.identity", sources=["identity"], handlers={ACCOUNT_ERASED: on_account_erased})

"""The ledger: balanced double entry, derived balances, append-only."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from services.payments.ledger.models import LedgerEntry
from services.payments.ledger.service import balances, payment_totals
from tests.payments.conftest import Stack


async def test_every_journal_balances_and_balances_are_derived(stack: Stack) -> None:
    ids = []
    for amount, refund in ((30_000, 10_000), (45_000, None)):
        payment = (await stack.create(amount=amount)).json()
        await stack.approve(payment)
        await stack.wait_status(payment["id"], "succeeded")
        if refund:
            await stack.http.post(
                f"/v1/payments/{payment['id']}/refunds",
                json={"amount_vnd": refund, "reason": "r"},
                headers={**stack.writer, "Idempotency-Key": f"r-{payment['id']}"},
            )
        ids.append(payment["id"])
    async with stack.db.sessionmaker() as session:
        legs = (await session.execute(select(LedgerEntry))).scalars().all()
        journals: dict[str, list[LedgerEntry]] = {}
        for leg in legs:
            journals.setdefault(leg.journal_id, []).append(leg)
        assert len(journals) == 3
        for pair in journals.values():
            assert sorted(leg.side for leg in pair) == ["credit", "debit"]
            assert pair[0].amount_vnd == pair[1].amount_vnd
        totals = await balances(session)
        assert totals == {"payer_wallet_clearing:sandbox": 65_000, "agency_receivable:svc-parking": -65_000}
        assert await payment_totals(session, ids) == {ids[0]: (30_000, 10_000), ids[1]: (45_000, 0)}


async def test_postgresql_refuses_changing_ledger_rows(stack: Stack) -> None:
    if stack.db.dialect != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's; on SQLite the code only ever inserts")
    payment = (await stack.create()).json()
    await stack.approve(payment)
    await stack.wait_status(payment["id"], "succeeded")
    for statement in ("UPDATE ledger_entries SET amount_vnd = 1", "DELETE FROM ledger_entries"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with stack.db.engine.begin() as conn:
                await conn.execute(text(statement))

"""Double-entry ledger: every money movement is a journal of two equal legs; balances are derived.

Accounts: ``payer_wallet_clearing:<wallet>`` (money the wallet provider collected from payers and owes
us) and ``agency_receivable:<client id>`` (what the platform holds for the agency that asked for the
payment). A captured payment debits the clearing account and credits the agency; a refund reverses it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.ledger.models import LedgerEntry
from services.payments.payments.models import Payment, Refund
from shared.db import new_id, utcnow


def clearing_account(wallet: str) -> str:
    return f"payer_wallet_clearing:{wallet}"


def agency_account(client_id: str) -> str:
    return f"agency_receivable:{client_id}"


async def _post(
    session: AsyncSession,
    *,
    movement: str,
    payment_id: str,
    refund_id: str | None,
    debit: str,
    credit: str,
    amount: int,
) -> None:
    journal = new_id()
    now = utcnow()
    session.add_all(
        [
            LedgerEntry(
                id=new_id(),
                journal_id=journal,
                movement=movement,
                payment_id=payment_id,
                refund_id=refund_id,
                account=debit,
                side="debit",
                amount_vnd=amount,
                posted_at=now,
            ),
            LedgerEntry(
                id=new_id(),
                journal_id=journal,
                movement=movement,
                payment_id=payment_id,
                refund_id=refund_id,
                account=credit,
                side="credit",
                amount_vnd=amount,
                posted_at=now,
            ),
        ]
    )
    await session.flush()


async def post_capture(session: AsyncSession, payment: Payment) -> None:
    await _post(
        session,
        movement=f"capture:{payment.id}",
        payment_id=payment.id,
        refund_id=None,
        debit=clearing_account(payment.wallet),
        credit=agency_account(payment.requested_by),
        amount=payment.amount_vnd,
    )


async def post_refund(session: AsyncSession, payment: Payment, refund: Refund) -> None:
    await _post(
        session,
        movement=f"refund:{refund.id}",
        payment_id=payment.id,
        refund_id=refund.id,
        debit=agency_account(payment.requested_by),
        credit=clearing_account(payment.wallet),
        amount=refund.amount_vnd,
    )


async def balances(session: AsyncSession) -> dict[str, int]:
    """Account → debit minus credit, summed over every leg."""
    signed = case((LedgerEntry.side == "debit", LedgerEntry.amount_vnd), else_=-LedgerEntry.amount_vnd)
    rows = await session.execute(select(LedgerEntry.account, func.sum(signed)).group_by(LedgerEntry.account))
    return {account: int(total) for account, total in rows}


async def payment_totals(session: AsyncSession, payment_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Payment id → (captured, refunded) according to the ledger (credit legs to the agency side)."""
    ids = list(payment_ids)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for start in range(0, len(ids), 500):
        rows = await session.execute(
            select(LedgerEntry.payment_id, LedgerEntry.movement, LedgerEntry.amount_vnd).where(
                LedgerEntry.payment_id.in_(ids[start : start + 500]), LedgerEntry.side == "debit"
            )
        )
        for payment_id, movement, amount in rows:
            totals[payment_id][0 if movement.startswith("capture:") else 1] += int(amount)
    return {k: (v[0], v[1]) for k, v in totals.items()}

"""All SQL of reservations, occupancies and charges."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.parking.lots.models import Pool
from services.parking.lots.repository import overlapping, pool_peaks, taking
from services.parking.reservations.models import (
    EXPIRED,
    FREED,
    HELD,
    PENDING,
    Charge,
    Occupancy,
    Reservation,
)


async def lock_person(session: AsyncSession, sub: str) -> None:
    """Serialise one person's bookings (PostgreSQL advisory lock; SQLite writers are serial already)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": "parking:" + sub})


async def lock_lot_spaces(session: AsyncSession, lot_id: str) -> None:
    """Serialise the bookers of one lot's numbered spaces (PostgreSQL advisory lock, until commit).

    Without it, concurrent bookers of the last spaces meet in the exclusion constraint's check: each
    waits for the other's transaction, and a pair that waits on each other is only broken by PostgreSQL's
    deadlock detector after ``deadlock_timeout`` (1 s): under contention that second dominated latency.
    Queued on this lock, each booker checks against committed rows and inserts without waiting; the
    exclusion constraint stays the last word (paths that do not take this lock are still guarded by it).
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": "parking-lot:" + lot_id})


async def unpaid_holds(session: AsyncSession, sub: str, now: datetime) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(Reservation)
        .where(Reservation.user_sub == sub, Reservation.status == PENDING, Reservation.hold_expires_at > now)
    )
    return int(result.scalar_one())


async def expire_lapsed(session: AsyncSession, now: datetime, *, lot_id: str | None = None) -> list[str]:
    """Release held occupancies whose hold lapsed; their pending reservations become expired."""
    query = (
        update(Occupancy)
        .where(Occupancy.status == HELD, Occupancy.hold_expires_at <= now)
        .values(status=FREED)
        .returning(Occupancy.reservation_id, Occupancy.kind)
        .execution_options(synchronize_session=False)
    )
    if lot_id is not None:
        query = query.where(Occupancy.lot_id == lot_id)
    rows = (await session.execute(query)).all()
    bookings = [rid for rid, kind in rows if kind == "booking"]
    if bookings:
        await session.execute(
            update(Reservation)
            .where(Reservation.id.in_(bookings), Reservation.status == PENDING)
            .values(status=EXPIRED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return bookings


async def lock_pool(session: AsyncSession, pool_id: str) -> Pool:
    """The pool row, locked: bookings of one pool take turns, so capacity is checked against committed rows."""
    # NO KEY UPDATE: serialises bookers of the pool without clashing with the key-share locks that
    # inserting rows referencing the pool takes (FOR UPDATE would deadlock against those).
    query = select(Pool).where(Pool.id == pool_id).with_for_update(key_share=True)
    return (await session.execute(query)).scalar_one()


async def pool_has_room(session: AsyncSession, pool: Pool, start: datetime, end: datetime, now: datetime) -> bool:
    peak = (await pool_peaks(session, [pool.id], start, end, now)).get(pool.id, 0)
    return peak < pool.capacity


async def space_is_free(
    session: AsyncSession, space_id: str, start: datetime, end: datetime, now: datetime, *, ignore: str | None = None
) -> bool:
    query = select(Occupancy.id).where(Occupancy.space_id == space_id, overlapping(start, end), taking(now))
    if ignore:
        query = query.where(Occupancy.id != ignore)
    return (await session.execute(query.limit(1))).first() is None


async def holds_among(
    session: AsyncSession, space_ids: Sequence[str], start: datetime, end: datetime, now: datetime
) -> tuple[set[str], set[str]]:
    """Of these spaces, which are taken at some instant of the window, and which are blocked only by
    holds that lapsed but are not released yet (the exclusion constraint still counts those, so they
    are released before the space is taken): one query for all candidates."""
    query = select(Occupancy.space_id, Occupancy.status, Occupancy.hold_expires_at).where(
        Occupancy.space_id.in_(space_ids), overlapping(start, end), Occupancy.status.in_((HELD, "booked"))
    )
    taken: set[str] = set()
    lapsed: set[str] = set()
    for space_id, status, hold_expires_at in (await session.execute(query)).all():
        if space_id is None:  # the query selects only rows of these spaces
            continue
        if status == HELD and hold_expires_at is not None and hold_expires_at <= now:
            lapsed.add(space_id)
        else:
            taken.add(space_id)
    return taken, lapsed - taken


def _deadlock(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code == "40P01" or "deadlock detected" in str(exc.orig)


async def reinstate(session: AsyncSession, occupancy: Occupancy, now: datetime) -> bool:
    """Take a released occupancy's place again (a payment that succeeded after its hold lapsed)."""
    if occupancy.pool_id:
        pool = await lock_pool(session, occupancy.pool_id)
        if not await pool_has_room(session, pool, occupancy.start_at, occupancy.end_at, now):
            return False
    elif occupancy.space_id:
        # Under the lock every booker of the lot's spaces takes: what is checked stays true until commit.
        await lock_lot_spaces(session, occupancy.lot_id)
        if not await space_is_free(
            session, occupancy.space_id, occupancy.start_at, occupancy.end_at, now, ignore=occupancy.id
        ):
            return False
    try:
        async with session.begin_nested():
            occupancy.status, occupancy.hold_expires_at = "booked", None
            await session.flush()
    except DBAPIError as exc:
        if not isinstance(exc, IntegrityError) and not _deadlock(exc):
            raise
        await session.refresh(occupancy)
        return False
    return True


async def charges_of(session: AsyncSession, reservation_ids: Sequence[str]) -> dict[str, list[Charge]]:
    out: dict[str, list[Charge]] = {rid: [] for rid in reservation_ids}
    if reservation_ids:
        result = await session.execute(
            select(Charge).where(Charge.reservation_id.in_(reservation_ids)).order_by(Charge.created_at, Charge.id)
        )
        for charge in result.scalars():
            out[charge.reservation_id].append(charge)
    return out


async def occupancies_of(session: AsyncSession, reservation_id: str, *, lock: bool = False) -> list[Occupancy]:
    query = select(Occupancy).where(Occupancy.reservation_id == reservation_id).order_by(Occupancy.start_at)
    if lock:
        query = query.with_for_update()
    return list((await session.execute(query)).scalars())


async def lapsed_unpaid_charges(session: AsyncSession, limit: int = 100) -> Sequence[Charge]:
    """Open payments whose place was released (hold lapsed or reservation canceled) and not yet canceled."""
    result = await session.execute(
        select(Charge)
        .join(Occupancy, Occupancy.id == Charge.occupancy_id)
        .where(
            Charge.status.in_(("requires_action", "processing")),
            Charge.cancel_requested.is_(False),
            Occupancy.status == FREED,
        )
        .limit(limit)
    )
    return result.scalars().all()


def upcoming_filter(now: datetime) -> ColumnElement[bool]:
    return and_(Reservation.end_at > now, Reservation.status.in_((PENDING, "confirmed", "checked_in")))

"""All SQL of lots, inventory and availability."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, and_, any_, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.parking.lots.models import InventoryVersion, Lot, Pool, Rate, Space
from services.parking.reservations.models import BOOKED, HELD, Occupancy
from shared.db import Database, UTCDateTime

EARTH_RADIUS_M = 6_371_000.0


def taking(now: datetime) -> ColumnElement[bool]:
    """An occupancy takes its place if booked, or held and its hold has not lapsed."""
    return or_(Occupancy.status == BOOKED, and_(Occupancy.status == HELD, Occupancy.hold_expires_at > now))


def overlapping(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(Occupancy.start_at < end, Occupancy.end_at > start)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """The lat/lon bounding box of a circle (a prefilter the ix_lots_lat_lon index serves)."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = math.degrees(radius_m / (EARTH_RADIUS_M * max(0.01, math.cos(math.radians(lat)))))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def _taken_statement(postgresql: bool) -> Any:
    """The statement of ``taken_in``, built once per dialect: parameters are bound per call.

    The inventory's token and, beside it, every occupancy of the given lots that takes its place at
    some instant of the window. A LEFT JOIN from the one-row token, so the token comes back even when
    nothing is taken. Plain columns only: on PostgreSQL it runs through ``Database.fetch_readonly``.
    """
    occ, version = Occupancy.__table__.c, InventoryVersion.__table__.c
    lot_ids = (
        occ.lot_id == any_(bindparam("lot_ids", type_=ARRAY(String())))
        if postgresql
        else occ.lot_id.in_(bindparam("lot_ids", expanding=True))
    )
    start, end, now = (bindparam(n, type_=UTCDateTime()) for n in ("start", "end", "now"))
    token = select(func.coalesce(func.max(version.token), "").label("token")).subquery("v")
    return select(token.c.token, occ.lot_id, occ.space_id, occ.pool_id, occ.start_at, occ.end_at).select_from(
        token.outerjoin(
            Occupancy.__table__,
            and_(
                lot_ids,
                occ.start_at < end,
                occ.end_at > start,
                or_(occ.status == BOOKED, and_(occ.status == HELD, occ.hold_expires_at > now)),
            ),
        )
    )


_TAKEN = {True: _taken_statement(True), False: _taken_statement(False)}


async def taken_in(
    db: Database, lot_ids: Sequence[str], start: datetime, end: datetime, now: datetime
) -> tuple[str, list[tuple[str, str | None, str | None, datetime, datetime]]]:
    """The inventory's token, and (lot_id, space_id, pool_id, start_at, end_at) of every occupancy that takes
    a place of these lots at some instant of the window: ONE round trip, no session."""
    statement = _TAKEN[db.dialect == "postgresql"]
    rows = await db.fetch_readonly(statement, {"lot_ids": list(lot_ids), "start": start, "end": end, "now": now})
    token = rows[0][0] if rows else ""
    return token, [(r[1], r[2], r[3], r[4], r[5]) for r in rows if r[1] is not None]


async def load_inventory(db: Database) -> tuple[str, list[Any], list[Any], list[Any], list[Any]]:
    """The token and every lot, space, pool and rate (rows with the tables' columns as attributes),
    read in one snapshot: search's inventory cache."""
    async with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            token = (await conn.execute(select(func.coalesce(func.max(InventoryVersion.token), "")))).scalar_one()
            tables = [list(await conn.execute(select(m.__table__))) for m in (Lot, Space, Pool, Rate)]
    return token, *tables  # type: ignore[return-value]


async def pools_for(session: AsyncSession, lot_ids: Sequence[str], vehicle_type: str) -> dict[str, Pool]:
    result = await session.execute(select(Pool).where(Pool.lot_id.in_(lot_ids), Pool.vehicle_type == vehicle_type))
    return {p.lot_id: p for p in result.scalars()}


async def space_counts(session: AsyncSession, lot_ids: Sequence[str], vehicle_type: str) -> dict[str, tuple[int, int]]:
    """lot id → (spaces, accessible spaces) of the vehicle type."""
    result = await session.execute(
        select(Space.lot_id, Space.accessible, func.count())
        .where(Space.lot_id.in_(lot_ids), Space.vehicle_type == vehicle_type)
        .group_by(Space.lot_id, Space.accessible)
    )
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for lot_id, accessible, n in result.all():
        counts[lot_id][0] += n
        if accessible:
            counts[lot_id][1] += n
    return {k: (v[0], v[1]) for k, v in counts.items()}


async def pool_peaks(
    session: AsyncSession | AsyncConnection,
    pool_ids: Sequence[str],
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    exclude_reservation: str | None = None,
) -> dict[str, int]:
    """pool id → the most places taken at any one instant of the window."""
    if not pool_ids:
        return {}
    query = select(Occupancy.pool_id, Occupancy.start_at, Occupancy.end_at).where(
        Occupancy.pool_id.in_(pool_ids), overlapping(start, end), taking(now)
    )
    if exclude_reservation:
        query = query.where(Occupancy.reservation_id != exclude_reservation)
    windows: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for pool_id, a, b in (await session.execute(query)).all():
        if pool_id is not None:  # the query selects only rows of these pools
            windows[pool_id].append((a, b))
    return {pool_id: peak(found, start, end) for pool_id, found in windows.items()}


def peak(windows: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime) -> int:
    """The most of these windows that overlap at any one instant of [start, end)."""
    points = [p for a, b in windows for p in ((max(a, start), 1), (min(b, end), -1))]
    # Half-open windows: a place freed at t can be taken at t, so -1 sorts before +1.
    level = top = 0
    for _, delta in sorted(points):
        level += delta
        top = max(top, level)
    return top


async def free_spaces(
    session: AsyncSession, lot_id: str, vehicle_type: str, start: datetime, end: datetime, now: datetime
) -> Sequence[Space]:
    busy = select(Occupancy.space_id).where(
        Occupancy.lot_id == lot_id, Occupancy.space_id.is_not(None), overlapping(start, end), taking(now)
    )
    result = await session.execute(
        select(Space)
        .where(Space.lot_id == lot_id, Space.vehicle_type == vehicle_type, Space.id.not_in(busy))
        .order_by(Space.accessible, Space.label)
    )
    return result.scalars().all()

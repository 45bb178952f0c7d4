"""All SQL of lots, inventory and availability."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.parking.lots.models import Lot, Pool, Rate, Space
from services.parking.reservations.models import BOOKED, HELD, Occupancy

EARTH_RADIUS_M = 6_371_000.0


def taking(now: datetime) -> object:
    """An occupancy takes its place if booked, or held and its hold has not lapsed."""
    return or_(Occupancy.status == BOOKED, and_(Occupancy.status == HELD, Occupancy.hold_expires_at > now))


def overlapping(start: datetime, end: datetime) -> object:
    return and_(Occupancy.start_at < end, Occupancy.end_at > start)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


async def lots_in_box(session: AsyncSession, lat: float, lon: float, radius_m: float) -> Sequence[Lot]:
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = math.degrees(radius_m / (EARTH_RADIUS_M * max(0.01, math.cos(math.radians(lat)))))
    result = await session.execute(
        select(Lot).where(Lot.lat.between(lat - dlat, lat + dlat), Lot.lon.between(lon - dlon, lon + dlon))
    )
    return result.scalars().all()


async def pools_for(session: AsyncSession, lot_ids: Sequence[str], vehicle_type: str) -> dict[str, Pool]:
    result = await session.execute(select(Pool).where(Pool.lot_id.in_(lot_ids), Pool.vehicle_type == vehicle_type))
    return {p.lot_id: p for p in result.scalars()}


async def space_counts(session: AsyncSession, lot_ids: Sequence[str], vehicle_type: str
                       ) -> dict[str, tuple[int, int]]:
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


async def rates_and_pools(session: AsyncSession, lot_ids: Sequence[str], vehicle_type: str
                          ) -> tuple[dict[str, Rate], dict[str, Pool]]:
    """The lots' rates for the vehicle type and their pools for it, in one round trip."""
    result = await session.execute(
        select(Rate, Pool)
        .outerjoin(Pool, and_(Pool.lot_id == Rate.lot_id, Pool.vehicle_type == Rate.vehicle_type))
        .where(Rate.lot_id.in_(lot_ids), Rate.vehicle_type == vehicle_type)
    )
    rates: dict[str, Rate] = {}
    pools: dict[str, Pool] = {}
    for rate, pool in result.all():
        rates[rate.lot_id] = rate
        if pool is not None:
            pools[pool.lot_id] = pool
    return rates, pools


async def taken_spaces(session: AsyncSession, lot_ids: Sequence[str], vehicle_type: str, start: datetime,
                       end: datetime, now: datetime) -> dict[str, dict[str, bool]]:
    """lot id → {space id: accessible} of its spaces of the type taken at some instant of the window."""
    result = await session.execute(
        select(Occupancy.lot_id, Occupancy.space_id, Space.accessible)
        .join(Space, Space.id == Occupancy.space_id)
        .where(Occupancy.lot_id.in_(lot_ids), Space.vehicle_type == vehicle_type, overlapping(start, end),
               taking(now))
        .distinct()
    )
    taken: dict[str, dict[str, bool]] = defaultdict(dict)
    for lot_id, space_id, accessible in result.all():
        taken[lot_id][space_id] = accessible
    return taken


async def pool_peaks(session: AsyncSession, pool_ids: Sequence[str], start: datetime, end: datetime,
                     now: datetime, *, exclude_reservation: str | None = None) -> dict[str, int]:
    """pool id → the most places taken at any one instant of the window."""
    if not pool_ids:
        return {}
    query = select(Occupancy.pool_id, Occupancy.start_at, Occupancy.end_at).where(
        Occupancy.pool_id.in_(pool_ids), overlapping(start, end), taking(now)
    )
    if exclude_reservation:
        query = query.where(Occupancy.reservation_id != exclude_reservation)
    edges: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for pool_id, a, b in (await session.execute(query)).all():
        edges[pool_id] += [(max(a, start), 1), (min(b, end), -1)]
    peaks: dict[str, int] = {}
    for pool_id, points in edges.items():
        # Half-open windows: a place freed at t can be taken at t, so -1 sorts before +1.
        level = peak = 0
        for _, delta in sorted(points):
            level += delta
            peak = max(peak, level)
        peaks[pool_id] = peak
    return peaks


async def free_spaces(session: AsyncSession, lot_id: str, vehicle_type: str, start: datetime, end: datetime,
                      now: datetime) -> Sequence[Space]:
    busy = select(Occupancy.space_id).where(
        Occupancy.lot_id == lot_id, Occupancy.space_id.is_not(None), overlapping(start, end), taking(now)
    )
    result = await session.execute(
        select(Space).where(Space.lot_id == lot_id, Space.vehicle_type == vehicle_type, Space.id.not_in(busy))
        .order_by(Space.accessible, Space.label)
    )
    return result.scalars().all()

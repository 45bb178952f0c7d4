"""All SQL of lots, inventory and availability."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, String, and_, bindparam, case, distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.parking.lots.models import Lot, Pool, Rate, Space
from services.parking.reservations.models import BOOKED, HELD, Occupancy
from shared.db import UTCDateTime

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


def _search_query() -> Any:
    """The statement of ``search_candidates``, built once: parameters are bound per call."""
    # Core tables, not ORM entities: the rows are plain tuples and execution skips the ORM's compile step.
    lot, rate, pool, occ = Lot.__table__.c, Rate.__table__.c, Pool.__table__.c, Occupancy.__table__.c
    space_t = Space.__table__.alias("space")
    space = space_t.c
    vehicle_type = bindparam("vehicle_type", type_=String())
    start, end, now = (bindparam(n, type_=UTCDateTime()) for n in ("start", "end", "now"))

    def n_spaces(*extra: Any) -> Any:
        return (
            select(func.count())
            .select_from(space_t)
            .where(space.lot_id == lot.id, space.vehicle_type == vehicle_type, *extra)
            .scalar_subquery()
        )

    def n_taken(*extra: Any) -> Any:
        return (
            select(func.count(distinct(occ.space_id)))
            .select_from(Occupancy.__table__)
            .join(space_t, space.id == occ.space_id)
            .where(
                occ.lot_id == lot.id,
                space.vehicle_type == vehicle_type,
                occ.start_at < end,
                occ.end_at > start,
                or_(occ.status == BOOKED, and_(occ.status == HELD, occ.hold_expires_at > now)),
                *extra,
            )
            .scalar_subquery()
        )

    return (
        select(
            lot.id,
            lot.name,
            lot.address,
            lot.lat,
            lot.lon,
            lot.photo_url,
            lot.opens_at,
            lot.closes_at,
            lot.cancellation_cutoff_minutes,
            lot.overstay_grace_minutes,
            rate.mode.label("rate_mode"),
            rate.day_price_vnd.label("rate_day_price_vnd"),
            rate.night_price_vnd.label("rate_night_price_vnd"),
            rate.hourly_tiers.label("rate_hourly_tiers"),
            rate.daily_cap_vnd.label("rate_daily_cap_vnd"),
            pool.id.label("pool_id"),
            pool.capacity.label("pool_capacity"),
            pool.accessible_places.label("pool_accessible_places"),
            # A lot counts its places of a type in a pool or numbers them, never both (add_pool/add_spaces).
            case((pool.id.is_(None), n_spaces()), else_=0).label("spaces"),
            case((pool.id.is_(None), n_spaces(space.accessible.is_(True))), else_=0).label("spaces_accessible"),
            case((pool.id.is_(None), n_taken()), else_=0).label("taken"),
            case((pool.id.is_(None), n_taken(space.accessible.is_(True))), else_=0).label("taken_accessible"),
        )
        .select_from(Lot.__table__)
        .join(Rate.__table__, and_(rate.lot_id == lot.id, rate.vehicle_type == vehicle_type))
        .outerjoin(Pool.__table__, and_(pool.lot_id == lot.id, pool.vehicle_type == vehicle_type))
        .where(
            lot.lat.between(bindparam("lat_min"), bindparam("lat_max")),
            lot.lon.between(bindparam("lon_min"), bindparam("lon_max")),
        )
    )


_SEARCH = _search_query()


async def search_candidates(
    session: AsyncSession | AsyncConnection,
    lat: float,
    lon: float,
    radius_m: float,
    vehicle_type: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> Sequence[Row[Any]]:
    """Lots in the bounding box that have a rate for the vehicle type, in ONE round trip.

    Each row: the lot's public columns, its rate (rate_*), its pool for the type if any (pool_*), and for
    numbered spaces of the type: how many (spaces, spaces_accessible) and how many are taken at some
    instant of the window (taken, taken_accessible). Pool peaks need a sweep over the pool's occupancies;
    ``pool_peaks`` computes them for the (few) pool lots.
    """
    lat_min, lat_max, lon_min, lon_max = box(lat, lon, radius_m)
    params = {
        "vehicle_type": vehicle_type,
        "start": start,
        "end": end,
        "now": now,
        "lat_min": lat_min,
        "lat_max": lat_max,
        "lon_min": lon_min,
        "lon_max": lon_max,
    }
    return (await session.execute(_SEARCH, params)).all()


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
    edges: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for pool_id, a, b in (await session.execute(query)).all():
        if pool_id is not None:  # the query selects only rows of these pools
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

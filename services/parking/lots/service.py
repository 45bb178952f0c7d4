"""Business rules of lots: operators manage their own inventory and rates; people search and get quotes."""

from __future__ import annotations

import base64
import functools
import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.parking.lots import repository as repo
from services.parking.lots.inventory import InventoryCache, LotEntry
from services.parking.lots.models import Lot, Pool, Rate, Space
from services.parking.lots.schemas import (
    Availability,
    FreeSpace,
    LotCreate,
    LotOut,
    LotUpdate,
    OperatorLotOut,
    PoolCreate,
    PoolOut,
    Quote,
    RateIn,
    RateOut,
    SpaceOut,
    SpacesCreate,
)
from services.parking.pricing import QuoteSigner, RateRule, price_window, rate_rule, sign_quote
from services.parking.settings import ParkingSettings
from shared.db import Database
from shared.errors import BadRequest, Conflict, NotFound, field_error

_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)  # renders date-times as responses do


def rate_out(rate: Rate) -> RateOut:
    return RateOut.model_validate(rate, from_attributes=True)


def make_quote(
    settings: ParkingSettings, lot_id: str, vehicle_type: str, rate: Rate, start: datetime, end: datetime, now: datetime
) -> Quote:
    price = price_window(rate_rule(rate), start, end)
    valid_until = now + timedelta(seconds=settings.quote_ttl_s)
    token = sign_quote(
        settings.quote_secret,
        {
            "lot_id": lot_id,
            "vehicle_type": vehicle_type,
            "start_at": start.astimezone(UTC).isoformat(),
            "end_at": end.astimezone(UTC).isoformat(),
            "amount_vnd": price.amount_vnd,
            "exp": int(valid_until.timestamp()),
        },
    )
    return Quote(
        amount_vnd=price.amount_vnd,
        start_at=start,
        end_at=end,
        valid_until=valid_until,
        quote_token=token,
        lines=price.lines,
    )


# ---- operators -------------------------------------------------------------------------------------


async def own_lot(session: AsyncSession, lot_id: str, operator_id: str, *, lock: bool = False) -> Lot:
    """The operator's lot; another operator's lot is as invisible as a missing one."""
    query = select(Lot).where(Lot.id == lot_id, Lot.operator_id == operator_id)
    if lock:
        query = query.with_for_update(key_share=True)
    lot = (await session.execute(query)).scalar_one_or_none()
    if lot is None:
        raise NotFound("No such lot among yours", code="lot_not_found")
    return lot


async def operator_view(session: AsyncSession, lot: Lot) -> OperatorLotOut:
    spaces = (await session.execute(select(Space).where(Space.lot_id == lot.id).order_by(Space.label))).scalars()
    pools = (await session.execute(select(Pool).where(Pool.lot_id == lot.id).order_by(Pool.vehicle_type))).scalars()
    rates = (await session.execute(select(Rate).where(Rate.lot_id == lot.id).order_by(Rate.vehicle_type))).scalars()
    return OperatorLotOut(
        **LotOut.of(lot).model_dump(),
        operator_id=lot.operator_id,
        spaces=[SpaceOut.model_validate(s) for s in spaces],
        pools=[PoolOut.model_validate(p) for p in pools],
        rates=[rate_out(r) for r in rates],
    )


async def create_lot(session: AsyncSession, operator_id: str, data: LotCreate) -> Lot:
    lot = Lot(operator_id=operator_id, **data.model_dump())
    session.add(lot)
    await session.flush()
    return lot


async def update_lot(session: AsyncSession, lot: Lot, data: LotUpdate) -> Lot:
    changes = data.model_dump(exclude_unset=True)
    if ("opens_at" in changes) != ("closes_at" in changes):
        raise BadRequest("Change opens_at and closes_at together", code="opening_hours_incomplete")
    for key, value in changes.items():
        if value is None and key not in ("photo_url", "opens_at", "closes_at"):
            continue
        setattr(lot, key, value)
    await session.flush()
    return lot


async def list_operator_lots(
    session: AsyncSession, operator_id: str, *, cursor: str | None, limit: int
) -> tuple[list[Lot], str | None]:
    query = select(Lot).where(Lot.operator_id == operator_id).order_by(Lot.id).limit(limit + 1)
    if cursor:
        query = query.where(Lot.id > decode_cursor(cursor))
    lots = list((await session.execute(query)).scalars())
    more = len(lots) > limit
    lots = lots[:limit]
    return lots, encode_cursor(lots[-1].id) if more else None


async def add_spaces(session: AsyncSession, lot: Lot, data: SpacesCreate) -> list[Space]:
    labels = [s.label for s in data.spaces]
    if len(set(labels)) != len(labels):
        raise Conflict("Two spaces in the request share a label", code="space_label_taken")
    types = {s.vehicle_type.value for s in data.spaces}
    pooled = (
        (await session.execute(select(Pool.vehicle_type).where(Pool.lot_id == lot.id, Pool.vehicle_type.in_(types))))
        .scalars()
        .first()
    )
    if pooled:
        raise Conflict(
            f"This lot counts {pooled} places in a pool; it cannot also number them", code="inventory_kind_conflict"
        )
    spaces = [Space(lot_id=lot.id, **s.model_dump()) for s in data.spaces]
    session.add_all(spaces)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict("A space with this label already exists in the lot", code="space_label_taken") from None
    return spaces


async def add_pool(session: AsyncSession, lot: Lot, data: PoolCreate) -> Pool:
    numbered = (
        await session.execute(
            select(Space.id).where(Space.lot_id == lot.id, Space.vehicle_type == data.vehicle_type.value).limit(1)
        )
    ).first()
    if numbered:
        raise Conflict("This lot has numbered spaces for this vehicle type", code="inventory_kind_conflict")
    pool = Pool(lot_id=lot.id, **data.model_dump())
    session.add(pool)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict("The lot already has a pool for this vehicle type", code="pool_exists") from None
    return pool


async def own_pool(session: AsyncSession, lot: Lot, pool_id: str) -> Pool:
    pool = (
        await session.execute(select(Pool).where(Pool.id == pool_id, Pool.lot_id == lot.id).with_for_update())
    ).scalar_one_or_none()
    if pool is None:
        raise NotFound("No such pool in this lot", code="pool_not_found")
    return pool


async def put_rate(session: AsyncSession, lot: Lot, vehicle_type: str, data: RateIn) -> Rate:
    rate = await session.get(Rate, (lot.id, vehicle_type))
    values = data.model_dump()
    values["hourly_tiers"] = [t.model_dump() for t in data.hourly_tiers] if data.hourly_tiers else None
    if rate is None:
        rate = Rate(lot_id=lot.id, vehicle_type=vehicle_type, **values)
        session.add(rate)
    else:
        for key, value in values.items():
            setattr(rate, key, value)
    await session.flush()
    return rate


# ---- people: search and availability -------------------------------------------------------------


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except ValueError:
        raise field_error("query.cursor", "not a cursor this API gave") from None


async def search(
    db: Database,
    inventory: InventoryCache,
    settings: ParkingSettings,
    *,
    lat: float,
    lon: float,
    radius_m: int,
    vehicle_type: str,
    start: datetime,
    end: datetime,
    now: datetime,
    cursor: str | None,
    limit: int,
) -> str:
    """Lots near a point with free places for the window, nearest first (then by id), one page of
    them: a LotSearchPage as JSON.

    The lots, their rates and places come from the process's copy of the inventory (lots/inventory.py);
    what is taken comes from ONE query, which also says whether that copy is current (if not, it is
    reloaded and the search runs again). Lots on one page that share a rate share its price.
    """
    from services.parking.windows import within_opening_hours

    offset = 0
    if cursor:
        decoded = decode_cursor(cursor)
        if not decoded.isdigit():
            raise field_error("query.cursor", "not a cursor this API gave")
        offset = int(decoded)
    box = repo.box(lat, lon, radius_m)
    copy = await inventory.get()
    for _attempt in (1, 2):
        near: list[tuple[float, LotEntry]] = []
        for entry in copy.in_box(*box):
            if vehicle_type not in entry.rates or not (vehicle_type in entry.pools or entry.spaces.get(vehicle_type)):
                continue
            distance = repo.distance_m(lat, lon, entry.lat, entry.lon)
            if distance <= radius_m and within_opening_hours(entry, start, end):
                near.append((distance, entry))
        token, taken = await repo.taken_in(db, [entry.id for _, entry in near], start, end, now)
        if token == copy.token:
            break
        copy = await inventory.get(token)
    found: list[tuple[float, LotEntry, str, int, int]] = []
    pool_windows: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    taken_spaces: dict[str, set[str]] = defaultdict(set)  # lot id → its taken spaces
    for lot_id, space_id, pool_id, a, b in taken:
        if pool_id is not None:
            pool_windows[pool_id].append((a, b))
        elif space_id is not None:
            taken_spaces[lot_id].add(space_id)
    for distance, entry in sorted(near, key=lambda x: (x[0], x[1].id)):
        pool = entry.pools.get(vehicle_type)
        if pool is not None:
            kind, free = "pool", pool.capacity - repo.peak(pool_windows.get(pool.id, ()), start, end)
            free_accessible = min(free, pool.accessible_places)
        else:
            spaces = entry.spaces[vehicle_type]
            kind, free, free_accessible = "spaces", len(spaces), entry.accessible_spaces.get(vehicle_type, 0)
            for space_id in taken_spaces.get(entry.id, ()):
                if space_id in spaces:  # a space of this vehicle type
                    free -= 1
                    free_accessible -= spaces[space_id]
        if free > 0:
            found.append((distance, entry, kind, free, free_accessible))
    # Quotes are priced and signed for the page only. The page is written as JSON straight from
    # validated data: each lot's fixed fields were rendered once when the inventory was loaded, the
    # window's datetimes once per search (as pydantic renders them), each price's lines once per rate
    # and window. The bytes are exactly what LotSearchPage would render (tests/parking/test_lots.py and
    # test_search_inventory.py check it byte for byte); the encoder on every request cost a tenth of it.
    valid_until = now + timedelta(seconds=settings.quote_ttl_s)
    start_utc, end_utc = start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat()
    signer = QuoteSigner(settings.quote_secret, vehicle_type, start_utc, end_utc, int(valid_until.timestamp()))
    window = ",".join(
        f'"{name}":{json.dumps(_DATETIME.dump_python(t, mode="json"))}'
        for name, t in (("start_at", start), ("end_at", end), ("valid_until", valid_until))
    )
    after_id = f',"vehicle_type":{json.dumps(vehicle_type)},"kind":"'
    items = []
    for distance, entry, kind, free, free_accessible in found[offset : offset + limit]:
        amount, lines = _priced(entry.rates[vehicle_type], start, end)
        items.append(
            f'{{{entry.public_json},"distance_m":{round(distance)}{after_id}{kind}","free":{free},'
            f'"free_accessible":{free_accessible},"quote":{{"amount_vnd":{amount},"currency":"VND",{window},'
            f'"quote_token":"{signer.sign(entry.id, amount)}","lines":{lines}}}}}'
        )
    more = offset + limit < len(found)
    next_cursor = json.dumps(encode_cursor(str(offset + limit)) if more else None)
    return f'{{"items":[{",".join(items)}],"next_cursor":{next_cursor}}}'


@functools.lru_cache(maxsize=4096)
def _priced(rule: RateRule, start: datetime, end: datetime) -> tuple[int, str]:
    """The price of a window and its lines as JSON, remembered: searches ask for the same few rates
    over the same windows."""
    price = price_window(rule, start, end)
    return price.amount_vnd, json.dumps(price.lines, ensure_ascii=False, separators=(",", ":"))


async def get_lot(session: AsyncSession, lot_id: str) -> Lot:
    lot = await session.get(Lot, lot_id)
    if lot is None:
        raise NotFound("No such lot", code="lot_not_found")
    return lot


async def availability(
    session: AsyncSession,
    settings: ParkingSettings,
    lot: Lot,
    vehicle_type: str,
    start: datetime,
    end: datetime,
    now: datetime,
) -> Availability:
    rate = await session.get(Rate, (lot.id, vehicle_type))
    quote = make_quote(settings, lot.id, vehicle_type, rate, start, end, now) if rate else None
    base = {"lot_id": lot.id, "vehicle_type": vehicle_type, "start_at": start, "end_at": end, "quote": quote}
    pool = (await repo.pools_for(session, [lot.id], vehicle_type)).get(lot.id)
    if pool is not None:
        peak = (await repo.pool_peaks(session, [pool.id], start, end, now)).get(pool.id, 0)
        return Availability(**base, kind="pool", total=pool.capacity, free=max(0, pool.capacity - peak))
    total = (await repo.space_counts(session, [lot.id], vehicle_type)).get(lot.id, (0, 0))[0]
    if not total:
        return Availability(**base, kind="none", total=0, free=0)
    free: Sequence[Space] = await repo.free_spaces(session, lot.id, vehicle_type, start, end, now)
    return Availability(
        **base,
        kind="spaces",
        total=total,
        free=len(free),
        free_spaces=[FreeSpace(id=s.id, label=s.label, accessible=s.accessible) for s in free],
    )

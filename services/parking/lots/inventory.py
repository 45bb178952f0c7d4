"""Search's in-memory copy of the inventory: lots, their rates, pools and numbered spaces.

What a lot *is* changes rarely (operators edit it); what is *taken* changes all the time. Search keeps
the first in each process and asks the database only for the second. The copy is never trusted
blindly: every search's one query also returns the inventory's token (``inventory_versions``, changed
by triggers on every write to lots, spaces, pools or rates, whoever writes), and a search that sees
another token than its copy's reloads the copy and runs again. So a search never answers from an
inventory older than the one its own query saw.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from services.parking.lots import repository as repo
from services.parking.lots.schemas import LotOut
from services.parking.pricing import RateRule, rate_rule
from shared.db import Database


@dataclass(frozen=True, slots=True)
class PoolEntry:
    id: str
    capacity: int
    accessible_places: int


@dataclass(slots=True)
class LotEntry:
    id: str
    lat: float
    lon: float
    opens_at: time | None
    closes_at: time | None
    public_json: str  # the LotOut fields as JSON, without the braces, ready for a response
    rates: dict[str, RateRule] = field(default_factory=dict)
    pools: dict[str, PoolEntry] = field(default_factory=dict)
    # vehicle type → {space id: accessible}, and how many of them are accessible
    spaces: dict[str, dict[str, bool]] = field(default_factory=dict)
    accessible_spaces: dict[str, int] = field(default_factory=dict)


class Inventory:
    """One consistent snapshot of the inventory, indexed by latitude for box queries."""

    def __init__(self, token: str, lots: list[Any], spaces: list[Any], pools: list[Any], rates: list[Any]) -> None:
        self.token = token
        entries: dict[str, LotEntry] = {}
        for lot in lots:
            entries[lot.id] = LotEntry(
                id=lot.id,
                lat=lot.lat,
                lon=lot.lon,
                opens_at=lot.opens_at,
                closes_at=lot.closes_at,
                # Rendered by the response model itself, once per load.
                public_json=LotOut.of(lot).model_dump_json()[1:-1],
            )
        for rate in rates:
            if rate.lot_id in entries:
                entries[rate.lot_id].rates[rate.vehicle_type] = rate_rule(rate)
        for pool in pools:
            if pool.lot_id in entries:
                entries[pool.lot_id].pools[pool.vehicle_type] = PoolEntry(
                    pool.id, pool.capacity, pool.accessible_places
                )
        for space in spaces:
            if space.lot_id in entries:
                entry = entries[space.lot_id]
                entry.spaces.setdefault(space.vehicle_type, {})[space.id] = space.accessible
                if space.accessible:
                    entry.accessible_spaces[space.vehicle_type] = entry.accessible_spaces.get(space.vehicle_type, 0) + 1
        self._by_lat = sorted(entries.values(), key=lambda e: e.lat)
        self._lats = [e.lat for e in self._by_lat]

    def in_box(self, lat_min: float, lat_max: float, lon_min: float, lon_max: float) -> Iterator[LotEntry]:
        lo, hi = bisect.bisect_left(self._lats, lat_min), bisect.bisect_right(self._lats, lat_max)
        for entry in self._by_lat[lo:hi]:
            if lon_min <= entry.lon <= lon_max:
                yield entry


class InventoryCache:
    """The process's current Inventory; reloaded when a search sees another token (one reload at a time)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.current: Inventory | None = None
        self._lock = asyncio.Lock()

    async def get(self, token: str | None = None) -> Inventory:
        """The copy, reloaded first if there is none or ``token`` (one a query just saw) is not its own."""
        seen = self.current
        if seen is not None and (token is None or seen.token == token):
            return seen
        async with self._lock:
            # Another search may have reloaded it while this one waited.
            if self.current is not None and self.current is not seen:
                return self.current
            self.current = Inventory(*await repo.load_inventory(self.db))
            return self.current

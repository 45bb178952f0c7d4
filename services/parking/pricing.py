"""Prices for an exact window, in Asia/Ho_Chi_Minh, and signed quotes.

Two kinds of rate per lot and vehicle type (Da Nang practice):

- ``per_visit``: a price per visit (lượt) in the day band 06:00-22:00 and another in the night band
  22:00-06:00. A window is cut at every 06:00 and 22:00; each piece is one visit of its band, so
  20:00-23:00 is a day visit plus a night visit, and 23:00-05:00 (across midnight) is one night visit.
- ``hourly``: every started hour is charged at the tier its hour number falls in (``from_hour``),
  and the hours that start on one local calendar day never cost more than the daily cap.

A quote is the price of a window, signed, valid for a few minutes; it never holds anything.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import itertools
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
DAY_START, NIGHT_START = time(6, 0), time(22, 0)


@dataclass(frozen=True)
class Tier:
    from_hour: int
    price_per_hour_vnd: int


@dataclass(frozen=True)
class RateRule:
    mode: str  # "per_visit" | "hourly"
    day_price_vnd: int | None = None
    night_price_vnd: int | None = None
    tiers: tuple[Tier, ...] = ()
    daily_cap_vnd: int | None = None


def rate_rule(rate: Any) -> RateRule:
    """The pricing rule of a rate (the ORM row, or any row with its columns)."""
    return RateRule(
        mode=rate.mode,
        day_price_vnd=rate.day_price_vnd,
        night_price_vnd=rate.night_price_vnd,
        tiers=tuple(Tier(**t) for t in rate.hourly_tiers or []),
        daily_cap_vnd=rate.daily_cap_vnd,
    )


@dataclass
class Price:
    amount_vnd: int
    lines: list[dict[str, Any]] = field(default_factory=list)


def _band_boundaries(start: datetime, end: datetime) -> list[datetime]:
    """Every local 06:00 and 22:00 strictly inside (start, end), as UTC instants."""
    out: list[datetime] = []
    day = start.astimezone(LOCAL).date() - timedelta(days=1)
    last = end.astimezone(LOCAL).date() + timedelta(days=1)
    while day <= last:
        for t in (DAY_START, NIGHT_START):
            instant = datetime.combine(day, t, tzinfo=LOCAL).astimezone(UTC)
            if start < instant < end:
                out.append(instant)
        day += timedelta(days=1)
    return sorted(out)


def _is_day(instant: datetime) -> bool:
    local = instant.astimezone(LOCAL).time()
    return DAY_START <= local < NIGHT_START


def price_window(rule: RateRule, start: datetime, end: datetime) -> Price:
    if end <= start:
        return Price(0)
    if rule.mode == "per_visit":
        return _per_visit(rule, start, end)
    return _hourly(rule, start, end)


def _per_visit(rule: RateRule, start: datetime, end: datetime) -> Price:
    cuts = [start, *_band_boundaries(start, end), end]
    lines: list[dict[str, Any]] = []
    for a, b in itertools.pairwise(cuts):
        day = _is_day(a)
        amount = (rule.day_price_vnd if day else rule.night_price_vnd) or 0
        lines.append(
            {"band": "day" if day else "night", "from": a.isoformat(), "to": b.isoformat(), "amount_vnd": amount}
        )
    return Price(sum(line["amount_vnd"] for line in lines), lines)


def _tier_price(tiers: tuple[Tier, ...], hour_index: int) -> int:
    price = 0
    for tier in sorted(tiers, key=lambda t: t.from_hour):
        if tier.from_hour <= hour_index:
            price = tier.price_per_hour_vnd
    return price


def _hourly(rule: RateRule, start: datetime, end: datetime) -> Price:
    hours = math.ceil((end - start).total_seconds() / 3600)
    per_day: dict[str, list[int]] = {}
    for i in range(hours):
        local_day = (start + timedelta(hours=i)).astimezone(LOCAL).date().isoformat()
        per_day.setdefault(local_day, []).append(_tier_price(rule.tiers, i))
    lines: list[dict[str, Any]] = []
    for day, prices in per_day.items():
        raw = sum(prices)
        capped = rule.daily_cap_vnd is not None and raw > rule.daily_cap_vnd
        lines.append(
            {"date": day, "hours": len(prices), "amount_vnd": rule.daily_cap_vnd if capped else raw, "capped": capped}
        )
    return Price(sum(line["amount_vnd"] for line in lines), lines)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=8)
def _keyed(secret: str) -> hmac.HMAC:
    """HMAC-SHA256 with the key already absorbed; copied per signature (search signs one per lot)."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def sign_quote(secret: str, payload: dict[str, Any]) -> str:
    return _sign(secret, _canonical(payload).encode())


def _sign(secret: str, body: bytes) -> str:
    mac = _keyed(secret).copy()
    mac.update(body)
    return f"{_b64(body)}.{_b64(mac.digest())}"


class QuoteSigner:
    """Signs the quotes of one search page: same vehicle type, window and expiry, one lot each.

    The body is the same canonical JSON ``sign_quote`` writes (sorted keys, no spaces), assembled
    around the two values that differ per lot: a page signs up to 50 quotes.
    """

    def __init__(self, secret: str, vehicle_type: str, start_at: str, end_at: str, exp: int) -> None:
        self.secret = secret
        # Sorted keys: amount_vnd, end_at, exp, lot_id, start_at, vehicle_type.
        middle = _canonical({"end_at": end_at, "exp": exp})[1:-1]
        self._after_amount = "," + middle + ',"lot_id":'
        self._after_lot = "," + _canonical({"start_at": start_at, "vehicle_type": vehicle_type})[1:]

    def sign(self, lot_id: str, amount_vnd: int) -> str:
        body = '{"amount_vnd":' + str(int(amount_vnd)) + self._after_amount + json.dumps(lot_id) + self._after_lot
        return _sign(self.secret, body.encode())


def _canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def read_quote(secret: str, token: str) -> dict[str, Any] | None:
    """The quote's payload if the signature is right (expiry is the caller's rule), else None."""
    try:
        body_b64, sig_b64 = token.split(".", 1)
        body = _unb64(body_b64)
        mac = _keyed(secret).copy()
        mac.update(body)
        expected = mac.digest()
        if not hmac.compare_digest(expected, _unb64(sig_b64)):
            return None
        payload = json.loads(body)
        return payload if isinstance(payload, dict) else None
    except (ValueError, TypeError):
        return None

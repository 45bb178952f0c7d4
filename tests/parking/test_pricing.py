"""Prices for exact windows in Asia/Ho_Chi_Minh: day/night bands, midnight, hourly tiers and daily caps."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.parking.pricing import QuoteSigner, RateRule, Tier, price_window, read_quote, sign_quote
from tests.parking.conftest import local

PER_VISIT = RateRule(mode="per_visit", day_price_vnd=30_000, night_price_vnd=50_000)
HOURLY = RateRule(mode="hourly", tiers=(Tier(0, 20_000), Tier(2, 10_000)), daily_cap_vnd=100_000)


@pytest.mark.parametrize(
    ("start", "end", "amount", "bands"),
    [
        (local(2026, 3, 2, 8), local(2026, 3, 2, 10), 30_000, ["day"]),
        # Crossing 22:00: a day visit and a night visit.
        (local(2026, 3, 2, 20), local(2026, 3, 2, 23), 80_000, ["day", "night"]),
        # Across midnight inside the night band: one night visit.
        (local(2026, 3, 2, 23), local(2026, 3, 3, 5), 50_000, ["night"]),
        # Crossing 22:00 and then 06:00: day, night, day.
        (local(2026, 3, 2, 21), local(2026, 3, 3, 7), 110_000, ["day", "night", "day"]),
        # Starting exactly at 22:00 and ending exactly at 06:00: one night visit.
        (local(2026, 3, 2, 22), local(2026, 3, 3, 6), 50_000, ["night"]),
        # 05:30 → 06:30: night then day.
        (local(2026, 3, 2, 5, 30), local(2026, 3, 2, 6, 30), 80_000, ["night", "day"]),
    ],
)
def test_per_visit_bands(start, end, amount, bands) -> None:  # type: ignore[no-untyped-def]
    price = price_window(PER_VISIT, start, end)
    assert price.amount_vnd == amount
    assert [line["band"] for line in price.lines] == bands


def test_per_visit_is_decided_in_local_time_not_utc() -> None:
    # 22:30 UTC is 05:30 next morning in Da Nang: night band, though it is "evening" in UTC.
    start = local(2026, 3, 3, 5, 30)
    assert start.utcoffset() == timedelta(hours=7)
    assert price_window(PER_VISIT, start, start + timedelta(minutes=20)).lines[0]["band"] == "night"


def test_hourly_tiers_charge_every_started_hour() -> None:
    assert price_window(HOURLY, local(2026, 3, 2, 9), local(2026, 3, 2, 10)).amount_vnd == 20_000
    # 1 h 1 min is two started hours.
    assert price_window(HOURLY, local(2026, 3, 2, 9), local(2026, 3, 2, 10, 1)).amount_vnd == 40_000
    # From the third hour on, the second tier.
    assert price_window(HOURLY, local(2026, 3, 2, 9), local(2026, 3, 2, 12)).amount_vnd == 50_000


def test_hourly_daily_cap_per_local_day() -> None:
    # 04:00-24:00: 2x20k + 18x10k = 220k, capped at 100k.
    price = price_window(HOURLY, local(2026, 3, 2, 4), local(2026, 3, 3, 0))
    assert price.amount_vnd == 100_000
    assert price.lines == [{"date": "2026-03-02", "hours": 20, "amount_vnd": 100_000, "capped": True}]


def test_hourly_across_midnight_splits_days() -> None:
    # 22:00 → 04:00: two hours on the 2nd (40k), four on the 3rd (4x10k).
    price = price_window(HOURLY, local(2026, 3, 2, 22), local(2026, 3, 3, 4))
    assert price.amount_vnd == 80_000
    assert [(line["date"], line["hours"]) for line in price.lines] == [("2026-03-02", 2), ("2026-03-03", 4)]


def test_hourly_cap_applies_to_each_day_of_a_long_stay() -> None:
    # Noon to noon: 12 h on each day; each day is capped separately.
    price = price_window(HOURLY, local(2026, 3, 2, 12), local(2026, 3, 3, 12))
    assert price.amount_vnd == 200_000
    assert all(line["capped"] for line in price.lines)


def test_quote_signature_is_checked() -> None:
    token = sign_quote("secret", {"amount_vnd": 30_000})
    assert read_quote("secret", token) == {"amount_vnd": 30_000}
    assert read_quote("other", token) is None
    body, sig = token.split(".")
    assert read_quote("secret", body[:-2] + "xx." + sig) is None
    assert read_quote("secret", "garbage") is None


def test_a_search_pages_signer_writes_the_same_token_as_sign_quote() -> None:
    fixed = {"vehicle_type": "car", "start_at": "2026-03-02T13:00:00+00:00", "end_at": "2026-03-02T16:00:00+00:00"}
    signer = QuoteSigner("secret", fixed["vehicle_type"], fixed["start_at"], fixed["end_at"], 1_772_000_000)
    for lot_id, amount in (("01JLOT", 80_000), ('we"ird\\id', 0)):
        token = signer.sign(lot_id, amount)
        payload = {**fixed, "lot_id": lot_id, "amount_vnd": amount, "exp": 1_772_000_000}
        assert token == sign_quote("secret", payload)
        assert read_quote("secret", token) == payload

"""Exemption and instalment arithmetic in whole đồng (the documented rounding rule)."""

from __future__ import annotations

import random
from datetime import date

import pytest

from services.tuition.billing import money


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        (1_000_000, 100, 1_000_000),
        (1_000_000, 70, 700_000),
        (1_000_000, 50, 500_000),
        (333_333, 70, 233_333),  # 233 333.1 → 233 333
        (333_335, 70, 233_335),  # 233 334.5 → rounds half up: 233 335
        (1_234_567, 50, 617_284),  # 617 283.5 → 617 284 (in the family's favour)
        (1, 50, 1),  # 0.5 → 1
        (1, 70, 1),
        (2, 70, 1),  # 1.4 → 1
        (0, 70, 0),
        (-5_000, 70, 0),  # credits are never "reduced"
    ],
)
def test_reduction_rounds_to_the_nearest_dong_halves_up(amount: int, percent: int, expected: int) -> None:
    assert money.reduction(amount, percent) == expected


def test_full_exemption_removes_any_line_exactly() -> None:
    for amount in (1, 7, 999_999, 12_345_678):
        assert amount - money.reduction(amount, 100) == 0


@pytest.mark.parametrize(
    ("total", "n", "expected"),
    [
        (1_000_000, 3, [333_334, 333_333, 333_333]),
        (100, 7, [16, 14, 14, 14, 14, 14, 14]),
        (5, 10, [5, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        (2_400_000, 4, [600_000] * 4),
        (0, 2, [0, 0]),
    ],
)
def test_split_sums_exactly_with_the_remainder_first(total: int, n: int, expected: list[int]) -> None:
    assert money.split(total, n) == expected
    assert sum(money.split(total, n)) == total


def test_instalments_always_sum_exactly() -> None:
    rng = random.Random(81)
    for _ in range(2000):
        total, n = rng.randint(0, 50_000_000), rng.randint(1, 12)
        parts = money.split(total, n)
        assert sum(parts) == total and max(parts) - min(parts) < n and min(parts) >= 0


def test_instalment_plan_applies_payments_to_the_earliest_first() -> None:
    dates = [date(2025, 9, 15), date(2025, 10, 15), date(2025, 11, 15)]
    plan = money.instalment_plan(1_000_000, 400_000, dates)
    assert [(i.amount_vnd, i.paid_vnd) for i in plan] == [(333_334, 333_334), (333_333, 66_666), (333_333, 0)]
    nxt = money.next_instalment(1_000_000, 400_000, dates)
    assert nxt is not None and (nxt.seq, nxt.remaining_vnd) == (2, 266_667)
    assert money.next_instalment(1_000_000, 1_000_000, dates) is None


def test_status_follows_payments_and_the_current_instalment_due_date() -> None:
    dates = [date(2025, 9, 15), date(2025, 10, 15)]
    status = lambda paid, today: money.invoice_status(  # noqa: E731
        voided=False, total_vnd=1_000, paid_vnd=paid, due_dates=dates, today=today
    )
    assert status(0, date(2025, 9, 1)) == "open"
    assert status(0, date(2025, 9, 16)) == "overdue"
    assert status(500, date(2025, 9, 16)) == "partially_paid"  # first instalment paid; second not yet due
    assert status(500, date(2025, 10, 16)) == "overdue"
    assert status(1_000, date(2026, 1, 1)) == "paid"
    assert money.invoice_status(voided=True, total_vnd=1, paid_vnd=0, due_dates=dates, today=date(2025, 1, 1)) == "void"

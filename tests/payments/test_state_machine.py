"""The payment state machine: legal moves only, and every move recorded with its cause."""

from __future__ import annotations

import pytest

from services.payments.payments.state import ALLOWED, IllegalTransition, can_move, check_move

STATUSES = [
    "requires_action",
    "processing",
    "succeeded",
    "failed",
    "canceled",
    "expired",
    "partially_refunded",
    "refunded",
]


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("requires_action", "processing"),
        ("requires_action", "succeeded"),
        ("requires_action", "failed"),
        ("requires_action", "canceled"),
        ("requires_action", "expired"),
        ("processing", "succeeded"),
        ("processing", "failed"),
        ("succeeded", "partially_refunded"),
        ("succeeded", "refunded"),
        ("partially_refunded", "partially_refunded"),
        ("partially_refunded", "refunded"),
    ],
)
def test_legal_moves(current: str, target: str) -> None:
    assert can_move(current, target)
    check_move(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("succeeded", "failed"),
        ("succeeded", "requires_action"),
        ("succeeded", "processing"),
        ("succeeded", "canceled"),
        ("succeeded", "expired"),
        ("refunded", "succeeded"),
        ("refunded", "partially_refunded"),
        ("failed", "succeeded"),
        ("canceled", "succeeded"),
        ("expired", "succeeded"),
        ("processing", "requires_action"),
        ("requires_action", "refunded"),
        ("partially_refunded", "succeeded"),
    ],
)
def test_illegal_moves_are_refused(current: str, target: str) -> None:
    assert not can_move(current, target)
    with pytest.raises(IllegalTransition) as info:
        check_move(current, target)
    assert info.value.status == 409 and info.value.code == "illegal_transition"


def test_terminal_states_have_no_way_out() -> None:
    for status in ("failed", "canceled", "expired", "refunded"):
        assert not any(can_move(status, target) for target in STATUSES)
    assert set(ALLOWED) - {None} == set(STATUSES)

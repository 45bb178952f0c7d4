"""The payment state machine: which status may follow which. Anything else is refused."""

from __future__ import annotations

from shared.errors import Conflict

PENDING = frozenset({"requires_action", "processing"})
CAPTURED = frozenset({"succeeded", "partially_refunded", "refunded"})
CLOSED_UNPAID = frozenset({"failed", "canceled", "expired"})

ALLOWED: dict[str | None, frozenset[str]] = {
    None: frozenset({"requires_action", "failed"}),
    "requires_action": frozenset({"processing", "succeeded", "failed", "canceled", "expired"}),
    "processing": frozenset({"succeeded", "failed", "canceled", "expired"}),
    "succeeded": frozenset({"partially_refunded", "refunded"}),
    "partially_refunded": frozenset({"partially_refunded", "refunded"}),
    "failed": frozenset(),
    "canceled": frozenset(),
    "expired": frozenset(),
    "refunded": frozenset(),
}


class IllegalTransition(Conflict):
    code = "illegal_transition"
    title = "Illegal payment status change"


def can_move(current: str | None, target: str) -> bool:
    return target in ALLOWED.get(current, frozenset())


def check_move(current: str | None, target: str) -> None:
    if not can_move(current, target):
        raise IllegalTransition(
            f"A payment cannot go from {current} to {target}", from_status=current, to_status=target
        )

"""Money arithmetic for invoices, in integer đồng only (VND has no minor unit).

Rounding rule (documented in the API): a percentage reduction of a line is
``(amount * percent + 50) // 100`` — the exact reduction rounded to the nearest whole đồng, halves
rounded up (in the family's favour). It is computed per line, so a line's net amount never depends on
other lines, and 100 % always removes the line exactly.

Instalments: a total T split into n instalments gives every instalment ``T // n`` and adds the
remainder (fewer than n đồng) to the first one, so the instalments always sum to exactly T.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# Decree 81/2021/NĐ-CP, Articles 15 and 16: who is exempted (100 %) or has tuition reduced (70 %, 50 %).
# When a student qualifies under several categories, the highest percentage applies (Art. 15 and 16 are
# not cumulative).
DECREE_81_CATEGORIES: dict[str, tuple[int, str]] = {
    # Article 15: exemption (miễn học phí)
    "meritorious_family": (100, "Người có công với cách mạng và thân nhân (Art. 15.1)"),
    "disabled": (100, "Người học khuyết tật (Art. 15.2)"),
    "orphan_no_support": (100, "Mồ côi cả cha lẫn mẹ, không nơi nương tựa (Art. 15.3)"),
    "poor_household": (100, "Học sinh thuộc hộ nghèo (Art. 15.4)"),
    "ethnic_minority_very_few": (100, "Dân tộc thiểu số rất ít người (Art. 15.5)"),
    "ethnic_minority_poor_area": (100, "Dân tộc thiểu số, vùng đặc biệt khó khăn (Art. 15.6)"),
    # Article 16.1: 70 % reduction
    "arts_traditional_vocational": (70, "Nghệ thuật truyền thống, chuyên ngành nặng nhọc (Art. 16.1)"),
    "ethnic_minority_difficult_area": (70, "Dân tộc thiểu số ở thôn/bản đặc biệt khó khăn (Art. 16.1)"),
    # Article 16.2: 50 % reduction
    "parent_occupational_accident": (50, "Con cán bộ, công nhân bị tai nạn lao động (Art. 16.2)"),
    "near_poor_household": (50, "Học sinh thuộc hộ cận nghèo (Art. 16.2)"),
}
EXEMPTIBLE_KINDS = frozenset({"tuition"})  # the decree covers tuition (học phí), not meals or boarding


def reduction(amount_vnd: int, percent: int) -> int:
    """The reduction of one line, rounded to the nearest đồng (halves up); never more than the line."""
    if amount_vnd <= 0 or percent <= 0:
        return 0
    return min(amount_vnd, (amount_vnd * percent + 50) // 100)


def split(total_vnd: int, n: int) -> list[int]:
    """n instalments summing to exactly total_vnd; the remainder goes to the first."""
    if n < 1:
        raise ValueError("at least one instalment")
    base, remainder = divmod(total_vnd, n)
    return [base + remainder] + [base] * (n - 1)


@dataclass(frozen=True)
class Instalment:
    seq: int
    due_date: date
    amount_vnd: int
    paid_vnd: int

    @property
    def remaining_vnd(self) -> int:
        return self.amount_vnd - self.paid_vnd


def instalment_plan(total_vnd: int, paid_vnd: int, due_dates: list[date]) -> list[Instalment]:
    """The plan with what has been paid applied to the earliest instalments first."""
    plan: list[Instalment] = []
    left = paid_vnd
    for seq, (amount, due) in enumerate(zip(split(total_vnd, len(due_dates)), due_dates, strict=True), start=1):
        covered = min(amount, max(left, 0))
        left -= covered
        plan.append(Instalment(seq, due, amount, covered))
    return plan


def next_instalment(total_vnd: int, paid_vnd: int, due_dates: list[date]) -> Instalment | None:
    return next((i for i in instalment_plan(total_vnd, paid_vnd, due_dates) if i.remaining_vnd > 0), None)


def invoice_status(*, voided: bool, total_vnd: int, paid_vnd: int, due_dates: list[date], today: date) -> str:
    if voided:
        return "void"
    if paid_vnd >= total_vnd:
        return "paid"
    current = next_instalment(total_vnd, paid_vnd, due_dates)
    if current is not None and today > current.due_date:
        return "overdue"
    return "partially_paid" if paid_vnd > 0 else "open"

"""``dncity payments reconcile --date YYYY-MM-DD``: the daily comparison, printed."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import date

import typer

from services.payments.reconciliation.service import DayReport, reconcile_day_from_settings


def render(report: DayReport) -> str:
    lines = [
        f"Reconciliation for {report.day.isoformat()} (Asia/Ho_Chi_Minh)",
        f"  provider intents: {report.provider_intents}   our payments: {report.our_payments}",
        f"  captured (ledger): {report.captured_vnd} đồng   refunded (ledger): {report.refunded_vnd} đồng",
    ]
    if not report.mismatches:
        lines.append("  no mismatches")
    for m in report.mismatches:
        lines.append(
            f"  MISMATCH {m.kind}: payment={m.payment_id or '-'} provider={m.provider_reference or '-'} "
            f"ours=[{m.ours}] provider=[{m.theirs}]"
        )
    return "\n".join(lines)


def reconcile_command(day_text: str, as_json: bool = False) -> int:
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise typer.BadParameter("expected YYYY-MM-DD", param_hint="--date") from None
    try:
        report = asyncio.run(reconcile_day_from_settings(day))
    except RuntimeError as exc:
        typer.echo(f"reconciliation failed: {exc}", err=True)
        return 2
    if as_json:
        typer.echo(json.dumps(asdict(report), default=str, ensure_ascii=False, indent=2))
    else:
        typer.echo(render(report))
    return 1 if report.mismatches else 0

"""Bulk imports (students, invoices) as JSON or CSV with a per-row report.

Two modes, both explicit about what happened to every row:

- ``all_or_nothing`` (default): every row is validated first; if any row is bad, nothing is stored and
  the answer is 422 naming each bad row and field (``errors[].field`` = ``rows[3].date_of_birth``),
  with the full report under ``report``.
- ``per_row``: good rows are applied, bad rows are skipped; the 200 report gives each row's outcome.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel, Field, ValidationError

from shared.errors import FieldError, PayloadTooLarge, Unprocessable, field_error

ImportMode = Literal["all_or_nothing", "per_row"]
MAX_IMPORT_ROWS = 5000
MAX_IMPORT_BYTES = 5_000_000


class RowResult(BaseModel):
    row: int = Field(description="1-based position of the row in the batch (CSV: data row, header excluded)")
    key: str | None = Field(default=None, description="The row's natural key (student code)")
    outcome: Literal["created", "updated", "unchanged", "error", "not_applied"]
    id: str | None = None
    errors: list[FieldError] = []


class ImportReport(BaseModel):
    mode: ImportMode
    applied: bool = Field(description="Whether any change was stored")
    total: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    rows: list[RowResult]


def request_body_spec(json_schema: dict[str, Any], csv_columns: list[str]) -> dict[str, Any]:
    """OpenAPI requestBody for an endpoint that takes JSON or CSV."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": json_schema},
                "text/csv": {"schema": {"type": "string", "description": "Header row: " + ",".join(csv_columns)}},
            },
        }
    }


async def read_rows(
    request: Request, list_key: str, csv_columns: list[str], required: set[str]
) -> list[dict[str, Any]]:
    """The batch's rows as dicts, from a JSON body {list_key: [...]} or a CSV body with a header."""
    body = await request.body()
    if len(body) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"An import is at most {MAX_IMPORT_BYTES} bytes")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("text/csv", "application/csv"):
        rows = _csv_rows(body, csv_columns, required)
    elif content_type in ("application/json", ""):
        try:
            data = json.loads(body or b"null")
        except ValueError as exc:
            raise field_error("body", "The body is not valid JSON", "json_invalid") from exc
        if not isinstance(data, dict) or not isinstance(data.get(list_key), list):
            raise field_error(f"body.{list_key}", f"Expected an object with a list '{list_key}'", "missing")
        rows = data[list_key]
        if not all(isinstance(r, dict) for r in rows):
            raise field_error(f"body.{list_key}", "Every row must be an object", "type_error")
    else:
        raise Unprocessable(
            "Send application/json or text/csv",
            code="unsupported_media_type",
            status=415,
            title="Unsupported media type",
        )
    if not rows:
        raise field_error(f"body.{list_key}", "The batch has no rows", "too_short")
    if len(rows) > MAX_IMPORT_ROWS:
        raise field_error(f"body.{list_key}", f"At most {MAX_IMPORT_ROWS} rows per batch", "too_long")
    return rows


def _csv_rows(body: bytes, columns: list[str], required: set[str]) -> list[dict[str, Any]]:
    try:
        text = body.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError as exc:
        raise field_error("body", "CSV must be UTF-8", "encoding") from exc
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = sorted(required - set(header))
    if missing:
        raise field_error("body.header", f"CSV header lacks column(s): {', '.join(missing)}", "missing")
    unknown = sorted(set(header) - set(columns))
    if unknown:
        raise field_error("body.header", f"Unknown CSV column(s): {', '.join(unknown)}", "extra_forbidden")
    reader.fieldnames = header
    rows: list[dict[str, Any]] = []
    for raw in reader:
        # Empty cells mean "not given", so optional fields fall back to their defaults.
        rows.append({k: v.strip() for k, v in raw.items() if k is not None and v is not None and v.strip() != ""})
    return rows


def row_errors(exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(field=".".join(str(p) for p in e["loc"]) or "row", message=e["msg"], type=e["type"])
        for e in exc.errors()
    ]


def reject(report: ImportReport) -> Unprocessable:
    """The all-or-nothing refusal: 422 naming every bad field, nothing stored."""
    errors = [
        FieldError(field=f"rows[{r.row}].{e.field}", message=e.message, type=e.type)
        for r in report.rows
        for e in r.errors
    ]
    return Unprocessable(
        f"{report.failed} of {report.total} rows are invalid; nothing was stored",
        code="import_rejected",
        errors=errors,
        report=report.model_dump(mode="json"),
    )

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.tuition.billing.service import get_round
from services.tuition.common import to_csv
from services.tuition.reports.service import REPORT_COLUMNS, CollectionReport, collections
from shared.auth import Principal, RequireClient
from shared.db import SessionDep
from shared.errors import problem_responses

router = APIRouter(prefix="/v1/tuition/reports", tags=["reports"])
School = Annotated[Principal, RequireClient("tuition.invoices.write")]


@router.get(
    "/collections",
    response_model=CollectionReport,
    responses={**problem_responses(401, 403, 404, 422), 200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def collections_report(
    request: Request,
    session: SessionDep,
    school: School,
    round_id: Annotated[str | None, Query(max_length=32)] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="Or send Accept: text/csv")] = None,
) -> CollectionReport | Response:
    """Collected and outstanding amounts per class and collection round (JSON or CSV)."""
    if round_id:
        await get_round(session, school.client_id, round_id)
    report = await collections(session, school.client_id, round_id)
    wants_csv = format == "csv" or (format is None and "text/csv" in request.headers.get("accept", ""))
    if wants_csv:
        rows = [i.model_dump() for i in report.items]
        return Response(
            to_csv(rows, REPORT_COLUMNS),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="collections.csv"'},
        )
    return report

"""GET /v1/dev/outbox: the dev profile's SMS outbox (mounted only when dev endpoints are on)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from services.identity.accounts.validators import normalise_phone
from services.identity.sms.models import DevSms
from shared.db import SessionDep
from shared.errors import field_error, problem_responses

router = APIRouter(prefix="/v1/dev", tags=["dev"])


class DevSmsOut(BaseModel):
    to: str
    body: str
    created_at: datetime


@router.get("/outbox", response_model=list[DevSmsOut], responses=problem_responses(422))
async def read_dev_sms_outbox(
    session: SessionDep, to: Annotated[str, Query(min_length=3, max_length=32, description="Phone, any form")]
) -> list[DevSmsOut]:
    """Messages the dev SMS sender stored for a phone number, newest first (dev profile only)."""
    try:
        phone = normalise_phone(to, vietnamese_only=False)
    except ValueError as exc:
        raise field_error("query.to", str(exc)) from exc
    rows = await session.scalars(
        select(DevSms).where(DevSms.to == phone).order_by(DevSms.created_at.desc(), DevSms.id.desc()).limit(100)
    )
    return [DevSmsOut(to=r.to, body=r.body, created_at=r.created_at) for r in rows]

"""GET /v1/identity/me/audit: the owner's own audit trail (read-only; nothing edits it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.identity.accounts.dependencies import CurrentMe
from services.identity.audit import service
from services.identity.audit.schemas import AuditEventOut, AuditPage
from shared.db import SessionDep
from shared.errors import problem_responses

router = APIRouter(prefix="/v1/identity/me", tags=["audit"])


@router.get("/audit", response_model=AuditPage, responses=problem_responses(401, 403, 422))
async def list_my_audit_events(
    me: CurrentMe,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AuditPage:
    """What happened with your account, newest first: sign-ins, changes, exports, agency access."""
    rows, next_cursor = await service.list_for(session, me.account.id, limit=limit, cursor=cursor)
    return AuditPage(items=[AuditEventOut.model_validate(r) for r in rows], next_cursor=next_cursor)

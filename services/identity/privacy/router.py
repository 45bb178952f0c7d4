"""GET /v1/identity/me/export and DELETE /v1/identity/me (personal-data rights)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response

from services.identity.accounts.dependencies import ClientIp, CurrentMe
from services.identity.accounts.service import check_password
from services.identity.privacy import service
from services.identity.privacy.schemas import AccountDeletion
from shared.db import SessionDep
from shared.errors import problem_responses

router = APIRouter(prefix="/v1/identity/me", tags=["privacy"])


@router.get("/export", response_model=dict[str, Any], responses=problem_responses(401, 403))
async def export_my_data(me: CurrentMe, session: SessionDep) -> dict[str, Any]:
    """Every personal datum identity holds about you, as JSON (the export is audited)."""
    return await service.export(session, me.account, client_id=me.client_id)


@router.delete("", status_code=204, response_class=Response, responses=problem_responses(401, 403, 422, 429))
async def delete_my_account(
    me: CurrentMe, ip: ClientIp, request: Request, session: SessionDep, body: AccountDeletion = Body()
) -> Response:
    """Delete your account: sign-in stops at once and personal data is erased (password required)."""
    await check_password(
        session,
        request.app.state.redis,
        me.account,
        body.password,
        client_ip=ip,
        client_id=me.client_id,
        action="account.delete",
    )
    await service.erase(session, request.app.state.outbox, me.account, client_id=me.client_id)
    return Response(status_code=204)

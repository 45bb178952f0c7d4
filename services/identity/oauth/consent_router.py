"""A person's consents, listed and withdrawn by them (GET/DELETE /v1/identity/me/consents)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel

from services.identity.oauth import consents
from services.identity.oauth.runtime import runtime
from shared.auth import Principal, RequireUser
from shared.db import SessionDep
from shared.errors import NotFound, problem_responses

router = APIRouter(tags=["consents"])


class ConsentOut(BaseModel):
    client_id: str
    client_name: str | None
    scopes: list[str]
    granted_at: datetime
    updated_at: datetime


class ConsentList(BaseModel):
    items: list[ConsentOut]
    next_cursor: str | None = None


@router.get("/v1/identity/me/consents", response_model=ConsentList, responses=problem_responses(401, 403))
async def list_my_consents(
    request: Request, session: SessionDep, me: Annotated[Principal, RequireUser("openid")]
) -> ConsentList:
    """The clients you allowed to act for you, and with which scopes."""
    assert me.sub
    rows = await consents.list_for(session, me.sub)
    items = []
    for row in rows:
        client = await runtime(request).clients.get(session, row.client_id)
        items.append(
            ConsentOut(
                client_id=row.client_id,
                client_name=client.name if client else None,
                scopes=row.scopes,
                granted_at=row.granted_at,
                updated_at=row.updated_at,
            )
        )
    return ConsentList(items=items)


@router.delete("/v1/identity/me/consents/{client_id}", status_code=204, responses=problem_responses(401, 403, 404, 422))
async def withdraw_my_consent(
    session: SessionDep, me: Annotated[Principal, RequireUser("openid")], client_id: Annotated[str, Path(max_length=64)]
) -> Response:
    """Withdraw a consent: the client must ask again, and its tokens for you stop working."""
    assert me.sub
    if not await consents.withdraw(session, sub=me.sub, client_id=client_id):
        raise NotFound("You gave this client no consent", code="consent_not_found")
    return Response(status_code=204)

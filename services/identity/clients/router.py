"""The client registry's admin API (scope clients.admin): register, list, read, disable clients."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel

from services.identity.clients import service
from services.identity.clients.models import OAuthClient
from services.identity.clients.schemas import ClientCreate, ClientCreated
from shared.auth import Principal, RequireScopes
from shared.db import SessionDep
from shared.errors import problem_responses

router = APIRouter(tags=["clients"])
Admin = Annotated[Principal, RequireScopes("clients.admin")]
ClientId = Annotated[str, Path(max_length=64)]


class ClientOut(BaseModel):
    client_id: str
    name: str
    client_type: str
    grant_types: list[str]
    redirect_uris: list[str]
    scopes: list[str]
    token_endpoint_auth_method: str
    logo_uri: str | None
    created_at: datetime
    disabled_at: datetime | None

    @classmethod
    def of(cls, row: OAuthClient) -> ClientOut:
        return cls(
            client_id=row.client_id,
            name=row.name,
            client_type=row.client_type,
            grant_types=row.grant_types,
            redirect_uris=row.redirect_uris,
            scopes=row.scopes,
            token_endpoint_auth_method=row.token_endpoint_auth_method,
            logo_uri=row.logo_uri,
            created_at=row.created_at,
            disabled_at=row.disabled_at,
        )


class ClientList(BaseModel):
    items: list[ClientOut]
    next_cursor: str | None


def _invalidate(request: Request, client_id: str) -> None:
    oauth = getattr(request.app.state, "oauth", None)
    if oauth is not None:
        oauth.clients.invalidate(client_id)


@router.post(
    "/v1/identity/clients",
    response_model=ClientCreated,
    status_code=201,
    responses=problem_responses(401, 403, 409, 422),
)
async def register_client(request: Request, session: SessionDep, _admin: Admin, body: ClientCreate) -> ClientCreated:
    """Register an OAuth client; the secret (confidential clients) is shown only in this response."""
    created = await service.create_client(session, body)
    _invalidate(request, created.client_id)
    return created


@router.get("/v1/identity/clients", response_model=ClientList, responses=problem_responses(401, 403, 422))
async def list_clients(
    session: SessionDep,
    _admin: Admin,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> ClientList:
    """Registered clients, by client_id."""
    rows = await service.list_clients(session, limit=limit + 1, after=cursor)
    more = len(rows) > limit
    rows = rows[:limit]
    return ClientList(items=[ClientOut.of(r) for r in rows], next_cursor=rows[-1].client_id if more else None)


@router.get(
    "/v1/identity/clients/{client_id}", response_model=ClientOut, responses=problem_responses(401, 403, 404, 422)
)
async def get_client(session: SessionDep, _admin: Admin, client_id: ClientId) -> ClientOut:
    """One registered client (never its secret)."""
    return ClientOut.of(await service.get_client(session, client_id))


@router.delete("/v1/identity/clients/{client_id}", status_code=204, responses=problem_responses(401, 403, 404, 422))
async def disable_client(request: Request, session: SessionDep, _admin: Admin, client_id: ClientId) -> Response:
    """Disable a client: it can no longer authenticate or start sign-ins."""
    await service.disable_client(session, client_id)
    _invalidate(request, client_id)
    return Response(status_code=204)

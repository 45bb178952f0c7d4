from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.identity.keys import service
from shared.db import SessionDep

router = APIRouter(tags=["oauth"])


class JWKSResponse(JSONResponse):
    media_type = "application/jwk-set+json"


JWKS_SCHEMA = {
    "type": "object",
    "required": ["keys"],
    "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
}


@router.get(
    "/oauth2/jwks",
    summary="JSON Web Key Set",
    response_class=JWKSResponse,
    responses={200: {"description": "The key set", "content": {"application/jwk-set+json": {"schema": JWKS_SCHEMA}}}},
)
async def jwks(session: SessionDep) -> Any:
    """The public keys that verify Da Nang ID tokens (current, next and recently retired)."""
    return JWKSResponse(
        await service.jwks(session),
        headers={"Cache-Control": "public, max-age=300"},
    )

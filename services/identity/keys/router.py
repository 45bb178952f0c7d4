from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.identity.keys import service
from shared.db import SessionDep

router = APIRouter(tags=["oauth"])


@router.get("/oauth2/jwks", summary="JSON Web Key Set")
async def jwks(session: SessionDep) -> Any:
    """The public keys that verify Da Nang ID tokens (current, next and recently retired)."""
    return JSONResponse(
        await service.jwks(session), media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=300"},
    )

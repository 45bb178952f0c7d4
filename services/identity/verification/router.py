"""POST /v1/identity/verifications: an agency raises a person to assurance level 2."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from services.identity.accounts.models import acr_for_level
from services.identity.verification import service
from services.identity.verification.schemas import VerificationCreate, VerificationOut
from shared.auth import Principal, RequireClient
from shared.db import SessionDep
from shared.errors import problem_responses

router = APIRouter(prefix="/v1/identity", tags=["verification"])


@router.post(
    "/verifications",
    status_code=201,
    response_model=VerificationOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_identity_verification(
    agency: Annotated[Principal, RequireClient("identity.verify")], session: SessionDep, body: VerificationCreate
) -> VerificationOut:
    """Record that an officer verified a person in person or against national records (level 2)."""
    record = await service.verify_identity(session, body, agency=agency.client_id)
    return VerificationOut(
        id=record.id,
        sub=record.sub,
        level=2,
        acr=acr_for_level(2),
        method=record.method,
        evidence_reference=record.evidence_reference,
        officer_id=record.officer_id,
        agency_client_id=record.agency_client_id,
        verified_at=record.created_at,
    )

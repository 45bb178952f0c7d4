"""GET/PATCH /v1/identity/me and the dependents a citizen acts for."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from services.identity.accounts.dependencies import CurrentMe
from services.identity.audit.service import record
from services.identity.profile import service
from services.identity.profile.schemas import (
    DependentCreate,
    DependentOut,
    GuardianInvitationCreate,
    GuardianInvitationOut,
    MeOut,
    ProfileUpdate,
)
from shared.db import SessionDep
from shared.errors import problem_responses

router = APIRouter(prefix="/v1/identity/me", tags=["profile"])


@router.get("", response_model=MeOut, responses=problem_responses(401, 403, 422))
async def get_me(
    me: CurrentMe,
    session: SessionDep,
    reveal: Annotated[Literal["identifiers"] | None, Query(description="identifiers: show full ID numbers")] = None,
) -> MeOut:
    """The signed-in person's profile; ID numbers are masked unless reveal=identifiers (audited)."""
    if reveal == "identifiers":
        await record(session, sub=me.account.id, action="identifiers.revealed", client_id=me.client_id)
    return service.me_out(me.account, reveal=reveal == "identifiers")


@router.patch("", response_model=MeOut, responses=problem_responses(401, 403, 409, 422))
async def update_me(me: CurrentMe, session: SessionDep, body: ProfileUpdate) -> MeOut:
    """Change name, date of birth, address, email or language (identity details are fixed at level 2)."""
    await service.update_profile(session, me.account, body, client_id=me.client_id)
    return service.me_out(me.account)


@router.post(
    "/dependents", status_code=201, response_model=DependentOut, responses=problem_responses(401, 403, 409, 422)
)
async def add_my_dependent(me: CurrentMe, session: SessionDep, body: DependentCreate) -> DependentOut:
    """Register a child under 14 (personal ID and date of birth) whom you may act for."""
    return service.dependent_out(await service.add_dependent(session, me.account, body, client_id=me.client_id))


@router.post(
    "/dependents/{dependent_id}/invitations",
    status_code=201,
    response_model=GuardianInvitationOut,
    responses=problem_responses(401, 403, 404, 422),
)
async def invite_guardian(
    dependent_id: Annotated[str, Path(max_length=64)],
    me: CurrentMe,
    session: SessionDep,
    body: GuardianInvitationCreate,
) -> GuardianInvitationOut:
    """Invite the child's other parent (by phone) to become a guardian too; valid 24 hours."""
    invitation, expires_at = await service.invite_guardian(
        session, me.account, dependent_id, body.phone, client_id=me.client_id
    )
    return GuardianInvitationOut(invitation=invitation, expires_at=expires_at)


@router.get("/dependents", response_model=list[DependentOut], responses=problem_responses(401, 403))
async def list_my_dependents(me: CurrentMe, session: SessionDep) -> list[DependentOut]:
    """The children under 14 you may act for (their id is the person reference other services use)."""
    return [service.dependent_out(d) for d in await service.dependents_of(session, me.account.id)]

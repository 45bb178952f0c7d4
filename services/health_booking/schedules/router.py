from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from services.health_booking.deps import Now, ScheduleWriter, SettingsDep
from services.health_booking.directory.router import LanguageQ, SpecialtyQ
from services.health_booking.directory.service import owned_facility
from services.health_booking.schedules import service
from services.health_booking.schedules.models import Closure
from services.health_booking.schedules.schemas import (
    ClosureChange,
    ClosureIn,
    ClosureOut,
    Mode,
    ScheduleChange,
    ScheduleIn,
    ScheduleOut,
    SlotConflict,
    SlotPage,
)
from shared.db import SessionDep
from shared.errors import field_error, problem_responses

router = APIRouter(prefix="/v1/health", tags=["slots"])
agency = APIRouter(prefix="/v1/health/agency", tags=["facility administration"])


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise field_error(field, "Give a time zone, e.g. 2025-07-01T08:00:00+07:00")
    return value


@router.get("/slots", response_model=SlotPage, responses=problem_responses(422))
async def search_slots(
    session: SessionDep,
    now: Now,
    facility_id: Annotated[str | None, Query(max_length=32)] = None,
    specialty: SpecialtyQ = None,
    practitioner_id: Annotated[str | None, Query(max_length=32)] = None,
    start: Annotated[datetime | None, Query(alias="from", description="Earliest start (with zone)")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="Latest start, exclusive (with zone)")] = None,
    mode: Mode | None = None,
    language: LanguageQ = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> SlotPage:
    """Free slots with their fee, within each facility's notice and booking-horizon rules (public)."""
    start, end = _aware(start, "query.from"), _aware(end, "query.to")
    if start and end and end <= start:
        raise field_error("query.to", "to must be after from")
    items, next_cursor = await service.search_slots(
        session,
        now=now,
        facility_id=facility_id,
        specialty=specialty,
        practitioner_id=practitioner_id,
        start=start,
        end=end,
        mode=mode,
        language=language,
        limit=limit,
        cursor=cursor,
    )
    return SlotPage(items=items, next_cursor=next_cursor)


def _change(schedule: object, created: int, removed: int, conflicts: list) -> ScheduleChange:  # type: ignore[type-arg]
    return ScheduleChange(
        schedule=ScheduleOut.model_validate(schedule), slots_created=created, slots_removed=removed, conflicts=conflicts
    )


@agency.post(
    "/facilities/{facility_id}/schedules",
    response_model=ScheduleChange,
    status_code=201,
    responses=problem_responses(401, 403, 404, 422),
)
async def create_schedule(
    session: SessionDep, principal: ScheduleWriter, facility_id: str, body: ScheduleIn, now: Now, settings: SettingsDep
) -> ScheduleChange:
    """Publish working hours (Asia/Ho_Chi_Minh) for a practitioner or service; slots are derived from it."""
    facility = await owned_facility(session, principal.client_id, facility_id)
    schedule, created, removed, conflicts = await service.create_schedule(
        session, facility, body, now, settings.max_horizon_days
    )
    return _change(schedule, created, removed, conflicts)


@agency.get(
    "/facilities/{facility_id}/schedules", response_model=list[ScheduleOut], responses=problem_responses(401, 403, 404)
)
async def list_schedules(session: SessionDep, principal: ScheduleWriter, facility_id: str) -> list[ScheduleOut]:
    """The facility's schedules."""
    facility = await owned_facility(session, principal.client_id, facility_id)
    return [ScheduleOut.model_validate(s) for s in await service.facility_schedules(session, facility.id)]


@agency.put("/schedules/{schedule_id}", response_model=ScheduleChange, responses=problem_responses(401, 403, 404, 422))
async def replace_schedule(
    session: SessionDep, principal: ScheduleWriter, schedule_id: str, body: ScheduleIn, now: Now, settings: SettingsDep
) -> ScheduleChange:
    """Change a schedule; booked slots it no longer covers are kept and reported as conflicts."""
    schedule, facility = await service.owned_schedule(session, principal.client_id, schedule_id)
    created, removed, conflicts = await service.replace_schedule(
        session, schedule, facility, body, now, settings.max_horizon_days
    )
    return _change(schedule, created, removed, conflicts)


@agency.delete("/schedules/{schedule_id}", response_model=ScheduleChange, responses=problem_responses(401, 403, 404))
async def deactivate_schedule(
    session: SessionDep, principal: ScheduleWriter, schedule_id: str, now: Now, settings: SettingsDep
) -> ScheduleChange:
    """Stop a schedule: its free future slots go; booked ones are kept and reported as conflicts."""
    schedule, facility = await service.owned_schedule(session, principal.client_id, schedule_id)
    created, removed, conflicts = await service.deactivate_schedule(
        session, schedule, facility, now, settings.max_horizon_days
    )
    return _change(schedule, created, removed, conflicts)


@agency.get(
    "/facilities/{facility_id}/conflicts", response_model=list[SlotConflict], responses=problem_responses(401, 403, 404)
)
async def list_schedule_conflicts(
    session: SessionDep, principal: ScheduleWriter, facility_id: str, now: Now
) -> list[SlotConflict]:
    """Booked appointments whose slots a schedule change or closure removed or over-filled (to resolve)."""
    facility = await owned_facility(session, principal.client_id, facility_id)
    return await service.open_conflicts(session, facility.id, now)


@agency.post(
    "/facilities/{facility_id}/closures",
    response_model=ClosureChange,
    status_code=201,
    responses=problem_responses(401, 403, 404, 422),
)
async def create_closure(
    session: SessionDep, principal: ScheduleWriter, facility_id: str, body: ClosureIn, now: Now, settings: SettingsDep
) -> ClosureChange:
    """Close days (a holiday, or one-off) for the facility or one practitioner; booked slots are reported."""
    facility = await owned_facility(session, principal.client_id, facility_id)
    closure, conflicts = await service.add_closure(session, facility, body, now, settings.max_horizon_days)
    return ClosureChange(closure=ClosureOut.model_validate(closure), conflicts=conflicts)


@agency.get(
    "/facilities/{facility_id}/closures", response_model=list[ClosureOut], responses=problem_responses(401, 403, 404)
)
async def list_closures(session: SessionDep, principal: ScheduleWriter, facility_id: str) -> list[ClosureOut]:
    """The facility's holidays and closures."""
    facility = await owned_facility(session, principal.client_id, facility_id)
    rows = (
        await session.scalars(select(Closure).where(Closure.facility_id == facility.id).order_by(Closure.start_date))
    ).all()
    return [ClosureOut.model_validate(c) for c in rows]


@agency.delete(
    "/facilities/{facility_id}/closures/{closure_id}", status_code=204, responses=problem_responses(401, 403, 404)
)
async def delete_closure(
    session: SessionDep, principal: ScheduleWriter, facility_id: str, closure_id: str, now: Now, settings: SettingsDep
) -> Response:
    """Reopen closed days; their slots are derived again."""
    facility = await owned_facility(session, principal.client_id, facility_id)
    await service.remove_closure(session, facility, closure_id, now, settings.max_horizon_days)
    return Response(status_code=204)

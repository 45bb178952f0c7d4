from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.health_booking.deps import Now, PeopleDep, RecordsWriter
from services.health_booking.records import service
from services.health_booking.records.schemas import (
    AccessPage,
    PatientRecords,
    ProfileOut,
    ProfileUpdate,
    RecordCreate,
    RecordOut,
)
from shared.db import SessionDep
from shared.errors import problem_responses

router = APIRouter(prefix="/v1/health/me", tags=["health records"])
agency = APIRouter(prefix="/v1/health/agency", tags=["facility administration"])

PatientQ = Annotated[str | None, Query(max_length=64, description='"self" (default) or a dependent id')]


@router.get("/profile", response_model=ProfileOut, responses=problem_responses(401, 403, 503))
async def get_health_profile(session: SessionDep, people: PeopleDep, now: Now, patient: PatientQ = None) -> ProfileOut:
    """Your (or your child's) health profile with the BHYT number."""
    return await service.get_profile(session, people, patient, now)


@router.put("/profile", response_model=ProfileOut, responses=problem_responses(401, 403, 422, 503))
async def put_health_profile(
    session: SessionDep, people: PeopleDep, body: ProfileUpdate, now: Now, patient: PatientQ = None
) -> ProfileOut:
    """Record the BHYT number, matched with the personal ID number Da Nang ID holds."""
    return await service.put_profile(session, people, patient, body, now)


@router.get("/records", response_model=PatientRecords, responses=problem_responses(401, 403, 503))
async def get_my_records(session: SessionDep, people: PeopleDep, now: Now, patient: PatientQ = None) -> PatientRecords:
    """Appointments, visit summaries and documents; the read is written to the access log."""
    return await service.my_records(session, people, patient, now)


@router.get("/records/access-log", response_model=AccessPage, responses=problem_responses(401, 403, 422, 503))
async def get_record_access_log(
    session: SessionDep,
    people: PeopleDep,
    patient: PatientQ = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> AccessPage:
    """Who read these health records and when, newest first."""
    items, next_cursor = await service.access_log(session, people, patient, limit, cursor)
    return AccessPage(items=items, next_cursor=next_cursor)


@agency.post(
    "/appointments/{appointment_id}/records",
    response_model=RecordOut,
    status_code=201,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def attach_visit_record(
    session: SessionDep, principal: RecordsWriter, appointment_id: str, body: RecordCreate, now: Now
) -> RecordOut:
    """Attach a visit summary or document to an appointment of the agency's facility."""
    return await service.attach_record(session, principal.client_id, appointment_id, body, now)


@agency.get("/patients/{patient_id}/records", response_model=PatientRecords, responses=problem_responses(401, 403, 404))
async def get_patient_records(
    session: SessionDep, principal: RecordsWriter, patient_id: str, now: Now
) -> PatientRecords:
    """A treating facility reads its records of its patient; the read is logged for the patient."""
    return await service.facility_patient_records(session, principal.client_id, patient_id, now)

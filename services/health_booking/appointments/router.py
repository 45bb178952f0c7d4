from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from services.health_booking.appointments import service
from services.health_booking.appointments.schemas import (
    AppointmentCreate,
    AppointmentOut,
    AppointmentPage,
    AppointmentStatus,
    CancelIn,
    RescheduleIn,
    WaitlistCreate,
    WaitlistOut,
    WaitlistPage,
)
from services.health_booking.db import idempotency_keys
from services.health_booking.deps import Now, PaymentsDep, PeopleDep, ScheduleWriter, SettingsDep
from services.health_booking.directory.service import owned_facility
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.idempotency import IdempotencyKey, owner_of, run_idempotent

router = APIRouter(prefix="/v1/health", tags=["appointments"])
agency = APIRouter(prefix="/v1/health/agency", tags=["facility administration"])

Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=300)]
PatientQ = Annotated[str | None, Query(max_length=64, description='"self" or a dependent id')]


@router.post(
    "/appointments",
    response_model=AppointmentOut,
    status_code=201,
    responses=problem_responses(401, 403, 409, 422, 502, 503),
)
async def create_appointment(
    session: SessionDep,
    people: PeopleDep,
    body: AppointmentCreate,
    idempotency_key: IdempotencyKey,
    now: Now,
    payments: PaymentsDep,
) -> object:
    """Book a slot for yourself or a dependent child: pending_payment with a fee payment, or booked."""

    async def work() -> AppointmentOut:
        return await service.book(session, people, body, now, payments)

    return await run_idempotent(
        session,
        idempotency_keys,
        owner=owner_of(people.principal.client_id, people.sub),
        key=idempotency_key,
        payload=body,
        work=work,
        status_code=201,
    )


@router.get("/appointments", response_model=AppointmentPage, responses=problem_responses(401, 403, 422, 503))
async def list_appointments(
    session: SessionDep,
    people: PeopleDep,
    now: Now,
    upcoming: bool = False,
    status: AppointmentStatus | None = None,
    patient: PatientQ = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> AppointmentPage:
    """Your appointments and those you booked for your children, soonest first."""
    items, next_cursor = await service.list_appointments(
        session, people, now=now, upcoming=upcoming, status=status, patient_id=patient, limit=limit, cursor=cursor
    )
    return AppointmentPage(items=items, next_cursor=next_cursor)


@router.get(
    "/appointments/{appointment_id}", response_model=AppointmentOut, responses=problem_responses(401, 403, 404, 503)
)
async def get_appointment(session: SessionDep, people: PeopleDep, appointment_id: str) -> AppointmentOut:
    """One appointment of yours or of your dependent child."""
    appt = await service.readable_appointment(session, people, appointment_id)
    return service.to_out(appt, await service.facility_name(session, appt.facility_id))


@router.post(
    "/appointments/{appointment_id}/cancel",
    response_model=AppointmentOut,
    responses=problem_responses(401, 403, 404, 409, 422, 502, 503),
)
async def cancel_appointment(
    session: SessionDep,
    people: PeopleDep,
    appointment_id: str,
    body: CancelIn,
    now: Now,
    payments: PaymentsDep,
    settings: SettingsDep,
) -> AppointmentOut:
    """Cancel before the facility's cut-off; a paid fee is refunded per the facility's policy."""
    return await service.cancel_by_patient(
        session, people, appointment_id, body.reason, now, payments, settings.waitlist_offer_minutes
    )


@router.post(
    "/appointments/{appointment_id}/reschedule",
    response_model=AppointmentOut,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def reschedule_appointment(
    session: SessionDep,
    people: PeopleDep,
    appointment_id: str,
    body: RescheduleIn,
    idempotency_key: IdempotencyKey,
    now: Now,
    settings: SettingsDep,
) -> object:
    """Move the appointment to another free slot of the same facility, keeping its payment."""

    async def work() -> AppointmentOut:
        return await service.reschedule(
            session, people, appointment_id, body.slot_id, now, settings.waitlist_offer_minutes
        )

    return await run_idempotent(
        session,
        idempotency_keys,
        owner=owner_of(people.principal.client_id, people.sub),
        key=idempotency_key,
        payload={"appointment_id": appointment_id, **body.model_dump()},
        work=work,
        status_code=200,
    )


@router.post(
    "/waitlist", response_model=WaitlistOut, status_code=201, responses=problem_responses(401, 403, 409, 422, 503)
)
async def join_waitlist(session: SessionDep, people: PeopleDep, body: WaitlistCreate, now: Now) -> WaitlistOut:
    """Wait for a place on a day; when one frees you are notified and may book it first for a short time."""
    return await service.join_waitlist(session, people, body, now)


@router.get("/waitlist", response_model=WaitlistPage, responses=problem_responses(401, 403))
async def list_waitlist(session: SessionDep, people: PeopleDep) -> WaitlistPage:
    """Your waitlist entries and any place offered to you."""
    return WaitlistPage(items=[service.waitlist_out(e) for e in await service.my_waitlist(session, people)])


@router.delete("/waitlist/{entry_id}", response_model=WaitlistOut, responses=problem_responses(401, 403, 404))
async def leave_waitlist(
    session: SessionDep, people: PeopleDep, entry_id: str, now: Now, settings: SettingsDep
) -> WaitlistOut:
    """Leave the waitlist (an offered place goes to the next patient)."""
    return await service.leave_waitlist(session, people, entry_id, now, settings.waitlist_offer_minutes)


@agency.get(
    "/facilities/{facility_id}/appointments",
    response_model=AppointmentPage,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_facility_appointments(
    session: SessionDep,
    principal: ScheduleWriter,
    facility_id: str,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    status: AppointmentStatus | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AppointmentPage:
    """The facility's appointments in a period (its day list)."""
    facility = await owned_facility(session, principal.client_id, facility_id)
    items, next_cursor = await service.facility_appointments(
        session, facility.id, start=start, end=end, status=status, limit=limit, cursor=cursor
    )
    return AppointmentPage(items=items, next_cursor=next_cursor)


@agency.post(
    "/appointments/{appointment_id}/arrive",
    response_model=AppointmentOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def mark_arrived(session: SessionDep, principal: ScheduleWriter, appointment_id: str, now: Now) -> AppointmentOut:
    """The patient has arrived / checked in."""
    return await service.facility_transition(session, principal.client_id, appointment_id, "arrive", now)


@agency.post(
    "/appointments/{appointment_id}/fulfil",
    response_model=AppointmentOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def mark_fulfilled(
    session: SessionDep, principal: ScheduleWriter, appointment_id: str, now: Now
) -> AppointmentOut:
    """The visit took place."""
    return await service.facility_transition(session, principal.client_id, appointment_id, "fulfil", now)


@agency.post(
    "/appointments/{appointment_id}/noshow",
    response_model=AppointmentOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def mark_noshow(session: SessionDep, principal: ScheduleWriter, appointment_id: str, now: Now) -> AppointmentOut:
    """The patient did not come (after the start time)."""
    return await service.facility_transition(session, principal.client_id, appointment_id, "noshow", now)


@agency.post(
    "/appointments/{appointment_id}/cancel",
    response_model=AppointmentOut,
    responses=problem_responses(401, 403, 404, 409, 422, 502, 503),
)
async def facility_cancel_appointment(
    session: SessionDep,
    principal: ScheduleWriter,
    appointment_id: str,
    body: CancelIn,
    now: Now,
    payments: PaymentsDep,
    settings: SettingsDep,
) -> AppointmentOut:
    """Cancel as the facility: always a full refund and a message to the patient."""
    return await service.cancel_by_facility(
        session, principal.client_id, appointment_id, body.reason, now, payments, settings.waitlist_offer_minutes
    )

"""Health records: readable by the patient, a guardian of a dependent child and the treating facility.
Every read is appended to the access log the patient can see. Nothing here is ever logged."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.health_booking.appointments.models import Appointment
from services.health_booking.appointments.service import facility_appointment, to_out
from services.health_booking.common import decode_cursor, encode_cursor
from services.health_booking.directory.models import Facility
from services.health_booking.people import Patient, People
from services.health_booking.records.models import HealthProfile, RecordAccess, VisitRecord
from services.health_booking.records.schemas import (
    AccessOut,
    PatientRecords,
    ProfileOut,
    ProfileUpdate,
    RecordCreate,
    RecordOut,
)
from shared.errors import Conflict, NotFound, field_error
from shared.observability import current_request_id


def record_out(record: VisitRecord) -> RecordOut:
    return RecordOut(
        id=record.id,
        appointment_id=record.appointment_id,
        facility_id=record.facility_id,
        patient_id=record.patient_ref,
        kind=record.kind,
        title=record.title,
        summary=record.summary,
        diagnosis_codes=record.diagnosis_codes,
        documents=record.documents,  # type: ignore[arg-type]
        created_at=record.created_at,
    )


def profile_out(profile: HealthProfile) -> ProfileOut:
    return ProfileOut(
        patient_id=profile.patient_ref,
        kind=profile.kind,  # type: ignore[arg-type]
        bhyt_number=profile.bhyt_number,
        citizen_id_masked=profile.citizen_id_masked,
        bhyt_verified_at=profile.bhyt_verified_at,
    )


async def log_access(
    session: AsyncSession,
    patient_ref: str,
    accessor: str,
    role: str,
    what: str,
    now: datetime,
    facility_id: str | None = None,
) -> None:
    session.add(
        RecordAccess(
            patient_ref=patient_ref,
            accessor=accessor,
            accessor_role=role,
            what=what,
            facility_id=facility_id,
            request_id=current_request_id(),
            at=now,
        )
    )
    await session.flush()


async def _role(people: People, patient: Patient) -> str:
    return "patient" if patient.kind == "self" else "guardian"


async def my_records(session: AsyncSession, people: People, patient_id: str | None, now: datetime) -> PatientRecords:
    patient = await people.patient(patient_id)
    profile = await session.get(HealthProfile, patient.ref)
    appts = (
        await session.execute(
            select(Appointment, Facility.name)
            .join(Facility, Facility.id == Appointment.facility_id)
            .where(Appointment.patient_ref == patient.ref)
            .order_by(Appointment.start_at.desc())
            .limit(200)
        )
    ).all()
    records = (
        await session.scalars(
            select(VisitRecord)
            .where(VisitRecord.patient_ref == patient.ref)
            .order_by(VisitRecord.created_at.desc())
            .limit(200)
        )
    ).all()
    await log_access(session, patient.ref, people.sub, await _role(people, patient), "records", now)
    return PatientRecords(
        patient_id=patient.ref,
        profile=profile_out(profile) if profile else None,
        appointments=[to_out(a, n) for a, n in appts],
        records=[record_out(r) for r in records],
    )


async def access_log(
    session: AsyncSession, people: People, patient_id: str | None, limit: int, cursor: str | None
) -> tuple[list[AccessOut], str | None]:
    patient = await people.patient(patient_id)
    query = select(RecordAccess).where(RecordAccess.patient_ref == patient.ref)
    if cursor:
        before_at, before_id = decode_cursor(cursor, kinds=(datetime, str))
        query = query.where(
            or_(RecordAccess.at < before_at, (RecordAccess.at == before_at) & (RecordAccess.id < before_id))
        )
    rows = (
        await session.scalars(query.order_by(RecordAccess.at.desc(), RecordAccess.id.desc()).limit(limit + 1))
    ).all()
    items = [AccessOut.model_validate(r) for r in rows[:limit]]
    return items, (encode_cursor(items[-1].at, items[-1].id) if len(rows) > limit else None)


def masked_matches(full: str, masked: str) -> bool:
    """Whether a full ID agrees with identity's masked form (``*`` hides digits, the rest must match)."""
    masked = masked.strip()
    if len(masked) == len(full):
        return all(m in "*xX•" or m == f for m, f in zip(masked, full, strict=True))
    visible = re.split(r"[*xX•]+", masked)
    return bool(visible) and full.startswith(visible[0]) and full.endswith(visible[-1])


async def get_profile(session: AsyncSession, people: People, patient_id: str | None, now: datetime) -> ProfileOut:
    patient = await people.patient(patient_id)
    profile = await session.get(HealthProfile, patient.ref)
    await log_access(session, patient.ref, people.sub, await _role(people, patient), "profile", now)
    if profile is None:
        return ProfileOut(
            patient_id=patient.ref,
            kind=patient.kind,  # type: ignore[arg-type]
            bhyt_number=None,
            citizen_id_masked=None,
            bhyt_verified_at=None,
        )
    return profile_out(profile)


async def put_profile(
    session: AsyncSession, people: People, patient_id: str | None, data: ProfileUpdate, now: datetime
) -> ProfileOut:
    """Record the BHYT number once the personal ID number matches the one Da Nang ID verified."""
    patient = await people.patient(patient_id)
    if patient.kind == "self":
        me = await people.me()
        masked = me.get("citizen_id_masked") or me.get("document_number_masked") or me.get("citizen_id")
    else:
        masked = patient.citizen_id_masked
    if not masked:
        raise field_error("body.citizen_id", "Da Nang ID holds no personal ID number for this person")
    if not masked_matches(data.citizen_id, str(masked)):
        raise field_error("body.citizen_id", "This personal ID number does not match Da Nang ID")
    profile = await session.get(HealthProfile, patient.ref)
    if profile is None:
        profile = HealthProfile(patient_ref=patient.ref, kind=patient.kind)
        session.add(profile)
    profile.bhyt_number, profile.citizen_id_masked = data.bhyt_number, str(masked)
    profile.bhyt_verified_at, profile.updated_by, profile.updated_at = now, people.sub, now
    await session.flush()
    return profile_out(profile)


async def attach_record(
    session: AsyncSession, client_id: str, appointment_id: str, data: RecordCreate, now: datetime
) -> RecordOut:
    appt = await facility_appointment(session, client_id, appointment_id)
    if appt.status not in ("arrived", "fulfilled"):
        raise Conflict("Records are attached after the patient has arrived", code="visit_not_started")
    record = VisitRecord(
        appointment_id=appt.id,
        facility_id=appt.facility_id,
        patient_ref=appt.patient_ref,
        author_client_id=client_id,
        created_at=now,
        **data.model_dump(mode="json"),
    )
    session.add(record)
    await session.flush()
    return record_out(record)


async def facility_patient_records(
    session: AsyncSession, client_id: str, patient_ref: str, now: datetime
) -> PatientRecords:
    """A treating facility reads what it recorded for a patient it has seen or will see."""
    own = select(Facility.id).where(Facility.owner_client_id == client_id)
    appts = (
        await session.execute(
            select(Appointment, Facility.name)
            .join(Facility, Facility.id == Appointment.facility_id)
            .where(
                Appointment.patient_ref == patient_ref,
                Appointment.facility_id.in_(own),
                Appointment.status.in_(("booked", "arrived", "fulfilled", "noshow")),
            )
            .order_by(Appointment.start_at.desc())
        )
    ).all()
    if not appts:
        raise NotFound("No patient of yours with this id", code="patient_not_found")
    records = (
        await session.scalars(
            select(VisitRecord)
            .where(VisitRecord.patient_ref == patient_ref, VisitRecord.facility_id.in_(own))
            .order_by(VisitRecord.created_at.desc())
        )
    ).all()
    await log_access(session, patient_ref, client_id, "facility", "records", now, facility_id=appts[0][0].facility_id)
    return PatientRecords(
        patient_id=patient_ref,
        profile=None,
        appointments=[to_out(a, n) for a, n in appts],
        records=[record_out(r) for r in records],
    )

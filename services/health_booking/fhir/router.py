"""Read views in HL7 FHIR R4 JSON: Slot search (a searchset Bundle) and Appointment read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from services.health_booking.appointments.models import Appointment
from services.health_booking.appointments.service import readable_appointment
from services.health_booking.deps import Now, PeopleDep
from services.health_booking.records.service import log_access
from services.health_booking.schedules import service as slots
from services.health_booking.schedules.schemas import SlotOut
from shared.db import SessionDep
from shared.errors import field_error, problem_responses

router = APIRouter(prefix="/v1/health/fhir", tags=["FHIR R4"])
FHIR_JSON = "application/fhir+json"
FEE_EXTENSION = "https://api.danang.gov.vn/fhir/StructureDefinition/consultation-fee"
FHIR_STATUS = {
    "pending_payment": "pending",
    "booked": "booked",
    "arrived": "arrived",
    "fulfilled": "fulfilled",
    "cancelled": "cancelled",
    "expired": "cancelled",
    "noshow": "noshow",
}
FHIR_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {"schema": {"type": "object"}}}, "description": "FHIR R4 resource"}
}


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def slot_resource(slot: SlotOut) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Slot",
        "id": slot.id,
        "schedule": {"reference": f"Schedule/{slot.schedule_id}"},
        "status": "free" if slot.remaining > 0 else "busy",
        "start": _instant(slot.start_at),
        "end": _instant(slot.end_at),
        "specialty": [{"text": slot.specialty}],
        "appointmentType": {"text": "telemedicine" if slot.mode == "telemedicine" else "in-person"},
        "comment": f"{slot.remaining} of {slot.capacity} places free",
        "extension": [{"url": FEE_EXTENSION, "valueMoney": {"value": slot.fee_vnd, "currency": "VND"}}],
    }
    return resource


def appointment_resource(appt: Appointment) -> dict[str, Any]:
    participants: list[dict[str, Any]] = [
        {"actor": {"reference": f"Patient/{appt.patient_ref}"}, "status": "accepted", "required": "required"},
        {"actor": {"reference": f"Location/{appt.facility_id}"}, "status": "accepted", "required": "required"},
    ]
    if appt.practitioner_id:
        participants.append(
            {
                "actor": {"reference": f"Practitioner/{appt.practitioner_id}"},
                "status": "accepted",
                "required": "required",
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": appt.id,
        "status": FHIR_STATUS[appt.status],
        "start": _instant(appt.start_at),
        "end": _instant(appt.end_at),
        "created": appt.created_at.date().isoformat(),
        "slot": [{"reference": f"Slot/{appt.slot_id}"}],
        "appointmentType": {"text": "telemedicine" if appt.mode == "telemedicine" else "in-person"},
        "participant": participants,
    }
    if appt.reason:
        resource["description"] = appt.reason
    if appt.status in ("cancelled", "expired"):
        resource["cancelationReason"] = {"text": appt.cancel_reason or appt.status}
    return resource


@router.get("/Slot", response_class=JSONResponse, responses={**FHIR_DOC, **problem_responses(422)})
async def fhir_search_slots(
    request: Request,
    session: SessionDep,
    now: Now,
    facility_id: Annotated[str | None, Query(max_length=32)] = None,
    practitioner_id: Annotated[str | None, Query(max_length=32)] = None,
    specialty: Annotated[str | None, Query(max_length=60)] = None,
    start: Annotated[list[str] | None, Query(description="FHIR date search, e.g. ge2025-07-01, lt2025-07-02")] = None,
    status: Annotated[str | None, Query(pattern="^(free|busy)$")] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=200)] = 50,
) -> JSONResponse:
    """FHIR R4 Slot search as a searchset Bundle (free slots by default)."""
    low: datetime | None = None
    high: datetime | None = None
    for value in start or []:
        # An unencoded "+" of a UTC offset arrives as a space.
        value = value.replace(" ", "+")
        prefix, raw = (value[:2], value[2:]) if value[:2] in ("ge", "gt", "le", "lt", "eq") else ("eq", value)
        try:
            moment = datetime.fromisoformat(raw if "T" in raw else raw + "T00:00:00+07:00")
        except ValueError as exc:
            raise field_error("query.start", "A FHIR date like ge2025-07-01 or lt2025-07-01T12:00:00+07:00") from exc
        if moment.tzinfo is None:
            raise field_error("query.start", "Give a time zone")
        try:
            moment.astimezone(UTC)  # e.g. 0001-01-01T00:00:00+14:00 has no UTC time: a 422, not a 500
        except (OverflowError, ValueError):
            raise field_error("query.start", "The time is out of range") from None
        if prefix in ("ge", "gt", "eq"):
            low = moment
        if prefix in ("le", "lt"):
            high = moment
    items, _next = await slots.search_slots(
        session,
        now=now,
        facility_id=facility_id,
        specialty=specialty,
        practitioner_id=practitioner_id,
        start=low,
        end=high,
        mode=None,
        language=None,
        limit=count,
        cursor=None,
        include_full=status == "busy",
    )
    if status == "busy":
        items = [s for s in items if s.remaining == 0]
    base = str(request.base_url).rstrip("/") + "/v1/health/fhir"
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(items),
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": [
            {"fullUrl": f"{base}/Slot/{s.id}", "resource": slot_resource(s), "search": {"mode": "match"}} for s in items
        ],
    }
    return JSONResponse(bundle, media_type=FHIR_JSON)


@router.get(
    "/Appointment/{appointment_id}",
    response_class=JSONResponse,
    responses={**FHIR_DOC, **problem_responses(401, 403, 404, 503)},
)
async def fhir_read_appointment(session: SessionDep, people: PeopleDep, appointment_id: str, now: Now) -> JSONResponse:
    """FHIR R4 Appointment read (the patient or a guardian); the read is written to the access log."""
    appt = await readable_appointment(session, people, appointment_id)
    role = "patient" if appt.patient_ref == people.sub else "guardian"
    await log_access(session, appt.patient_ref, people.sub, role, f"fhir:Appointment/{appt.id}", now)
    return JSONResponse(appointment_resource(appt), media_type=FHIR_JSON)

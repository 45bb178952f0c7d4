"""Booking rules: find → hold → book, lifecycle with FHIR statuses, refunds per policy, waitlist.

Concurrency: a slot's capacity is kept by one guarded update (``booked_count < capacity``); one patient's
bookings are serialized by a row lock on their health profile (PostgreSQL; SQLite's BEGIN IMMEDIATE
serializes all writers anyway), so the overlap and per-day limits cannot be raced either.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.health_booking.appointments.models import (
    ACTIVE_STATUSES,
    Appointment,
    QueueCounter,
    WaitlistEntry,
)
from services.health_booking.appointments.schemas import (
    AppointmentCreate,
    AppointmentOut,
    PaymentInfo,
    WaitlistCreate,
    WaitlistOut,
)
from services.health_booking.common import LOCAL_TZ, decode_cursor, encode_cursor, local_date, local_day_bounds
from services.health_booking.db import events
from services.health_booking.directory.models import Facility, Practitioner
from services.health_booking.payments import payment_key, refund_key
from services.health_booking.people import Patient, People
from services.health_booking.records.models import HealthProfile
from services.health_booking.schedules.models import Slot
from shared.clients.payments import PaymentCreate, PaymentsClient, PaymentsError, RefundCreate
from shared.errors import Conflict, NotFound, ServiceUnavailable, Unprocessable, field_error
from shared.events import Outbox

outbox = Outbox(events)
DAY_LIMIT_STATUSES = (*ACTIVE_STATUSES, "fulfilled")


def to_out(appt: Appointment, facility_name: str | None = None) -> AppointmentOut:
    return AppointmentOut(
        id=appt.id,
        status=appt.status,  # type: ignore[arg-type]
        facility_id=appt.facility_id,
        facility_name=facility_name,
        practitioner_id=appt.practitioner_id,
        slot_id=appt.slot_id,
        patient_id=appt.patient_ref,
        patient_kind=appt.patient_kind,  # type: ignore[arg-type]
        patient_name=appt.patient_name,
        reason=appt.reason,
        mode=appt.mode,  # type: ignore[arg-type]
        start_at=appt.start_at,
        end_at=appt.end_at,
        fee_vnd=appt.fee_vnd,
        paid_vnd=appt.paid_vnd,
        refund_vnd=appt.refund_vnd,
        refunded_vnd=appt.refunded_vnd,
        payment=PaymentInfo(id=appt.payment_id, url=appt.payment_url) if appt.payment_id else None,
        hold_expires_at=appt.hold_expires_at,
        queue_number=appt.queue_number,
        cancelled_by=appt.cancelled_by,
        cancel_reason=appt.cancel_reason,
        created_at=appt.created_at,
    )


def local_text(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")


async def notify(session: AsyncSession, sub: str, kind: str, vi: str, en: str, dedupe_key: str) -> None:
    """A message to a person through identity's SMS sender. Never carries health data (no reasons,
    no diagnoses): only the facility and the time."""
    await outbox.add(
        session,
        "notification.requested",
        {"sub": sub, "kind": kind, "message": {"vi": vi, "en": en}, "dedupe_key": dedupe_key},
        subject=sub,
    )


def _dialect(session: AsyncSession) -> str:
    bind = session.get_bind()
    return bind.dialect.name


# --- locks and places -------------------------------------------------------------------------------


async def lock_patient(session: AsyncSession, patient: Patient) -> None:
    """Serialize one patient's bookings: their profile row is created if needed, then locked."""
    if await session.get(HealthProfile, patient.ref) is None:
        try:
            async with session.begin_nested():
                session.add(HealthProfile(patient_ref=patient.ref, kind=patient.kind))
        except IntegrityError:
            pass  # a concurrent booking of the same patient created it first
    await session.execute(
        select(HealthProfile.patient_ref).where(HealthProfile.patient_ref == patient.ref).with_for_update()
    )


async def lock_appointment(session: AsyncSession, appointment_id: str) -> Appointment | None:
    return (
        await session.scalars(
            select(Appointment)
            .where(Appointment.id == appointment_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()


async def _increment(session: AsyncSession, slot_id: str) -> bool:
    result = await session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.status == "active", Slot.booked_count < Slot.capacity)
        .values(booked_count=Slot.booked_count + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def take_place(session: AsyncSession, slot: Slot, patient_ref: str, now: datetime) -> None:
    """Take one place in the slot: the patient's own waitlist offer, or a free place (guarded)."""
    offer = (
        await session.scalars(
            select(WaitlistEntry)
            .where(
                WaitlistEntry.offered_slot_id == slot.id,
                WaitlistEntry.patient_ref == patient_ref,
                WaitlistEntry.status == "offered",
                WaitlistEntry.offer_expires_at > now,
            )
            .with_for_update()
        )
    ).first()
    if offer is not None:
        offer.status = "booked"  # the place reserved by the offer becomes the booking
        return
    if not await _increment(session, slot.id):
        raise Conflict("This slot is fully booked", code="slot_full")


async def free_place(session: AsyncSession, slot_id: str, now: datetime, offer_minutes: int) -> None:
    await session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.booked_count > 0)
        .values(booked_count=Slot.booked_count - 1)
        .execution_options(synchronize_session=False)
    )
    await offer_to_waitlist(session, slot_id, now, offer_minutes)


async def offer_to_waitlist(session: AsyncSession, slot_id: str, now: datetime, offer_minutes: int) -> None:
    """A freed place goes first to the earliest waiting patient for that day, reserved for a short time."""
    slot = (
        await session.scalars(select(Slot).where(Slot.id == slot_id).execution_options(populate_existing=True))
    ).first()
    if slot is None or slot.status != "active" or slot.start_at <= now or slot.booked_count >= slot.capacity:
        return
    query = (
        select(WaitlistEntry)
        .where(
            WaitlistEntry.facility_id == slot.facility_id,
            WaitlistEntry.day == local_date(slot.start_at),
            WaitlistEntry.status == "waiting",
            or_(WaitlistEntry.practitioner_id.is_(None), WaitlistEntry.practitioner_id == slot.practitioner_id),
        )
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
        .limit(1)
    )
    if _dialect(session) == "postgresql":
        query = query.with_for_update(skip_locked=True)
    entry = (await session.scalars(query)).first()
    if entry is None or not await _increment(session, slot.id):
        return
    entry.status, entry.offered_slot_id = "offered", slot.id
    entry.offer_expires_at = now + timedelta(minutes=offer_minutes)
    facility = await session.get(Facility, slot.facility_id)
    name = facility.name if facility else ""
    until = local_text(entry.offer_expires_at)
    await notify(
        session,
        entry.requested_by_sub,
        "health.waitlist_offer",
        f"Có chỗ trống lúc {local_text(slot.start_at)} tại {name}. Đặt trước {until} (mã chỗ {slot.id}).",
        f"A place is free at {local_text(slot.start_at)} at {name}. Book it before {until} (slot {slot.id}).",
        f"health.waitlist_offer:{entry.id}:{slot.id}",
    )


async def next_queue_number(session: AsyncSession, slot: Slot) -> int:
    day = local_date(slot.start_at)
    try:
        async with session.begin_nested():
            session.add(QueueCounter(schedule_id=slot.schedule_id, day=day, last=0))
    except IntegrityError:
        pass
    await session.execute(
        update(QueueCounter)
        .where(QueueCounter.schedule_id == slot.schedule_id, QueueCounter.day == day)
        .values(last=QueueCounter.last + 1)
        .execution_options(synchronize_session=False)
    )
    return int(
        (
            await session.scalars(
                select(QueueCounter.last).where(QueueCounter.schedule_id == slot.schedule_id, QueueCounter.day == day)
            )
        ).one()
    )


# --- rules ----------------------------------------------------------------------------------------------


def check_window(facility: Facility, slot: Slot, now: datetime, field: str = "body.slot_id") -> None:
    if slot.start_at < now + timedelta(minutes=facility.min_notice_minutes):
        raise Unprocessable(
            f"This facility takes bookings at least {facility.min_notice_minutes} minutes ahead",
            code="minimum_notice",
            errors=[{"field": field, "message": "too soon to book", "type": "min_notice"}],
        )
    if slot.start_at > now + timedelta(days=facility.max_days_ahead):
        raise Unprocessable(
            f"This facility takes bookings at most {facility.max_days_ahead} days ahead",
            code="too_far_ahead",
            errors=[{"field": field, "message": "too far ahead", "type": "max_days_ahead"}],
        )


async def check_patient_limits(
    session: AsyncSession, facility: Facility, patient_ref: str, slot: Slot, exclude_id: str | None = None
) -> None:
    base = select(func.count()).select_from(Appointment).where(Appointment.patient_ref == patient_ref)
    if exclude_id:
        base = base.where(Appointment.id != exclude_id)
    overlapping = await session.scalar(
        base.where(
            Appointment.status.in_(ACTIVE_STATUSES),
            Appointment.start_at < slot.end_at,
            Appointment.end_at > slot.start_at,
        )
    )
    if overlapping:
        raise Conflict("The patient already has an appointment at an overlapping time", code="overlapping_appointment")
    day_start, day_end = local_day_bounds(local_date(slot.start_at))
    same_day = await session.scalar(
        base.where(
            Appointment.facility_id == facility.id,
            Appointment.status.in_(DAY_LIMIT_STATUSES),
            Appointment.start_at >= day_start,
            Appointment.start_at < day_end,
        )
    )
    if (same_day or 0) >= facility.max_per_patient_per_day:
        raise Conflict(
            f"At most {facility.max_per_patient_per_day} appointments per patient per day here",
            code="daily_limit_reached",
        )


async def _slot_for(session: AsyncSession, slot_id: str) -> tuple[Slot, Facility]:
    slot = await session.get(Slot, slot_id)
    if slot is None:
        raise field_error("body.slot_id", "No such slot")
    facility = await session.get(Facility, slot.facility_id)
    assert facility is not None
    return slot, facility


# --- patient actions --------------------------------------------------------------------------------------


async def book(
    session: AsyncSession, people: People, data: AppointmentCreate, now: datetime, payments: PaymentsClient
) -> AppointmentOut:
    patient = await people.patient(data.patient)
    await lock_patient(session, patient)
    slot, facility = await _slot_for(session, data.slot_id)
    if slot.status != "active":
        raise Conflict("This slot is no longer offered", code="slot_unavailable")
    if data.mode and data.mode != slot.mode:
        raise field_error("body.mode", f"This slot is {slot.mode}")
    check_window(facility, slot, now)
    await check_patient_limits(session, facility, patient.ref, slot)
    await take_place(session, slot, patient.ref, now)
    appt = Appointment(
        facility_id=facility.id,
        practitioner_id=slot.practitioner_id,
        slot_id=slot.id,
        patient_ref=patient.ref,
        patient_kind=patient.kind,
        patient_name=patient.display_name,
        booked_by_sub=people.sub,
        reason=data.reason,
        mode=slot.mode,
        start_at=slot.start_at,
        end_at=slot.end_at,
        fee_vnd=slot.fee_vnd,
        paid_vnd=0,
        refund_vnd=0,
        refunded_vnd=0,
        created_at=now,
        updated_at=now,
    )
    session.add(appt)
    if facility.prepayment_required and slot.fee_vnd > 0:
        appt.status = "pending_payment"
        appt.hold_expires_at = now + timedelta(minutes=facility.hold_minutes)
        await session.flush()
        payment = await payments.create(
            PaymentCreate(
                amount_vnd=slot.fee_vnd,
                purpose="health",
                reference=appt.id,
                payer_sub=people.sub,
                description=f"Phí khám bệnh / consultation fee - {facility.name}"[:300],
            ),
            idempotency_key=payment_key(appt.id),
        )
        appt.payment_id = payment.id
        appt.payment_url = payment.next_action.url if payment.next_action else None
    else:
        appt.status = "booked"
        appt.queue_number = await next_queue_number(session, slot)
        await session.flush()
        await outbox.add(session, "appointment.booked", _event_data(appt), subject=appt.id)
    await session.flush()
    return to_out(appt, facility.name)


def _event_data(appt: Appointment) -> dict[str, Any]:
    # Events carry no health data (no reason, no records): other services need only the facts of a booking.
    return {
        "appointment_id": appt.id,
        "facility_id": appt.facility_id,
        "patient_id": appt.patient_ref,
        "booked_by_sub": appt.booked_by_sub,
        "status": appt.status,
        "start_at": appt.start_at.isoformat(),
    }


async def readable_appointment(
    session: AsyncSession, people: People, appointment_id: str, *, lock: bool = False
) -> Appointment:
    appt = await lock_appointment(session, appointment_id) if lock else await session.get(Appointment, appointment_id)
    # Someone else's appointment is indistinguishable from a missing one (no BOLA, no probing).
    if appt is None or await people.may_access(appt.patient_ref, appt.patient_kind) is None:
        raise NotFound("No such appointment", code="appointment_not_found")
    return appt


async def facility_name(session: AsyncSession, facility_id: str) -> str | None:
    facility = await session.get(Facility, facility_id)
    return facility.name if facility else None


async def list_appointments(
    session: AsyncSession,
    people: People,
    *,
    now: datetime,
    upcoming: bool,
    status: str | None,
    patient_id: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AppointmentOut], str | None]:
    query = select(Appointment, Facility.name).join(Facility, Facility.id == Appointment.facility_id)
    if patient_id:
        patient = await people.patient(patient_id)
        query = query.where(Appointment.patient_ref == patient.ref)
    else:
        query = query.where(or_(Appointment.booked_by_sub == people.sub, Appointment.patient_ref == people.sub))
    if upcoming:
        query = query.where(Appointment.end_at >= now, Appointment.status.in_(ACTIVE_STATUSES))
    if status:
        query = query.where(Appointment.status == status)
    if cursor:
        after_start, after_id = decode_cursor(cursor, kinds=(datetime, str))
        query = query.where(
            or_(Appointment.start_at > after_start, (Appointment.start_at == after_start) & (Appointment.id > after_id))
        )
    rows = (await session.execute(query.order_by(Appointment.start_at, Appointment.id).limit(limit + 1))).all()
    items = [to_out(appt, name) for appt, name in rows[:limit]]
    next_cursor = encode_cursor(items[-1].start_at, items[-1].id) if len(rows) > limit else None
    return items, next_cursor


async def _refund(payments: PaymentsClient, appt: Appointment, amount: int, reason: str) -> None:
    if amount <= 0 or not appt.payment_id:
        return
    refund_no = 1 if appt.refund_vnd == 0 else 2
    await payments.refund(
        appt.payment_id, RefundCreate(amount_vnd=amount, reason=reason), idempotency_key=refund_key(appt.id, refund_no)
    )
    appt.refund_vnd += amount


async def _cancel_payment(payments: PaymentsClient, appt: Appointment) -> bool:
    """Cancel an unpaid payment; False if it already succeeded (its event will then refund it)."""
    if not appt.payment_id:
        return True
    try:
        await payments.cancel(appt.payment_id)
        return True
    except PaymentsError:
        payment = await payments.get(appt.payment_id)
        return payment.status not in ("succeeded", "partially_refunded", "refunded", "processing")


async def cancel_by_patient(
    session: AsyncSession,
    people: People,
    appointment_id: str,
    reason: str | None,
    now: datetime,
    payments: PaymentsClient,
    offer_minutes: int,
) -> AppointmentOut:
    appt = await readable_appointment(session, people, appointment_id, lock=True)
    facility = await session.get(Facility, appt.facility_id)
    assert facility is not None
    if appt.status not in ("pending_payment", "booked"):
        raise Conflict(f"An appointment that is {appt.status} cannot be cancelled", code="not_cancelable")
    if now > appt.start_at - timedelta(minutes=facility.cancel_cutoff_minutes):
        raise Conflict(
            f"Cancellation closes {facility.cancel_cutoff_minutes} minutes before the appointment",
            code="cancel_cutoff_passed",
        )
    if appt.status == "pending_payment":
        await _cancel_payment(payments, appt)
    else:
        full = appt.start_at - now >= timedelta(minutes=facility.full_refund_minutes)
        percent = 100 if full else facility.late_cancel_refund_percent
        await _refund(payments, appt, appt.paid_vnd * percent // 100, "Patient cancelled the appointment")
    await _finish_cancel(session, appt, "patient", reason, now, offer_minutes)
    return to_out(appt, facility.name)


async def _finish_cancel(
    session: AsyncSession,
    appt: Appointment,
    by: str,
    reason: str | None,
    now: datetime,
    offer_minutes: int,
    status: str = "cancelled",
) -> None:
    held = appt.status in ACTIVE_STATUSES
    appt.status, appt.cancelled_by, appt.cancel_reason = status, by, reason
    appt.hold_expires_at, appt.updated_at = None, now
    if held:
        await free_place(session, appt.slot_id, now, offer_minutes)
    await outbox.add(session, f"appointment.{status}", _event_data(appt), subject=appt.id)


async def reschedule(
    session: AsyncSession, people: People, appointment_id: str, slot_id: str, now: datetime, offer_minutes: int
) -> AppointmentOut:
    """Atomically move to another free slot of the same facility, keeping the payment."""
    appt = await readable_appointment(session, people, appointment_id, lock=True)
    if appt.status not in ("pending_payment", "booked"):
        raise Conflict(f"An appointment that is {appt.status} cannot be rescheduled", code="not_reschedulable")
    facility = await session.get(Facility, appt.facility_id)
    assert facility is not None
    if now > appt.start_at - timedelta(minutes=facility.cancel_cutoff_minutes):
        raise Conflict("Changes close before the appointment", code="cancel_cutoff_passed")
    if slot_id == appt.slot_id:
        raise field_error("body.slot_id", "This is the appointment's current slot")
    new_slot, new_facility = await _slot_for(session, slot_id)
    if new_facility.id != facility.id:
        raise field_error("body.slot_id", "A reschedule stays at the same facility; cancel and book instead")
    if new_slot.status != "active":
        raise Conflict("This slot is no longer offered", code="slot_unavailable")
    check_window(facility, new_slot, now)
    await check_patient_limits(session, facility, appt.patient_ref, new_slot, exclude_id=appt.id)
    # Lock both slots in id order so two opposite moves cannot deadlock.
    await session.execute(
        select(Slot.id).where(Slot.id.in_(sorted([appt.slot_id, new_slot.id]))).order_by(Slot.id).with_for_update()
    )
    await take_place(session, new_slot, appt.patient_ref, now)
    old_slot_id = appt.slot_id
    appt.slot_id, appt.practitioner_id, appt.mode = new_slot.id, new_slot.practitioner_id, new_slot.mode
    appt.start_at, appt.end_at, appt.updated_at = new_slot.start_at, new_slot.end_at, now
    if appt.status == "booked":
        appt.queue_number = await next_queue_number(session, new_slot)
    await free_place(session, old_slot_id, now, offer_minutes)
    await outbox.add(session, "appointment.rescheduled", _event_data(appt), subject=appt.id)
    await session.flush()
    return to_out(appt, facility.name)


# --- facility actions -------------------------------------------------------------------------------------


async def facility_appointment(session: AsyncSession, client_id: str, appointment_id: str) -> Appointment:
    appt = await lock_appointment(session, appointment_id)
    facility = await session.get(Facility, appt.facility_id) if appt else None
    if appt is None or facility is None or facility.owner_client_id != client_id:
        raise NotFound("No such appointment at your facilities", code="appointment_not_found")
    return appt


async def facility_transition(
    session: AsyncSession, client_id: str, appointment_id: str, action: str, now: datetime
) -> AppointmentOut:
    appt = await facility_appointment(session, client_id, appointment_id)
    allowed = {"arrive": ("booked", "arrived"), "fulfil": ("arrived", "fulfilled"), "noshow": ("booked", "noshow")}
    source, target = allowed[action]
    if appt.status != source:
        raise Conflict(
            f"Only a {source} appointment can become {target} (it is {appt.status})", code="invalid_transition"
        )
    if action == "noshow" and now < appt.start_at:
        raise Conflict("A no-show is recorded only after the appointment's start", code="invalid_transition")
    appt.status, appt.updated_at = target, now
    await outbox.add(session, f"appointment.{target}", _event_data(appt), subject=appt.id)
    await session.flush()
    return to_out(appt, await facility_name(session, appt.facility_id))


async def cancel_by_facility(
    session: AsyncSession,
    client_id: str,
    appointment_id: str,
    reason: str | None,
    now: datetime,
    payments: PaymentsClient,
    offer_minutes: int,
) -> AppointmentOut:
    """A facility may cancel any active appointment: always a full refund and a message to the patient."""
    appt = await facility_appointment(session, client_id, appointment_id)
    if appt.status not in ACTIVE_STATUSES:
        raise Conflict(f"An appointment that is {appt.status} cannot be cancelled", code="not_cancelable")
    if appt.status == "pending_payment":
        await _cancel_payment(payments, appt)
    else:
        await _refund(payments, appt, appt.paid_vnd - appt.refund_vnd, "Facility cancelled the appointment")
    await _finish_cancel(session, appt, "facility", reason, now, offer_minutes)
    name = await facility_name(session, appt.facility_id) or ""
    when = local_text(appt.start_at)
    await notify(
        session,
        appt.booked_by_sub,
        "health.appointment_cancelled",
        f"{name} đã hủy lịch khám lúc {when}. Phí đã thanh toán sẽ được hoàn lại đầy đủ.",
        f"{name} cancelled the appointment at {when}. Any fee paid is refunded in full.",
        f"health.appointment_cancelled:{appt.id}",
    )
    return to_out(appt, name)


async def facility_appointments(
    session: AsyncSession,
    facility_id: str,
    *,
    start: datetime | None,
    end: datetime | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AppointmentOut], str | None]:
    query = select(Appointment).where(Appointment.facility_id == facility_id)
    if start:
        query = query.where(Appointment.start_at >= start)
    if end:
        query = query.where(Appointment.start_at < end)
    if status:
        query = query.where(Appointment.status == status)
    if cursor:
        after_start, after_id = decode_cursor(cursor, kinds=(datetime, str))
        query = query.where(
            or_(Appointment.start_at > after_start, (Appointment.start_at == after_start) & (Appointment.id > after_id))
        )
    rows = (await session.scalars(query.order_by(Appointment.start_at, Appointment.id).limit(limit + 1))).all()
    items = [to_out(a) for a in rows[:limit]]
    return items, (encode_cursor(items[-1].start_at, items[-1].id) if len(rows) > limit else None)


# --- waitlist -------------------------------------------------------------------------------------------


def waitlist_out(entry: WaitlistEntry) -> WaitlistOut:
    return WaitlistOut(
        id=entry.id,
        facility_id=entry.facility_id,
        practitioner_id=entry.practitioner_id,
        date=entry.day,
        patient_id=entry.patient_ref,
        status=entry.status,  # type: ignore[arg-type]
        offered_slot_id=entry.offered_slot_id,
        offer_expires_at=entry.offer_expires_at,
        created_at=entry.created_at,
    )


async def join_waitlist(session: AsyncSession, people: People, data: WaitlistCreate, now: datetime) -> WaitlistOut:
    patient = await people.patient(data.patient)
    facility = await session.get(Facility, data.facility_id)
    if facility is None:
        raise field_error("body.facility_id", "No such facility")
    if data.practitioner_id:
        practitioner = await session.get(Practitioner, data.practitioner_id)
        if practitioner is None or practitioner.facility_id != facility.id:
            raise field_error("body.practitioner_id", "No such practitioner at this facility")
    today = local_date(now)
    if not today <= data.date <= today + timedelta(days=facility.max_days_ahead):
        raise field_error("body.date", f"The waitlist is for today up to {facility.max_days_ahead} days ahead")
    await lock_patient(session, patient)
    existing = await session.scalar(
        select(func.count())
        .select_from(WaitlistEntry)
        .where(
            WaitlistEntry.patient_ref == patient.ref,
            WaitlistEntry.facility_id == facility.id,
            WaitlistEntry.day == data.date,
            WaitlistEntry.status.in_(("waiting", "offered")),
        )
    )
    if existing:
        raise Conflict("The patient is already on this day's waitlist", code="already_waiting")
    entry = WaitlistEntry(
        facility_id=facility.id,
        practitioner_id=data.practitioner_id,
        day=data.date,
        patient_ref=patient.ref,
        patient_kind=patient.kind,
        requested_by_sub=people.sub,
        status="waiting",
        created_at=now,
    )
    session.add(entry)
    await session.flush()
    return waitlist_out(entry)


async def my_waitlist(session: AsyncSession, people: People) -> Sequence[WaitlistEntry]:
    return (
        await session.scalars(
            select(WaitlistEntry).where(WaitlistEntry.requested_by_sub == people.sub).order_by(WaitlistEntry.created_at)
        )
    ).all()


async def leave_waitlist(
    session: AsyncSession, people: People, entry_id: str, now: datetime, offer_minutes: int
) -> WaitlistOut:
    entry = (await session.scalars(select(WaitlistEntry).where(WaitlistEntry.id == entry_id).with_for_update())).first()
    if entry is None or entry.requested_by_sub != people.sub:
        raise NotFound("No such waitlist entry", code="waitlist_entry_not_found")
    if entry.status in ("waiting", "offered"):
        offered = entry.status == "offered"
        entry.status = "cancelled"
        if offered and entry.offered_slot_id:
            await free_place(session, entry.offered_slot_id, now, offer_minutes)
    await session.flush()
    return waitlist_out(entry)


# --- maintenance and payment outcomes ---------------------------------------------------------------------


async def expire_offers(session: AsyncSession, now: datetime, offer_minutes: int) -> int:
    entries = (
        await session.scalars(
            select(WaitlistEntry)
            .where(WaitlistEntry.status == "offered", WaitlistEntry.offer_expires_at <= now)
            .limit(100)
        )
    ).all()
    for entry in entries:
        entry.status = "expired"
        if entry.offered_slot_id:
            await free_place(session, entry.offered_slot_id, now, offer_minutes)
    return len(entries)


async def expire_holds(session: AsyncSession, now: datetime, payments: PaymentsClient, offer_minutes: int) -> int:
    """Lapse unpaid holds (like a parking hold); a payment that already succeeded is left to its event."""
    query = (
        select(Appointment).where(Appointment.status == "pending_payment", Appointment.hold_expires_at <= now).limit(50)
    )
    if _dialect(session) == "postgresql":
        query = query.with_for_update(skip_locked=True)
    lapsed = 0
    for appt in (await session.scalars(query)).all():
        try:
            if not await _cancel_payment(payments, appt):
                continue
        except ServiceUnavailable:
            continue  # payments is down: try again next round rather than guess
        await _finish_cancel(session, appt, "system", "hold_expired", now, offer_minutes, status="expired")
        lapsed += 1
    return lapsed


async def settle_payment(
    session: AsyncSession,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    payments: PaymentsClient,
    offer_minutes: int,
) -> None:
    """Apply a payment event. Idempotent and order-tolerant: every branch checks the current status."""
    appt = await lock_appointment(session, str(data["reference"]))
    if appt is None or (appt.payment_id and appt.payment_id != data["payment_id"]):
        return  # not ours, or a stale payment of this appointment
    if event_type == "payment.succeeded":
        if appt.status == "pending_payment":
            slot = await session.get(Slot, appt.slot_id)
            assert slot is not None
            appt.status, appt.paid_vnd, appt.hold_expires_at = "booked", int(data["amount_vnd"]), None
            appt.payment_id = appt.payment_id or data["payment_id"]
            appt.queue_number = await next_queue_number(session, slot)
            appt.updated_at = now
            await outbox.add(session, "appointment.booked", _event_data(appt), subject=appt.id)
        elif appt.status in ("expired", "cancelled") and appt.paid_vnd == 0:
            # Paid after the hold lapsed or after the patient cancelled: the money goes back in full.
            appt.paid_vnd = int(data["amount_vnd"])
            await _refund(payments, appt, appt.paid_vnd - appt.refund_vnd, "Paid after the booking ended")
        elif appt.paid_vnd == 0:
            appt.paid_vnd = int(data["amount_vnd"])
    elif event_type in ("payment.failed", "payment.expired", "payment.canceled"):
        if appt.status == "pending_payment":
            await _finish_cancel(
                session, appt, "system", event_type.removeprefix("payment."), now, offer_minutes, status="expired"
            )
    elif event_type == "payment.refunded":
        appt.refunded_vnd = max(appt.refunded_vnd, int(data.get("amount_refunded_vnd") or 0))
    await session.flush()

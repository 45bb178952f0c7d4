"""Schedules → slots. Changing a schedule or closing days never drops a booked appointment silently:
slots with bookings stay (withdrawn from sale) and are reported to the facility as conflicts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.health_booking.appointments.models import ACTIVE_STATUSES, Appointment
from services.health_booking.common import decode_cursor, encode_cursor, local_date
from services.health_booking.directory.models import Facility, Practitioner
from services.health_booking.schedules.derivation import ClosedDays, Pattern, derive, parse_hhmm
from services.health_booking.schedules.models import Closure, Schedule, Slot
from services.health_booking.schedules.schemas import ClosureIn, ScheduleIn, SlotConflict, SlotOut
from shared.errors import NotFound, field_error


def pattern_of(schedule: Schedule) -> Pattern:
    return Pattern(
        weekdays=frozenset(schedule.weekdays),
        start=parse_hhmm(schedule.start_time),
        end=parse_hhmm(schedule.end_time),
        breaks=tuple((parse_hhmm(b["start"]), parse_hhmm(b["end"])) for b in schedule.breaks),
        slot_minutes=schedule.slot_minutes,
        valid_from=schedule.valid_from,
        valid_to=schedule.valid_to,
    )


async def _closures_for(session: AsyncSession, schedule: Schedule) -> list[ClosedDays]:
    query = select(Closure).where(Closure.facility_id == schedule.facility_id)
    if schedule.practitioner_id:
        query = query.where(or_(Closure.practitioner_id.is_(None), Closure.practitioner_id == schedule.practitioner_id))
    else:
        query = query.where(Closure.practitioner_id.is_(None))
    return [ClosedDays(c.start_date, c.end_date) for c in (await session.scalars(query)).all()]


async def _appointments_in(session: AsyncSession, slot_id: str) -> list[str]:
    rows = await session.scalars(
        select(Appointment.id)
        .where(Appointment.slot_id == slot_id, Appointment.status.in_(ACTIVE_STATUSES))
        .order_by(Appointment.created_at)
    )
    return list(rows.all())


async def sync_slots(
    session: AsyncSession,
    schedule: Schedule,
    facility: Facility,
    now: datetime,
    horizon_cap: int,
    *,
    reason: str = "removed",
) -> tuple[int, int, list[SlotConflict]]:
    """Make the schedule's future slots match its pattern; returns (created, removed, conflicts)."""
    today = local_date(now)
    last = today + timedelta(days=min(facility.max_days_ahead, horizon_cap))
    desired: dict[datetime, datetime] = {}
    if schedule.active:
        closures = await _closures_for(session, schedule)
        desired = dict(derive(pattern_of(schedule), today, last, closures))
    existing = (
        await session.scalars(
            select(Slot).where(Slot.schedule_id == schedule.id, Slot.start_at >= now).order_by(Slot.start_at)
        )
    ).all()
    created = removed = 0
    conflicts: list[SlotConflict] = []
    seen: set[datetime] = set()
    for slot in existing:
        seen.add(slot.start_at)
        if slot.start_at in desired and desired[slot.start_at] == slot.end_at:
            slot.status = "active"
            slot.capacity, slot.fee_vnd = schedule.capacity, schedule.fee_vnd
            slot.mode, slot.specialty = schedule.mode, schedule.specialty
            slot.practitioner_id = schedule.practitioner_id
            if slot.booked_count > slot.capacity:
                conflicts.append(
                    SlotConflict(
                        slot_id=slot.id,
                        start_at=slot.start_at,
                        reason="over_capacity",
                        appointment_ids=await _appointments_in(session, slot.id),
                    )
                )
            continue
        # Delete only if still empty: the guard loses to a concurrent booking, never the reverse.
        result = await session.execute(
            delete(Slot).where(Slot.id == slot.id, Slot.booked_count == 0).execution_options(synchronize_session=False)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            removed += 1
            session.expunge(slot)
        else:
            slot.status = "withdrawn"
            conflicts.append(
                SlotConflict(
                    slot_id=slot.id,
                    start_at=slot.start_at,
                    reason=reason,  # type: ignore[arg-type]
                    appointment_ids=await _appointments_in(session, slot.id),
                )
            )
    for start, end in desired.items():
        if start in seen or start < now:
            continue
        session.add(
            Slot(
                schedule_id=schedule.id,
                facility_id=schedule.facility_id,
                practitioner_id=schedule.practitioner_id,
                specialty=schedule.specialty,
                mode=schedule.mode,
                start_at=start,
                end_at=end,
                capacity=schedule.capacity,
                booked_count=0,
                fee_vnd=schedule.fee_vnd,
                status="active",
            )
        )
        created += 1
    schedule.derived_through = last
    await session.flush()
    return created, removed, conflicts


async def _check_practitioner(session: AsyncSession, facility: Facility, practitioner_id: str | None) -> None:
    if practitioner_id is None:
        return
    practitioner = await session.get(Practitioner, practitioner_id)
    if practitioner is None or practitioner.facility_id != facility.id:
        raise field_error("body.practitioner_id", "No such practitioner at this facility")


async def create_schedule(
    session: AsyncSession, facility: Facility, data: ScheduleIn, now: datetime, horizon_cap: int
) -> tuple[Schedule, int, int, list[SlotConflict]]:
    await _check_practitioner(session, facility, data.practitioner_id)
    schedule = Schedule(facility_id=facility.id, active=True, **data.model_dump(mode="json"))
    schedule.valid_from, schedule.valid_to = data.valid_from, data.valid_to
    session.add(schedule)
    await session.flush()
    return (schedule, *await sync_slots(session, schedule, facility, now, horizon_cap))


async def owned_schedule(session: AsyncSession, client_id: str, schedule_id: str) -> tuple[Schedule, Facility]:
    schedule = await session.get(Schedule, schedule_id)
    facility = await session.get(Facility, schedule.facility_id) if schedule else None
    if schedule is None or facility is None or facility.owner_client_id != client_id:
        raise NotFound("No such schedule of yours", code="schedule_not_found")
    return schedule, facility


async def replace_schedule(
    session: AsyncSession, schedule: Schedule, facility: Facility, data: ScheduleIn, now: datetime, horizon_cap: int
) -> tuple[int, int, list[SlotConflict]]:
    await _check_practitioner(session, facility, data.practitioner_id)
    for key, value in data.model_dump(mode="json").items():
        setattr(schedule, key, value)
    schedule.valid_from, schedule.valid_to = data.valid_from, data.valid_to
    await session.flush()
    return await sync_slots(session, schedule, facility, now, horizon_cap)


async def deactivate_schedule(
    session: AsyncSession, schedule: Schedule, facility: Facility, now: datetime, horizon_cap: int
) -> tuple[int, int, list[SlotConflict]]:
    schedule.active = False
    return await sync_slots(session, schedule, facility, now, horizon_cap)


async def facility_schedules(session: AsyncSession, facility_id: str) -> Sequence[Schedule]:
    return (
        await session.scalars(select(Schedule).where(Schedule.facility_id == facility_id).order_by(Schedule.created_at))
    ).all()


async def add_closure(
    session: AsyncSession, facility: Facility, data: ClosureIn, now: datetime, horizon_cap: int
) -> tuple[Closure, list[SlotConflict]]:
    await _check_practitioner(session, facility, data.practitioner_id)
    closure = Closure(facility_id=facility.id, **data.model_dump())
    session.add(closure)
    await session.flush()
    conflicts: list[SlotConflict] = []
    for schedule in await facility_schedules(session, facility.id):
        if data.practitioner_id and schedule.practitioner_id != data.practitioner_id:
            continue
        conflicts.extend((await sync_slots(session, schedule, facility, now, horizon_cap, reason="closed"))[2])
    return closure, conflicts


async def remove_closure(
    session: AsyncSession, facility: Facility, closure_id: str, now: datetime, horizon_cap: int
) -> None:
    closure = await session.get(Closure, closure_id)
    if closure is None or closure.facility_id != facility.id:
        raise NotFound("No such closure", code="closure_not_found")
    await session.delete(closure)
    await session.flush()
    for schedule in await facility_schedules(session, facility.id):
        await sync_slots(session, schedule, facility, now, horizon_cap)


async def open_conflicts(session: AsyncSession, facility_id: str, now: datetime) -> list[SlotConflict]:
    """Booked future slots that a schedule change or closure withdrew or over-filled, still unresolved."""
    rows = (
        await session.scalars(
            select(Slot)
            .where(
                Slot.facility_id == facility_id,
                Slot.start_at >= now,
                or_(Slot.status == "withdrawn", Slot.booked_count > Slot.capacity),
            )
            .order_by(Slot.start_at)
        )
    ).all()
    out: list[SlotConflict] = []
    for slot in rows:
        appointments = await _appointments_in(session, slot.id)
        if appointments:
            reason = "removed" if slot.status == "withdrawn" else "over_capacity"
            out.append(
                SlotConflict(slot_id=slot.id, start_at=slot.start_at, reason=reason, appointment_ids=appointments)
            )
    return out


async def roll_horizons(session: AsyncSession, now: datetime, horizon_cap: int) -> int:
    """Derive the next days' slots for schedules not yet derived through today's horizon."""
    rolled = 0
    today = local_date(now)
    for schedule, facility in (
        await session.execute(
            select(Schedule, Facility)
            .join(Facility, Facility.id == Schedule.facility_id)
            .where(Schedule.active.is_(True))
        )
    ).all():
        target = today + timedelta(days=min(facility.max_days_ahead, horizon_cap))
        if schedule.derived_through is None or schedule.derived_through < target:
            await sync_slots(session, schedule, facility, now, horizon_cap)
            rolled += 1
    return rolled


async def search_slots(
    session: AsyncSession,
    *,
    now: datetime,
    facility_id: str | None,
    specialty: str | None,
    practitioner_id: str | None,
    start: datetime | None,
    end: datetime | None,
    mode: str | None,
    language: str | None,
    limit: int,
    cursor: str | None,
    include_full: bool = False,
) -> tuple[list[SlotOut], str | None]:
    """Free slots that the facility's notice and horizon rules still allow booking."""
    query = (
        select(Slot, Facility)
        .join(Facility, Facility.id == Slot.facility_id)
        .where(Slot.status == "active", Slot.start_at >= max(start or now, now))
    )
    if not include_full:
        query = query.where(Slot.booked_count < Slot.capacity)
    if end:
        query = query.where(Slot.start_at < end)
    if facility_id:
        query = query.where(Slot.facility_id == facility_id)
    if practitioner_id:
        query = query.where(Slot.practitioner_id == practitioner_id)
    if specialty:
        query = query.where(Slot.specialty == specialty)
    if mode:
        query = query.where(Slot.mode == mode)
    practitioners: dict[str, Practitioner] = {}
    if language:
        speakers = (await session.scalars(select(Practitioner).where(Practitioner.active.is_(True)))).all()
        ids = [p.id for p in speakers if language in p.languages]
        query = query.where(Slot.practitioner_id.in_(ids))
    if cursor:
        after_start, after_id = decode_cursor(cursor, kinds=(datetime, str))
        query = query.where(or_(Slot.start_at > after_start, (Slot.start_at == after_start) & (Slot.id > after_id)))
    query = query.order_by(Slot.start_at, Slot.id)
    out: list[SlotOut] = []
    offset, batch = 0, max(limit * 2, 50)
    more = True
    while len(out) <= limit and more:
        rows = (await session.execute(query.limit(batch).offset(offset))).all()
        more = len(rows) == batch
        offset += batch
        for slot, facility in rows:
            if not include_full and not bookable_window(facility, slot.start_at, now):
                continue
            out.append(_slot_out(slot, facility))
            if len(out) > limit:
                break
    page, next_cursor = out[:limit], None
    if len(out) > limit:
        next_cursor = encode_cursor(page[-1].start_at, page[-1].id)
    needed = {s.practitioner_id for s in page if s.practitioner_id}
    if needed:
        practitioners = {
            p.id: p for p in (await session.scalars(select(Practitioner).where(Practitioner.id.in_(needed)))).all()
        }
    for item in page:
        p = practitioners.get(item.practitioner_id or "")
        if p:
            item.practitioner_name, item.languages = p.name, list(p.languages)
    return page, next_cursor


def bookable_window(facility: Facility, start_at: datetime, now: datetime) -> bool:
    return start_at >= now + timedelta(minutes=facility.min_notice_minutes) and start_at <= now + timedelta(
        days=facility.max_days_ahead
    )


def _slot_out(slot: Slot, facility: Facility) -> SlotOut:
    return SlotOut(
        id=slot.id,
        facility_id=slot.facility_id,
        facility_name=facility.name,
        practitioner_id=slot.practitioner_id,
        schedule_id=slot.schedule_id,
        specialty=slot.specialty,
        mode=slot.mode,  # type: ignore[arg-type]
        start_at=slot.start_at,
        end_at=slot.end_at,
        capacity=slot.capacity,
        remaining=max(0, slot.capacity - slot.booked_count),
        fee_vnd=slot.fee_vnd,
    )

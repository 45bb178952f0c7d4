"""Business rules of reservations: hold a place, ask for payment, confirm, extend, cancel, check in/out.

The database decides who gets a place: a numbered space is taken by inserting an occupancy that the
PostgreSQL exclusion constraint refuses when it overlaps another (SQLite serialises writers with
BEGIN IMMEDIATE, and the same check-then-insert runs there); a pool's row is locked while its peak
use over the window is counted, so bookings of one pool take turns.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.parking.lots import repository as lots_repo
from services.parking.lots.models import Lot, Pool, Rate, Space
from services.parking.lots.schemas import Quote
from services.parking.lots.service import make_quote
from services.parking.pricing import LOCAL, price_window, rate_rule, read_quote
from services.parking.reservations import repository as repo
from services.parking.reservations.models import (
    BOOKED,
    CANCELED,
    CHECKED_IN,
    COMPLETED,
    CONFIRMED,
    EXPIRED,
    FREED,
    HELD,
    PENDING,
    RELEASED,
    Charge,
    Occupancy,
    Reservation,
)
from services.parking.reservations.schemas import (
    ExtensionCreate,
    ExtensionOut,
    LotBrief,
    PaymentBrief,
    ReservationCreate,
    ReservationOut,
    ReservationPage,
    SpaceBrief,
)
from services.parking.settings import ParkingSettings
from services.parking.vehicles import normalise_plate
from services.parking.windows import check_window
from shared.auth import Principal
from shared.clients.payments import NextAction, Payment, PaymentCreate, PaymentsClient, PaymentsError, RefundCreate
from shared.db import new_id
from shared.errors import Conflict, NotFound, field_error

log = structlog.get_logger("parking.reservations")

MONEY_TAKEN = ("succeeded", "partially_refunded", "refunded")
OPEN_PAYMENT = ("requires_action", "processing")


# ---- presentation -----------------------------------------------------------------------------------


def payment_brief(charge: Charge) -> PaymentBrief:
    next_action = None
    if charge.next_action_url and charge.status in OPEN_PAYMENT:
        next_action = NextAction(type="redirect_to_url", url=charge.next_action_url)
    return PaymentBrief(
        id=charge.id,
        kind=charge.kind,
        status=charge.status,  # type: ignore[arg-type]
        amount_vnd=charge.amount_vnd,
        amount_refunded_vnd=charge.amount_refunded_vnd,
        next_action=next_action,
    )


def effective_status(reservation: Reservation, now: datetime) -> str:
    """A pending hold that lapsed reads as expired even before the sweeper writes it."""
    if reservation.status == PENDING and reservation.hold_expires_at and reservation.hold_expires_at <= now:
        return EXPIRED
    return reservation.status


async def present(session: AsyncSession, reservations: Sequence[Reservation], now: datetime) -> list[ReservationOut]:
    ids = [r.id for r in reservations]
    lots = (
        {
            lot.id: lot
            for lot in (
                await session.execute(select(Lot).where(Lot.id.in_({r.lot_id for r in reservations})))
            ).scalars()
        }
        if ids
        else {}
    )
    space_ids = {r.space_id for r in reservations if r.space_id}
    spaces = (
        {s.id: s for s in (await session.execute(select(Space).where(Space.id.in_(space_ids)))).scalars()}
        if space_ids
        else {}
    )
    charges = await repo.charges_of(session, ids)
    return [_out(r, lots[r.lot_id], spaces.get(r.space_id or ""), charges[r.id], now) for r in reservations]


def _out(r: Reservation, lot: Lot, space: Space | None, mine: Sequence[Charge], now: datetime) -> ReservationOut:
    booking = next((c for c in mine if c.kind == "booking"), None)
    status = effective_status(r, now)
    return ReservationOut(
        id=r.id,
        status=status,  # type: ignore[arg-type]
        lot=LotBrief(id=lot.id, name=lot.name, address=lot.address, lat=lot.lat, lon=lot.lon),
        space=SpaceBrief(id=space.id, label=space.label, accessible=space.accessible) if space else None,
        vehicle_type=r.vehicle_type,  # type: ignore[arg-type]
        plate_number=r.plate_number,
        plate_normalized=r.plate_normalized,
        start_at=r.start_at,
        end_at=r.end_at,
        amount_vnd=r.amount_vnd,
        refunded_vnd=sum(c.amount_refunded_vnd for c in mine),
        payment=payment_brief(booking) if booking else None,
        payments=[payment_brief(c) for c in mine],
        hold_expires_at=r.hold_expires_at if status == PENDING else None,
        checked_in_at=r.checked_in_at,
        checked_out_at=r.checked_out_at,
        canceled_at=r.canceled_at,
        created_at=r.created_at,
    )


async def present_one(session: AsyncSession, reservation: Reservation, now: datetime) -> ReservationOut:
    return (await present(session, [reservation], now))[0]


# ---- helpers ----------------------------------------------------------------------------------------


def payments_of(app: FastAPI) -> PaymentsClient:
    client: PaymentsClient = app.state.payments
    return client


def describe(lot: Lot, start: datetime, end: datetime, what: str = "Parking") -> str:
    a, b = start.astimezone(LOCAL), end.astimezone(LOCAL)
    return f"{what} at {lot.name}, {a:%d/%m %H:%M}-{b:%d/%m %H:%M}"[:300]


async def _claim_candidates(
    session: AsyncSession,
    lot_id: str,
    pool: Pool | None,
    candidates: Sequence[str],
    start: datetime,
    end: datetime,
    now: datetime,
) -> Claim | None:
    """Queue on the place's lock (the pool's row, or the lot's numbered spaces), then check what is free
    against committed rows. Under contention most bookers learn here, with two statements and before
    writing anything, that the last places went while they waited.

    Every path that takes a place (booking, extension, a late payment's reinstatement) checks under
    this lock, so what it finds stays true until it commits. None when nothing is free.
    """
    if pool is not None:
        pool = await repo.lock_pool(session, pool.id)
        return Claim(pool, [], set()) if await repo.pool_has_room(session, pool, start, end, now) else None
    if not candidates:
        return None
    await repo.lock_lot_spaces(session, lot_id)
    taken, lapsed = await repo.holds_among(session, candidates, start, end, now)
    free = [space_id for space_id in candidates if space_id not in taken]
    return Claim(None, free, lapsed) if free else None


@dataclass(frozen=True)
class Claim:
    pool: Pool | None  # locked
    free: list[str]  # numbered spaces free for the window, in the caller's order of preference
    lapsed: set[str]  # spaces among them blocked by lapsed holds not yet released


def _gone(pool: Pool | None, space_id: str | None) -> Conflict:
    if pool is not None:
        return Conflict("No free place in this lot for the window", code="no_free_place")
    if space_id:
        return Conflict("This space is taken for the window", code="space_taken")
    return Conflict("No free space in this lot for the window", code="no_free_space")


async def _take_place(
    session: AsyncSession, fields: dict[str, Any], claim: Claim, now: datetime, gone: Conflict
) -> Occupancy:
    """Store the occupancy, under the lock _claim_candidates took: its pool, or the first free space.

    The exclusion constraint still has the last word on a space: a refusal (only possible from a
    writer that skipped the lock) is the same 409 as a place found taken.
    """
    space_id = claim.free[0] if claim.pool is None else None
    if space_id in claim.lapsed:
        await repo.expire_lapsed(session, now, lot_id=fields["lot_id"])
    occupancy = Occupancy(id=new_id(), **fields, space_id=space_id)
    session.add(occupancy)
    try:
        await session.flush()
    except IntegrityError:
        raise gone from None
    return occupancy


async def _request_payment(
    app: FastAPI,
    session: AsyncSession,
    reservation: Reservation,
    *,
    kind: str,
    amount: int,
    description: str,
    key: str,
    occupancy_id: str | None,
) -> tuple[Charge, Payment]:
    payment = await payments_of(app).create(
        PaymentCreate(
            amount_vnd=amount,
            purpose="parking",
            reference=reservation.id,
            payer_sub=reservation.user_sub,
            description=description,
        ),
        idempotency_key=key,
    )
    charge = Charge(
        id=payment.id,
        reservation_id=reservation.id,
        occupancy_id=occupancy_id,
        kind=kind,
        amount_vnd=amount,
        status=payment.status,
        next_action_url=payment.next_action.url if payment.next_action else None,
    )
    session.add(charge)
    await session.flush()
    return charge, payment


def _hold_until(settings: ParkingSettings, now: datetime, payment: Payment | None) -> datetime:
    until = now + timedelta(seconds=settings.hold_ttl_s)
    if payment is not None and payment.expires_at is not None:
        until = min(until, payment.expires_at.astimezone(UTC))
    return until


def _price(rate: Rate, start: datetime, end: datetime) -> int:
    return price_window(rate_rule(rate), start, end).amount_vnd


def _quoted_amount(settings: ParkingSettings, token: str, data: ReservationCreate, now: datetime) -> int:
    quote = read_quote(settings.quote_secret, token)
    if quote is None:
        raise field_error("body.quote_token", "not a quote this service gave")
    same = (
        quote.get("lot_id") == data.lot_id
        and quote.get("vehicle_type") == data.vehicle_type.value
        and quote.get("start_at") == data.start_at.astimezone(UTC).isoformat()
        and quote.get("end_at") == data.end_at.astimezone(UTC).isoformat()
    )
    if not same:
        raise field_error("body.quote_token", "the quote is for another lot, vehicle type or window")
    if int(quote.get("exp", 0)) < now.timestamp():
        raise Conflict("The quote has expired; search again for a new price", code="quote_expired")
    return int(quote["amount_vnd"])


# ---- reserve ----------------------------------------------------------------------------------------


async def create_reservation(
    app: FastAPI, session: AsyncSession, principal: Principal, data: ReservationCreate, now: datetime
) -> ReservationOut:
    """Hold (or, at no charge, book) a place and ask for its payment.

    Order of work, for bookers racing for the last places: every check that needs no lock first; then
    the place's lock and the check of what is free (where the losers of a race stop); then the person's
    lock (always taken in this order: no deadlock) and their unpaid holds; then a few inserts and the
    commit (and, for a paid booking, the payments call), all still under the place's lock.
    """
    settings: ParkingSettings = app.state.settings
    lot = await session.get(Lot, data.lot_id)
    if lot is None:
        raise field_error("body.lot_id", "no such lot", "not_found")
    check_window(data.start_at, data.end_at, settings, now, lot=lot)
    start, end = data.start_at.astimezone(UTC), data.end_at.astimezone(UTC)
    vehicle = data.vehicle_type.value
    rate = await session.get(Rate, (lot.id, vehicle))
    pool = (await lots_repo.pools_for(session, [lot.id], vehicle)).get(lot.id)
    spaces: dict[str, Space] = {}
    if data.space_id is not None:
        space = await session.get(Space, data.space_id)
        if space is None or space.lot_id != lot.id:
            raise field_error("body.space_id", "no such space in this lot", "not_found")
        if space.vehicle_type != vehicle:
            raise field_error(
                "body.space_id", f"this space is for {space.vehicle_type}, not {vehicle}", "wrong_vehicle_type"
            )
        spaces[space.id] = space
    if rate is None:
        raise field_error("body.vehicle_type", f"this lot takes no {vehicle}", "not_served")
    if pool is None and data.space_id is None:
        free_spaces = await lots_repo.free_spaces(session, lot.id, vehicle, start, end, now)
        # Spread concurrent bookers over the free spaces (fewer collisions); accessible spaces go last.
        spaces = {s.id: s for s in sorted(free_spaces, key=lambda s: (s.accessible, random.random()))}
        if not spaces and not (await lots_repo.space_counts(session, [lot.id], vehicle)).get(lot.id):
            raise field_error("body.vehicle_type", f"this lot takes no {vehicle}", "not_served")
    amount = _quoted_amount(settings, data.quote_token, data, now) if data.quote_token else _price(rate, start, end)
    gone = _gone(pool, data.space_id)
    if pool is None and data.space_id is None and not spaces:
        # Every space is taken by committed bookings (lapsed holds count as free): answer now, without
        # queueing on the locks (under contention most bookers of a full lot end here).
        raise gone
    # The same fail-fast check, on committed rows, for a pool and a chosen space; a place that looks free
    # here is checked again under the lock before it is taken.
    if pool is not None and not await repo.pool_has_room(session, pool, start, end, now):
        raise gone
    if data.space_id is not None and not await repo.space_is_free(session, data.space_id, start, end, now):
        raise gone

    claim = await _claim_candidates(session, lot.id, pool, list(spaces), start, end, now)
    if claim is None:
        raise gone
    assert principal.sub is not None  # the route requires a person's token
    await repo.lock_person(session, principal.sub)
    if await repo.unpaid_holds(session, principal.sub, now) >= settings.max_unpaid_holds:
        raise Conflict(f"Pay or cancel your {settings.max_unpaid_holds} unpaid holds first", code="too_many_holds")
    hold_until = now + timedelta(seconds=settings.hold_ttl_s)
    reservation = Reservation(
        id=new_id(),
        lot_id=lot.id,
        user_sub=principal.sub,
        client_id=principal.client_id,
        vehicle_type=vehicle,
        plate_number=data.plate_number,
        plate_normalized=normalise_plate(data.plate_number),
        space_id=None if claim.pool else claim.free[0],
        pool_id=claim.pool.id if claim.pool else None,
        start_at=start,
        end_at=end,
        status=PENDING if amount else CONFIRMED,
        amount_vnd=amount,
        hold_expires_at=hold_until if amount else None,
        created_at=now,
        updated_at=now,
    )
    session.add(reservation)
    await session.flush()  # before its occupancy (no ORM relationship orders the two inserts)
    fields = {
        "reservation_id": reservation.id,
        "lot_id": lot.id,
        "pool_id": reservation.pool_id,
        "kind": "booking",
        "start_at": start,
        "end_at": end,
        "status": HELD if amount else BOOKED,
        "hold_expires_at": hold_until if amount else None,
    }
    occupancy = await _take_place(session, fields, claim, now, gone)
    charges: list[Charge] = []
    if amount:
        charge, payment = await _request_payment(
            app,
            session,
            reservation,
            kind="booking",
            amount=amount,
            description=describe(lot, start, end),
            key=f"parking-{reservation.id}-booking",
            occupancy_id=occupancy.id,
        )
        charges.append(charge)
        reservation.hold_expires_at = occupancy.hold_expires_at = _hold_until(settings, now, payment)
    await app.state.outbox.add(
        session,
        "parking.reservation.created",
        {"reservation_id": reservation.id, "lot_id": lot.id, "sub": principal.sub, "status": reservation.status},
        subject=reservation.id,
    )
    await session.flush()
    return _out(reservation, lot, spaces.get(reservation.space_id or ""), charges, now)


# ---- read -------------------------------------------------------------------------------------------


async def visible_reservation(
    session: AsyncSession, principal: Principal, reservation_id: str, *, lock: bool = False
) -> Reservation:
    """The reservation if the caller owns it or operates its lot; 404 otherwise (no hint it exists)."""
    query = select(Reservation).where(Reservation.id == reservation_id)
    if lock:
        query = query.with_for_update()
    reservation = (await session.execute(query)).scalar_one_or_none()
    if reservation is not None:
        if principal.is_user and "parking" in principal.scopes and reservation.user_sub == principal.sub:
            return reservation
        if not principal.is_user and "parking.lots.write" in principal.scopes:
            lot = await session.get(Lot, reservation.lot_id)
            if lot is not None and lot.operator_id == principal.client_id:
                return reservation
    raise NotFound("No such reservation", code="reservation_not_found")


async def own_reservation(
    session: AsyncSession, principal: Principal, reservation_id: str, *, lock: bool = True
) -> Reservation:
    query = select(Reservation).where(Reservation.id == reservation_id)
    if lock:
        query = query.with_for_update()
    reservation = (await session.execute(query)).scalar_one_or_none()
    if reservation is None or reservation.user_sub != principal.sub:
        raise NotFound("No such reservation", code="reservation_not_found")
    return reservation


def _encode(parts: list[str]) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list[str]:
    try:
        parts = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
        datetime.fromisoformat(parts[0])
        return parts
    except (ValueError, IndexError):
        raise field_error("query.cursor", "not a cursor this API gave") from None


async def list_reservations(
    session: AsyncSession,
    now: datetime,
    *,
    sub: str | None = None,
    lot_id: str | None = None,
    upcoming: bool,
    cursor: str | None,
    limit: int,
) -> ReservationPage:
    query = select(Reservation)
    if sub is not None:
        query = query.where(Reservation.user_sub == sub)
    if lot_id is not None:
        query = query.where(Reservation.lot_id == lot_id)
    if upcoming:
        # Soonest first; lapsed holds are not upcoming.
        query = query.where(repo.upcoming_filter(now)).where(
            (Reservation.status != PENDING) | (Reservation.hold_expires_at > now)
        )
        order = (Reservation.start_at, Reservation.id)
        if cursor:
            at, rid = _decode(cursor)
            when = datetime.fromisoformat(at)
            query = query.where(
                (Reservation.start_at > when) | ((Reservation.start_at == when) & (Reservation.id > rid))
            )
        query = query.order_by(*order)
    else:
        if cursor:
            at, rid = _decode(cursor)
            when = datetime.fromisoformat(at)
            query = query.where(
                (Reservation.created_at < when) | ((Reservation.created_at == when) & (Reservation.id < rid))
            )
        query = query.order_by(Reservation.created_at.desc(), Reservation.id.desc())
    rows = list((await session.execute(query.limit(limit + 1))).scalars())
    more, rows = len(rows) > limit, rows[:limit]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = _encode([(last.start_at if upcoming else last.created_at).isoformat(), last.id])
    return ReservationPage(items=await present(session, rows, now), next_cursor=next_cursor)


# ---- cancel -----------------------------------------------------------------------------------------


async def _refund(app: FastAPI, charge: Charge, reason: str, key: str) -> None:
    remaining = charge.amount_vnd - charge.amount_refunded_vnd
    if remaining <= 0:
        return
    try:
        refund = await payments_of(app).refund(
            charge.id, RefundCreate(amount_vnd=remaining, reason=reason), idempotency_key=key
        )
    except PaymentsError as exc:
        if exc.code == "refund_exceeds_remaining":  # refunded already (an earlier attempt)
            charge.amount_refunded_vnd = charge.amount_vnd
            return
        raise
    charge.amount_refunded_vnd += refund.amount_vnd


async def _cancel_open_payment(app: FastAPI, charge: Charge) -> None:
    """Cancel a payment nobody approved yet; one that succeeded meanwhile is refunded by its event."""
    try:
        payment = await payments_of(app).cancel(charge.id)
        charge.status = payment.status
    except PaymentsError as exc:
        log.info("payment_not_canceled", payment_id=charge.id, code=exc.code)
    charge.cancel_requested = True


async def cancel_reservation(
    app: FastAPI, session: AsyncSession, principal: Principal, reservation_id: str, now: datetime
) -> ReservationOut:
    reservation = await own_reservation(session, principal, reservation_id)
    if reservation.status == CANCELED:
        return await present_one(session, reservation, now)
    status = effective_status(reservation, now)
    if status not in (PENDING, CONFIRMED):
        raise Conflict(f"A reservation that is {status} cannot be canceled", code="not_cancelable")
    lot = await session.get(Lot, reservation.lot_id)
    assert lot is not None
    for occupancy in await repo.occupancies_of(session, reservation.id, lock=True):
        occupancy.status = FREED
    charges = (await repo.charges_of(session, [reservation.id]))[reservation.id]
    refundable = now <= reservation.start_at - timedelta(minutes=lot.cancellation_cutoff_minutes)
    for charge in charges:
        if charge.status in OPEN_PAYMENT:
            await _cancel_open_payment(app, charge)
        elif charge.status in MONEY_TAKEN and refundable:
            await _refund(app, charge, "Reservation canceled before the start", f"parking-{charge.id}-cancel")
    reservation.status, reservation.canceled_at, reservation.updated_at = CANCELED, now, now
    await app.state.outbox.add(
        session,
        "parking.reservation.canceled",
        {"reservation_id": reservation.id, "sub": reservation.user_sub, "refunded": refundable},
        subject=reservation.id,
    )
    await session.flush()
    return await present_one(session, reservation, now)


# ---- extend -----------------------------------------------------------------------------------------


async def extension_quote(
    session: AsyncSession,
    settings: ParkingSettings,
    principal: Principal,
    reservation_id: str,
    end_at: datetime,
    now: datetime,
) -> Quote:
    """The price of the added time; it holds nothing (booking the extension does)."""
    reservation = await own_reservation(session, principal, reservation_id, lock=False)
    if end_at.tzinfo is None:
        raise field_error("query.end_at", "give a time zone (e.g. 2026-01-01T10:00:00+07:00)")
    try:
        end_at = end_at.astimezone(UTC)
    except (OverflowError, ValueError):
        raise field_error("query.end_at", "the time is out of range") from None
    if end_at <= reservation.end_at:
        raise field_error("query.end_at", "the new end must be after the current end")
    lot = await session.get(Lot, reservation.lot_id)
    assert lot is not None
    check_window(reservation.start_at, end_at, settings, now, where="query", lot=lot, check_start=False)
    rate = await session.get(Rate, (lot.id, reservation.vehicle_type))
    if rate is None:
        raise Conflict("The lot no longer takes this vehicle type", code="rate_unavailable")
    full = make_quote(settings, lot.id, reservation.vehicle_type, rate, reservation.start_at, end_at, now)
    added = max(0, full.amount_vnd - _price(rate, reservation.start_at, reservation.end_at))
    return full.model_copy(update={"amount_vnd": added, "start_at": reservation.end_at, "end_at": end_at})


async def extend_reservation(
    app: FastAPI, session: AsyncSession, principal: Principal, reservation_id: str, data: ExtensionCreate, now: datetime
) -> ExtensionOut:
    settings: ParkingSettings = app.state.settings
    reservation = await own_reservation(session, principal, reservation_id)
    if reservation.status not in (CONFIRMED, CHECKED_IN):
        raise Conflict("Only a paid reservation can be extended", code="not_extendable")
    if reservation.end_at <= now:
        raise Conflict("The reservation has ended", code="not_extendable")
    if data.end_at.tzinfo is None:
        raise field_error("body.end_at", "give a time zone (e.g. 2026-01-01T10:00:00+07:00)")
    try:
        new_end = data.end_at.astimezone(UTC)
    except (OverflowError, ValueError):
        raise field_error("body.end_at", "the time is out of range") from None
    if new_end <= reservation.end_at:
        raise field_error("body.end_at", "the new end must be after the current end")
    lot = await session.get(Lot, reservation.lot_id)
    assert lot is not None
    check_window(reservation.start_at, new_end, settings, now, lot=lot, check_start=False)
    occupancies = await repo.occupancies_of(session, reservation.id)
    if any(o.status == HELD and o.hold_expires_at and o.hold_expires_at > now for o in occupancies):
        raise Conflict("An extension is waiting for payment", code="extension_pending")
    rate = await session.get(Rate, (lot.id, reservation.vehicle_type))
    if rate is None:
        raise Conflict("The lot no longer takes this vehicle type", code="rate_unavailable")
    before = _price(rate, reservation.start_at, reservation.end_at)
    amount = max(0, _price(rate, reservation.start_at, new_end) - before)
    hold_until = now + timedelta(seconds=settings.hold_ttl_s)
    fields = {
        "reservation_id": reservation.id,
        "lot_id": lot.id,
        "pool_id": reservation.pool_id,
        "kind": "extension",
        "start_at": reservation.end_at,
        "end_at": new_end,
        "status": HELD if amount else BOOKED,
        "hold_expires_at": hold_until if amount else None,
    }
    pool = await session.get(Pool, reservation.pool_id) if reservation.pool_id else None
    gone = Conflict("The place is not free for the added time", code="extension_unavailable")
    claim = await _claim_candidates(
        session, lot.id, pool, [reservation.space_id] if reservation.space_id else [], reservation.end_at, new_end, now
    )
    if claim is None:
        raise gone
    occupancy = await _take_place(session, fields, claim, now, gone)
    charge = None
    if amount:
        charge, payment = await _request_payment(
            app,
            session,
            reservation,
            kind="extension",
            amount=amount,
            description=describe(lot, reservation.end_at, new_end, "Parking extension"),
            key=f"parking-{reservation.id}-extension-{occupancy.id}",
            occupancy_id=occupancy.id,
        )
        occupancy.hold_expires_at = _hold_until(settings, now, payment)
    else:
        reservation.end_at, reservation.updated_at = new_end, now
    await session.flush()
    return ExtensionOut(
        id=occupancy.id,
        reservation_id=reservation.id,
        start_at=occupancy.start_at,
        end_at=occupancy.end_at,
        amount_vnd=amount,
        status="pending_payment" if amount else "confirmed",
        payment=payment_brief(charge) if charge else None,
        hold_expires_at=occupancy.hold_expires_at if amount else None,
    )


# ---- operator: check in and out ---------------------------------------------------------------------


async def _by_plate(session: AsyncSession, lot: Lot, plate: str, statuses: tuple[str, ...]) -> list[Reservation]:
    result = await session.execute(
        select(Reservation)
        .where(
            Reservation.lot_id == lot.id,
            Reservation.plate_normalized == normalise_plate(plate),
            Reservation.status.in_(statuses),
        )
        .order_by(Reservation.start_at)
        .with_for_update()
    )
    return list(result.scalars())


async def check_in(
    session: AsyncSession, settings: ParkingSettings, lot: Lot, plate: str, now: datetime
) -> ReservationOut:
    early = timedelta(minutes=settings.early_check_in_minutes)
    for reservation in await _by_plate(session, lot, plate, (CONFIRMED,)):
        if reservation.start_at - early <= now < reservation.end_at:
            reservation.status, reservation.checked_in_at, reservation.updated_at = CHECKED_IN, now, now
            await session.flush()
            return await present_one(session, reservation, now)
    raise NotFound("No paid reservation for this plate at this lot now", code="reservation_not_found")


async def check_out(app: FastAPI, session: AsyncSession, lot: Lot, plate: str, now: datetime) -> dict[str, Any]:
    found = await _by_plate(session, lot, plate, (CHECKED_IN,))
    if not found:
        raise NotFound("No vehicle with this plate is checked in here", code="reservation_not_found")
    reservation = found[0]
    reservation.status, reservation.checked_out_at, reservation.updated_at = COMPLETED, now, now
    overstay = now - reservation.end_at
    charge = None
    minutes = max(0, int(overstay.total_seconds() // 60))
    if overstay > timedelta(minutes=lot.overstay_grace_minutes):
        rate = await session.get(Rate, (lot.id, reservation.vehicle_type))
        amount = 0
        if rate is not None:
            amount = max(
                0, _price(rate, reservation.start_at, now) - _price(rate, reservation.start_at, reservation.end_at)
            )
        if amount:
            charge, _ = await _request_payment(
                app,
                session,
                reservation,
                kind="overstay",
                amount=amount,
                description=describe(lot, reservation.end_at, now, "Parking overstay"),
                key=f"parking-{reservation.id}-overstay",
                occupancy_id=None,
            )
    else:
        minutes = 0
    await session.flush()
    return {
        "reservation": await present_one(session, reservation, now),
        "overstay_minutes": minutes,
        "overstay_payment": payment_brief(charge) if charge else None,
    }


# ---- payment outcomes -------------------------------------------------------------------------------


class NotYetKnown(RuntimeError):
    """A payment event for a reservation not committed yet: raising makes the consumer retry later."""


async def on_payment_event(
    app: FastAPI, session: AsyncSession, event_type: str, data: dict[str, Any], now: datetime
) -> None:
    from shared.clients.payments import PaymentEventData

    event = PaymentEventData.model_validate(data)
    if event.purpose != "parking":
        return
    charge = (
        await session.execute(select(Charge).where(Charge.id == event.payment_id).with_for_update())
    ).scalar_one_or_none()
    if charge is None:
        if await session.get(Reservation, event.reference) is None:
            raise NotYetKnown(f"reservation {event.reference} unknown (yet)")
        log.warning("payment_event_unknown_payment", payment_id=event.payment_id, reference=event.reference)
        return
    reservation = (
        await session.execute(select(Reservation).where(Reservation.id == charge.reservation_id).with_for_update())
    ).scalar_one()
    occupancy = None
    if charge.occupancy_id:
        occupancy = (
            await session.execute(select(Occupancy).where(Occupancy.id == charge.occupancy_id).with_for_update())
        ).scalar_one()
    if event_type == "payment.refunded":
        charge.amount_refunded_vnd = max(charge.amount_refunded_vnd, event.amount_refunded_vnd)
        if event.status in MONEY_TAKEN:
            charge.status = event.status
        return
    if event_type == "payment.succeeded":
        if charge.status in MONEY_TAKEN:
            return  # a duplicate, or the refund already overtook it
        charge.status = "succeeded"
        if occupancy is None:
            return
        await _settle_success(app, session, reservation, occupancy, charge, now)
        return
    # failed / expired / canceled: never undo money that was taken (events may arrive out of order).
    if charge.status in MONEY_TAKEN:
        return
    charge.status = event.status
    if occupancy is not None and occupancy.status == HELD:
        occupancy.status = FREED
        if occupancy.kind == "booking" and reservation.status == PENDING:
            reservation.status, reservation.updated_at = RELEASED, now


async def _settle_success(
    app: FastAPI, session: AsyncSession, reservation: Reservation, occupancy: Occupancy, charge: Charge, now: datetime
) -> None:
    booking = occupancy.kind == "booking"
    if occupancy.status == FREED:
        taken_back = reservation.status != CANCELED and await repo.reinstate(session, occupancy, now)
        if not taken_back:
            # Paid after the hold lapsed and the place went to someone else (or after a cancel): refund.
            await _refund(
                app, charge, "The hold lapsed before payment and the place was taken", f"parking-{charge.id}-late"
            )
            await app.state.outbox.add(
                session,
                "parking.payment.refunded_late",
                {"reservation_id": reservation.id, "payment_id": charge.id},
                subject=reservation.id,
            )
            return
    occupancy.status, occupancy.hold_expires_at = BOOKED, None
    if booking:
        if reservation.status in (PENDING, EXPIRED, RELEASED):
            reservation.status, reservation.hold_expires_at, reservation.updated_at = CONFIRMED, None, now
            await app.state.outbox.add(
                session,
                "parking.reservation.confirmed",
                {"reservation_id": reservation.id, "sub": reservation.user_sub},
                subject=reservation.id,
            )
            lot = await session.get(Lot, reservation.lot_id)
            when = reservation.start_at.astimezone(LOCAL)
            await app.state.outbox.add(
                session,
                "notification.requested",
                {
                    "sub": reservation.user_sub,
                    "kind": "parking.confirmed",
                    "message": {
                        "vi": f"Đã xác nhận chỗ đỗ xe tại {lot.name if lot else ''} lúc {when:%H:%M %d/%m}.",
                        "en": f"Parking confirmed at {lot.name if lot else ''} from {when:%H:%M %d/%m}.",
                    },
                    "dedupe_key": f"parking-confirmed-{reservation.id}",
                },
                subject=reservation.id,
            )
    else:
        reservation.end_at = max(reservation.end_at, occupancy.end_at)
        reservation.amount_vnd += charge.amount_vnd
        reservation.updated_at = now


# ---- hold expiry ------------------------------------------------------------------------------------


async def sweep_expired(app: FastAPI, now: datetime) -> int:
    """Release lapsed holds and cancel their payments (the background task runs this periodically)."""
    db = app.state.db
    async with db.sessionmaker() as session, session.begin():
        expired = await repo.expire_lapsed(session, now)
    async with db.sessionmaker() as session, session.begin():
        for charge in await repo.lapsed_unpaid_charges(session):
            await _cancel_open_payment(app, charge)
    return len(expired)

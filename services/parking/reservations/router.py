from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from services.parking.db import idempotency_keys
from services.parking.deps import Operator, Person, Settings
from services.parking.lots.schemas import Quote
from services.parking.lots.service import own_lot
from services.parking.reservations import service
from services.parking.reservations.schemas import (
    CheckOutOut,
    ExtensionCreate,
    ExtensionOut,
    PlateIn,
    ReservationCreate,
    ReservationOut,
    ReservationPage,
)
from shared.auth import CurrentPrincipal
from shared.db import SessionDep, utcnow
from shared.errors import problem_responses
from shared.idempotency import IdempotencyKey, owner_of, run_idempotent

router = APIRouter(prefix="/v1/parking/reservations", tags=["reservations"])
operator = APIRouter(prefix="/v1/parking/operator/lots", tags=["operator"])


@router.post(
    "", response_model=ReservationOut, status_code=201, responses=problem_responses(401, 403, 409, 422, 502, 503)
)
async def create_reservation(
    data: ReservationCreate, request: Request, session: SessionDep, principal: Person, key: IdempotencyKey
) -> JSONResponse:
    """Hold a space or pool place for a window and ask for its payment; confirmed once paid."""

    async def work() -> ReservationOut:
        return await service.create_reservation(request.app, session, principal, data, utcnow())

    return await run_idempotent(
        session,
        idempotency_keys,
        owner=owner_of(principal.client_id, principal.sub),
        key=key,
        payload=data,
        work=work,
        status_code=201,
    )


@router.get("", response_model=ReservationPage, responses=problem_responses(401, 403, 422))
async def list_my_reservations(
    session: SessionDep,
    principal: Person,
    upcoming: bool = False,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ReservationPage:
    """My reservations: upcoming ones soonest first, or all, newest first."""
    return await service.list_reservations(
        session, utcnow(), sub=principal.sub, upcoming=upcoming, cursor=cursor, limit=limit
    )


@router.get("/{reservation_id}", response_model=ReservationOut, responses=problem_responses(401, 404))
async def get_reservation(reservation_id: str, session: SessionDep, principal: CurrentPrincipal) -> ReservationOut:
    """One reservation, for its owner or the operator of its lot."""
    reservation = await service.visible_reservation(session, principal, reservation_id)
    return await service.present_one(session, reservation, utcnow())


@router.post(
    "/{reservation_id}/cancel", response_model=ReservationOut, responses=problem_responses(401, 403, 404, 409, 502, 503)
)
async def cancel_reservation(
    reservation_id: str, request: Request, session: SessionDep, principal: Person
) -> ReservationOut:
    """Cancel: a full refund before the lot's cutoff ahead of the start, none after."""
    return await service.cancel_reservation(request.app, session, principal, reservation_id, utcnow())


@router.get(
    "/{reservation_id}/extension-quote", response_model=Quote, responses=problem_responses(401, 403, 404, 409, 422)
)
async def quote_extension(
    reservation_id: str, end_at: datetime, session: SessionDep, settings: Settings, principal: Person
) -> Quote:
    """What extending my reservation to a later end would cost (the extension itself is a POST)."""
    return await service.extension_quote(session, settings, principal, reservation_id, end_at, utcnow())


@router.post(
    "/{reservation_id}/extensions",
    response_model=ExtensionOut,
    status_code=201,
    responses=problem_responses(401, 403, 404, 409, 422, 502, 503),
)
async def extend_reservation(
    reservation_id: str,
    data: ExtensionCreate,
    request: Request,
    session: SessionDep,
    principal: Person,
    key: IdempotencyKey,
) -> JSONResponse:
    """Extend to a later end if the place stays free; the added time is a new payment."""

    async def work() -> ExtensionOut:
        return await service.extend_reservation(request.app, session, principal, reservation_id, data, utcnow())

    return await run_idempotent(
        session,
        idempotency_keys,
        owner=owner_of(principal.client_id, principal.sub),
        key=key,
        payload={"reservation_id": reservation_id, **data.model_dump(mode="json")},
        work=work,
        status_code=201,
    )


@operator.get("/{lot_id}/reservations", response_model=ReservationPage, responses=problem_responses(401, 403, 404, 422))
async def list_lot_reservations(
    lot_id: str,
    session: SessionDep,
    principal: Operator,
    upcoming: bool = False,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> ReservationPage:
    """Reservations at one of the operator's lots."""
    lot = await own_lot(session, lot_id, principal.client_id)
    return await service.list_reservations(
        session, utcnow(), lot_id=lot.id, upcoming=upcoming, cursor=cursor, limit=limit
    )


@operator.post("/{lot_id}/check-ins", response_model=ReservationOut, responses=problem_responses(401, 403, 404, 422))
async def check_in_vehicle(
    lot_id: str, data: PlateIn, session: SessionDep, settings: Settings, principal: Operator
) -> ReservationOut:
    """Check a vehicle in by its plate against a paid reservation for now."""
    lot = await own_lot(session, lot_id, principal.client_id)
    return await service.check_in(session, settings, lot, data.plate_number, utcnow())


@operator.post(
    "/{lot_id}/check-outs", response_model=CheckOutOut, responses=problem_responses(401, 403, 404, 422, 502, 503)
)
async def check_out_vehicle(
    lot_id: str, data: PlateIn, request: Request, session: SessionDep, principal: Operator
) -> CheckOutOut:
    """Check a vehicle out by its plate; an overstay past the grace period is charged as a new payment."""
    lot = await own_lot(session, lot_id, principal.client_id)
    return CheckOutOut(**await service.check_out(request.app, session, lot, data.plate_number, utcnow()))

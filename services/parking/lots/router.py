from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from services.parking.deps import Operator, Settings
from services.parking.lots import service
from services.parking.lots.models import Lot, Rate
from services.parking.lots.schemas import (
    Availability,
    LotCreate,
    LotOut,
    LotSearchPage,
    LotSearchQuery,
    LotUpdate,
    OperatorLotList,
    OperatorLotOut,
    PoolCreate,
    PoolOut,
    PoolUpdate,
    Quote,
    RateIn,
    RateOut,
    SpaceOut,
    SpacesCreate,
)
from services.parking.settings import ParkingSettings
from services.parking.vehicles import VehicleType
from services.parking.windows import check_window
from shared.db import SessionDep, utcnow
from shared.errors import field_error, problem_responses
from shared.query_params import parse_query, query_parameters

public = APIRouter(prefix="/v1/parking/lots", tags=["lots"])
quotes = APIRouter(prefix="/v1/parking/quotes", tags=["lots"])
operator = APIRouter(prefix="/v1/parking/operator/lots", tags=["operator"])

AUTH = (401, 403)


@public.get(
    "", response_model=LotSearchPage, responses=problem_responses(422), openapi_extra=query_parameters(LotSearchQuery)
)
async def search_lots(request: Request) -> Response:
    """Lots near a point with free spaces or places for the window, nearest first, each with a quote.

    Public: residents and tourists browse before signing in."""
    # The query as one model, validated in one pass (shared/query_params.py): the busiest endpoint.
    query = parse_query(LotSearchQuery, request)
    settings: ParkingSettings = request.app.state.settings
    now = utcnow()
    check_window(query.start_at, query.end_at, settings, now, where="query")
    page = await service.search(
        request.app.state.db,
        request.app.state.inventory,
        settings,
        lat=query.lat,
        lon=query.lon,
        radius_m=query.radius_m,
        vehicle_type=query.vehicle_type.value,
        start=query.start_at,
        end=query.end_at,
        now=now,
        cursor=query.cursor,
        limit=query.limit,
    )
    # The page is JSON already, built from validated data (service.search): not again through response_model.
    return Response(page, media_type="application/json")


@public.get("/{lot_id}", response_model=LotOut, responses=problem_responses(404))
async def get_lot(lot_id: str, session: SessionDep) -> LotOut:
    """One lot's public details."""
    return LotOut.of(await service.get_lot(session, lot_id))


@public.get("/{lot_id}/availability", response_model=Availability, responses=problem_responses(404, 422))
async def get_lot_availability(
    lot_id: str,
    session: SessionDep,
    settings: Settings,
    vehicle_type: VehicleType,
    start_at: datetime,
    end_at: datetime,
) -> Availability:
    """Free spaces (which numbered ones) or pool places of a lot for a window, and its quote."""
    now = utcnow()
    lot = await service.get_lot(session, lot_id)
    check_window(start_at, end_at, settings, now, where="query", lot=lot)
    return await service.availability(session, settings, lot, vehicle_type.value, start_at, end_at, now)


@operator.post("", response_model=OperatorLotOut, status_code=201, responses=problem_responses(*AUTH, 422))
async def create_lot(data: LotCreate, session: SessionDep, principal: Operator) -> OperatorLotOut:
    """Create a lot operated by the calling agency."""
    lot = await service.create_lot(session, principal.client_id, data)
    return await service.operator_view(session, lot)


@operator.get("", response_model=OperatorLotList, responses=problem_responses(*AUTH, 422))
async def list_operator_lots(
    session: SessionDep,
    principal: Operator,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> OperatorLotList:
    """The calling operator's lots."""
    lots, next_cursor = await service.list_operator_lots(session, principal.client_id, cursor=cursor, limit=limit)
    return OperatorLotList(items=[await service.operator_view(session, lot) for lot in lots], next_cursor=next_cursor)


@operator.get("/{lot_id}", response_model=OperatorLotOut, responses=problem_responses(*AUTH, 404))
async def get_operator_lot(lot_id: str, session: SessionDep, principal: Operator) -> OperatorLotOut:
    """One of the operator's lots with its spaces, pools and rates."""
    return await service.operator_view(session, await service.own_lot(session, lot_id, principal.client_id))


@operator.patch("/{lot_id}", response_model=OperatorLotOut, responses=problem_responses(*AUTH, 400, 404, 422))
async def update_lot(lot_id: str, data: LotUpdate, session: SessionDep, principal: Operator) -> OperatorLotOut:
    """Change a lot's details or opening hours."""
    lot = await service.own_lot(session, lot_id, principal.client_id, lock=True)
    return await service.operator_view(session, await service.update_lot(session, lot, data))


@operator.post(
    "/{lot_id}/spaces",
    response_model=list[SpaceOut],
    status_code=201,
    responses=problem_responses(*AUTH, 404, 409, 422),
)
async def add_spaces(lot_id: str, data: SpacesCreate, session: SessionDep, principal: Operator) -> list[SpaceOut]:
    """Add numbered spaces to a lot."""
    lot = await service.own_lot(session, lot_id, principal.client_id)
    return [SpaceOut.model_validate(s) for s in await service.add_spaces(session, lot, data)]


@operator.post(
    "/{lot_id}/pools", response_model=PoolOut, status_code=201, responses=problem_responses(*AUTH, 404, 409, 422)
)
async def add_pool(lot_id: str, data: PoolCreate, session: SessionDep, principal: Operator) -> PoolOut:
    """Add a counted pool of places (motorbikes, bicycles) to a lot."""
    lot = await service.own_lot(session, lot_id, principal.client_id)
    return PoolOut.model_validate(await service.add_pool(session, lot, data))


@operator.patch("/{lot_id}/pools/{pool_id}", response_model=PoolOut, responses=problem_responses(*AUTH, 404, 422))
async def update_pool(lot_id: str, pool_id: str, data: PoolUpdate, session: SessionDep, principal: Operator) -> PoolOut:
    """Change a pool's capacity (existing reservations stay valid)."""
    lot = await service.own_lot(session, lot_id, principal.client_id)
    pool = await service.own_pool(session, lot, pool_id)
    pool.capacity = data.capacity
    await session.flush()
    return PoolOut.model_validate(pool)


@operator.put("/{lot_id}/rates/{vehicle_type}", response_model=RateOut, responses=problem_responses(*AUTH, 404, 422))
async def put_rate(
    lot_id: str, vehicle_type: VehicleType, data: RateIn, session: SessionDep, principal: Operator
) -> RateOut:
    """Set the lot's rate for a vehicle type (per visit with day/night bands, or hourly tiers with a cap)."""
    lot = await service.own_lot(session, lot_id, principal.client_id)
    return service.rate_out(await service.put_rate(session, lot, vehicle_type.value, data))


@quotes.get("", response_model=Quote, responses=problem_responses(422))
async def get_quote(
    session: SessionDep,
    settings: Settings,
    lot_id: Annotated[str, Query(min_length=1, max_length=64)],
    vehicle_type: VehicleType,
    start_at: datetime,
    end_at: datetime,
) -> Quote:
    """The price of a window at a lot, valid for a few minutes; it holds nothing."""
    now = utcnow()
    lot = await session.get(Lot, lot_id)
    if lot is None:
        raise field_error("query.lot_id", "no such lot", "not_found")
    check_window(start_at, end_at, settings, now, where="query", lot=lot)
    rate = await session.get(Rate, (lot.id, vehicle_type.value))
    if rate is None:
        raise field_error("query.vehicle_type", f"this lot takes no {vehicle_type.value}", "not_served")
    return service.make_quote(settings, lot.id, vehicle_type.value, rate, start_at, end_at, now)

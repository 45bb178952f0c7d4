from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from services.tuition.db import idempotency_keys
from services.tuition.paying.schemas import PaymentOrderCreate, PaymentOrderOut, PaymentOrderPage, ReceiptOut
from services.tuition.paying.service import cancel_order, create_order, get_own_order, list_orders, order_views, receipt
from services.tuition.runtime import RuntimeDep
from shared.auth import Principal, RequireUser
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.idempotency import IdempotencyKey, owner_of, run_idempotent

router = APIRouter(prefix="/v1/tuition/me/payments", tags=["payments"])
Guardian = Annotated[Principal, RequireUser("tuition")]


@router.post(
    "",
    response_model=PaymentOrderOut,
    status_code=201,
    responses=problem_responses(400, 401, 403, 404, 409, 422, 502, 503),
)
async def pay_invoices(
    data: PaymentOrderCreate,
    session: SessionDep,
    guardian: Guardian,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """Pay several invoices (of one or several children) in one payment; open payment_url to approve it."""
    assert guardian.sub is not None
    sub = guardian.sub

    async def work() -> PaymentOrderOut:
        return await create_order(
            session, runtime.payments_client(), sub, data, default_return_url=runtime.settings.payment_return_url
        )

    return await run_idempotent(
        session,
        idempotency_keys,
        owner=owner_of(guardian.client_id, sub),
        key=idempotency_key,
        payload=data,
        work=work,
        status_code=201,
    )


@router.get("", response_model=PaymentOrderPage, responses=problem_responses(401, 403, 422))
async def list_my_payments(
    session: SessionDep,
    guardian: Guardian,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> PaymentOrderPage:
    """The caller's school-fee payments, newest first."""
    assert guardian.sub is not None
    return await list_orders(session, guardian.sub, cursor, limit)


@router.get("/{order_id}", response_model=PaymentOrderOut, responses=problem_responses(401, 403, 404))
async def get_my_payment(order_id: str, session: SessionDep, guardian: Guardian) -> PaymentOrderOut:
    """One of the caller's payments with the invoices it covers."""
    assert guardian.sub is not None
    return (await order_views(session, [await get_own_order(session, guardian.sub, order_id)]))[0]


@router.get("/{order_id}/receipt", response_model=ReceiptOut, responses=problem_responses(401, 403, 404))
async def get_payment_receipt(order_id: str, session: SessionDep, guardian: Guardian) -> ReceiptOut:
    """The receipt of a succeeded payment (number, date, invoices paid)."""
    assert guardian.sub is not None
    return await receipt(session, guardian.sub, order_id)


@router.post(
    "/{order_id}/cancel", response_model=PaymentOrderOut, responses=problem_responses(401, 403, 404, 409, 502, 503)
)
async def cancel_my_payment(
    order_id: str, session: SessionDep, guardian: Guardian, runtime: RuntimeDep
) -> PaymentOrderOut:
    """Abandon a pending payment; its invoices can be paid again at once."""
    assert guardian.sub is not None
    return await cancel_order(session, runtime.payments_client(), guardian.sub, order_id)

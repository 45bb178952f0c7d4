"""Payments API (the contract in shared/clients/payments.py, plus history, refunds list and receipts)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.db import idempotency_keys
from services.payments.payments import repository as repo
from services.payments.payments import service
from services.payments.payments.schemas import (
    PaymentCreateRequest,
    PaymentHistory,
    PaymentOut,
    PaymentPage,
    Receipt,
    RefundCreateRequest,
    RefundList,
    RefundOut,
    TransitionOut,
)
from services.payments.receipts.service import build_receipt, render_pdf
from shared.auth import CurrentPrincipal, Principal, RequireClient, insufficient_scope
from shared.clients.payments import PaymentStatus
from shared.db import SessionDep
from shared.errors import problem_response, problem_responses
from shared.idempotency import IdempotencyKey, owner_of, run_idempotent

router = APIRouter(prefix="/v1/payments", tags=["payments"])
Writer = Annotated[Principal, RequireClient("payments.write")]


def ctx(request: Request) -> service.PaymentsContext:
    return request.app.state.payments  # type: ignore[no-any-return]


def reader(principal: Principal) -> Principal:
    """A person with scope "payments", or an agency/service client with payments.write."""
    if principal.is_user and not principal.has("payments"):
        raise insufficient_scope(("payments",))
    if not principal.is_user and not principal.has("payments.write"):
        raise insufficient_scope(("payments.write",))
    return principal


@contextlib.asynccontextmanager
async def transaction(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction for the request, like SessionDep, but on SQLite taken in turn within this process.

    On SQLite the provider call happens while the database write lock is held; waiting writers would
    otherwise poll in SQLite's busy handler (sleeps of up to 100 ms), starving some requests for
    seconds under load. An asyncio lock queues them fairly instead. PostgreSQL needs no such lock.
    """
    db = request.app.state.db
    lock = request.app.state.payments.sqlite_write_lock if db.dialect == "sqlite" else None
    async with lock if lock is not None else contextlib.nullcontext(), db.sessionmaker() as session, session.begin():
        yield session


@router.post("", status_code=201, response_model=PaymentOut, responses=problem_responses(401, 403, 409, 422, 503))
async def create_payment(body: PaymentCreateRequest, request: Request, key: IdempotencyKey, principal: Writer) -> Any:
    """Ask a payer to pay a city fee; the payer approves on the wallet page at next_action.url."""
    owner = owner_of(principal.client_id, principal.sub)
    async with transaction(request) as session:

        async def work() -> dict[str, Any]:
            payment = await service.create_payment(session, ctx(request), principal, body, owner=owner, key=key)
            return payment.model_dump(mode="json")  # plain JSON: cheaper to store and replay

        return await run_idempotent(session, idempotency_keys, owner=owner, key=key, payload=body, work=work)


@router.get("", response_model=PaymentPage, responses=problem_responses(401, 403, 422))
async def list_payments(
    session: SessionDep,
    principal: CurrentPrincipal,
    status: Annotated[PaymentStatus | None, Query(description="Only payments in this status")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> PaymentPage:
    """A person's own payments (newest first), or the payments an agency asked for."""
    reader(principal)
    items, next_cursor = await repo.page(
        session,
        payer_sub=principal.sub if principal.is_user else None,
        requested_by=None if principal.is_user else principal.client_id,
        status=status,
        cursor=cursor,
        limit=limit,
    )
    return PaymentPage(items=[service.to_out(p) for p in items], next_cursor=next_cursor)


@router.get("/{payment_id}", response_model=PaymentOut, responses=problem_responses(401, 403, 404))
async def get_payment(payment_id: str, session: SessionDep, principal: CurrentPrincipal) -> PaymentOut:
    """One payment, for its payer or the agency that asked for it."""
    return service.to_out(await service.visible(session, reader(principal), payment_id))


@router.get("/{payment_id}/history", response_model=PaymentHistory, responses=problem_responses(401, 403, 404))
async def get_payment_history(payment_id: str, session: SessionDep, principal: CurrentPrincipal) -> PaymentHistory:
    """Every status change of a payment with its cause."""
    payment = await service.visible(session, reader(principal), payment_id)
    rows = await repo.transitions_of(session, payment.id)
    return PaymentHistory(
        items=[TransitionOut(from_status=t.from_status, to_status=t.to_status, cause=t.cause, at=t.at) for t in rows]
    )


@router.post("/{payment_id}/cancel", response_model=PaymentOut, responses=problem_responses(401, 403, 404, 409, 503))
async def cancel_payment(payment_id: str, request: Request, session: SessionDep, principal: Writer) -> Any:
    """Cancel a payment that has not succeeded (e.g. a lapsed hold); 409 once the money moved."""
    payment, cancelable = await service.cancel_payment(session, ctx(request), principal, payment_id)
    if not cancelable:
        # Answered rather than raised, so what we learnt from the provider still commits.
        return problem_response(
            409,
            "payment_not_cancelable",
            "Payment not cancelable",
            f"The payment is {payment.status}; refund it instead",
            instance=request.url.path,
            payment_status=payment.status,
        )
    return payment


@router.post(
    "/{payment_id}/refunds",
    status_code=201,
    response_model=RefundOut,
    responses=problem_responses(401, 403, 404, 409, 422, 502),
)
async def create_refund(
    payment_id: str,
    body: RefundCreateRequest,
    request: Request,
    session: SessionDep,
    key: IdempotencyKey,
    principal: Writer,
) -> Any:
    """Refund all or part of what remains of a paid payment (by the agency that asked for it)."""
    owner = owner_of(principal.client_id, principal.sub)

    async def work() -> dict[str, Any]:
        refund = await service.create_refund(session, ctx(request), principal, payment_id, body, owner=owner, key=key)
        return refund.model_dump(mode="json")

    return await run_idempotent(
        session,
        idempotency_keys,
        owner=owner,
        key=key,
        payload={"payment_id": payment_id, **body.model_dump(mode="json")},
        work=work,
    )


@router.get("/{payment_id}/refunds", response_model=RefundList, responses=problem_responses(401, 403, 404))
async def list_refunds(payment_id: str, session: SessionDep, principal: CurrentPrincipal) -> RefundList:
    """The refunds of a payment."""
    payment = await service.visible(session, reader(principal), payment_id)
    return RefundList(items=[service.refund_out(r) for r in await repo.refunds_of(session, payment.id)])


@router.get(
    "/{payment_id}/receipt",
    response_model=Receipt,
    responses={
        200: {
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The receipt as JSON, or as a PDF with Accept: application/pdf",
        },
        **problem_responses(401, 403, 404, 409, 503),
    },
)
async def get_receipt(
    payment_id: str,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    format: Annotated[str | None, Query(pattern="^(json|pdf)$", description="Overrides Accept")] = None,
) -> Any:
    """The receipt of a paid payment: JSON, or PDF (Accept: application/pdf or ?format=pdf)."""
    receipt = build_receipt(await service.visible(session, reader(principal), payment_id))
    wants_pdf = format == "pdf" or (format is None and "application/pdf" in request.headers.get("accept", ""))
    if wants_pdf:
        pdf = await asyncio.to_thread(render_pdf, receipt)  # CPU-bound; keep the loop free
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="receipt-{receipt.payment_id}.pdf"'},
        )
    return JSONResponse(receipt.model_dump(mode="json"))

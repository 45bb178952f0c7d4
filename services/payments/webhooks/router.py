"""Provider notifications in: verify, deduplicate, store, answer 2xx at once; the work goes through the
outbox to this service's own consumer (services/payments/webhooks/handler.py)."""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from services.payments.payments.models import WebhookEvent
from services.payments.provider import signing
from shared.db import SessionDep, new_id, utcnow
from shared.errors import BadRequest, NotFound, Unauthorized, problem_responses

log = structlog.get_logger("payments.webhooks")
router = APIRouter(prefix="/v1/payments/webhooks", tags=["webhooks"])
WEBHOOK_RECEIVED = "payments.webhook_received"
MAX_BODY = 256 * 1024


class WebhookAck(BaseModel):
    received: bool
    duplicate: bool = False


@router.post("/{provider}", response_model=WebhookAck, responses=problem_responses(400, 401, 404, 413))
async def receive_webhook(provider: str, request: Request, session: SessionDep) -> WebhookAck:
    """A signed provider notification (header Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256>)."""
    settings = request.app.state.settings
    if provider not in request.app.state.payments.providers:
        raise NotFound("Unknown provider", code="unknown_provider")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BadRequest("Body too large", code="payload_too_large", status=413)
    try:
        signing.verify(
            settings.webhook_secret,
            request.headers.get(signing.SIGNATURE_HEADER),
            raw,
            tolerance_s=settings.webhook_tolerance_s,
        )
    except signing.SignatureError as exc:
        log.warning("webhook_signature_rejected", provider=provider, reason=str(exc))
        raise Unauthorized("Invalid webhook signature", code="invalid_signature") from None
    try:
        event: Any = json.loads(raw)
        event_id, event_type = str(event["id"]), str(event["type"])
        if not isinstance(event["data"]["object"], dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise BadRequest("Not a provider event", code="malformed_event") from None
    row_id = new_id()
    try:
        async with session.begin_nested():
            session.add(
                WebhookEvent(
                    id=row_id,
                    provider=provider,
                    event_id=event_id[:100],
                    type=event_type[:64],
                    payload=raw.decode(),
                    received_at=utcnow(),
                )
            )
            await session.flush()
    except IntegrityError:
        return WebhookAck(received=True, duplicate=True)
    await request.app.state.outbox.add(
        session, WEBHOOK_RECEIVED, {"webhook_event_id": row_id, "provider": provider}, subject=row_id
    )
    return WebhookAck(received=True)

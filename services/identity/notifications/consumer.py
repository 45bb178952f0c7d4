"""Notifications to people: ``notification.requested`` events from other services become SMS messages.

Event data: ``{"sub", "kind", "message": {"vi", "en"}, "dedupe_key"}``. The SMS goes to the person's
verified phone in their preferred language, once per ``dedupe_key`` (the consumer already runs each event
once; the key also collapses distinct events that mean the same notice).
"""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.accounts.models import Account, AccountStatus
from services.identity.notifications.models import NotificationDelivery
from services.identity.sms.sender import SmsSender
from shared.app import ConsumerSpec
from shared.events import CloudEvent

log = structlog.get_logger("identity.notifications")
EVENT_TYPE = "notification.requested"
SOURCES = ("payments", "parking", "health_booking", "tuition")
GROUP = "identity.notifications"
MAX_SMS_LENGTH = 480


def _text(message: object, language: str) -> str | None:
    if isinstance(message, str):
        return message
    if not isinstance(message, dict):
        return None
    for lang in (language, "vi", "en"):
        value = message.get(lang)
        if isinstance(value, str) and value.strip():
            return value.strip()[:MAX_SMS_LENGTH]
    return None


def notification_handler(sender: SmsSender):  # type: ignore[no-untyped-def]
    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        data = event.data
        sub, kind, dedupe_key = data.get("sub"), data.get("kind"), data.get("dedupe_key")
        if not (isinstance(sub, str) and isinstance(kind, str) and isinstance(dedupe_key, str)) or not dedupe_key:
            # Malformed: retrying cannot fix it; note it and move on.
            log.warning("notification_malformed", event_id=event.id, source=event.source)
            return
        if await session.get(NotificationDelivery, dedupe_key[:200]) is not None:
            return
        account = await session.get(Account, sub)
        outcome = "unknown_person"
        if account is not None:
            outcome = "no_verified_phone"
            text = _text(data.get("message"), account.preferred_language)
            if account.status == AccountStatus.active.value and account.phone_verified and account.phone_e164 and text:
                await sender.send(session, to=account.phone_e164, body=text, kind=f"notification.{kind}"[:64])
                outcome = "sent"
        session.add(
            NotificationDelivery(
                dedupe_key=dedupe_key[:200],
                sub=sub[:32],
                kind=kind[:100],
                outcome=outcome,
                event_id=event.id[:64],
                source=event.source[:200],
            )
        )
        await session.flush()
        log.info("notification_handled", kind=kind, outcome=outcome)

    return handle


def notifications_consumer(sender: SmsSender) -> ConsumerSpec:
    return ConsumerSpec(group=GROUP, sources=SOURCES, handlers={EVENT_TYPE: notification_handler(sender)})

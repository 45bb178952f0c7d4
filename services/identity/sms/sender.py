"""Pluggable SMS senders.

- ``DevOutboxSender`` (dev profile) stores each message in the identity database, in the caller's
  transaction, readable at ``GET /v1/dev/outbox?to=``.
- ``HttpSmsSender`` posts ``{"to", "body"}`` with a bearer token to an SMS gateway (``sms_gateway_url``),
  the shape most Vietnamese brandname-SMS providers accept behind a small adapter.

The prod profile refuses the dev sender: codes must leave the building by SMS, not sit in a table.
"""

from __future__ import annotations

from typing import Protocol

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.privacy import eraser
from services.identity.settings import IdentitySettings
from services.identity.sms.models import DevSms
from shared.db import new_id, utcnow
from shared.errors import ServiceUnavailable
from shared.settings import ConfigError, PlatformSettings, Profile

log = structlog.get_logger("identity.sms")


class SmsSender(Protocol):
    async def send(self, session: AsyncSession, *, to: str, body: str, kind: str) -> None:
        """Send ``body`` to the E.164 number ``to``; ``kind`` names the message type (never its content)."""


class DevOutboxSender:
    async def send(self, session: AsyncSession, *, to: str, body: str, kind: str) -> None:
        session.add(DevSms(id=new_id(), to=to, body=body, kind=kind, created_at=utcnow()))
        await session.flush()
        log.info("sms_stored", kind=kind)


class HttpSmsSender:
    def __init__(self, url: str, token: str, timeout_s: float = 5.0) -> None:
        self.url = url
        self.token = token
        self.timeout_s = timeout_s

    async def send(self, session: AsyncSession, *, to: str, body: str, kind: str) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(
                    self.url, json={"to": to, "body": body}, headers={"Authorization": f"Bearer {self.token}"}
                )
                response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("sms_failed", kind=kind, error=type(exc).__name__)
            raise ServiceUnavailable("The SMS could not be sent; try again shortly", code="sms_unavailable") from exc
        log.info("sms_sent", kind=kind)


def build_sender(settings: IdentitySettings, platform: PlatformSettings) -> SmsSender:
    if settings.sms_sender == "http":
        if not settings.sms_gateway_url:
            raise ConfigError("DNCITY_IDENTITY_SMS_GATEWAY_URL is required with the http SMS sender")
        return HttpSmsSender(settings.sms_gateway_url, settings.sms_gateway_token)
    if settings.sms_sender != "dev_outbox":
        raise ConfigError(f"unknown SMS sender {settings.sms_sender!r} (dev_outbox | http)")
    if platform.profile is Profile.prod:
        raise ConfigError("refusing to start in prod with the dev SMS outbox; set DNCITY_IDENTITY_SMS_SENDER=http")
    return DevOutboxSender()


@eraser
async def erase_dev_messages(session: AsyncSession, sub: str) -> None:
    """Erasure: the dev outbox's copies of messages sent to the person's phone go too."""
    from sqlalchemy import delete

    from services.identity.accounts.models import Account

    account = await session.get(Account, sub)
    if account is not None and account.phone_e164:
        await session.execute(delete(DevSms).where(DevSms.to == account.phone_e164))

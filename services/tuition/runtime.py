"""What the tuition app holds at run time: its payments client and the reminder task."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import structlog
from fastapi import Depends, FastAPI, Request

from services.tuition.settings import TuitionSettings
from shared.clients.payments import PaymentsClient
from shared.errors import ServiceUnavailable
from shared.service_auth import ServiceTokenProvider

log = structlog.get_logger("tuition")


class TuitionRuntime:
    def __init__(self, settings: TuitionSettings) -> None:
        self.settings = settings
        # Tests may put their own token source here before the app starts.
        self.tokens: ServiceTokenProvider | None = None
        self.payments: PaymentsClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self, app: FastAPI) -> None:
        platform = app.state.platform
        if self.tokens is None:
            self.tokens = ServiceTokenProvider.client_credentials(
                app.state.http,
                platform.service_url("identity") + "/oauth2/token",
                self.settings.client_id,
                self.settings.client_secret,
                "payments.write",
            )
        self.payments = PaymentsClient(app.state.http, platform.service_url("payments"), self.tokens)
        if self.settings.reminder_interval_s > 0:
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self._reminders(app), name="tuition-reminders")

    async def stop(self, app: FastAPI) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _reminders(self, app: FastAPI) -> None:
        from services.tuition.reminders.service import send_reminders

        while not self._stop.is_set():
            try:
                await send_reminders(app.state.db, app.state.outbox, self.settings)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reminder_sweep_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.settings.reminder_interval_s)

    def payments_client(self) -> PaymentsClient:
        if self.payments is None:
            raise ServiceUnavailable("The payments client is not ready", code="payments_unavailable")
        return self.payments


def _runtime(request: Request) -> TuitionRuntime:
    runtime: TuitionRuntime = request.app.state.tuition
    return runtime


RuntimeDep = Annotated[TuitionRuntime, Depends(_runtime)]

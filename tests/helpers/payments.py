"""The real payments service and the sandbox mobile-money provider on loopback ports, for the money flows
of parking, health booking and tuition (each points its app at ``payments_url``)."""

from __future__ import annotations

from typing import Any

import httpx

from dncity.embedded_redis import free_port
from shared.settings import PlatformSettings
from tests.helpers.live import LiveServer


class LivePayments:
    """Start with :meth:`start`, stop with :meth:`stop` (a fixture's teardown)."""

    def __init__(self, payments_url: str, sandbox_url: str, servers: list[LiveServer]) -> None:
        self.payments_url = payments_url
        self.sandbox_url = sandbox_url
        self.servers = servers

    @classmethod
    def start(cls) -> LivePayments:
        from services.payments.app import create_app as create_payments
        from services.payments.sandbox.app import create_app as create_sandbox
        from services.payments.sandbox.settings import SandboxSettings
        from services.payments.settings import PaymentsSettings

        payments_port, sandbox_port = free_port(), free_port()
        payments_url, sandbox_url = f"http://127.0.0.1:{payments_port}", f"http://127.0.0.1:{sandbox_port}"
        platform = PlatformSettings()
        sandbox = SandboxSettings(
            database=":memory:",
            public_url=sandbox_url,
            webhook_url=payments_url + "/v1/payments/webhooks/sandbox",
            webhook_backoff_base_s=0.2,
            sweep_interval_s=0.05,
        )
        servers = [LiveServer(create_sandbox(sandbox, platform), port=sandbox_port).start()]
        settings = PaymentsSettings(
            provider_url=sandbox_url,
            reconciler_enabled=False,
            provider_timeout_s=5.0,
            provider_retries=1,
            provider_backoff_s=0.05,
        )
        try:
            servers.append(LiveServer(create_payments(settings, platform), port=payments_port).start())
        except BaseException:
            servers[0].stop()
            raise
        return cls(payments_url, sandbox_url, servers)

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()

    @staticmethod
    async def decide(wallet_url: str, decision: str = "approve") -> httpx.Response:
        """What the payer's browser does on the sandbox wallet page."""
        async with httpx.AsyncClient(timeout=30) as browser:
            response = await browser.post(wallet_url, data={"decision": decision})
        assert response.status_code < 400, response.text
        return response

    async def payment(self, payment_id: str, headers: dict[str, str]) -> dict[str, Any]:
        """The payment as the payments API shows it to the service that created it."""
        async with httpx.AsyncClient(base_url=self.payments_url, timeout=30) as http:
            response = await http.get(f"/v1/payments/{payment_id}", headers=headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

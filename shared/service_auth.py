"""A service's own access token (OAuth client credentials against Da Nang ID), cached until shortly
before it expires. Parking, health booking and tuition use it to call payments."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from shared.errors import ServiceUnavailable
from shared.http import ServiceClient

TokenSource = Callable[[], Awaitable[tuple[str, int]]]  # → (token, expires_in seconds)


class ServiceTokenProvider:
    def __init__(self, source: TokenSource, *, refresh_margin_s: int = 60) -> None:
        self._source = source
        self._token: str | None = None
        self._expires_at = 0.0
        self._margin = refresh_margin_s
        self._lock = asyncio.Lock()

    @classmethod
    def client_credentials(
        cls, http: ServiceClient, token_url: str, client_id: str, client_secret: str, scope: str
    ) -> ServiceTokenProvider:
        async def fetch() -> tuple[str, int]:
            response = await http.post(
                token_url,
                data={"grant_type": "client_credentials", "scope": scope},
                auth=httpx.BasicAuth(client_id, client_secret),
            )
            if response.status_code != 200:
                raise ServiceUnavailable(
                    f"could not obtain a service token ({response.status_code})", code="service_token_unavailable"
                )
            body = response.json()
            return str(body["access_token"]), int(body.get("expires_in", 300))

        return cls(fetch)

    async def token(self) -> str:
        if self._token and time.monotonic() < self._expires_at - self._margin:
            return self._token
        async with self._lock:
            if self._token and time.monotonic() < self._expires_at - self._margin:
                return self._token
            token, expires_in = await self._source()
            self._token, self._expires_at = token, time.monotonic() + expires_in
            return token

    async def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token()}"}

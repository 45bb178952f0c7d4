"""GET /v1/me/overview: the mobile app's home screen in one call.

The gateway calls, with the person's own token and in parallel, identity's profile, upcoming parking
reservations, upcoming appointments, open school invoices and recent payments. Each part has its own
deadline and goes through its upstream's circuit breaker; a part whose service fails, is slow or whose
circuit is open is returned as ``unavailable`` (a 401/403 from the service as ``forbidden``, e.g. the
token lacks that service's scope) and the rest is still answered.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.proxy import CircuitOpen, Proxy, UpstreamTimeout, UpstreamUnavailable
from shared.observability import child_traceparent, current_request_id

PARTS: dict[str, tuple[str, str]] = {
    "profile": ("identity", "/v1/identity/me"),
    "parking_reservations": ("parking", "/v1/parking/reservations?upcoming=true"),
    "appointments": ("health_booking", "/v1/health/appointments?upcoming=true"),
    "tuition_invoices": ("tuition", "/v1/tuition/me/invoices?status=open"),
    "payments": ("payments", "/v1/payments?limit=5"),
}


class OverviewPart(BaseModel):
    status: Literal["ok", "unavailable", "forbidden"] = Field(
        description="ok: data holds the service's answer; unavailable: the service failed, was slow or "
        "its circuit is open; forbidden: the token may not read this part"
    )
    data: Any = Field(
        default=None,
        description="The service's JSON: a profile object, or {items, next_cursor} for the lists",
    )
    error: str | None = Field(default=None, description="Machine code of why the part is missing")


class Overview(BaseModel):
    profile: OverviewPart
    parking_reservations: OverviewPart
    appointments: OverviewPart
    tuition_invoices: OverviewPart
    payments: OverviewPart


async def _part(
    proxy: Proxy, upstreams: dict[str, str], service: str, path: str, authorization: str, timeout_s: float
) -> OverviewPart:
    headers = [
        (b"authorization", authorization.encode("latin-1")),
        (b"accept", b"application/json"),
        (b"traceparent", child_traceparent().encode()),
    ]
    request_id = current_request_id()
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    try:
        response = await proxy.call(
            service, "GET", upstreams[service], path.encode(), headers, None, timeout_s=timeout_s, retry=False
        )
    except CircuitOpen:
        return OverviewPart(status="unavailable", error="circuit_open")
    except UpstreamTimeout:
        return OverviewPart(status="unavailable", error="timeout")
    except UpstreamUnavailable:
        return OverviewPart(status="unavailable", error="upstream_unavailable")
    if response.status in (401, 403):
        return OverviewPart(status="forbidden", error=f"http_{response.status}")
    if response.status != 200:
        return OverviewPart(status="unavailable", error=f"http_{response.status}")
    try:
        return OverviewPart(status="ok", data=json.loads(response.body))
    except ValueError:
        return OverviewPart(status="unavailable", error="invalid_response")


async def build_overview(proxy: Proxy, upstreams: dict[str, str], authorization: str, timeout_s: float) -> Overview:
    parts = await asyncio.gather(
        *(_part(proxy, upstreams, service, path, authorization, timeout_s) for service, path in PARTS.values())
    )
    return Overview(**dict(zip(PARTS, parts, strict=True)))

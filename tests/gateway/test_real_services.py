"""The gateway in front of the real identity and parking services (each on its own port)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers.live import LiveServer


@pytest.fixture
def parking_server(service_app):
    server = LiveServer(service_app("parking")).start()
    yield server
    server.stop()


async def test_real_services_behind_the_gateway(start_gateway, parking_server, tokens) -> None:
    gw = start_gateway(urls={"identity": os.environ["DNCITY_IDENTITY_URL"], "parking": parking_server.url})
    async with gw.client() as client:
        discovery = await client.get("/.well-known/openid-configuration")
        jwks = await client.get("/oauth2/jwks")
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
        window = {"start_at": start.isoformat(), "end_at": (start + timedelta(hours=1)).isoformat()}
        lots = await client.get(
            "/v1/parking/lots",
            params={"lat": "16.0544", "lon": "108.2022", "radius_m": "2000", "vehicle_type": "car", **window},
        )
        mine = await client.get(
            "/v1/parking/reservations", headers=tokens.bearer(tokens.user("citizen-1", ["parking"]))
        )
        no_scope = await client.get(
            "/v1/parking/reservations", headers=tokens.bearer(tokens.user("citizen-1", ["health"]))
        )
    assert discovery.status_code == 200 and "issuer" in discovery.json()
    assert jwks.status_code == 200 and jwks.json()["keys"]
    assert lots.status_code == 200, lots.text
    assert mine.status_code == 200, mine.text
    assert mine.json()["items"] == []
    assert no_scope.status_code == 403 and no_scope.json()["code"] == "insufficient_scope"
    for response in (discovery, lots, mine):
        assert response.headers["x-request-id"]
        assert response.headers["x-content-type-options"] == "nosniff"

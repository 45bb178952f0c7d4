"""Route policies at the edge: public, a token, a person's token, scopes any/all; what reaches the service."""

from __future__ import annotations

import pytest

from gateway.routes import ROUTES, Policy, Route, match
from tests.helpers.tokens import TokenFactory


async def test_public_route_needs_no_token(start_gateway, upstream) -> None:
    gw = start_gateway()
    async with gw.client() as client:
        response = await client.get("/v1/parking/lots", params={"lat": "16.06", "lon": "108.2"})
    assert response.status_code == 200
    assert response.json()["path"] == "/v1/parking/lots"
    assert response.json()["query"] == "lat=16.06&lon=108.2"


async def test_protected_route_without_token_is_401_and_never_forwarded(start_gateway, upstream) -> None:
    gw = start_gateway()
    async with gw.client() as client:
        response = await client.get("/v1/parking/reservations")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["code"] == "unauthorized"
    assert upstream.calls == []


async def test_user_route_refuses_a_client_token(start_gateway, upstream, tokens: TokenFactory) -> None:
    gw = start_gateway()
    agency = tokens.client("demo-parking-operator", ["parking", "parking.lots.write"])
    async with gw.client() as client:
        response = await client.post("/v1/parking/reservations", json={}, headers=tokens.bearer(agency))
    assert response.status_code == 403
    assert response.json()["code"] == "user_token_required"
    assert upstream.calls == []


async def test_scope_missing_is_403_insufficient_scope_naming_it(start_gateway, upstream, tokens) -> None:
    gw = start_gateway()
    async with gw.client() as client:
        response = await client.get("/v1/health/appointments", headers=tokens.bearer(tokens.user("u1", ["parking"])))
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "insufficient_scope"
    assert body["required_scopes"] == ["health", "health.schedules.write", "health.records.write"]
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert 'scope="health health.schedules.write health.records.write"' in response.headers["www-authenticate"]
    assert upstream.calls == []


async def test_any_of_scopes_admits_each_of_them(start_gateway, upstream, tokens) -> None:
    gw = start_gateway()
    async with gw.client() as client:
        person = await client.get("/v1/health/appointments", headers=tokens.bearer(tokens.user("u1", ["health"])))
        facility = tokens.client("demo-hospital", ["health.schedules.write"])
        agency = await client.get("/v1/health/schedules", headers=tokens.bearer(facility))
    assert person.status_code == 200 and agency.status_code == 200
    assert [c["path"] for c in upstream.calls] == ["/v1/health/appointments", "/v1/health/schedules"]


async def test_all_of_scopes_policy(monkeypatch: pytest.MonkeyPatch, start_gateway, upstream, tokens) -> None:
    # No platform route needs two scopes at once today; the table supports it, so check the mechanism
    # on an "all" entry placed first in its bucket.
    import gateway.routes as routes

    strict = Route("/v1/tuition/strict", "tuition", Policy(scopes=("tuition", "openid"), scopes_mode="all")).compiled()
    monkeypatch.setitem(routes._BUCKETS, "/v1/tuition", (strict, *routes._BUCKETS["/v1/tuition"]))
    monkeypatch.setattr(routes, "_MATCHED", {})
    gw = start_gateway()
    async with gw.client() as client:
        one = await client.get("/v1/tuition/strict", headers=tokens.bearer(tokens.user("u1", ["tuition"])))
        both = await client.get("/v1/tuition/strict", headers=tokens.bearer(tokens.user("u1", ["tuition", "openid"])))
    assert one.status_code == 403 and one.json()["required_scopes"] == ["tuition", "openid"]
    assert "the scopes: tuition openid" in one.json()["detail"]
    assert both.status_code == 200


async def test_valid_token_is_forwarded_to_the_service(start_gateway, upstream, tokens) -> None:
    gw = start_gateway()
    token = tokens.user("u1", ["parking"])
    async with gw.client() as client:
        response = await client.post(
            "/v1/parking/reservations", json={"lot_id": "x"}, headers={**tokens.bearer(token), "Idempotency-Key": "k1"}
        )
    assert response.status_code == 200
    seen = upstream.calls[0]
    # The service receives the token itself (it verifies it again) and the body untouched.
    assert seen["headers"]["authorization"] == f"Bearer {token}"
    assert seen["headers"]["idempotency-key"] == "k1"
    assert seen["body"] == '{"lot_id":"x"}'
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"


async def test_method_not_in_table_is_405_and_unknown_path_404(start_gateway, upstream) -> None:
    gw = start_gateway()
    async with gw.client() as client:
        trace = await client.request("TRACE", "/v1/parking/lots")
        missing = await client.get("/v1/nothing-here")
    assert trace.status_code == 405 and trace.json()["code"] == "method_not_allowed"
    assert missing.status_code == 404
    assert upstream.calls == []


@pytest.mark.parametrize(
    ("method", "path", "auth", "rate"),
    [
        ("GET", "/.well-known/openid-configuration", "public", "public"),
        ("GET", "/oauth2/authorize", "public", "public"),
        ("POST", "/oauth2/authorize", "public", "signin"),
        ("POST", "/oauth2/token", "public", "token"),
        ("POST", "/oauth2/revoke", "public", "token"),
        ("POST", "/oauth2/introspect", "public", "token"),
        ("GET", "/oauth2/userinfo", "public", "read"),
        ("POST", "/oauth2/userinfo", "public", "read"),
        ("GET", "/oauth2/jwks", "public", "public"),
        ("GET", "/oauth2/login", "public", "public"),
        ("POST", "/oauth2/login", "public", "signin"),
        ("POST", "/oauth2/consent", "public", "signin"),
        ("POST", "/v1/identity/registrations", "public", "code"),
        ("POST", "/v1/identity/registrations/abc/verify", "public", "code"),
        ("POST", "/v1/identity/password-reset", "public", "code"),
        ("GET", "/v1/identity/me", "user", "read"),
        ("PATCH", "/v1/identity/me", "user", "write"),
        ("DELETE", "/v1/identity/me", "user", "signin"),
        ("GET", "/v1/identity/me/dependents", "user", "read"),
        ("POST", "/v1/identity/clients", "token", "write"),
        ("GET", "/v1/dev/outbox", "public", "public"),
        ("POST", "/v1/payments", "token", "payment"),
        ("GET", "/v1/payments", "token", "read"),
        ("GET", "/v1/payments/p1/receipt", "token", "read"),
        ("POST", "/v1/payments/p1/refunds", "token", "payment"),
        ("POST", "/v1/payments/webhooks/sandbox", "public", "webhook"),
        ("GET", "/v1/parking/lots", "public", "public"),
        ("GET", "/v1/parking/lots/l1/availability", "public", "public"),
        ("POST", "/v1/parking/reservations", "user", "payment"),
        ("POST", "/v1/parking/reservations/r1/extensions", "user", "payment"),
        ("POST", "/v1/parking/dev/events/ping", "public", "public"),
        ("POST", "/v1/parking/reservations/r1/extend", "token", "write"),
        ("POST", "/v1/parking/reservations/r1/cancel", "token", "write"),
        ("POST", "/v1/parking/lots", "token", "write"),
        ("GET", "/v1/health/slots", "public", "public"),
        ("GET", "/v1/health/facilities/f1", "public", "public"),
        ("POST", "/v1/health/appointments", "user", "payment"),
        ("GET", "/v1/health/me/records", "token", "read"),
        ("GET", "/v1/health/fhir/Slot", "token", "read"),
        ("POST", "/v1/tuition/students/import", "token", "write"),
        ("POST", "/v1/tuition/me/payments", "token", "payment"),
        ("GET", "/v1/tuition/me/invoices", "token", "read"),
        ("GET", "/v1/me/overview", "user", "read"),
    ],
)
def test_every_platform_route_has_a_policy(method: str, path: str, auth: str, rate: str) -> None:
    route = match(method, path)
    assert route is not None
    assert (route.policy.auth, route.policy.rate) == (auth, rate)


def test_table_invariants() -> None:
    for route in ROUTES:
        policy = route.policy
        if policy.rate in ("signin", "code", "token", "payment"):
            assert policy.retry is False, route
    assert match("GET", "/oauth2/authorize").policy.cors is False  # type: ignore[union-attr]
    assert match("POST", "/oauth2/authorize").policy.cors is False  # type: ignore[union-attr]
    assert match("POST", "/v1/parking/reservations").policy.holds  # type: ignore[union-attr]
    assert match("POST", "/v1/health/appointments").policy.holds  # type: ignore[union-attr]


def test_every_route_every_service_serves_has_a_policy_row(service_app) -> None:
    """The table covers each operation in each service's OpenAPI document (dev profile, so dev routes too)."""
    import re

    from shared.settings import SERVICE_NAMES

    missing = []
    for name in SERVICE_NAMES:
        for path, item in service_app(name).openapi()["paths"].items():
            if path in ("/healthz", "/readyz", "/metrics"):
                continue
            for method in item:
                if method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                    continue
                route = match(method.upper(), re.sub(r"\{[^}]+\}", "x1", path))
                if route is None or route.service != name:
                    missing.append(f"{name} {method.upper()} {path}")
    assert missing == []


async def test_dot_segments_are_refused(start_gateway, upstream) -> None:
    gw = start_gateway()
    async with gw.client() as client:
        encoded = await client.get("/v1/parking/lots/%2E%2E/reservations")
        raw = await client.get("/v1/health/facilities/x/%2e%2e/%2e%2e/me/records")
    assert encoded.status_code == 400 and encoded.json()["code"] == "invalid_path"
    assert raw.status_code == 400
    assert upstream.calls == []

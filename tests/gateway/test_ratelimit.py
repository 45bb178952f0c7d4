"""Rate limits in Redis (GCRA, one Lua script): bursts, refill, headers, per-route classes and dimensions,
Redis down (fail closed for sign-in, codes, tokens and payments; open for reads), the cap on booking holds."""

from __future__ import annotations

import asyncio
import re

from tests.helpers.tokens import TokenFactory

RATELIMIT = re.compile(r'^"(?P<name>[a-z]+-[a-z]+)";r=(?P<r>\d+);t=(?P<t>\d+)$')


async def test_burst_then_429_with_retry_after_and_headers(start_gateway, upstream) -> None:
    gw = start_gateway()
    async with gw.client() as client:
        # One-time-code routes: 5 per minute per IP, burst 5.
        answers = [await client.post("/v1/identity/registrations", json={}) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    first, limited = answers[0], answers[5]
    assert first.headers["ratelimit-policy"] == '"code-ip";q=5;w=60'
    state = RATELIMIT.match(first.headers["ratelimit"])
    assert state and state["name"] == "code-ip" and state["r"] == "4"
    assert [RATELIMIT.match(a.headers["ratelimit"])["r"] for a in answers[:5]] == ["4", "3", "2", "1", "0"]
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 12  # one request is restored every 12 s
    assert limited.headers["ratelimit"] == f'"code-ip";r=0;t={limited.headers["retry-after"]}'
    assert len(upstream.calls) == 5  # the refused request never reached identity


async def test_refill_lets_requests_through_again(start_gateway, upstream) -> None:
    gw = start_gateway(rate_limit_overrides={"public": {"rate": 2, "period_s": 1, "burst": 2}})
    async with gw.client() as client:
        statuses = [(await client.get("/v1/parking/lots")).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        await asyncio.sleep(0.55)  # one emission interval (500 ms) restores one request
        assert (await client.get("/v1/parking/lots")).status_code == 200
        assert (await client.get("/v1/parking/lots")).status_code == 429
        await asyncio.sleep(1.05)  # two intervals restore the whole burst, and no more
        assert [(await client.get("/v1/parking/lots")).status_code for _ in range(3)] == [200, 200, 429]


async def test_classes_are_per_route_and_people_are_counted_apart(start_gateway, upstream, tokens) -> None:
    gw = start_gateway(
        rate_limit_overrides={"read": {"rate": 1, "period_s": 60, "burst": 2}, "payment": {"burst": 1, "rate": 1}}
    )
    alice = tokens.bearer(tokens.user("alice", ["parking", "payments"]))
    bob = tokens.bearer(tokens.user("bob", ["parking", "payments"]))
    async with gw.client() as client:
        reads = [(await client.get("/v1/parking/reservations", headers=alice)).status_code for _ in range(3)]
        assert reads == [200, 200, 429]
        # A read travels upstream while Redis answers, so the refused one was sent but its answer
        # withheld; once refused, the person's reads stop at the edge until the retry time.
        assert len(upstream.calls) == 3
        again = await client.get("/v1/parking/reservations", headers=alice)
        assert again.status_code == 429 and again.headers["retry-after"]
        assert len(upstream.calls) == 3
        # Another person has their own allowance…
        assert (await client.get("/v1/parking/reservations", headers=bob)).status_code == 200
        # …and another class (bookings take the payment class) is counted separately.
        booking = await client.post("/v1/parking/reservations", json={}, headers={**alice, "Idempotency-Key": "a"})
        assert booking.status_code == 200
        assert booking.headers["ratelimit-policy"].startswith('"payment-sub";q=1;w=1')
        second = await client.post("/v1/parking/reservations", json={}, headers={**alice, "Idempotency-Key": "b"})
        assert second.status_code == 429


async def test_token_endpoint_counts_per_client_and_ip(start_gateway, upstream) -> None:
    gw = start_gateway(rate_limit_overrides={"token": {"rate": 1, "period_s": 60, "burst": 2}})
    basic = {"Authorization": "Basic ZGVtby1ob3NwaXRhbDpzZWNyZXQ="}  # demo-hospital:secret
    async with gw.client() as client:
        answers = [
            await client.post("/oauth2/token", data={"grant_type": "client_credentials"}, headers=basic)
            for _ in range(3)
        ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert '"token-client"' in answers[0].headers["ratelimit-policy"]
    assert '"token-ip"' in answers[0].headers["ratelimit-policy"]


async def test_redis_down_fails_closed_for_sensitive_routes_and_open_for_reads(
    start_gateway, upstream, tokens: TokenFactory, dead_url
) -> None:
    gw = start_gateway(redis_url=dead_url.replace("http", "redis"))
    user = tokens.bearer(tokens.user("u1", ["parking", "payments"]))
    agency = tokens.bearer(tokens.client("svc-parking", ["payments.write"]))
    async with gw.client() as client:
        closed = [
            await client.post("/oauth2/token", data={"grant_type": "client_credentials"}),
            await client.post("/oauth2/login", data={"phone": "+84905123456"}),
            await client.post("/v1/identity/registrations", json={}),
            await client.post("/v1/payments", json={}, headers={**agency, "Idempotency-Key": "k"}),
            await client.post("/v1/parking/reservations", json={}, headers={**user, "Idempotency-Key": "k"}),
        ]
        open_ = [
            await client.get("/v1/parking/lots"),
            await client.get("/v1/parking/reservations", headers=user),
            await client.get("/.well-known/openid-configuration"),
        ]
    for response in closed:
        assert response.status_code == 503, response.request.url
        assert response.json()["code"] == "rate_limiter_unavailable"
        assert response.headers["retry-after"] == "1"
    for response in open_:
        assert response.status_code == 200
        assert "ratelimit" not in response.headers
    assert [c["path"] for c in upstream.calls] == [
        "/v1/parking/lots",
        "/v1/parking/reservations",
        "/.well-known/openid-configuration",
    ]


async def test_active_booking_holds_are_capped_per_person(start_gateway, upstream, tokens) -> None:
    gw = start_gateway(max_active_holds=2)
    alice = tokens.bearer(tokens.user("alice", ["parking", "health"]))
    bob = tokens.bearer(tokens.user("bob", ["parking"]))

    async def book(headers: dict[str, str], key: str, path: str = "/v1/parking/reservations"):
        return await client.post(path, json={"lot_id": "l1"}, headers={**headers, "Idempotency-Key": key})

    async with gw.client() as client:
        assert (await book(alice, "k1")).status_code == 200
        # A retry with the same Idempotency-Key is the same hold, not a new one.
        assert (await book(alice, "k1")).status_code == 200
        # A booking the service refuses does not count.
        upstream.statuses["/v1/health/appointments"] = 409
        assert (await book(alice, "k2", "/v1/health/appointments")).status_code == 409
        upstream.statuses.clear()
        # Parking and health bookings share the cap.
        assert (await book(alice, "k3", "/v1/health/appointments")).status_code == 200
        capped = await book(alice, "k4")
        assert capped.status_code == 429
        assert capped.json()["code"] == "too_many_active_holds"
        assert int(capped.headers["retry-after"]) > 500  # the oldest hold lapses after the hold window
        # Other people are not affected; reads are not affected.
        assert (await book(bob, "k1")).status_code == 200
        assert (await client.get("/v1/parking/reservations", headers=alice)).status_code == 200
    assert sum(1 for c in upstream.calls if c["method"] == "POST") == 5


async def test_concurrent_requests_are_counted_exactly(start_gateway, upstream, tokens) -> None:
    # Checks arriving together share one script call; each is still counted atomically, in order.
    gw = start_gateway(rate_limit_overrides={"read": {"rate": 1, "period_s": 60, "burst": 10}})
    alice = tokens.bearer(tokens.user("alice", ["parking"]))
    async with gw.client() as client:
        answers = await asyncio.gather(*(client.get("/v1/parking/reservations", headers=alice) for _ in range(25)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 10 + [429] * 15
    remaining = sorted(int(RATELIMIT.match(a.headers["ratelimit"])["r"]) for a in answers if a.status_code == 200)
    assert remaining == list(range(10))


async def test_script_sent_in_full_when_redis_does_not_know_it(start_gateway, upstream) -> None:
    # As after a Redis restart or SCRIPT FLUSH (not done here: it is server-wide): EVALSHA answers
    # NOSCRIPT and the gateway sends the script itself. A SHA-1 Redis has never seen stands in for it.
    gw = start_gateway()
    async with gw.client() as client:
        assert "ratelimit" in (await client.get("/v1/parking/lots")).headers
        gw.app.limiter.script.sha = b"0" * 40
        again = await client.get("/v1/parking/lots")
    assert again.status_code == 200 and again.headers["ratelimit"].startswith('"public-ip";r=')

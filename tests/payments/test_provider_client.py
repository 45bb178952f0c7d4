"""The provider client against a mocked provider (respx): every failure mode keeps one key per operation."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from services.payments.provider.client import ProviderClient, ProviderRefused, ProviderUnavailable

BASE = "https://provider.test"


def intent(status: str = "requires_action", **extra: object) -> dict[str, object]:
    return {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 50_000,
        "amount_received": 0,
        "amount_refunded": 0,
        "currency": "vnd",
        "status": status,
        "created": 1_700_000_000,
        "metadata": {"payment_id": "p1"},
        "next_action": {"type": "redirect_to_url", "redirect_to_url": {"url": "https://wallet.test/pi_1"}},
        **extra,
    }


@pytest.fixture
def client() -> ProviderClient:
    # respx intercepts httpx's own transport; the platform's (shared/http11.py) is exercised against the real
    # sandbox by the flow tests and on its own in tests/shared/test_http11.py.
    return ProviderClient(
        BASE,
        "sk_test",
        timeout_s=0.5,
        retries=2,
        backoff_s=0.01,
        max_retry_after_s=0.05,
        transport=httpx.AsyncHTTPTransport(),
    )


async def create(client: ProviderClient):  # type: ignore[no-untyped-def]
    return await client.create_intent(
        idempotency_key="dncity_pay_abc", amount=50_000, description="fee", metadata={"payment_id": "p1"}
    )


def keys(route: respx.Route) -> list[str]:
    return [call.request.headers["Idempotency-Key"] for call in route.calls]


@respx.mock
async def test_success_sends_key_auth_and_body(client: ProviderClient) -> None:
    route = respx.post(f"{BASE}/v1/payment_intents").respond(200, json=intent())
    result = await create(client)
    assert result.id == "pi_1" and result.next_action and result.next_action.url == "https://wallet.test/pi_1"
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer sk_test"
    assert request.headers["Idempotency-Key"] == "dncity_pay_abc"
    assert json.loads(request.content)["amount"] == 50_000 and json.loads(request.content)["currency"] == "vnd"


@respx.mock
async def test_decline_is_a_definitive_refusal_without_retry(client: ProviderClient) -> None:
    route = respx.post(f"{BASE}/v1/payment_intents").respond(
        402, json={"error": {"type": "card_error", "code": "wallet_declined", "message": "Declined"}}
    )
    with pytest.raises(ProviderRefused) as info:
        await create(client)
    assert info.value.code == "wallet_declined" and info.value.status == 402
    assert route.call_count == 1


@respx.mock
async def test_timeout_is_unknown_outcome_and_retries_reuse_the_key(client: ProviderClient) -> None:
    route = respx.post(f"{BASE}/v1/payment_intents").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(ProviderUnavailable):
        await create(client)
    assert route.call_count == 3 and set(keys(route)) == {"dncity_pay_abc"}


@respx.mock
async def test_5xx_then_success(client: ProviderClient) -> None:
    route = respx.post(f"{BASE}/v1/payment_intents").mock(
        side_effect=[
            httpx.Response(500, json={"error": {"code": "api_error"}}),
            httpx.Response(503),
            httpx.Response(200, json=intent()),
        ]
    )
    assert (await create(client)).id == "pi_1"
    assert route.call_count == 3 and set(keys(route)) == {"dncity_pay_abc"}


@respx.mock
async def test_429_honours_retry_after_then_succeeds(client: ProviderClient) -> None:
    route = respx.post(f"{BASE}/v1/payment_intents").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0.01"}, json={"error": {"code": "rate_limited"}}),
            httpx.Response(200, json=intent()),
        ]
    )
    assert (await create(client)).id == "pi_1"
    assert route.call_count == 2 and set(keys(route)) == {"dncity_pay_abc"}


@respx.mock
async def test_429_exhausted_is_unknown_not_refused(client: ProviderClient) -> None:
    respx.post(f"{BASE}/v1/payment_intents").respond(429, json={"error": {"code": "rate_limited"}})
    with pytest.raises(ProviderUnavailable):
        await create(client)


@respx.mock
async def test_malformed_json_is_unknown_outcome(client: ProviderClient) -> None:
    route = respx.post(f"{BASE}/v1/payment_intents").respond(
        200, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    with pytest.raises(ProviderUnavailable):
        await create(client)
    assert route.call_count == 3
    # JSON of the wrong shape is no better than none.
    respx.get(f"{BASE}/v1/payment_intents/pi_1").respond(200, json={"id": "pi_1"})
    with pytest.raises(ProviderUnavailable):
        await client.retrieve_intent("pi_1")


@respx.mock
async def test_response_lost_after_the_provider_acted_replays_the_same_intent(client: ProviderClient) -> None:
    created: list[str] = []

    def provider(request: httpx.Request) -> httpx.Response:
        key = request.headers["Idempotency-Key"]
        if not created:
            created.append(key)  # the provider acts…
            raise httpx.RemoteProtocolError("connection closed before the response")  # …the answer is lost
        assert key in created  # the retry carries the same key: the provider replays, no second intent
        return httpx.Response(200, json=intent())

    route = respx.post(f"{BASE}/v1/payment_intents").mock(side_effect=provider)
    assert (await create(client)).id == "pi_1"
    assert route.call_count == 2 and created == ["dncity_pay_abc"]


@respx.mock
async def test_post_without_key_is_a_programming_error(client: ProviderClient) -> None:
    with pytest.raises(ValueError):
        await client._call("POST", "/v1/refunds", json={})


@respx.mock
async def test_list_by_day_follows_pages(client: ProviderClient) -> None:
    from datetime import date

    first = {"object": "list", "data": [intent(id="pi_1")], "has_more": True}
    second = {"object": "list", "data": [intent(id="pi_2")], "has_more": False}
    route = respx.get(f"{BASE}/v1/payment_intents").mock(
        side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=second)]
    )
    items = await client.list_intents_for_day(date(2026, 1, 2))
    assert [i.id for i in items] == ["pi_1", "pi_2"]
    assert route.calls[0].request.url.params["day"] == "2026-01-02"
    assert route.calls[1].request.url.params["starting_after"] == "pi_1"

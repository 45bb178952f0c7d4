"""The service-to-service client: tracing headers, timeouts, retries only when safe."""

from __future__ import annotations

import httpx
import pytest
import respx

from shared.http import ServiceClient
from shared.http11 import Http11Transport
from shared.observability import bind_context, parse_traceparent

URL = "http://payments.internal/v1/payments"


@pytest.fixture
def client():
    # httpx's own transport, which respx intercepts: these tests are about the client's rules. The
    # platform's transport (the default, below) is tested over real sockets in test_http11.py.
    return ServiceClient(retries=2, backoff_base=0.001, transport=httpx.AsyncHTTPTransport())


def test_the_default_transport_is_the_platforms_own() -> None:
    assert isinstance(ServiceClient().client._transport, Http11Transport)


@respx.mock
async def test_forwards_request_id_and_child_traceparent(client: ServiceClient) -> None:
    bind_context("req-42", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    route = respx.get(URL).respond(200, json={})
    await client.get(URL)
    sent = route.calls.last.request.headers
    assert sent["x-request-id"] == "req-42"
    trace_id, span, _ = parse_traceparent(sent["traceparent"])  # type: ignore[misc]
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" and span != "00f067aa0ba902b7"


@respx.mock
async def test_get_is_retried_on_503_and_connect_errors(client: ServiceClient) -> None:
    route = respx.get(URL).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(503), httpx.Response(200, json={"ok": 1})]
    )
    response = await client.get(URL)
    assert response.status_code == 200 and route.call_count == 3


@respx.mock
async def test_retries_give_up_with_the_last_answer(client: ServiceClient) -> None:
    route = respx.get(URL).respond(503)
    assert (await client.get(URL)).status_code == 503
    assert route.call_count == 3


@respx.mock
async def test_post_without_idempotency_key_is_never_retried(client: ServiceClient) -> None:
    route = respx.post(URL).respond(503)
    assert (await client.post(URL, json={})).status_code == 503
    assert route.call_count == 1
    timeout_route = respx.post(URL + "/slow").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(httpx.ReadTimeout):
        await client.post(URL + "/slow", json={})
    assert timeout_route.call_count == 1


@respx.mock
async def test_post_with_idempotency_key_is_retried(client: ServiceClient) -> None:
    route = respx.post(URL).mock(side_effect=[httpx.Response(502), httpx.Response(201, json={"id": "p1"})])
    response = await client.post(URL, json={}, headers={"Idempotency-Key": "k"})
    assert response.status_code == 201 and route.call_count == 2
    assert all(c.request.headers["idempotency-key"] == "k" for c in route.calls)


@respx.mock
async def test_client_errors_are_not_retried(client: ServiceClient) -> None:
    route = respx.get(URL).respond(404)
    assert (await client.get(URL)).status_code == 404 and route.call_count == 1

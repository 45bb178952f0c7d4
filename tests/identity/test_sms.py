"""The pluggable SMS sender and the dev outbox's visibility."""

from __future__ import annotations

import httpx
import pytest
import respx
from sqlalchemy import func, select

from services.identity.accounts.models import Account
from services.identity.app import create_app
from services.identity.settings import IdentitySettings
from services.identity.sms.sender import DevOutboxSender, HttpSmsSender, build_sender
from shared.errors import ServiceUnavailable
from shared.settings import ConfigError, PlatformSettings
from tests.helpers.asgi import running
from tests.identity.helpers import citizen_body


async def test_no_dev_outbox_without_dev_endpoints() -> None:
    app = create_app(IdentitySettings(), PlatformSettings(dev_endpoints=False))
    async with running(app) as client:
        assert (await client.get("/v1/dev/outbox", params={"to": "0905123456"})).status_code == 404
        assert "/v1/dev/outbox" not in app.openapi()["paths"]


def test_sender_selection() -> None:
    assert isinstance(build_sender(IdentitySettings(), PlatformSettings()), DevOutboxSender)
    with pytest.raises(ConfigError):
        build_sender(IdentitySettings(), PlatformSettings(profile="prod"))
    with pytest.raises(ConfigError):
        build_sender(IdentitySettings(sms_sender="http"), PlatformSettings())
    with pytest.raises(ConfigError):
        build_sender(IdentitySettings(sms_sender="carrier-pigeon"), PlatformSettings())
    http = build_sender(
        IdentitySettings(sms_sender="http", sms_gateway_url="https://sms.example.vn/send"),
        PlatformSettings(profile="prod"),
    )
    assert isinstance(http, HttpSmsSender)


@respx.mock
async def test_http_sender_posts_to_the_gateway() -> None:
    route = respx.post("https://sms.example.vn/send").mock(return_value=httpx.Response(202))
    sender = HttpSmsSender("https://sms.example.vn/send", "gateway-token-123")
    await sender.send(None, to="+84905123456", body="Xin chao", kind="test")  # type: ignore[arg-type]
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer gateway-token-123"
    assert request.read() == b'{"to":"+84905123456","body":"Xin chao"}'


@respx.mock
async def test_http_sender_failure_is_a_503() -> None:
    respx.post("https://sms.example.vn/send").mock(return_value=httpx.Response(500))
    sender = HttpSmsSender("https://sms.example.vn/send", "t")
    with pytest.raises(ServiceUnavailable):
        await sender.send(None, to="+84905123456", body="x", kind="test")  # type: ignore[arg-type]


async def test_registration_with_a_failing_gateway_stores_nothing() -> None:
    settings = IdentitySettings(sms_sender="http", sms_gateway_url="https://sms.example.vn/send")
    app = create_app(settings, PlatformSettings())
    async with running(app) as client:
        with respx.mock(assert_all_called=False) as mock:
            mock.route(host="testserver").pass_through()
            mock.post("https://sms.example.vn/send").mock(return_value=httpx.Response(503))
            response = await client.post("/v1/identity/registrations", json=citizen_body())
        assert response.status_code == 503 and response.json()["code"] == "sms_unavailable"
        async with app.state.db.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Account)) == 0

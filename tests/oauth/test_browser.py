"""A real browser (Debian's Chromium, driven by Playwright) on a phone-sized screen signs in and
consents; the app's loopback redirect receives the code."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.helpers.live import LiveServer
from tests.oauth.conftest import register
from tests.oauth.flow import PASSWORD, pkce
from tests.oauth.test_code_flow import exchange

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.browser


class CallbackApp:
    """The relying party's redirect endpoint: remembers what it received."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []

        async def callback(request: Request) -> PlainTextResponse:
            self.received.append(dict(request.query_params))
            return PlainTextResponse("signed in")

        async def healthz(request: Request) -> PlainTextResponse:
            return PlainTextResponse("ok")

        self.app = Starlette(routes=[Route("/callback", callback), Route("/healthz", healthz)])


async def test_chromium_signs_in_and_consents_on_a_phone(via_gateway, person) -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            "Chromium is not installed at /usr/bin/chromium (apt-get install chromium); "
            "the browser sign-in test cannot run on this machine"
        )
    playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
    issuer = via_gateway
    rp = CallbackApp()
    rp_server = LiveServer(rp.app).start()
    redirect_uri = f"{rp_server.url}/callback"
    client_id, _ = await register(
        client_id="browser-app",
        name="Ứng dụng thử nghiệm",
        client_type="public",
        grant_types=["authorization_code"],
        redirect_uris=["http://127.0.0.1/callback"],
        scopes=["openid", "profile", "phone"],
    )
    verifier, challenge = pkce()
    url = f"{issuer}/oauth2/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile phone",
            "state": "browser-state",
            "nonce": "n-1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    try:
        async with playwright_api.async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=str(CHROMIUM),
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            context = await browser.new_context(
                viewport={"width": 360, "height": 740},
                locale="vi-VN",
                device_scale_factor=2,
                is_mobile=True,
                has_touch=True,
            )
            page = await context.new_page()
            response = await page.goto(url)
            assert response is not None and response.ok
            assert "Đăng nhập Da Nang ID" in await page.title()
            csp = response.headers.get("content-security-policy", "")
            assert "frame-ancestors 'none'" in csp
            # Readable on a 360-px screen: nothing wider than the viewport, inputs at least 16 px.
            assert await page.evaluate("document.documentElement.scrollWidth") <= 360
            font = await page.evaluate("getComputedStyle(document.querySelector('#login')).fontSize")
            assert float(font.removesuffix("px")) >= 16
            cookies = {c["name"]: c for c in await context.cookies()}
            assert cookies["dnid_browser"]["httpOnly"] and cookies["dnid_browser"]["sameSite"] == "Lax"
            await page.fill("#login", "0905 123 456")  # the national format is accepted too
            await page.fill("#password", PASSWORD)
            await page.click("#signin")
            await page.wait_for_selector("#allow")
            assert "Cho phép truy cập" in await page.title()
            assert "Ứng dụng thử nghiệm" in await page.content()
            assert "Số điện thoại của bạn" in await page.content()
            assert await page.evaluate("document.documentElement.scrollWidth") <= 360
            session_cookie = {c["name"]: c for c in await context.cookies()}["dnid_session"]
            assert session_cookie["httpOnly"] and session_cookie["sameSite"] == "Lax"
            await page.click("#allow")
            await page.wait_for_url(redirect_uri + "*")
            await browser.close()
        for _ in range(50):
            if rp.received:
                break
            await asyncio.sleep(0.05)
        received = rp.received[-1]
        assert received["state"] == "browser-state" and received["iss"] == issuer and received["code"]
        import httpx

        async with httpx.AsyncClient(base_url=issuer) as client:
            token = await exchange(client, client_id, received["code"], verifier, redirect_uri=redirect_uri)
        assert token.status_code == 200 and token.json()["id_token"]
    finally:
        rp_server.stop()

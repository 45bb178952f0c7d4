"""Drive the authorization endpoint like a browser would (cookies, forms, redirects)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

PASSWORD = "Mật-khẩu-rất-dài-2026"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def rid_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["rid"][0]


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Authorized:
    location: str
    params: dict[str, str]
    verifier: str | None


def auth_params(
    client_id: str,
    redirect_uri: str,
    *,
    scope: str = "openid profile",
    state: str = "st-1",
    challenge: str | None = None,
    **extra: str,
) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": secrets.token_urlsafe(8),
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    return params


async def sign_in(
    client: httpx.AsyncClient, location: str, *, login: str = "+84905123456", password: str = PASSWORD
) -> httpx.Response:
    """From a redirect to /oauth2/signin: fill in the form; returns the POST's response."""
    assert location.startswith("/oauth2/signin"), location
    page = await client.get(location)
    assert page.status_code == 200, page.text
    return await client.post(
        "/oauth2/signin",
        data={"rid": rid_of(location), "csrf_token": csrf_of(page.text), "login": login, "password": password},
    )


async def consent(client: httpx.AsyncClient, location: str, decision: str = "allow") -> httpx.Response:
    assert location.startswith("/oauth2/consent"), location
    page = await client.get(location)
    assert page.status_code == 200, page.text
    return await client.post(
        "/oauth2/consent", data={"rid": rid_of(location), "csrf_token": csrf_of(page.text), "decision": decision}
    )


async def authorize(
    client: httpx.AsyncClient,
    params: dict[str, str],
    *,
    login: str = "+84905123456",
    password: str = PASSWORD,
    approve: bool = True,
) -> str:
    """The whole browser side: authorize → sign in (if needed) → consent (if asked) → client redirect."""
    response = await client.get("/oauth2/authorize?" + urlencode(params))
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    if location.startswith("/oauth2/signin"):
        response = await sign_in(client, location, login=login, password=password)
        assert response.status_code == 303, response.text
        location = response.headers["location"]
    if location.startswith("/oauth2/consent"):
        response = await consent(client, location, "allow" if approve else "deny")
        assert response.status_code == 303, response.text
        location = response.headers["location"]
    return location


async def code_for(client: httpx.AsyncClient, client_id: str, redirect_uri: str, **kw: str) -> tuple[str, str]:
    verifier, challenge = pkce()
    location = await authorize(client, auth_params(client_id, redirect_uri, challenge=challenge, **kw))
    query = query_of(location)
    assert "code" in query, location
    return query["code"], verifier

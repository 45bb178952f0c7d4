"""The FastAPI ↔ Authlib adapter and the redirect-URI rule, in isolation."""

from __future__ import annotations

import pytest
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from starlette.requests import Request

from services.identity.oauth.adapter import CoreResponse, read_request, to_response
from services.identity.oauth.server import redirect_uri_matches


def starlette_request(
    method: str, path: str, query: str = "", body: bytes = b"", content_type: str = "application/x-www-form-urlencoded"
) -> Request:
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "root_path": "",
        "scheme": "http",
        "server": ("internal", 8101),
        "client": ("127.0.0.1", 1),
        "headers": [(b"content-type", content_type.encode()), (b"authorization", b"Basic eDp5")],
    }
    return Request(scope, receive)


async def test_post_reads_the_form_not_the_query() -> None:
    request = starlette_request(
        "POST", "/oauth2/token", "grant_type=password", b"grant_type=client_credentials&scope=a+b&scope=c"
    )
    core = await read_request(request, "https://id.danang.gov.vn/")
    assert core.uri == "https://id.danang.gov.vn/oauth2/token?grant_type=password"
    assert core.payload.grant_type == "client_credentials"
    assert core.form["scope"] == "a b" and core.duplicated() == ["scope"]
    assert core.headers.get("Authorization") == "Basic eDp5"


async def test_get_reads_the_query() -> None:
    core = await read_request(
        starlette_request("GET", "/oauth2/authorize", "response_type=code&state=x%20y"), "https://id.danang.gov.vn"
    )
    assert core.payload.response_type == "code" and core.payload.state == "x y" and core.form == {}


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b'{"grant_type": "x"}', "application/json"),
        (b"a=%ZZ&&", "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "application/x-www-form-urlencoded"),
    ],
)
async def test_non_form_bodies_are_invalid_requests(body: bytes, content_type: str) -> None:
    with pytest.raises(InvalidRequestError):
        await read_request(
            starlette_request("POST", "/oauth2/token", body=body, content_type=content_type), "https://id.danang.gov.vn"
        )


def test_responses() -> None:
    redirect = CoreResponse(302, "", [("Location", "https://rp.example/cb?code=1")])
    redirect.location = redirect.location + "&iss=x"  # what RFC 9207's hook does
    response = to_response(redirect, redirect_status=303)
    assert response.status_code == 303 and response.headers["location"].endswith("&iss=x")
    token = to_response(CoreResponse(200, {"access_token": "t"}, [("Content-Type", "application/json")]))
    assert token.status_code == 200 and token.headers["cache-control"] == "no-store"
    assert token.body == b'{"access_token":"t"}'


@pytest.mark.parametrize(
    "registered,presented,ok",
    [
        ("https://a.example/cb", "https://a.example/cb", True),
        ("https://a.example/cb", "https://a.example/cb/", False),
        ("https://a.example/cb", "https://A.example/cb", False),
        ("https://a.example/cb", "https://a.example:443/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:50000/cb", True),
        ("http://127.0.0.1:8900/cb", "http://127.0.0.1:50000/cb", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:50000/cb?x=1", False),
        ("http://127.0.0.1/cb", "http://127.0.0.1:99999/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.2:5000/cb", False),
        ("http://127.0.0.1/cb", "http://localhost:5000/cb", False),
        ("http://[::1]/cb", "http://[::1]:5000/cb", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb#x", False),
        ("vn.app:/cb", "vn.app:/cb", True),
        ("vn.app:/cb", "vn.app:/cb2", False),
    ],
)
def test_redirect_uri_rule(registered: str, presented: str, ok: bool) -> None:
    assert redirect_uri_matches(registered, presented) is ok

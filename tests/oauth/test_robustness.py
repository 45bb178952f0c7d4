"""Malformed requests get OAuth errors (4xx), never a 500."""

from __future__ import annotations

import pytest

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    "body,headers",
    [
        ("", {}),
        ("grant_type=", {}),
        ("grant_type=authorization_code", {"Authorization": "Basic !!!notbase64"}),
        ("grant_type=authorization_code&client_id=test-mobile&code=x", {}),
        ("grant_type=refresh_token&client_id=test-mobile&refresh_token=" + "x" * 500, {}),
        (
            "grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            "&client_assertion=a.b.c",
            {},
        ),
        (
            "grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            "&client_assertion=eyJhbGciOiJub25lIn0.eyJzdWIiOjF9.",
            {},
        ),
        ("grant_type=client_credentials", {"Authorization": "Basic " + "dGVzdC1ob3NwaXRhbDo="}),  # empty secret
        ("grant_type=client_credentials", {"Authorization": "Bearer x"}),
        ("%%%", {}),
        ("grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id=test-mobile", {}),
        ("grant_type=client_credentials&scope=" + "a" * 5000, {"Authorization": "Basic dGVzdC1ob3NwaXRhbDp4"}),
    ],
)
async def test_token_endpoint_garbage(identity, mobile, agency, body, headers) -> None:
    response = await identity.post("/oauth2/token", content=body, headers={**FORM, **headers})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]


async def test_token_endpoint_refuses_json(identity, agency) -> None:
    response = await identity.post("/oauth2/token", json={"grant_type": "client_credentials"}, auth=agency)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", ["/oauth2/revoke", "/oauth2/introspect"])
@pytest.mark.parametrize("body", ["", "token=", "token=a.b.c", "token=x&token_type_hint=weird", "%%%"])
async def test_revoke_and_introspect_garbage(identity, agency, path, body) -> None:
    response = await identity.post(path, content=body, headers=FORM, auth=agency)
    assert response.status_code < 500, response.text


@pytest.mark.parametrize(
    "query",
    [
        "",
        "response_type=code",
        "client_id=test-mobile",
        "client_id=test-mobile&response_type=code",
        "client_id=test-mobile&response_type=code&redirect_uri=vn.gov.danang.superapp:/oauth2redirect&scope=openid"
        "&code_challenge=short&code_challenge_method=S256",
        "client_id=test-mobile&client_id=other&response_type=code",
        "client_id=" + "x" * 300 + "&response_type=code",
        "client_id=test-mobile&response_type=code&redirect_uri=vn.gov.danang.superapp:/oauth2redirect&scope=openid"
        "&code_challenge=" + "a" * 43 + "&code_challenge_method=S256&max_age=abc",
        "client_id=test-mobile&response_type=code&redirect_uri=vn.gov.danang.superapp:/oauth2redirect&scope=openid"
        "&code_challenge=" + "a" * 43 + "&code_challenge_method=S256&request=eyJ",
        "client_id=test-mobile&response_type=code&redirect_uri=vn.gov.danang.superapp:/oauth2redirect&scope=openid"
        "&code_challenge=" + "a" * 43 + "&code_challenge_method=S256&prompt=none%20login",
    ],
)
async def test_authorize_garbage(identity, mobile, query) -> None:
    response = await identity.get("/oauth2/authorize?" + query)
    assert response.status_code in (302, 400), response.text
    if response.status_code == 302:
        location = response.headers["location"]
        assert location.startswith(("vn.gov.danang.superapp:/oauth2redirect?", "/oauth2/signin")), location
        if "error=" in location:
            assert "iss=" in location


async def test_userinfo_garbage(identity) -> None:
    for headers in ({"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer a.b.c"}):
        assert (await identity.get("/oauth2/userinfo", headers=headers)).status_code == 401
    response = await identity.post("/oauth2/userinfo", content="%%%", headers=FORM)
    assert response.status_code in (400, 401)

"""Level 2: an authorised agency verifies a person (scope identity.verify)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.identity.accounts.models import Account
from tests.helpers.tokens import TokenFactory
from tests.identity.helpers import citizen_body, foreigner_body, register, register_and_verify


async def test_agency_raises_a_citizen_to_level_2(
    client: httpx.AsyncClient, app: FastAPI, tokens: TokenFactory
) -> None:
    body = citizen_body()
    sub = await register_and_verify(client, body)
    agency = tokens.bearer(tokens.client("demo-agency-portal", ["identity.verify"]))
    response = await client.post(
        "/v1/identity/verifications",
        headers=agency,
        json={
            "citizen_id": body["citizen_id"],
            "date_of_birth": body["date_of_birth"],
            "method": "in_person",
            "evidence_reference": "UBND-HC-2026-0815",
            "officer_id": "HC-017",
        },
    )
    assert response.status_code == 201, response.text
    data = response.json()
    assert (data["sub"], data["level"], data["acr"]) == (sub, 2, "urn:dncity:loa:2")
    assert (data["agency_client_id"], data["officer_id"], data["method"]) == (
        "demo-agency-portal",
        "HC-017",
        "in_person",
    )
    me = await client.get("/v1/identity/me", headers=tokens.bearer(tokens.user(sub)))
    assert me.json()["level"] == 2 and me.json()["acr"] == "urn:dncity:loa:2"
    audit = (await client.get("/v1/identity/me/audit", headers=tokens.bearer(tokens.user(sub)))).json()["items"]
    level = next(e for e in audit if e["action"] == "level.changed" and e["details"]["to"] == 2)
    assert level["client_id"] == "demo-agency-portal" and level["details"]["from"] == 1
    assert any(e["action"] == "agency.accessed" and e["client_id"] == "demo-agency-portal" for e in audit)
    async with app.state.db.sessionmaker() as session:
        account = await session.get(Account, sub)
        assert account is not None and account.level2_at is not None


async def test_foreigner_by_passport(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    body = foreigner_body()
    sub = await register_and_verify(client, body)
    agency = tokens.bearer(tokens.client("demo-immigration", ["identity.verify"]))
    response = await client.post(
        "/v1/identity/verifications",
        headers=agency,
        json={
            "passport_number": body["passport_number"],
            "nationality": "kor",
            "method": "in_person",
            "evidence_reference": "XNC-DN-55",
            "officer_id": "XNC-9",
        },
    )
    assert response.status_code == 201 and response.json()["sub"] == sub


async def test_verification_rules(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    body = citizen_body()
    pending = await register(client, citizen_body())
    sub = await register_and_verify(client, body)
    agency = tokens.bearer(tokens.client("demo-agency-portal", ["identity.verify"]))
    base = {"method": "in_person", "evidence_reference": "R-1", "officer_id": "O-1"}
    # Scope and token kind.
    no_scope = tokens.bearer(tokens.client("demo-hospital", ["health.records.write"]))
    assert (
        await client.post("/v1/identity/verifications", headers=no_scope, json={**base, "sub": sub})
    ).status_code == 403
    user = tokens.bearer(tokens.user(sub, ["openid", "identity.verify"]))
    response = await client.post("/v1/identity/verifications", headers=user, json={**base, "sub": sub})
    assert response.status_code == 403 and response.json()["code"] == "client_token_required"
    assert (await client.post("/v1/identity/verifications", json={**base, "sub": sub})).status_code == 401
    # Exactly one reference; a known, active person; matching details.
    assert (await client.post("/v1/identity/verifications", headers=agency, json=base)).status_code == 422
    both = {**base, "sub": sub, "citizen_id": body["citizen_id"]}
    assert (await client.post("/v1/identity/verifications", headers=agency, json=both)).status_code == 422
    assert (
        await client.post("/v1/identity/verifications", headers=agency, json={**base, "method": "by_phone", "sub": sub})
    ).status_code == 422
    assert (
        await client.post("/v1/identity/verifications", headers=agency, json={**base, "citizen_id": "003095001234"})
    ).status_code == 422
    unknown = await client.post("/v1/identity/verifications", headers=agency, json={**base, "sub": "f" * 32})
    assert unknown.status_code == 404
    not_active = await client.post("/v1/identity/verifications", headers=agency, json={**base, "sub": pending["id"]})
    assert not_active.status_code == 404
    mismatch = await client.post(
        "/v1/identity/verifications", headers=agency, json={**base, "sub": sub, "date_of_birth": "1999-12-31"}
    )
    assert mismatch.status_code == 409 and mismatch.json()["code"] == "details_mismatch"
    me = await client.get("/v1/identity/me", headers=tokens.bearer(tokens.user(sub)))
    assert me.json()["level"] == 1

"""Personal-data rights: export everything; delete (sign-in fails, personal data gone, event out)."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from services.identity.accounts import service
from services.identity.accounts.models import Account, PhoneCode
from services.identity.privacy import EXPORTERS
from services.identity.profile.models import Dependent, DependentGuardian
from services.identity.sms.models import DevSms
from shared.errors import ProblemError
from tests.helpers.tokens import TokenFactory
from tests.identity.helpers import PASSWORD, citizen_body, citizen_id, register_and_verify

SECRET_COLUMNS = {
    "password_hash",
    "totp_secret_encrypted",
    "totp_pending_encrypted",
    "recovery_code_hashes",
    "totp_last_step",
}


async def _person_with_everything(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> tuple[str, dict[str, str], dict[str, str]]:
    body = citizen_body(phone="0905444555")
    sub = await register_and_verify(client, body)
    headers = tokens.bearer(tokens.user(sub))
    await client.patch(
        "/v1/identity/me", headers=headers, json={"address": "99 Nguyễn Văn Linh, Đà Nẵng", "email": "an@example.vn"}
    )
    born = date.today() - timedelta(days=365 * 6)
    await client.post(
        "/v1/identity/me/dependents",
        headers=headers,
        json={
            "full_name": "Nguyễn Bảo Ngọc",
            "date_of_birth": born.isoformat(),
            "citizen_id": citizen_id(born, female=True),
        },
    )
    agency = tokens.bearer(tokens.client("demo-agency-portal", ["identity.verify"]))
    await client.post(
        "/v1/identity/verifications",
        headers=agency,
        json={
            "citizen_id": body["citizen_id"],
            "method": "national_records",
            "evidence_reference": "CSDLQG-DC-7781",
            "officer_id": "DN-0042",
        },
    )
    return sub, headers, body


async def test_export_holds_every_personal_datum(client: httpx.AsyncClient, app: FastAPI, tokens: TokenFactory) -> None:
    sub, headers, body = await _person_with_everything(client, tokens)
    response = await client.get("/v1/identity/me/export", headers=headers)
    assert response.status_code == 200, response.text
    export = response.json()
    # Every column of the account except the secrets that protect it.
    account_columns = {c.key for c in Account.__table__.columns} - SECRET_COLUMNS
    assert account_columns <= set(export["account"])
    assert not SECRET_COLUMNS & set(export["account"])
    assert export["account"]["citizen_id"] == body["citizen_id"]  # in full: it is the owner's own copy
    assert export["account"]["address"] == "99 Nguyễn Văn Linh, Đà Nẵng"
    assert export["account"]["level"] == 2 and export["account"]["acr"] == "urn:dncity:loa:2"
    assert export["dependents"][0]["full_name"] == "Nguyễn Bảo Ngọc"
    assert export["identity_verifications"][0]["evidence_reference"] == "CSDLQG-DC-7781"
    actions = [e["action"] for e in export["audit"]]
    assert {
        "account.registered",
        "account.verified",
        "profile.updated",
        "dependent.added",
        "identity.verified",
        "level.changed",
        "agency.accessed",
    } <= set(actions)
    # Every module's exporter contributed (the OAuth provider adds its consents and grants here).
    async with app.state.db.sessionmaker() as session:
        for fn in EXPORTERS:
            for key in await fn(session, sub):
                assert key in export
    # Exporting is itself audited.
    audit = (await client.get("/v1/identity/me/audit", headers=headers)).json()["items"]
    assert audit[0]["action"] == "data.exported"


async def test_delete_erases_and_disables_sign_in(
    client: httpx.AsyncClient, app: FastAPI, tokens: TokenFactory
) -> None:
    sub, headers, body = await _person_with_everything(client, tokens)
    wrong = await client.request("DELETE", "/v1/identity/me", headers=headers, json={"password": "not my password"})
    assert wrong.status_code == 403
    missing = await client.request("DELETE", "/v1/identity/me", headers=headers, json={})
    assert missing.status_code == 422
    deleted = await client.request("DELETE", "/v1/identity/me", headers=headers, json={"password": PASSWORD})
    assert deleted.status_code == 204, deleted.text

    # Sign-in fails at once, by phone and by personal ID, with the old password.
    async with app.state.db.sessionmaker() as session:
        for login in (body["phone"], body["citizen_id"]):
            try:
                await service.authenticate(
                    session,
                    app.state.redis,
                    login=login,
                    password=PASSWORD,
                    client_ip="203.113.1.1",
                    client_id="dncity-mobile",
                )
                raise AssertionError("signed in after deletion")
            except ProblemError as exc:
                assert exc.code == "invalid_credentials"
    # A token issued before the deletion no longer reaches anything.
    assert (await client.get("/v1/identity/me", headers=headers)).status_code == 403

    async with app.state.db.sessionmaker() as session:
        account = await session.get(Account, sub)
        assert account is not None and account.status == "erased" and account.erased_at is not None
        for column in (
            "full_name",
            "phone_e164",
            "email",
            "date_of_birth",
            "address",
            "citizen_id",
            "password_hash",
            "totp_secret_encrypted",
        ):
            assert getattr(account, column) is None, column
        assert (await session.scalars(select(Dependent))).all() == []
        assert (await session.scalars(select(DependentGuardian))).all() == []
        assert (await session.scalars(select(PhoneCode).where(PhoneCode.account_id == sub))).all() == []
        assert (await session.scalars(select(DevSms).where(DevSms.to == "+84905444555"))).all() == []
        outbox = app.state.event_tables.outbox
        events = (await session.execute(select(outbox.c.type, outbox.c.data))).all()
    assert ("identity.account.erased", {"sub": sub}) in [(t, d) for t, d in events]

    # The phone and personal ID are free for a new registration (once the SMS cooldown has passed).
    for key in await app.state.redis.keys("dncity:identity:sms:*"):
        await app.state.redis.delete(key)
    again = await client.post("/v1/identity/registrations", json={**body, "full_name": "Nguyễn Văn An"})
    assert again.status_code == 201, again.text


async def test_erased_event_reaches_the_stream(client: httpx.AsyncClient, app: FastAPI, tokens: TokenFactory) -> None:
    import asyncio
    import json

    sub = await register_and_verify(client, citizen_body())
    headers = tokens.bearer(tokens.user(sub))
    assert (
        await client.request("DELETE", "/v1/identity/me", headers=headers, json={"password": PASSWORD})
    ).status_code == 204
    for _ in range(50):
        entries = await app.state.redis.xrange("dncity:events:identity")
        found = [json.loads(f[b"event"]) for _, f in entries if b"identity.account.erased" in f[b"event"]]
        if found:
            assert found[0]["data"] == {"sub": sub} and found[0]["subject"] == sub
            return
        await asyncio.sleep(0.1)
    raise AssertionError("identity.account.erased was not relayed")

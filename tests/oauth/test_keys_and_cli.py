"""Key rotation (`dncity keys rotate`), `dncity clients create` and the demo seed."""

from __future__ import annotations

import asyncio
import json

import jwt
from typer.testing import CliRunner

from dncity.cli import app as cli
from tests.helpers.asgi import running


async def test_rotation_publishes_before_signing_and_keeps_old_keys(service_app, agency) -> None:
    app = service_app("identity")
    async with running(app) as identity:

        def published() -> dict[str, dict]:
            return {k["kid"]: k for k in identity_jwks}

        identity_jwks = (await identity.get("/oauth2/jwks")).json()["keys"]
        before = published()
        old = (await identity.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=agency)).json()
        old_kid = jwt.get_unverified_header(old["access_token"])["kid"]
        assert old_kid in before

        result = await asyncio.to_thread(CliRunner().invoke, cli, ["keys", "rotate"])
        assert result.exit_code == 0, result.output
        now_signing = json.loads(result.output)["now_signing"]
        # The key that signs from now on was already published before the rotation.
        assert now_signing["ES256"] in before and now_signing["RS256"] in before
        assert now_signing["ES256"] != old_kid

        async with app.state.db.sessionmaker() as session:
            await app.state.keyring.load(session)  # what the reload task does within keyring_reload_s
        new = (await identity.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=agency)).json()
        assert jwt.get_unverified_header(new["access_token"])["kid"] == now_signing["ES256"]
        identity_jwks = (await identity.get("/oauth2/jwks")).json()["keys"]
        after = published()
        assert old_kid in after  # retired, still published until its last token expires
        assert len([k for k in after.values() if k["alg"] == "ES256"]) == 3  # retired, active, next
        for token in (old["access_token"], new["access_token"]):
            body = (await identity.post("/oauth2/introspect", data={"token": token}, auth=agency)).json()
            assert body["active"] is True


async def test_cli_creates_a_client_that_can_get_tokens(identity) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        [
            "clients",
            "create",
            "--name",
            "Bệnh viện thử",
            "--grant",
            "client_credentials",
            "--scope",
            "health.schedules.write",
            "--client-id",
            "cli-hospital",
        ],
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["client_id"] == "cli-hospital" and created["client_secret"]
    response = await identity.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(created["client_id"], created["client_secret"]),
    )
    assert response.status_code == 200
    bad = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["clients", "create", "--name", "x", "--grant", "client_credentials", "--scope", "not-a-scope"],
    )
    assert bad.exit_code != 0


async def test_demo_seed_clients_work(identity, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DNCITY_VAR_DIR", str(tmp_path))
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["seed", "demo"])
    assert result.exit_code == 0, result.output
    shown = {c["client_id"]: c for c in json.loads(result.output)["clients"]}
    assert shown["dncity-mobile"]["client_secret"] is None
    hospital = shown["demo-hospital"]
    response = await identity.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=("demo-hospital", hospital["client_secret"])
    )
    assert response.status_code == 200
    svc = shown["svc-parking"]
    response = await identity.post(
        "/oauth2/token",
        auth=("svc-parking", svc["client_secret"]),
        data={"grant_type": "client_credentials", "scope": "payments.write"},
    )
    assert response.status_code == 200

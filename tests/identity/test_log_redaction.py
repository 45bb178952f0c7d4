"""Logs never contain passwords, SMS codes, TOTP secrets, tokens or full personal ID numbers.

The flows run in a child process whose logging is configured fresh at INFO (the production level) with
its stdout and stderr captured, so every line the service writes is checked — not a mocked logger.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import asyncio, json, re, sys
import httpx, pyotp
from services.identity.app import create_app
from services.identity.accounts import service
from shared.errors import ProblemError
from tests.helpers.asgi import running
from tests.helpers.tokens import TokenFactory

PASSWORD = "Linh Ung pagoda 2024 ~"
NEW = "Son Tra peninsula 88 #"
CITIZEN_ID = "048092004321"
secrets = {"passwords": [PASSWORD, NEW, "wrong password guess 1"], "codes": [], "tokens": [],
           "ids": [CITIZEN_ID], "totp": []}

async def code_for(client, phone):
    sms = (await client.get("/v1/dev/outbox", params={"to": phone})).json()
    return re.search(r"\b(\d{6})\b", sms[0]["body"]).group(1)

async def main():
    app = create_app()
    async with running(app) as client:
        r = await client.post("/v1/identity/registrations", json={
            "kind": "citizen", "full_name": "Le Thi Thu", "phone": "0905321321", "password": PASSWORD,
            "date_of_birth": "1992-05-05", "citizen_id": CITIZEN_ID})
        assert r.status_code == 201, r.text
        reg = r.json()["id"]
        code = await code_for(client, "+84905321321")
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        secrets["codes"] += [code, wrong]
        assert (await client.post(f"/v1/identity/registrations/{reg}/verify", json={"code": wrong})).status_code == 400
        r = await client.post(f"/v1/identity/registrations/{reg}/verify", json={"code": code})
        sub = r.json()["sub"]
        # Bad input echoing secrets must not be logged either.
        await client.post("/v1/identity/registrations", json={"kind": "citizen", "full_name": "X",
            "phone": "0905321322", "password": "password1", "date_of_birth": "1992-05-05",
            "citizen_id": CITIZEN_ID})
        async with app.state.db.sessionmaker() as session:
            for pw in ("wrong password guess 1", PASSWORD):
                try:
                    await service.authenticate(session, app.state.redis, login=CITIZEN_ID, password=pw,
                                               client_ip="203.113.7.7", client_id="dncity-mobile")
                except ProblemError:
                    pass
            await session.commit()
        tokens = await TokenFactory.load()
        token = tokens.user(sub)
        secrets["tokens"].append(token)
        headers = tokens.bearer(token)
        await client.get("/v1/identity/me", params={"reveal": "identifiers"}, headers=headers)
        enrol = (await client.post("/v1/identity/me/totp", headers=headers)).json()
        secrets["totp"].append(enrol["secret"])
        confirm = await client.post("/v1/identity/me/totp/confirm", headers=headers,
                                    json={"code": pyotp.TOTP(enrol["secret"]).now()})
        secrets["codes"] += confirm.json()["recovery_codes"]
        await client.post("/v1/identity/me/password", headers=headers,
                          json={"current_password": "wrong password guess 1", "new_password": NEW})
        await client.post("/v1/identity/password-resets", json={"phone": "0905321321"})
        reset_code = await code_for(client, "+84905321321")
        secrets["codes"].append(reset_code)
        resets = (await client.post("/v1/identity/password-resets", json={"phone": "0905321321"}))
        await client.get("/v1/identity/me/export", headers=headers)
        await client.request("DELETE", "/v1/identity/me", headers=headers, json={"password": "not it at all 9"})
    print("SECRETS=" + json.dumps(secrets), file=sys.stderr)

asyncio.run(main())
"""


def test_logs_hold_no_secrets(tmp_path: Path) -> None:
    env = {**os.environ, "DNCITY_LOG_LEVEL": "INFO", "DNCITY_LOG_JSON": "true"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    marker = "SECRETS="
    secrets_line = next(line for line in result.stderr.splitlines() if line.startswith(marker))
    secrets = json.loads(secrets_line[len(marker) :])
    output = result.stdout + "\n".join(line for line in result.stderr.splitlines() if not line.startswith(marker))
    # The capture works: the service's own events are there.
    for event in ("account_registered", "signin_failed", "sms_stored", '"event": "request"'):
        assert event in output, event
    # Timestamps (microseconds) and random hex ids could contain any six digits by chance: set them aside.
    scrubbed = "\n".join(_without_ids(line) for line in output.splitlines())
    for kind, values in secrets.items():
        assert values, kind
        for value in values:
            assert value not in output if len(value) > 12 else _absent(value, scrubbed), f"a {kind} reached the logs"
    # Recovery codes are also checked without their hyphen.
    for value in secrets["codes"]:
        assert _absent(value.replace("-", ""), scrubbed)


def _without_ids(line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    for key in ("timestamp", "request_id", "traceparent"):
        record.pop(key, None)
    return json.dumps(record, ensure_ascii=False)


def _absent(value: str, text: str) -> bool:
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])", text) is None

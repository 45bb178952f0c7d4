"""The demo seed is idempotent and its accounts can really sign in."""

from __future__ import annotations

from pathlib import Path

from dncity.cli import database_url
from dncity.seed import seed_accounts, seed_clients
from services.identity.accounts.service import authenticate
from services.identity.clients.models import OAuthClient
from services.identity.clients.service import secret_matches
from shared.db import Database


async def test_demo_accounts_and_clients_are_idempotent_and_usable(tmp_path: Path) -> None:
    db = Database(database_url("identity"))
    try:
        async with db.sessionmaker() as session, session.begin():
            first_accounts = await seed_accounts(session, tmp_path)
            first_clients = await seed_clients(session, tmp_path)
        async with db.sessionmaker() as session, session.begin():
            assert await seed_accounts(session, tmp_path) == first_accounts
            assert await seed_clients(session, tmp_path) == first_clients
        assert {a["kind"] for a in first_accounts} == {"citizen", "foreigner"}
        async with db.sessionmaker() as session, session.begin():
            for demo in first_accounts:
                account = await authenticate(
                    session,
                    None,
                    login=demo["login"],
                    password=demo["password"],
                    client_ip="127.0.0.1",
                    client_id="dncity-mobile",
                )
                assert account.id == demo["sub"] and account.level == 1
            hospital = next(c for c in first_clients if c["client_id"] == "demo-hospital")
            client = await session.get(OAuthClient, "demo-hospital")
            assert client is not None and secret_matches(client, hospital["client_secret"])
            assert not secret_matches(client, "wrong")
    finally:
        await db.dispose()

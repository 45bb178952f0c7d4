"""Identity startup: make sure signing keys exist, load them, and follow rotations made elsewhere."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from fastapi import FastAPI

from services.identity.keys.service import Keyring, ensure_keys
from services.identity.settings import IdentitySettings

log = structlog.get_logger("identity.keys")


async def start_keyring(app: FastAPI) -> None:
    settings: IdentitySettings = app.state.settings
    keyring = Keyring(settings.key_encryption_secret)
    async with app.state.db.sessionmaker() as session, session.begin():
        await ensure_keys(session, settings.key_encryption_secret)
    async with app.state.db.sessionmaker() as session:
        await keyring.load(session)
    app.state.keyring = keyring

    async def follow() -> None:
        # `dncity keys rotate` runs in another process; pick up its promotion within the interval.
        while True:
            await asyncio.sleep(settings.keyring_reload_s)
            try:
                async with app.state.db.sessionmaker() as session:
                    await keyring.load(session)
            except Exception:
                log.exception("keyring_reload_failed")

    app.state.keyring_task = asyncio.create_task(follow())


async def stop_keyring(app: FastAPI) -> None:
    task = getattr(app.state, "keyring_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

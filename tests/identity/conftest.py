from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers.asgi import running


@pytest.fixture
async def identity(service_app: Callable[..., FastAPI]) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The identity app (dev profile, so the SMS outbox is readable) and an in-process client."""
    app = service_app("identity")
    async with running(app) as client:
        yield app, client


@pytest.fixture
async def client(identity: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return identity[1]


@pytest.fixture
def app(identity: tuple[FastAPI, httpx.AsyncClient]) -> FastAPI:
    return identity[0]


def problem_fields(response: httpx.Response) -> list[str]:
    body: dict[str, Any] = response.json()
    return [e["field"] for e in body.get("errors") or []]

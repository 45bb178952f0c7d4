"""Sentinels for the platform-wide defects tolerated in known_defects.py: each xfails (strictly) while
the defect exists, so fixing it turns this test red until the tolerance is removed."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel
from pydantic_settings import SettingsConfigDict
from sqlalchemy import MetaData

from shared.app import ServiceParts, create_service_app
from shared.errors import problem_responses
from shared.settings import PlatformSettings, ServiceSettings
from tests.contract.known_defects import BODY_PARSE_400_UNDECLARED


class _Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DNCITY_SENTINEL_", extra="ignore")
    service_name: str = "sentinel"


class _Thing(BaseModel):
    name: str


def _app() -> object:
    """The smallest service built the way every service is: only shared/ code decides the outcome."""
    router = APIRouter()

    @router.post("/v1/sentinel/things", status_code=201, responses=problem_responses(422))
    async def create_thing(thing: _Thing) -> _Thing:
        """Echo."""
        return thing

    return create_service_app(
        "sentinel",
        settings=_Settings(),
        metadata=MetaData(),
        parts=ServiceParts(routers=[router]),
        title="sentinel",
        platform=PlatformSettings(dev_endpoints=False),
    )


@pytest.mark.xfail(
    BODY_PARSE_400_UNDECLARED, strict=True, reason="known_defects.BODY_PARSE_400_UNDECLARED (shared/errors.py)"
)
async def test_a_body_that_is_not_utf8_gets_a_declared_status() -> None:
    app = _app()
    declared = app.openapi()["paths"]["/v1/sentinel/things"]["post"]["responses"]  # type: ignore[attr-defined]
    # No lifespan needed: the body is refused before any database or Redis work.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:  # type: ignore[arg-type]
        response = await client.post(
            "/v1/sentinel/things", content=b"\xff\xfe{", headers={"content-type": "application/json"}
        )
    assert 400 <= response.status_code < 500, response.text
    assert str(response.status_code) in declared, (response.status_code, response.text, sorted(declared))
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_malformed_json_is_a_declared_422_naming_the_body() -> None:
    """The control case: a UTF-8 body that is not JSON is already handled as the contract says."""
    app = _app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:  # type: ignore[arg-type]
        response = await client.post("/v1/sentinel/things", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")

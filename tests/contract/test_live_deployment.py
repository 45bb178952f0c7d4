"""The contract checks against a running deployment, as a QA team runs them:

    make contract BASE_URL=https://api.example.vn     # pytest tests/contract/test_live_deployment.py --base-url=…

The schema is the gateway's aggregated ``/openapi.json`` (every service behind one base URL); every
operation gets generated and fuzzed requests with the same checks and bounds as the in-process run.
Optional access tokens let the run reach past authentication:
``DNCITY_CONTRACT_USER_TOKEN`` (a person's token) and ``DNCITY_CONTRACT_AGENCY_TOKEN`` (an agency's).

Without ``--base-url`` these tests are deselected (see conftest.py): the normal suite starts no
deployment for them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.contract import live
from tests.contract.checks import auth_cycle, config

# As in-process, but strict: a QA run reports every defect, known or not.
LIVE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """Overrides the suite's per-test reset (empty tables, FLUSHDB of DNCITY_REDIS_URL): a run against a
    deployment must never touch the databases or the Redis its environment happens to point at."""


def test_deployment_answers_and_every_service_is_healthy(base_url: str) -> None:
    response = httpx.get(f"{base_url}/healthz", timeout=10)
    assert response.status_code == 200, response.text
    services = response.json()["services"]
    assert services and all(status == "ok" for status in services.values()), services
    document = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    assert document["info"].get("x-services-unavailable") == [], document["info"]


@pytest.fixture(scope="module")
def live_auth() -> Iterator[dict[str, str]]:
    return auth_cycle(os.environ.get("DNCITY_CONTRACT_USER_TOKEN"), os.environ.get("DNCITY_CONTRACT_AGENCY_TOKEN"))


if live.BASE_URL:
    schema = schemathesis.openapi.from_url(
        f"{live.BASE_URL}/openapi.json", config=config(), wait_for_schema=30, timeout=30
    )

    @schema.parametrize()
    def test_deployment_honours_its_openapi_contract(
        case: schemathesis.Case, live_auth: Iterator[dict[str, str]]
    ) -> None:
        case.call_and_validate(base_url=live.BASE_URL, headers=next(live_auth), checks=LIVE_CHECKS)

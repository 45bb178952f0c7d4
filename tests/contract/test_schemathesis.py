"""Schemathesis against every service in-process: generated and fuzzed requests, bounded per operation.

The schemas are the services' own documents, built from the code at collection time (the same builder
as ``make openapi``), one pytest item per operation. Each service runs in-process with its real lifespan
(database, Redis, event relay and consumers), started once for the module, with a real identity server
(JWKS, people's accounts) and the sandbox mobile-money provider on loopback ports beside it. Every
case is sent, in turn, without a token, with a person's token carrying every user scope at assurance
level 2, or with an agency token carrying every agency scope, so operations behind authorization are
exercised past their 401; the person is a real account registered with identity for the run.

Checks (tests/contract/checks.py): no 5xx, every status code and content type declared, every
response body valid against its schema. Known defects of other code: tests/contract/known_defects.py.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from schemathesis.python.asgi import ASGIClient, get_client, shutdown_lifespans

from dncity.cli import service_settings
from dncity.embedded_redis import free_port
from dncity.openapi_export import build_document
from services.identity.clients.scopes import AGENCY_SCOPES, USER_SCOPES
from shared.redis import create_redis
from shared.settings import SERVICE_NAMES, PlatformSettings
from tests.contract.checks import CHECKS, auth_cycle, config
from tests.helpers.live import LiveServer
from tests.helpers.tokens import TokenFactory

SERVICE_KEY = "x-dncity-service"
CONTRACT_AGENCY = "contract-test-agency"
BASE_URL = "http://testserver"


def _schema(service: str) -> schemathesis.BaseSchema:
    document = build_document(service)
    document[SERVICE_KEY] = service
    return schemathesis.openapi.from_dict(document, config=config())


class Services:
    """The services under test, each started (lifespan running) the first time a test needs it.

    Their neighbours run for real on loopback ports: identity (tokens' keys, people's accounts and
    dependents, service tokens), payments (parking, health booking and tuition take money through it) and
    the sandbox mobile-money provider that payments calls. Every service is told where they are, so no
    call leaves for a default address (where a developer's own `make run` may be listening).
    """

    def __init__(self) -> None:
        from services.payments.sandbox.app import create_app as sandbox_app
        from services.payments.sandbox.settings import SandboxSettings

        ports = {name: free_port() for name in ("identity", "payments", "sandbox_provider")}
        self.platform = PlatformSettings(**{f"{name}_url": f"http://127.0.0.1:{p}" for name, p in ports.items()})
        self.neighbours: list[LiveServer] = []
        for name in ("identity", "payments"):
            app = importlib.import_module(f"services.{name}.app").create_app(service_settings(name), self.platform)
            self.neighbours.append(LiveServer(app, port=ports[name]).start())
        sandbox = sandbox_app(SandboxSettings(database=":memory:"), self.platform)
        self.neighbours.append(LiveServer(sandbox, port=ports["sandbox_provider"]).start())
        self.clients: dict[str, ASGIClient] = {}

    def client(self, service: str) -> ASGIClient:
        if service not in self.clients:
            module = importlib.import_module(f"services.{service}.app")
            app = module.create_app(service_settings(service), self.platform)
            client = get_client(app)
            client.__enter__()  # starts the lifespan on schemathesis's event-loop thread
            self.clients[service] = client
        return self.clients[service]

    def close(self) -> None:
        for client in self.clients.values():
            client.__exit__(None, None, None)
        shutdown_lifespans()
        for server in self.neighbours:
            server.stop()


@pytest.fixture(scope="module")
def services(_apply_env: None) -> Iterator[Services]:
    # Module-scoped: the running apps' consumers join the same consumer groups as apps other test
    # modules build, so they must be gone before those modules run.
    running = Services()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module", autouse=True)
async def _clean_state(database_urls: dict[str, str], redis_url: str) -> None:
    """Overrides the suite's per-test reset with one reset for the module: operations are fuzzed
    independently and data left by one does not change another's contract; resetting every database and
    Redis ~150 times would dominate the run (and FLUSHDB under running consumers drops their groups)."""
    from tests.conftest import truncate_all

    for service, url in database_urls.items():
        importlib.import_module(f"services.{service}.app")
        await truncate_all(url, importlib.import_module(f"services.{service}.db").Base.metadata)
    redis = create_redis(redis_url)
    await redis.flushdb()
    await redis.aclose()


async def register_person(identity_url: str) -> str:
    """A real, active Da Nang ID account (registration + SMS code from the dev outbox); its ``sub``."""
    phone = "0905999001"
    body = {
        "kind": "citizen",
        "full_name": "Kiểm Thử Hợp Đồng",
        "phone": phone,
        "password": "Contract tests 2026!",
        "date_of_birth": "1990-05-17",
        "citizen_id": "048090999001",
    }
    async with httpx.AsyncClient(base_url=identity_url, timeout=10) as client:
        created = await client.post("/v1/identity/registrations", json=body)
        assert created.status_code == 201, f"contract person's registration failed: {created.text}"
        sms = await client.get("/v1/dev/outbox", params={"to": phone})
        code = re.search(r"\b(\d{6})\b", sms.json()[0]["body"])
        assert code, sms.text
        verified = await client.post(
            f"/v1/identity/registrations/{created.json()['id']}/verify", json={"code": code.group(1)}
        )
        assert verified.status_code == 200, verified.text
        return str(verified.json()["sub"])


@pytest.fixture(scope="module")
async def contract_tokens(services: Services) -> tuple[str, str]:
    """A registered person's token with every user scope at assurance level 2, and an agency's token
    with every agency scope."""
    sub = await register_person(services.platform.identity_url)
    tokens = await TokenFactory.load()
    return (
        tokens.user(sub, sorted(USER_SCOPES), level=2),
        tokens.client(CONTRACT_AGENCY, sorted(AGENCY_SCOPES)),
    )


@pytest.fixture
def auth_headers(contract_tokens: tuple[str, str]) -> Iterator[dict[str, str]]:
    return auth_cycle(*contract_tokens)


@schemathesis.pytest.parametrize(**{service: _schema(service) for service in SERVICE_NAMES})
def test_service_honours_its_openapi_contract(
    case: schemathesis.Case, services: Services, auth_headers: Iterator[dict[str, str]]
) -> None:
    service = case.operation.schema.raw_schema[SERVICE_KEY]
    case.call_and_validate(
        base_url=BASE_URL, session=services.client(service), headers=next(auth_headers), checks=CHECKS
    )

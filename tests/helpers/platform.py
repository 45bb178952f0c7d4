"""The whole platform on real loopback ports inside the test process (one thread per app).

Used by end-to-end tests that go through the gateway: every service, the sandbox provider (when
present) and the gateway run with real HTTP between them, against the test databases and Redis.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from dncity.processes import FACTORIES
from tests.helpers.live import LiveServer, reserve_port


@dataclass
class LivePlatform:
    urls: dict[str, str] = field(default_factory=dict)
    servers: list[LiveServer] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return self.urls["gateway"]


def _load(factory: str):  # type: ignore[no-untyped-def]
    module, func = factory.split(":")
    return getattr(importlib.import_module(module), func)


@contextmanager
def live_platform() -> Iterator[LivePlatform]:
    """Start every process of FACTORIES except identity (already live for the session) and the gateway
    last; environment variables tell each where the others are."""
    platform = LivePlatform(urls={"identity": os.environ["DNCITY_IDENTITY_URL"]})
    names = [n for n in FACTORIES if n not in ("identity", "gateway")]
    ports = {name: reserve_port() for name in [*names, "gateway"]}
    saved = {k: os.environ.get(k) for k in [f"DNCITY_{n.upper()}_URL" for n in ports]}
    for name, port in ports.items():
        os.environ[f"DNCITY_{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
    try:
        for name in [*names, "gateway"]:
            server = LiveServer(_load(FACTORIES[name])(), port=ports[name]).start()
            platform.servers.append(server)
            platform.urls[name] = server.url
        yield platform
    finally:
        for server in reversed(platform.servers):
            server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

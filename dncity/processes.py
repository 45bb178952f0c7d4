"""Which OS processes make up the platform, and a small supervisor that starts and stops them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from shared.settings import DEFAULT_PORTS, SERVICE_NAMES


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    factory: str  # "module:function" returning an ASGI app
    port: int
    workers: int = 1  # server processes sharing the port (DNCITY_<NAME>_WORKERS); the gateway has one

    def command(self, host: str) -> list[str]:
        if self.name == "gateway":
            # The gateway's hot path is measured fastest under granian (benchmarks/gateway/run.py).
            return [
                sys.executable,
                "-m",
                "granian",
                "--interface",
                "asgi",
                "--factory",
                self.factory,
                "--host",
                host,
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--loop",
                "uvloop",
                "--no-access-log",
                "--log-level",
                "warning",
                "--workers-kill-timeout",
                "5",
            ]
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            self.factory,
            "--host",
            host,
            "--port",
            str(self.port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--timeout-graceful-shutdown",
            "5",
            *(["--workers", str(self.workers)] if self.workers > 1 else []),
        ]


FACTORIES: dict[str, str] = {
    **{name: f"services.{name}.app:create_app" for name in SERVICE_NAMES},
    "gateway": "gateway.app:create_app",
    "sandbox_provider": "services.payments.sandbox.app:create_app",
}


def workers_from_env(name: str, env: Mapping[str, str] = os.environ) -> int:
    """``DNCITY_<NAME>_WORKERS`` (default 1): e.g. 2 for payments on PostgreSQL uses both cores of a
    2-core machine. On the embedded profile (SQLite) more workers only queue on the database's lock."""
    raw = env.get(f"DNCITY_{name.upper()}_WORKERS", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise ValueError(f"DNCITY_{name.upper()}_WORKERS must be a whole number from 1 to 64, not {raw!r}")
    return int(raw)


def platform_specs(ports: Mapping[str, int] | None = None, env: Mapping[str, str] = os.environ) -> list[ProcessSpec]:
    """The sandbox provider first (payments calls it), then services, gateway last (it probes them)."""
    ports = {**DEFAULT_PORTS, **(ports or {})}
    order = ["sandbox_provider", *SERVICE_NAMES, "gateway"]
    return [
        ProcessSpec(name, FACTORIES[name], ports[name], 1 if name == "gateway" else workers_from_env(name, env))
        for name in order
    ]


def service_env(ports: Mapping[str, int], host: str = "127.0.0.1") -> dict[str, str]:
    """Environment telling every process where the others listen."""
    env = {f"DNCITY_{name.upper()}_URL": f"http://{host}:{ports[name]}" for name in SERVICE_NAMES}
    if "sandbox_provider" in ports:
        env["DNCITY_SANDBOX_PROVIDER_URL"] = f"http://{host}:{ports['sandbox_provider']}"
    return env


class Supervisor:
    def __init__(self, specs: list[ProcessSpec], env: Mapping[str, str], host: str = "127.0.0.1") -> None:
        self.specs = specs
        self.env = {**os.environ, **env}
        self.host = host
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        for spec in self.specs:
            self.procs[spec.name] = subprocess.Popen(spec.command(self.host), env=self.env)  # noqa: S603

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for spec in self.specs:
            url = f"http://{self.host}:{spec.port}/readyz"
            while True:
                proc = self.procs[spec.name]
                if proc.poll() is not None:
                    raise RuntimeError(f"{spec.name} exited with code {proc.returncode}")
                try:
                    if httpx.get(url, timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{spec.name} did not become ready at {url}")
                time.sleep(0.2)

    def first_exit(self) -> tuple[str, int] | None:
        for name, proc in self.procs.items():
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def stop(self, grace: float = 10.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

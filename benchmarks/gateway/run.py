"""Gateway benchmark: the same upstream called directly, through nginx, and through our gateway with token
verification (and Redis rate limiting) on. Prints throughput at 64 connections, p50/p99 at 1 connection
and the ratios against nginx.

    .venv/bin/python benchmarks/gateway/run.py [--duration 5] [--rounds 2] [--no-ratelimit]

Needs wrk and nginx (Debian packages) and, for rate limiting, Redis (DNCITY_REDIS_URL, default
redis://127.0.0.1:6379/5). The proxy under test (nginx, then the gateway) is pinned to CPU 0 with taskset;
the upstream (FastAPI under granian, one worker) and wrk share CPU 1. The three targets are measured in
interleaved rounds and the best round of each figure is reported. Takes about 55 s with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
GRANIAN = str(Path(sys.executable).with_name("granian"))
PATH = "/v1/parking/reservations"
ISSUER = "http://bench.dncity.test"
AUDIENCE = "urn:dncity:api"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def signing_material() -> tuple[str, str]:
    """An ES256 key: the JWKS the upstream publishes and an access token signed with it."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "bench-1", "alg": "ES256", "use": "sig"})
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "bench-user",
        "client_id": "dncity-mobile",
        "iat": now,
        "exp": now + 3600,
        "jti": "bench",
        "scope": "openid parking",
        "acr": "urn:dncity:loa:1",
    }
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "bench-1", "typ": "at+jwt"})
    return json.dumps({"keys": [jwk]}), token


def wrk(url: str, connections: int, duration: int, token: str, latency: bool) -> dict[str, float]:
    cmd = [
        "taskset",
        "-c",
        "1",
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "-H",
        f"Authorization: Bearer {token}",
        url,
    ]
    if latency:
        cmd.insert(-1, "--latency")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non2xx"] = float(non2xx.group(1)) if non2xx else 0.0
    if latency:
        for pct in ("50", "99"):
            m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
            assert m, out
            value = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            result[f"p{pct}_ms"] = value
    return result


def measure(url: str, token: str, duration: int) -> dict[str, float]:
    wrk(url, 64, 1, token, latency=False)  # warm up connections and caches
    throughput = wrk(url, 64, duration, token, latency=False)
    single = wrk(url, 1, max(3, duration // 2), token, latency=True)
    return {
        "rps": throughput["rps"],
        "non2xx": throughput["non2xx"] + single["non2xx"],
        "p50_ms": single["p50_ms"],
        "p99_ms": single["p99_ms"],
    }


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The best round of each figure: on a shared machine, noise only ever makes a proxy look slower."""
    return {
        "rps": max(r["rps"] for r in runs),
        "p50_ms": min(r["p50_ms"] for r in runs),
        "p99_ms": min(r["p99_ms"] for r in runs),
        "non2xx": sum(r["non2xx"] for r in runs),
    }


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  upstream app {{ server 127.0.0.1:{upstream}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port} reuseport;
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
    }}
  }}
}}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5, help="seconds of each throughput run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best of each is kept")
    parser.add_argument("--no-ratelimit", action="store_true", help="gateway without the Redis rate limiter")
    parser.add_argument("--granian-args", default="", help="extra granian options for the gateway (A/B tests)")
    args = parser.parse_args()
    for tool in ("wrk", "nginx", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is required (apt-get install -y wrk nginx)")
    jwks, token = signing_material()
    tmp = Path(tempfile.mkdtemp(prefix="gwbench-"))
    procs: list[subprocess.Popen[bytes]] = []
    up_port, nginx_port, gw_port = free_port(), free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{up_port}"
    env = {**os.environ, "BENCH_JWKS": jwks, "PYTHONPATH": str(ROOT)}
    redis_url = os.environ.get("DNCITY_REDIS_URL", "redis://127.0.0.1:6379/5")
    gw_env = {
        **env,
        **{
            f"DNCITY_{s.upper()}_URL": upstream_url
            for s in ("identity", "payments", "parking", "health_booking", "tuition")
        },
        "DNCITY_PUBLIC_BASE_URL": ISSUER,
        "DNCITY_REDIS_URL": redis_url,
        "DNCITY_GATEWAY_RATE_LIMITS_ENABLED": "false" if args.no_ratelimit else "true",
        # Limits on, but far above what one machine can send, so every request does the Redis check
        # and none is refused (a refused request would flatter the figures).
        "DNCITY_GATEWAY_RATE_LIMIT_SCALE": "100000",
        "DNCITY_LOG_LEVEL": "WARNING",
    }
    try:
        procs.append(
            subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    "1",
                    GRANIAN,
                    "--interface",
                    "asgi",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(up_port),
                    "--workers",
                    "1",
                    "--no-access-log",
                    "--log-level",
                    "warning",
                    "--working-dir",
                    str(Path(__file__).parent),
                    "upstream:app",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        wait_ready(upstream_url + "/healthz")
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, upstream=up_port, port=nginx_port))
        procs.append(
            subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    "0",
                    "nginx",
                    "-c",
                    str(tmp / "nginx.conf"),
                    "-p",
                    str(tmp),
                ]
            )
        )
        wait_ready(f"http://127.0.0.1:{nginx_port}/healthz")
        access_log = open(tmp / "gateway-access.log", "wb")  # noqa: SIM115  (one JSON line per request)
        procs.append(
            subprocess.Popen(
                [
                    "taskset",
                    "-c",
                    "0",
                    GRANIAN,
                    "--interface",
                    "asgi",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(gw_port),
                    "--workers",
                    "1",
                    "--loop",
                    "uvloop",
                    "--no-access-log",
                    "--log-level",
                    "warning",
                    *args.granian_args.split(),
                    "gateway.app:create_app",
                ],
                cwd=ROOT,
                env=gw_env,
                stdout=access_log,
            )
        )
        wait_ready(f"http://127.0.0.1:{gw_port}/readyz")
        check = httpx.get(f"http://127.0.0.1:{gw_port}{PATH}", headers={"Authorization": f"Bearer {token}"})
        assert check.status_code == 200, check.text
        assert "ratelimit" in check.headers or args.no_ratelimit, "rate limiter not active"
        assert httpx.get(f"http://127.0.0.1:{gw_port}{PATH}").status_code == 401  # the token is really checked

        load = os.getloadavg()[0]
        print(f"load average before the run: {load:.2f} on {os.cpu_count()} CPUs (other work skews the figures)")
        print(
            f"GET {PATH}, wrk -t1, {args.duration}s at 64 connections, {max(3, args.duration // 2)}s at 1 "
            f"connection; proxy on CPU 0, upstream + wrk on CPU 1; gateway: granian + raw ASGI + httptools client, "
            f"ES256 token check (verified-token cache), rate limiter {'off' if args.no_ratelimit else 'on'}"
        )
        targets = {
            "upstream": f"{upstream_url}{PATH}",
            "nginx": f"http://127.0.0.1:{nginx_port}{PATH}",
            "gateway": f"http://127.0.0.1:{gw_port}{PATH}",
        }
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for round_no in range(1, args.rounds + 1):  # interleaved, so drifting load hits all three alike
            for name, url in targets.items():
                before = httpx.get(f"{upstream_url}/served").json()["served"]
                figures = measure(url, token, args.duration)
                figures["upstream_served"] = httpx.get(f"{upstream_url}/served").json()["served"] - before
                rounds[name].append(figures)
                print(
                    f"  round {round_no} {name:<9} {figures['rps']:>8.0f} req/s @64   p50 {figures['p50_ms']:.3f} ms"
                    f"   p99 {figures['p99_ms']:.3f} ms @1   non-2xx {int(figures['non2xx'])}"
                    f"   upstream served {int(figures['upstream_served'])}",
                    flush=True,
                )
        direct, via_nginx, via_gw = (best(rounds[name]) for name in targets)
        print(f"best of {args.rounds} rounds:")
        for name, figures in (("upstream", direct), ("nginx", via_nginx), ("gateway", via_gw)):
            print(
                f"  {name:<9} {figures['rps']:>8.0f} req/s @64   p50 {figures['p50_ms']:.3f} ms   "
                f"p99 {figures['p99_ms']:.3f} ms @1"
            )
        print(f"gateway / nginx throughput: {via_gw['rps'] / via_nginx['rps']:.2f}x   (goal >= 0.70x)")
        print(
            f"added p50 at 1 connection: nginx {via_nginx['p50_ms'] - direct['p50_ms']:+.3f} ms, "
            f"gateway {via_gw['p50_ms'] - direct['p50_ms']:+.3f} ms   (goal <= 0.25 ms)"
        )
        print(
            f"added p99 at 1 connection: nginx {via_nginx['p99_ms'] - direct['p99_ms']:+.3f} ms, "
            f"gateway {via_gw['p99_ms'] - direct['p99_ms']:+.3f} ms"
        )
        access_log.flush()
        lines = (tmp / "gateway-access.log").read_bytes().count(b"\n")
        print(f"gateway access-log lines written: {lines}")
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

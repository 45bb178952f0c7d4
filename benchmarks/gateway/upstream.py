"""The benchmark's upstream: a minimal FastAPI service (and the JWKS the gateway verifies tokens with)."""

from __future__ import annotations

import json
import os

from fastapi import FastAPI
from fastapi.responses import Response

app = FastAPI()
JWKS = os.environ.get("BENCH_JWKS", '{"keys": []}').encode()
BODY = json.dumps({"items": [{"id": "r1", "status": "confirmed", "amount_vnd": 25000}], "next_cursor": None}).encode()


SERVED = [0]


@app.get("/v1/parking/reservations")
async def reservations() -> Response:
    SERVED[0] += 1
    return Response(BODY, media_type="application/json")


@app.get("/served")
async def served() -> dict[str, int]:
    """How many requests the upstream answered (the benchmark checks the proxies really forwarded)."""
    return {"served": SERVED[0]}


@app.get("/oauth2/jwks")
async def jwks() -> Response:
    return Response(JWKS, media_type="application/json")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}

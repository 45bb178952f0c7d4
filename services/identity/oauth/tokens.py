"""Minting RFC 9068 access tokens (used by the token endpoint and by agencies' client credentials)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable

from services.identity.keys.service import ACCESS_TOKEN_ALG, Keyring


def mint_access_token(
    keyring: Keyring,
    *,
    issuer: str,
    audience: str,
    client_id: str,
    scopes: Iterable[str],
    ttl_s: int,
    sub: str | None = None,
    acr: str | None = None,
    auth_time: int | None = None,
    now: int | None = None,
) -> tuple[str, dict[str, object]]:
    issued = int(now if now is not None else time.time())
    claims: dict[str, object] = {
        "iss": issuer,
        "sub": sub or client_id,  # RFC 9068: a client's own token names the client as subject
        "aud": audience,
        "exp": issued + ttl_s,
        "iat": issued,
        "jti": secrets.token_urlsafe(16),
        "client_id": client_id,
        "scope": " ".join(sorted(set(scopes))),
    }
    if acr:
        claims["acr"] = acr
    if auth_time is not None:
        claims["auth_time"] = auth_time
    return keyring.sign(claims, alg=ACCESS_TOKEN_ALG, typ="at+jwt"), claims

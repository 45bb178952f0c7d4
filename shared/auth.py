"""Access-token verification for every service (and the gateway).

Tokens are RFC 9068 JWT access tokens signed by the identity service (Da Nang ID). They are verified,
never trusted by shape: signature with a key from identity's JWKS, an algorithm allow-list, ``typ``
``at+jwt`` (an ID token is refused), issuer, audience, exp/nbf/iat with bounded leeway. The JWKS is
cached with a TTL and refetched at most once per interval when an unknown ``kid`` appears.

Endpoints declare what they need with the ``Annotated`` aliases below, e.g.
``principal: Annotated[Principal, RequireScopes("parking")]``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
import structlog
from fastapi import Depends, Request
from jwt import PyJWK

from shared.errors import Forbidden, ServiceUnavailable, Unauthorized

ALLOWED_ALGORITHMS = ("ES256", "RS256")
ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105  (a media type, not a secret)
LOA_PREFIX = "urn:dncity:loa:"
log = structlog.get_logger("auth")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person through a client, or a client (agency, service) on its own."""

    client_id: str
    scopes: frozenset[str]
    sub: str | None = None
    acr: str | None = None
    auth_time: int | None = None
    token_id: str | None = None
    expires_at: int | None = None

    @property
    def is_user(self) -> bool:
        return self.sub is not None and self.sub != self.client_id

    @property
    def level(self) -> int:
        if self.acr and self.acr.startswith(LOA_PREFIX):
            return int(self.acr.removeprefix(LOA_PREFIX))
        return 0

    def has(self, scope: str) -> bool:
        return scope in self.scopes


def invalid_token(detail: str) -> Unauthorized:
    return Unauthorized(
        detail,
        code="invalid_token",
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{detail}"'},
    )


JWKSFetcher = Callable[[], Awaitable[dict[str, Any]]]


class JWKSCache:
    def __init__(self, fetch: JWKSFetcher, *, ttl_s: float = 300, min_refetch_interval_s: float = 10) -> None:
        self._fetch = fetch
        self.ttl_s = ttl_s
        self.min_refetch_interval_s = min_refetch_interval_s
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = 0.0
        self._attempted_at = -float("inf")
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        document = await self._fetch()
        keys: dict[str, PyJWK] = {}
        for jwk in document.get("keys", []):
            if jwk.get("use", "sig") != "sig" or "kid" not in jwk:
                continue
            try:
                keys[jwk["kid"]] = PyJWK(jwk)
            except jwt.PyJWTError:
                continue
        self._keys = keys
        self._fetched_at = time.monotonic()

    def _needs_refresh(self, kid: str) -> bool:
        now = time.monotonic()
        # Any attempt, failed or not, waits out the interval: an unreachable identity is not hammered.
        if now - self._attempted_at < self.min_refetch_interval_s:
            return False
        return now - self._fetched_at > self.ttl_s or kid not in self._keys

    async def get(self, kid: str) -> PyJWK | None:
        # With no keys yet, wait for a fetch that may be in flight rather than failing beside it.
        if not self._keys or self._needs_refresh(kid):
            async with self._lock:
                if self._needs_refresh(kid):  # another waiter may have refreshed meanwhile
                    self._attempted_at = time.monotonic()
                    try:
                        await self._refresh()
                    except Exception as exc:
                        log.warning("jwks_fetch_failed", error=type(exc).__name__)
        if not self._keys:
            raise ServiceUnavailable("Token keys are unavailable", code="jwks_unavailable")
        return self._keys.get(kid)


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: JWKSCache,
        leeway_s: int = 30,
        algorithms: tuple[str, ...] = ALLOWED_ALGORITHMS,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.leeway_s = min(leeway_s, 30)
        self.algorithms = algorithms

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise invalid_token("malformed token") from exc
        if header.get("alg") not in self.algorithms:
            raise invalid_token("token algorithm not allowed")
        if header.get("typ", "").lower() not in (ACCESS_TOKEN_TYP, "application/at+jwt"):
            raise invalid_token("not an access token")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise invalid_token("token names no key")
        key = await self.jwks.get(kid)
        if key is None:
            raise invalid_token("unknown signing key")
        if key.algorithm_name != header["alg"]:
            raise invalid_token("token algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[header["alg"]],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "client_id", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise invalid_token("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise invalid_token("token not yet valid") from exc
        except jwt.PyJWTError as exc:
            raise invalid_token(f"token rejected: {type(exc).__name__}") from exc
        if claims["iat"] > time.time() + self.leeway_s:
            raise invalid_token("token issued in the future")
        return Principal(
            client_id=str(claims["client_id"]),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            sub=str(claims["sub"]),
            acr=claims.get("acr"),
            auth_time=claims.get("auth_time"),
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
        )


class CachingVerifier:
    """A TokenVerifier behind a cache of verified tokens (the gateway's edge and every service).

    A verified token is remembered until it expires, and at most ``ttl_s``: its signature and claims
    were checked once, its expiry still holds on every use. Failures are never cached, so an unknown
    key or a bad token is re-examined (and the JWKS refetch rules apply) every time. Bounded: when
    full, the oldest tenth is dropped.
    """

    def __init__(self, verifier: TokenVerifier, *, ttl_s: float = 60.0, max_size: int = 10_000) -> None:
        self.verifier = verifier
        self.ttl_s = ttl_s
        self.max_size = max_size
        self._cache: dict[str, tuple[Principal, float]] = {}

    async def verify(self, token: str) -> Principal:
        hit = self._cache.get(token)
        now = time.time()
        if hit is not None:
            if now < hit[1]:
                return hit[0]
            del self._cache[token]
        principal = await self.verifier.verify(token)  # raises Unauthorized (invalid_token)
        valid_until = min(float(principal.expires_at or now), now + self.ttl_s)
        if valid_until > now:
            if len(self._cache) >= self.max_size:
                for key in list(self._cache)[: max(1, self.max_size // 10)]:
                    self._cache.pop(key, None)
            self._cache[token] = (principal, valid_until)
        return principal

    def clear(self) -> None:
        self._cache.clear()


def bearer_token(request: Request) -> str:
    """The access token from the Authorization header — never from the query string."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "An access token is required (Authorization: Bearer …)",
            code="unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="dncity"'},
        )
    return token.strip()


async def current_principal(request: Request) -> Principal:
    verifier: TokenVerifier | CachingVerifier = request.app.state.verifier
    principal = await verifier.verify(bearer_token(request))
    request.scope.setdefault("state", {})["client_id"] = principal.client_id
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def insufficient_scope(scopes: tuple[str, ...]) -> Forbidden:
    needed = " ".join(scopes)
    return Forbidden(
        f"This requires the scope: {needed}",
        code="insufficient_scope",
        headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
        required_scopes=list(scopes),
    )


def RequireScopes(*scopes: str, any_of: bool = False) -> Any:
    """A dependency: the token must carry all (or, with any_of, one) of the scopes."""

    async def check(principal: CurrentPrincipal) -> Principal:
        granted = [s in principal.scopes for s in scopes]
        if not (any(granted) if any_of else all(granted)):
            raise insufficient_scope(scopes)
        return principal

    return Depends(check)


def RequireUser(*scopes: str, min_level: int = 1) -> Any:
    """A dependency: a person's token (not a client's own) with the scopes and assurance level."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.is_user:
            raise Forbidden("This needs a person's token, not a client's own", code="user_token_required")
        if not all(s in principal.scopes for s in scopes):
            raise insufficient_scope(scopes)
        if principal.level < min_level:
            raise Forbidden(
                f"This needs identity assurance level {min_level}",
                code="insufficient_assurance",
                required_acr=f"{LOA_PREFIX}{min_level}",
            )
        return principal

    return Depends(check)


def RequireClient(*scopes: str) -> Any:
    """A dependency: an agency's or service's own token (client credentials) with the scopes."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.is_user:
            raise Forbidden("This needs an agency's client-credentials token", code="client_token_required")
        if not all(s in principal.scopes for s in scopes):
            raise insufficient_scope(scopes)
        return principal

    return Depends(check)

"""Token checks at the edge: shared/auth.py's TokenVerifier (JWKS cache, algorithm allow-list, typ,
iss, aud, exp/nbf/iat with bounded leeway) behind a cache of verified tokens.

A verified token is remembered until it expires, and at most ``ttl_s`` (so a token revoked at identity
stops passing the edge within that time; every service verifies tokens itself as well). Failures are
never cached. The cache is bounded: when full, the oldest entries are dropped.
"""

from __future__ import annotations

import time

from gateway.routes import Policy
from shared.auth import LOA_PREFIX, Principal, TokenVerifier
from shared.errors import Forbidden, ProblemError, Unauthorized


class EdgeAuth:
    def __init__(self, verifier: TokenVerifier, *, ttl_s: float = 60.0, max_size: int = 10_000) -> None:
        self.verifier = verifier
        self.ttl_s = ttl_s
        self.max_size = max_size
        self._cache: dict[str, tuple[Principal, float]] = {}

    async def principal(self, token: str) -> Principal:
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


def missing_token() -> Unauthorized:
    return Unauthorized(
        "An access token is required (Authorization: Bearer …)",
        code="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="dncity"'},
    )


def token_in_query() -> ProblemError:
    # RFC 6750 §2.3 allows it, RFC 9700 and this platform do not: a URL ends up in logs and histories.
    return ProblemError(
        "Access tokens are accepted only in the Authorization header, never in the query string",
        status=400,
        code="invalid_request",
        title="Bad request",
        headers={"WWW-Authenticate": 'Bearer error="invalid_request", error_description="token in query string"'},
    )


def authorize(policy: Policy, principal: Principal) -> None:
    """Raise 403 when the principal does not satisfy the route's policy."""
    if policy.auth == "user" and not principal.is_user:
        raise Forbidden("This needs a person's token, not a client's own", code="user_token_required")
    if policy.scopes:
        granted = [s in principal.scopes for s in policy.scopes]
        if not (any(granted) if policy.scopes_mode == "any" else all(granted)):
            needed = " ".join(policy.scopes)
            raise Forbidden(
                f"This requires {'one of ' if policy.scopes_mode == 'any' and len(policy.scopes) > 1 else ''}"
                f"the scope{'s' if len(policy.scopes) > 1 else ''}: {needed}",
                code="insufficient_scope",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
                required_scopes=list(policy.scopes),
            )


__all__ = ["LOA_PREFIX", "EdgeAuth", "authorize", "missing_token", "token_in_query"]

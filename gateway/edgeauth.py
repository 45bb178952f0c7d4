"""Token checks at the edge: shared/auth.py's TokenVerifier (JWKS cache, algorithm allow-list, typ,
iss, aud, exp/nbf/iat with bounded leeway) behind its cache of verified tokens (CachingVerifier).

A verified token is remembered until it expires, and at most ``ttl_s`` (so a token revoked at identity
stops passing the edge within that time; every service verifies tokens itself as well). Failures are
never cached. The cache is bounded: when full, the oldest entries are dropped.
"""

from __future__ import annotations

from gateway.routes import Policy
from shared.auth import LOA_PREFIX, CachingVerifier, Principal
from shared.errors import Forbidden, ProblemError, Unauthorized


class EdgeAuth(CachingVerifier):
    async def principal(self, token: str) -> Principal:
        return await self.verify(token)


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

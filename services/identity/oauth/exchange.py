"""The data one OAuth request works on, gathered before Authlib's synchronous core runs, and the
changes the core asked for, applied afterwards.

Authlib's server core is synchronous and calls storage callbacks (``query_client``,
``query_authorization_code``, ``save_token`` …). Rather than run it in a worker thread that calls back
into the event loop for every look-up, the adapter reads everything a request can need first (the
client, the code or refresh token named in the form, the account), runs the core inline — it is then
pure CPU work: parsing, checks, signing — and records every write as an intent on this object. The
router applies the intents in the request's transaction; guarded updates there (a code redeemed once,
a refresh token rotated once) decide races, and a lost race turns the prepared success into an error.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

from services.identity.oauth.models import AuthorizationCode, OAuthGrant, RefreshToken

_current: contextvars.ContextVar[Exchange] = contextvars.ContextVar("oauth_exchange")


@dataclass
class UserContext:
    """The person a grant acts for, as Authlib's ``user``."""

    sub: str
    acr: str
    auth_time: int
    account: Any = None  # services.identity.accounts.models.Account
    amr: list[str] = field(default_factory=list)

    def get_user_id(self) -> str:
        return self.sub


@dataclass
class AccessTokenInfo:
    """A verified JWT access token presented to introspection, revocation or userinfo."""

    token: str
    claims: dict[str, Any]
    revoked: bool = False

    @property
    def client_id(self) -> str:
        return str(self.claims["client_id"])

    def check_client(self, client: Any) -> bool:
        return bool(self.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return str(self.claims.get("scope", ""))

    def get_expires_in(self) -> int:
        return int(self.claims["exp"]) - int(self.claims["iat"])

    def is_expired(self) -> bool:
        return False  # verified with exp already

    def is_revoked(self) -> bool:
        return self.revoked


@dataclass
class RefreshTokenInfo:
    row: RefreshToken
    grant: OAuthGrant

    @property
    def client_id(self) -> str:
        return self.row.client_id

    def check_client(self, client: Any) -> bool:
        return bool(self.row.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.grant.scope

    def get_expires_in(self) -> int:
        return int((self.row.expires_at - self.row.created_at).total_seconds())

    def is_expired(self) -> bool:
        from shared.db import utcnow

        return self.row.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or self.row.rotated_at is not None or self.grant.revoked_at is not None


@dataclass
class NewCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    user: UserContext


@dataclass
class Exchange:
    """Everything one request may read (filled before the core runs) and write (filled by it)."""

    now: float
    clients: dict[str, Any] = field(default_factory=dict)  # client_id -> ClientView | None
    codes: dict[str, AuthorizationCode | None] = field(default_factory=dict)  # by SHA-256
    refresh_tokens: dict[str, RefreshTokenInfo | None] = field(default_factory=dict)  # by SHA-256
    access_tokens: dict[str, AccessTokenInfo | None] = field(default_factory=dict)  # by token string
    users: dict[str, UserContext | None] = field(default_factory=dict)  # by sub
    nonce_seen: bool = False
    # Intents recorded by the core.
    assertion_jtis: list[tuple[str, str, int]] = field(default_factory=list)  # client_id, jti, exp
    redeem_code: AuthorizationCode | None = None
    rotate_refresh: RefreshToken | None = None
    revoke_grant_ids: dict[str, str] = field(default_factory=dict)  # grant id -> reason
    revoke_code_family: AuthorizationCode | None = None
    revoke_jtis: list[tuple[str, int]] = field(default_factory=list)
    minted: list[dict[str, Any]] = field(default_factory=list)  # access-token claims
    new_grant: dict[str, Any] | None = None
    new_refresh_tokens: list[str] = field(default_factory=list)
    grant_id: str | None = None
    client_id: str | None = None
    new_code: NewCode | None = None

    def __enter__(self) -> Exchange:
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)


def current() -> Exchange:
    return _current.get()

"""The identity provider's browser state: sign-in sessions, pending authorization requests, CSRF.

Cookies carry only random identifiers with an HMAC (so a forged or truncated value is refused before
Redis is asked); what they stand for lives server-side in Redis with a TTL.

- ``dnid_session``: a signed-in person (sub, auth_time, acr, amr). New id at every sign-in.
- ``dnid_browser``: this browser, to bind pending authorization requests and CSRF tokens to it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from fastapi import Request
from redis.asyncio import Redis
from starlette.responses import Response

from shared.errors import ServiceUnavailable

ResponseT = TypeVar("ResponseT", bound=Response)
SESSION_COOKIE = "dnid_session"
BROWSER_COOKIE = "dnid_browser"
COOKIE_PATH = "/oauth2/"


@dataclass
class SignIn:
    sub: str
    auth_time: int
    acr: str
    amr: list[str] = field(default_factory=list)


@dataclass
class PendingRequest:
    """An authorization request waiting for the person to sign in or consent."""

    params: list[tuple[str, str]]
    browser: str
    method: str = "GET"
    login_sub: str | None = None  # signed in for this very request (satisfies prompt=login / max_age)
    totp_sub: str | None = None  # password accepted, waiting for the TOTP code
    totp_auth_time: int | None = None
    lang: str = "vi"

    @property
    def param(self) -> dict[str, str]:
        return dict(self.params)


class BrowserState:
    def __init__(
        self, redis: Redis | None, secret: str, *, session_ttl_s: int, request_ttl_s: int, secure: bool
    ) -> None:
        self.redis = redis
        self.secret = secret.encode()
        self.session_ttl_s = session_ttl_s
        self.request_ttl_s = request_ttl_s
        self.secure = secure

    # -- signing ---------------------------------------------------------------------------------
    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self.secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()[:43]

    def _sign(self, purpose: str, value: str) -> str:
        return f"{value}.{self._mac(purpose, value)}"

    def _unsign(self, purpose: str, signed: str | None) -> str | None:
        if not signed or "." not in signed or len(signed) > 200:
            return None
        value, _, mac = signed.rpartition(".")
        return value if hmac.compare_digest(mac, self._mac(purpose, value)) else None

    def _require_redis(self) -> Redis:
        if self.redis is None:
            raise ServiceUnavailable("Sign-in needs Redis", code="redis_unavailable")
        return self.redis

    @staticmethod
    def _key(kind: str, value: str) -> str:
        return f"dncity:oauth:{kind}:{hashlib.sha256(value.encode()).hexdigest()}"

    def _set_cookie(self, response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path=COOKIE_PATH, secure=self.secure, httponly=True, samesite="lax"
        )

    # -- browser id and CSRF -----------------------------------------------------------------------
    def browser_id(self, request: Request) -> str | None:
        return self._unsign("browser", request.cookies.get(BROWSER_COOKIE))

    def ensure_browser(self, request: Request) -> str:
        existing = self.browser_id(request)
        if existing:
            return existing
        value = secrets.token_urlsafe(24)
        request.state.new_browser_cookie = self._sign("browser", value)
        return value

    def attach(self, request: Request, response: ResponseT) -> ResponseT:
        cookie = getattr(request.state, "new_browser_cookie", None)
        if cookie:
            self._set_cookie(response, BROWSER_COOKIE, cookie)
        return response

    def csrf_token(self, browser: str, rid: str) -> str:
        return self._mac("csrf", f"{browser}:{rid}")

    def check_csrf(self, request: Request, rid: str, token: str | None) -> bool:
        browser = self.browser_id(request)
        return bool(browser and token and hmac.compare_digest(token, self.csrf_token(browser, rid)))

    # -- sessions ---------------------------------------------------------------------------------
    async def signed_in(self, request: Request) -> SignIn | None:
        sid = self._unsign("session", request.cookies.get(SESSION_COOKIE))
        if not sid or self.redis is None:
            return None
        raw = await self.redis.get(self._key("session", sid))
        return SignIn(**json.loads(raw)) if raw else None

    async def start_session(self, request: Request, response: Response, sign_in: SignIn) -> None:
        redis = self._require_redis()
        old = self._unsign("session", request.cookies.get(SESSION_COOKIE))
        if old:
            await redis.delete(self._key("session", old))  # a new id at every sign-in: no fixation
        sid = secrets.token_urlsafe(32)
        await redis.set(self._key("session", sid), json.dumps(asdict(sign_in)), ex=self.session_ttl_s)
        self._set_cookie(response, SESSION_COOKIE, self._sign("session", sid))

    async def end_session(self, request: Request, response: Response) -> None:
        sid = self._unsign("session", request.cookies.get(SESSION_COOKIE))
        if sid and self.redis is not None:
            await self.redis.delete(self._key("session", sid))
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, secure=self.secure, httponly=True, samesite="lax")

    # -- pending authorization requests ---------------------------------------------------------------
    async def save_request(self, pending: PendingRequest, rid: str | None = None) -> str:
        redis = self._require_redis()
        rid = rid or secrets.token_urlsafe(24)
        await redis.set(self._key("authreq", rid), json.dumps(asdict(pending)), ex=self.request_ttl_s)
        return rid

    async def load_request(self, request: Request, rid: str | None) -> PendingRequest | None:
        """The pending request, only for the browser that started it."""
        if not rid or len(rid) > 64 or self.redis is None:
            return None
        raw = await self.redis.get(self._key("authreq", rid))
        if not raw:
            return None
        data: dict[str, Any] = json.loads(raw)
        data["params"] = [tuple(p) for p in data["params"]]
        pending = PendingRequest(**data)
        browser = self.browser_id(request)
        if not browser or not hmac.compare_digest(browser, pending.browser):
            return None
        return pending

    async def drop_request(self, rid: str) -> None:
        if self.redis is not None:
            await self.redis.delete(self._key("authreq", rid))


def now() -> int:
    return int(time.time())

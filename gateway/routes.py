"""The one policy table: every path the platform serves, who may call it, how hard, and how patiently.

A :class:`Route` is a path prefix or pattern (``{id}`` is one path segment, a trailing ``*`` anything
below), optional methods, the service that serves it and a :class:`Policy`:

* ``auth`` — ``public`` (the service authenticates, if at all), ``token`` (any valid access token) or
  ``user`` (a person's token, not a client's own);
* ``scopes`` with ``scopes_mode`` ``any`` | ``all`` — 403 insufficient_scope naming them otherwise;
* ``rate`` — the rate-limit class (numbers in :data:`RATE_CLASSES`, keyed per person, client and IP);
* ``timeout_s`` — the whole upstream exchange; slower is a 504;
* ``retry`` — whether an idempotent request may be retried once on a connection failure or a 502/503;
* ``holds`` — a booking POST counted against the per-person cap on active holds;
* ``cors`` — whether configured browser origins may call it (never the authorization endpoint).

The first matching entry wins, so specific entries come before their service's catch-all. The edge
check is a first line: services still verify every token themselves. Where a service lets a route be
browsed without signing in (lot search, the health directory), the edge leaves it public.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Auth = Literal["public", "token", "user"]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
POST = frozenset({"POST"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True)
class RateClass:
    """A GCRA limit per dimension: ``rate`` requests per ``period_s`` with bursts up to ``burst``.

    ``per`` lists the dimensions a request is counted in (``sub`` = the person or client of a verified
    token, ``client`` = the OAuth client, ``ip`` = the caller's address); a request must pass all of
    them. ``fail_closed``: refuse (503) rather than wave through when Redis is unreachable.
    """

    name: str
    rate: int
    period_s: float
    burst: int
    per: tuple[str, ...]
    fail_closed: bool = False


# Sign-in, one-time codes and tokens are strict and fail closed; money and bookings fail closed;
# reads are generous and fail open. Signed-in traffic is counted per person (or per agency client), not
# per IP: mobile carriers put many subscribers behind one address (carrier-grade NAT). Anonymous
# traffic is counted per IP, and the token endpoint per client and per IP. Every number can be changed
# per class (DNCITY_GATEWAY_RATE_LIMIT_OVERRIDES) or scaled (DNCITY_GATEWAY_RATE_LIMIT_SCALE).
RATE_CLASSES: dict[str, RateClass] = {
    c.name: c
    for c in (
        RateClass("signin", rate=10, period_s=60, burst=10, per=("ip",), fail_closed=True),
        RateClass("code", rate=5, period_s=60, burst=5, per=("ip",), fail_closed=True),
        RateClass("token", rate=20, period_s=1, burst=60, per=("client", "ip"), fail_closed=True),
        RateClass("payment", rate=1, period_s=1, burst=10, per=("sub",), fail_closed=True),
        RateClass("write", rate=10, period_s=1, burst=30, per=("sub",)),
        RateClass("read", rate=50, period_s=1, burst=150, per=("sub",)),
        RateClass("public", rate=50, period_s=1, burst=150, per=("ip",)),
        RateClass("webhook", rate=200, period_s=1, burst=500, per=("ip",)),
    )
}


@dataclass(frozen=True, slots=True)
class Policy:
    auth: Auth = "token"
    scopes: tuple[str, ...] = ()
    scopes_mode: Literal["any", "all"] = "any"
    rate: str = "read"
    timeout_s: float = 10.0
    retry: bool = True
    holds: bool = False
    cors: bool = True
    local: bool = False  # answered by the gateway itself (the overview), not forwarded


@dataclass(frozen=True, slots=True)
class Route:
    pattern: str
    service: str
    policy: Policy
    methods: frozenset[str] | None = None
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @property
    def path(self) -> str:
        """Route template used in metrics and logs."""
        return self.pattern

    @property
    def prefix(self) -> str:
        """The literal start of the pattern (everything before the first ``{``/``*``)."""
        return re.split(r"[{*]", self.pattern, maxsplit=1)[0]

    def compiled(self) -> Route:
        literal = re.split(r"[{*]", self.pattern, maxsplit=1)[0]
        if literal == self.pattern:
            return self  # exact path: compared as a string
        parts = re.split(r"(\{[^}]+\}|\*)", self.pattern)
        regex = "".join("[^/]+" if p.startswith("{") else ".*" if p == "*" else re.escape(p) for p in parts if p)
        return Route(self.pattern, self.service, self.policy, self.methods, re.compile(regex + r"\Z"))

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        if self._regex is None:
            return path == self.pattern
        return self._regex.match(path) is not None


def R(pattern: str, service: str, methods: frozenset[str] | None = None, **policy: object) -> Route:
    return Route(pattern, service, Policy(**policy), methods).compiled()  # type: ignore[arg-type]


PUBLIC_READ = {"auth": "public", "rate": "public"}
PARKING_SCOPES = ("parking", "parking.lots.write")
HEALTH_SCOPES = ("health", "health.schedules.write", "health.records.write")
TUITION_SCOPES = ("tuition", "tuition.students.write", "tuition.invoices.write")
PAYMENT_SCOPES = ("payments", "payments.write")

ROUTES: tuple[Route, ...] = (
    # --- the gateway's own aggregate for the mobile app
    R("/v1/me/overview", "gateway", READ_METHODS, auth="user", local=True, timeout_s=3.0),
    # --- dev-only endpoints (the SMS outbox, event diagnostics): they exist only in the dev profile (the prod
    # profile refuses to mount them) and take no token.
    R("/v1/identity/dev/*", "identity", None, **PUBLIC_READ),
    R("/v1/payments/dev/*", "payments", None, **PUBLIC_READ),
    R("/v1/parking/dev/*", "parking", None, **PUBLIC_READ),
    R("/v1/health/dev/*", "health_booking", None, **PUBLIC_READ),
    R("/v1/tuition/dev/*", "tuition", None, **PUBLIC_READ),
    R("/v1/dev/*", "identity", None, **PUBLIC_READ),
    # --- OAuth 2.0 / OIDC (identity authenticates clients and people itself)
    R("/.well-known/*", "identity", READ_METHODS, **PUBLIC_READ),
    R("/oauth2/jwks", "identity", READ_METHODS, **PUBLIC_READ),
    R("/oauth2/token", "identity", POST, auth="public", rate="token", retry=False),
    R("/oauth2/revoke", "identity", POST, auth="public", rate="token", retry=False),
    R("/oauth2/introspect", "identity", POST, auth="public", rate="token", retry=False),
    R("/oauth2/userinfo", "identity", frozenset({"GET", "POST", "OPTIONS"}), auth="public", rate="read"),
    # The authorization endpoint is a browser redirect: never CORS.
    R("/oauth2/authorize", "identity", READ_METHODS, auth="public", rate="public", cors=False),
    R("/oauth2/authorize", "identity", WRITE_METHODS, auth="public", rate="signin", cors=False, retry=False),
    # Sign-in, second-factor and consent pages: page views are public reads, form posts are sign-ins.
    R("/oauth2/*", "identity", READ_METHODS, auth="public", rate="public", cors=False),
    R("/oauth2/*", "identity", WRITE_METHODS, auth="public", rate="signin", cors=False, retry=False),
    # --- identity accounts: registration and one-time codes are public and strict
    R("/v1/identity/registrations", "identity", POST, auth="public", rate="code", retry=False),
    R("/v1/identity/registrations/*", "identity", POST, auth="public", rate="code", retry=False),
    R("/v1/identity/password-reset*", "identity", WRITE_METHODS, auth="public", rate="code", retry=False),
    R("/v1/identity/sessions*", "identity", POST, auth="public", rate="signin", retry=False),
    # Deleting the account and changing the password re-enter the password: sign-in strictness.
    R(
        "/v1/identity/me",
        "identity",
        frozenset({"DELETE"}),
        auth="user",
        scopes=("openid",),
        rate="signin",
        retry=False,
    ),
    R(
        "/v1/identity/me/password*",
        "identity",
        WRITE_METHODS,
        auth="user",
        scopes=("openid",),
        rate="signin",
        retry=False,
    ),
    R("/v1/identity/me/totp*", "identity", WRITE_METHODS, auth="user", scopes=("openid",), rate="signin", retry=False),
    R("/v1/identity/me", "identity", READ_METHODS, auth="user", scopes=("openid",)),
    R("/v1/identity/me/*", "identity", READ_METHODS, auth="user", scopes=("openid",)),
    R("/v1/identity/me", "identity", WRITE_METHODS, auth="user", scopes=("openid",), rate="write"),
    R("/v1/identity/me/*", "identity", WRITE_METHODS, auth="user", scopes=("openid",), rate="write"),
    # Agency APIs: client registration (clients.admin) and identity verification (identity.verify).
    R("/v1/identity/clients*", "identity", None, scopes=("clients.admin",), rate="write"),
    R("/v1/identity/*", "identity", READ_METHODS, scopes=("openid", "identity.verify", "clients.admin")),
    R("/v1/identity/*", "identity", WRITE_METHODS, scopes=("identity.verify", "clients.admin", "openid"), rate="write"),
    # --- payments
    R("/v1/payments/webhooks*", "payments", POST, auth="public", rate="webhook", retry=False),
    R("/v1/payments", "payments", POST, scopes=("payments.write",), rate="payment", retry=False),
    R("/v1/payments/*", "payments", WRITE_METHODS, scopes=("payments.write",), rate="payment", retry=False),
    R("/v1/payments", "payments", READ_METHODS, scopes=PAYMENT_SCOPES),
    R("/v1/payments/*", "payments", READ_METHODS, scopes=PAYMENT_SCOPES, timeout_s=20.0),  # PDF receipts
    # --- parking: search is browsable before signing in; bookings take money and count as holds
    R("/v1/parking/lots", "parking", READ_METHODS, **PUBLIC_READ),
    R("/v1/parking/lots/{id}", "parking", READ_METHODS, **PUBLIC_READ),
    R("/v1/parking/lots/{id}/availability", "parking", READ_METHODS, **PUBLIC_READ),
    R("/v1/parking/quotes*", "parking", None, **PUBLIC_READ),
    R(
        "/v1/parking/reservations",
        "parking",
        POST,
        auth="user",
        scopes=("parking",),
        rate="payment",
        retry=False,
        holds=True,
    ),
    R(
        "/v1/parking/reservations/{id}/extensions",
        "parking",
        POST,
        auth="user",
        scopes=("parking",),
        rate="payment",
        retry=False,
    ),
    R("/v1/parking/*", "parking", READ_METHODS, scopes=PARKING_SCOPES),
    R("/v1/parking/*", "parking", WRITE_METHODS, scopes=PARKING_SCOPES, rate="write", retry=False),
    # --- health: the directory and free slots are browsable; bookings take money and count as holds
    R("/v1/health/facilities*", "health_booking", READ_METHODS, **PUBLIC_READ),
    R("/v1/health/practitioners*", "health_booking", READ_METHODS, **PUBLIC_READ),
    R("/v1/health/specialties*", "health_booking", READ_METHODS, **PUBLIC_READ),
    R("/v1/health/slots*", "health_booking", READ_METHODS, **PUBLIC_READ),
    R(
        "/v1/health/appointments",
        "health_booking",
        POST,
        auth="user",
        scopes=("health",),
        rate="payment",
        retry=False,
        holds=True,
    ),
    R("/v1/health/*", "health_booking", READ_METHODS, scopes=HEALTH_SCOPES),
    R("/v1/health/*", "health_booking", WRITE_METHODS, scopes=HEALTH_SCOPES, rate="write", retry=False),
    # --- tuition: paying invoices takes money; imports may be large and slow
    R("/v1/tuition/*payments*", "tuition", POST, scopes=("tuition",), rate="payment", retry=False),
    R("/v1/tuition/*", "tuition", READ_METHODS, scopes=TUITION_SCOPES),
    R("/v1/tuition/*", "tuition", WRITE_METHODS, scopes=TUITION_SCOPES, rate="write", retry=False, timeout_s=30.0),
)

# The prefixes that belong to each upstream: any path under them is forwarded (or refused) by the table.
SERVICE_PREFIXES: dict[str, str] = {
    "/v1/identity/": "identity",
    "/v1/dev/": "identity",  # the dev SMS outbox lives with identity, which sends the codes
    "/oauth2/": "identity",
    "/.well-known/": "identity",
    "/v1/payments": "payments",
    "/v1/parking/": "parking",
    "/v1/health/": "health_booking",
    "/v1/tuition/": "tuition",
    "/v1/me/overview": "gateway",
}


def _bucket(path: str) -> str:
    """Routes are grouped by their top segment (two under /v1), so a lookup scans a handful of rows."""
    parts = path.split("/", 4)
    if len(parts) > 2 and parts[1] == "v1":
        return "/v1/" + parts[2]
    return "/" + parts[1] if len(parts) > 1 else path


_BUCKETS: dict[str, tuple[Route, ...]] = {}
for _route in ROUTES:
    _key = _bucket(_route.pattern)
    _BUCKETS[_key] = (*_BUCKETS.get(_key, ()), _route)


_MATCHED: dict[tuple[str, str], Route | None] = {}


def match(method: str, path: str) -> Route | None:
    """The policy entry for a request, or None when no service serves the path."""
    key = (method, path)
    try:
        return _MATCHED[key]
    except KeyError:
        pass
    found = None
    for route in _BUCKETS.get(_bucket(path), ()):
        if route.matches(method, path):
            found = route
            break
    if len(_MATCHED) >= 4096:  # paths carry ids: a small memo of recent ones, not a growing map
        _MATCHED.clear()
    _MATCHED[key] = found
    return found


def owner(path: str) -> str | None:
    """The service a path belongs to, whether or not a row admits this method."""
    for prefix, service in SERVICE_PREFIXES.items():
        if path.startswith(prefix) or path == prefix.rstrip("/"):
            return service
    return None

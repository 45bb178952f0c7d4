"""The one routing table: which path prefix goes to which service.

Policies (token required, scopes, rate limits, timeouts) are attached to these entries by the
gateway issue; today every entry forwards and the service enforces its own authorization.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    prefix: str
    service: str

    @property
    def path(self) -> str:
        """Route template used in metrics and logs."""
        return self.prefix + "*"


ROUTES: tuple[Route, ...] = (
    Route("/v1/identity/", "identity"),
    Route("/v1/dev/", "identity"),  # the dev SMS outbox lives with identity, which sends the codes
    Route("/oauth2/", "identity"),
    Route("/.well-known/", "identity"),
    Route("/v1/payments/", "payments"),
    Route("/v1/parking/", "parking"),
    Route("/v1/health/", "health_booking"),
    Route("/v1/tuition/", "tuition"),
)


def match(path: str) -> Route | None:
    for route in ROUTES:
        if path.startswith(route.prefix) or path == route.prefix.rstrip("/"):
            return route
    return None

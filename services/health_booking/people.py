"""Who a caller may act for: themself, or a dependent child that identity lists for them.

Identity owns guardianship. We ask it with the caller's own bearer token forwarded
(GET /v1/identity/me/dependents) every time it matters, so a revoked guardianship takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from shared.auth import Principal, bearer_token
from shared.errors import Forbidden, ServiceUnavailable
from shared.http import ServiceClient


@dataclass(frozen=True)
class Patient:
    ref: str  # the caller's sub, or the dependent's id in identity
    kind: str  # self | dependent
    display_name: str | None = None
    citizen_id_masked: str | None = None


class People:
    """Per-request view of the caller's relations, fetched from identity at most once per request."""

    def __init__(self, request: Request, principal: Principal) -> None:
        self.request = request
        self.principal = principal
        self._dependents: dict[str, dict[str, Any]] | None = None

    @property
    def sub(self) -> str:
        assert self.principal.sub
        return self.principal.sub

    async def _identity_get(self, path: str) -> Any:
        http: ServiceClient = self.request.app.state.http
        base = self.request.app.state.platform.service_url("identity")
        try:
            response = await http.get(base + path, headers={"Authorization": f"Bearer {bearer_token(self.request)}"})
        except Exception as exc:
            raise ServiceUnavailable("Da Nang ID is unavailable", code="identity_unavailable") from exc
        if response.status_code in (401, 403, 404):
            # Identity does not know this person or refuses the token for this: no relation is
            # established, so the caller acts only for themself (fail closed, not a 5xx).
            return None
        if response.status_code != 200:
            raise ServiceUnavailable(f"Da Nang ID answered {response.status_code}", code="identity_unavailable")
        return response.json()

    async def dependents(self) -> dict[str, dict[str, Any]]:
        if self._dependents is None:
            body = await self._identity_get("/v1/identity/me/dependents")
            items = body.get("items", body) if isinstance(body, dict) else body or []
            self._dependents = {str(d["id"]): d for d in items or []}
        return self._dependents

    async def me(self) -> dict[str, Any]:
        body = await self._identity_get("/v1/identity/me")
        return body if isinstance(body, dict) else {}

    async def patient(self, patient_id: str | None) -> Patient:
        """The patient the caller names (None or "self" = themself); 403 if they may not act for them."""
        if patient_id in (None, "", "self", self.sub):
            return Patient(self.sub, "self")
        assert patient_id is not None
        dependent = (await self.dependents()).get(patient_id)
        if dependent is None:
            raise Forbidden("You may not act for this person", code="not_your_dependent")
        return Patient(patient_id, "dependent", dependent.get("full_name"), dependent.get("citizen_id_masked"))

    async def may_access(self, patient_ref: str, patient_kind: str) -> str | None:
        """The caller's role for a patient's data (patient | guardian), or None."""
        if patient_ref == self.sub:
            return "patient"
        if patient_kind != "dependent":
            return None  # an adult's own data has no guardian
        # Any current guardian of the child, whoever booked; a former guardian who booked is not one.
        if patient_ref in await self.dependents():
            return "guardian"
        return None

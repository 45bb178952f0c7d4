"""Booking for a child and reading the child's records, with guardianship from the real identity service
(accounts registered through its API, phone codes read from its dev SMS outbox)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared.db import utcnow
from tests.health_booking.conftest import Health, build_app
from tests.helpers.asgi import running
from tests.helpers.live import LiveServer
from tests.helpers.tokens import TokenFactory
from tests.identity.helpers import citizen_body, citizen_id, register_and_verify

CHILD_BORN = date(2018, 5, 1)


@pytest.fixture
async def identity_server(service_app: Callable[..., FastAPI]) -> AsyncIterator[LiveServer]:
    """Identity on a real port whose own token checks use the session's live JWKS (the session server
    itself was built before DNCITY_IDENTITY_URL pointed at it, so it cannot verify access tokens)."""
    server = LiveServer(service_app("identity")).start()
    yield server
    server.stop()


@pytest.fixture
async def identity(identity_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=identity_server.url, timeout=30) as client:
        yield client


@pytest.fixture
async def health(tokens: TokenFactory, identity_server: LiveServer) -> AsyncIterator[Health]:
    """health_booking asking this identity server for dependents and profiles."""
    app = build_app(tokens, identity_url=identity_server.url)
    async with running(app) as client:
        app.state.clock = utcnow
        yield Health(app, client, tokens)


async def citizen(identity: httpx.AsyncClient, **body: Any) -> tuple[str, str]:
    """A registered, phone-verified citizen: (sub, full personal ID)."""
    payload = citizen_body(**body)
    return await register_and_verify(identity, payload), payload["citizen_id"]


async def add_child(
    identity: httpx.AsyncClient, health: Health, parent: str, child_id: str, invitation: str | None = None
) -> dict[str, Any]:
    body = {"full_name": "Nguyễn Bảo Ngọc", "date_of_birth": CHILD_BORN.isoformat(), "citizen_id": child_id}
    if invitation:
        body["invitation"] = invitation
    response = await identity.post("/v1/identity/me/dependents", headers=health.user(parent, ("openid",)), json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_parent_books_for_a_child_and_a_stranger_cannot(health: Health, identity: httpx.AsyncClient) -> None:
    mother, _ = await citizen(identity)
    father_body = citizen_body(full_name="Trần Văn Bình")
    father = await register_and_verify(identity, father_body)
    stranger, _ = await citizen(identity, full_name="Lê Văn Cường")
    child_pid = citizen_id(CHILD_BORN)
    child = await add_child(identity, health, mother, child_pid)
    # The mother invites the father, who becomes the second guardian of the same child.
    invite = await identity.post(
        f"/v1/identity/me/dependents/{child['id']}/invitations",
        headers=health.user(mother, ("openid",)),
        json={"phone": father_body["phone"]},
    )
    assert invite.status_code == 201, invite.text
    await add_child(identity, health, father, child_pid, invitation=invite.json()["invitation"])
    _fac, _doc, slots = await health.setup_basic()

    booked = await health.book(slots[0]["id"], sub=mother, patient=child["id"], reason="Sốt")
    assert booked.status_code == 201, booked.text
    appt = booked.json()
    assert appt["patient_id"] == child["id"] and appt["patient_kind"] == "dependent"
    assert appt["patient_name"] == "Nguyễn Bảo Ngọc"
    # Both guardians see it; the father through the child's own list.
    seen = await health.client.get(f"/v1/health/appointments/{appt['id']}", headers=health.user(father))
    assert seen.status_code == 200
    by_child = await health.client.get(
        "/v1/health/appointments", params={"patient": child["id"]}, headers=health.user(father)
    )
    assert [a["id"] for a in by_child.json()["items"]] == [appt["id"]]
    # A stranger can neither book for the child, nor see or cancel the appointment.
    refused = await health.book(slots[1]["id"], sub=stranger, patient=child["id"])
    assert refused.status_code == 403 and refused.json()["code"] == "not_your_dependent"
    for method, path in [
        ("GET", f"/v1/health/appointments/{appt['id']}"),
        ("POST", f"/v1/health/appointments/{appt['id']}/cancel"),
        ("GET", f"/v1/health/fhir/Appointment/{appt['id']}"),
    ]:
        response = await health.client.request(
            method, path, json={} if method == "POST" else None, headers=health.user(stranger)
        )
        assert response.status_code == 404, path
    listing = await health.client.get(
        "/v1/health/appointments", params={"patient": child["id"]}, headers=health.user(stranger)
    )
    assert listing.status_code == 403
    # The same child cannot be double-booked at an overlapping time by the other guardian.
    twice = await health.book(slots[0]["id"], sub=father, patient=child["id"], key="other-parent")
    assert twice.status_code == 409


async def test_guardians_read_the_childs_records_and_the_access_log_shows_it(
    health: Health, identity: httpx.AsyncClient
) -> None:
    mother, _ = await citizen(identity)
    stranger, _ = await citizen(identity, full_name="Lê Văn Cường")
    child = await add_child(identity, health, mother, citizen_id(CHILD_BORN))
    _fac, _doc, slots = await health.setup_basic()
    appt = (await health.book(slots[0]["id"], sub=mother, patient=child["id"])).json()
    await health.client.post(f"/v1/health/agency/appointments/{appt['id']}/arrive", headers=health.agency())
    attached = await health.client.post(
        f"/v1/health/agency/appointments/{appt['id']}/records",
        json={"title": "Khám nhi", "summary": "Viêm tai giữa"},
        headers=health.agency(),
    )
    assert attached.status_code == 201
    records = await health.client.get(
        "/v1/health/me/records", params={"patient": child["id"]}, headers=health.user(mother)
    )
    assert records.status_code == 200 and records.json()["records"][0]["summary"] == "Viêm tai giữa"
    assert (
        await health.client.get("/v1/health/me/records", params={"patient": child["id"]}, headers=health.user(stranger))
    ).status_code == 403
    mine = await health.client.get("/v1/health/me/records", headers=health.user(mother))
    assert mine.json()["records"] == []  # the mother's own records are not the child's
    log = await health.client.get(
        "/v1/health/me/records/access-log", params={"patient": child["id"]}, headers=health.user(mother)
    )
    assert [(e["accessor"], e["accessor_role"]) for e in log.json()["items"]] == [(mother, "guardian")]


async def test_bhyt_number_is_matched_with_the_personal_id_identity_holds(
    health: Health, identity: httpx.AsyncClient
) -> None:
    mother, mother_pid = await citizen(identity)
    child_pid = citizen_id(CHILD_BORN)
    child = await add_child(identity, health, mother, child_pid)
    own = await health.client.put(
        "/v1/health/me/profile",
        json={"bhyt_number": "4801234567", "citizen_id": mother_pid},
        headers=health.user(mother, ("openid", "health")),
    )
    assert own.status_code == 200, own.text
    assert own.json()["bhyt_number"] == "4801234567" and own.json()["bhyt_verified_at"]
    assert own.json()["citizen_id_masked"] != mother_pid  # only the masked form is kept
    wrong = "1" + mother_pid[1:] if mother_pid[0] != "1" else "2" + mother_pid[1:]
    mismatch = await health.client.put(
        "/v1/health/me/profile", json={"bhyt_number": "4801234568", "citizen_id": wrong}, headers=health.user(mother)
    )
    assert mismatch.status_code == 422 and mismatch.json()["errors"][0]["field"] == "body.citizen_id"
    kid = await health.client.put(
        "/v1/health/me/profile",
        params={"patient": child["id"]},
        json={"bhyt_number": "4807654321", "citizen_id": child_pid},
        headers=health.user(mother),
    )
    assert kid.status_code == 200 and kid.json()["patient_id"] == child["id"]
    read = await health.client.get("/v1/health/me/profile", headers=health.user(mother))
    assert read.json()["bhyt_number"] == "4801234567"


# Known defect (identity): guardianship is self-asserted. Whoever knows a child's personal ID and birth date
# becomes a guardian of the child's existing record and sees what the real parents booked.
async def test_a_stranger_who_knows_a_childs_id_and_birth_date_cannot_see_the_childs_appointments(
    health: Health, identity: httpx.AsyncClient
) -> None:
    mother, _ = await citizen(identity)
    stranger, _ = await citizen(identity, full_name="Lê Văn Cường")
    child_pid = citizen_id(CHILD_BORN)
    child = await add_child(identity, health, mother, child_pid)
    _fac, _doc, slots = await health.setup_basic()
    appt = (await health.book(slots[0]["id"], sub=mother, patient=child["id"], reason="Sốt")).json()
    # The stranger registers "the same child" with the ID and birth date from, e.g., a school form.
    claim = await identity.post(
        "/v1/identity/me/dependents",
        headers=health.user(stranger, ("openid",)),
        json={"full_name": "Bất kỳ", "date_of_birth": CHILD_BORN.isoformat(), "citizen_id": child_pid},
    )
    seen = await health.client.get(f"/v1/health/appointments/{appt['id']}", headers=health.user(stranger))
    assert claim.status_code != 201 or seen.status_code == 404, "a stranger became the child's guardian"

"""GET/PATCH /v1/identity/me, masking, level-2 locks, dependents, and BOLA."""

from __future__ import annotations

from datetime import date, timedelta

import httpx

from tests.helpers.tokens import TokenFactory
from tests.identity.helpers import citizen_body, citizen_id, foreigner_body, register_and_verify


async def test_me_masks_the_personal_id_unless_revealed(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    body = citizen_body(citizen_id="048095001212", date_of_birth="1995-03-04")
    sub = await register_and_verify(client, body)
    headers = tokens.bearer(tokens.user(sub))
    me = await client.get("/v1/identity/me", headers=headers)
    assert me.status_code == 200, me.text
    data = me.json()
    assert data["citizen_id"] == "048*******12" and data["identifiers_revealed"] is False
    assert "048095001212" not in me.text
    assert (data["sub"], data["level"], data["acr"], data["kind"]) == (sub, 1, "urn:dncity:loa:1", "citizen")
    assert data["phone"] == "+84" + body["phone"][1:] and data["full_name"] == "Nguyễn Văn An"
    revealed = await client.get("/v1/identity/me", params={"reveal": "identifiers"}, headers=headers)
    assert revealed.json()["citizen_id"] == "048095001212"
    audit = (await client.get("/v1/identity/me/audit", headers=headers)).json()["items"]
    assert audit[0]["action"] == "identifiers.revealed" and audit[0]["client_id"] == "dncity-mobile"
    assert "048095001212" not in str(audit)


async def test_me_requires_a_user_token_with_openid(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    sub = await register_and_verify(client, citizen_body())
    assert (await client.get("/v1/identity/me")).status_code == 401
    no_openid = await client.get("/v1/identity/me", headers=tokens.bearer(tokens.user(sub, ["parking"])))
    assert no_openid.status_code == 403 and no_openid.json()["code"] == "insufficient_scope"
    agency = await client.get("/v1/identity/me", headers=tokens.bearer(tokens.client("demo-hospital", ["openid"])))
    assert agency.status_code == 403
    ghost = await client.get("/v1/identity/me", headers=tokens.bearer(tokens.user("0" * 32)))
    assert ghost.status_code == 403 and ghost.json()["code"] == "account_not_active"


async def test_patch_profile(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    sub = await register_and_verify(client, citizen_body())
    headers = tokens.bearer(tokens.user(sub))
    response = await client.patch(
        "/v1/identity/me",
        headers=headers,
        json={
            "full_name": "Nguyễn Văn Anh",
            "address": "12 Bạch Đằng, Hải Châu, Đà Nẵng",
            "email": "An.Nguyen@Example.VN",
            "preferred_language": "en",
        },
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["full_name"] == "Nguyễn Văn Anh" and data["preferred_language"] == "en"
    assert data["email"] == "an.nguyen@example.vn" and data["address"].startswith("12 Bạch Đằng")
    cleared = await client.patch("/v1/identity/me", headers=headers, json={"address": None})
    assert cleared.json()["address"] is None
    audit = (await client.get("/v1/identity/me/audit", headers=headers)).json()["items"]
    changes = [e for e in audit if e["action"] == "profile.updated"]
    assert changes[-1]["details"] == {"fields": ["address", "email", "full_name", "preferred_language"]}
    assert "Bạch Đằng" not in str(audit)


async def test_patch_validation(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    sub = await register_and_verify(
        client, citizen_body(date_of_birth="1995-03-04", citizen_id=citizen_id(date(1995, 3, 4)))
    )
    headers = tokens.bearer(tokens.user(sub))
    cases = [
        ({"email": "not-an-email"}, "body.email"),
        ({"preferred_language": "fr"}, "body.preferred_language"),
        ({"date_of_birth": "1996-03-04"}, "body.date_of_birth"),  # disagrees with the personal ID's year digits
        ({"citizen_id": "003095001234"}, "body.citizen_id"),
        ({"passport_number": "M1234567"}, "body.passport_number"),  # not a citizen's field
        ({"full_name": None}, "body.full_name"),
        ({"level": 2}, "body.level"),
        ({"phone": "0905000000"}, "body.phone"),
    ]
    before = (await client.get("/v1/identity/me", headers=headers)).json()
    for body, field in cases:
        response = await client.patch("/v1/identity/me", headers=headers, json=body)
        assert response.status_code == 422, (body, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field], body
    assert (await client.get("/v1/identity/me", headers=headers)).json() == before


async def test_identifiers_are_read_only_after_level_2(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    sub = await register_and_verify(client, foreigner_body())
    agency = tokens.bearer(tokens.client("demo-immigration", ["identity.verify"]))
    verified = await client.post(
        "/v1/identity/verifications",
        headers=agency,
        json={"sub": sub, "method": "in_person", "evidence_reference": "DN-XNC-2026-000123", "officer_id": "CA-0451"},
    )
    assert verified.status_code == 201, verified.text
    headers = tokens.bearer(tokens.user(sub, level=2))
    for body in (
        {"passport_number": "M99999999"},
        {"nationality": "JPN"},
        {"full_name": "Someone Else"},
        {"date_of_birth": "1991-01-01"},
    ):
        response = await client.patch("/v1/identity/me", headers=headers, json=body)
        assert response.status_code == 409 and response.json()["code"] == "identifiers_locked", body
    ok = await client.patch("/v1/identity/me", headers=headers, json={"address": "Hội An", "preferred_language": "vi"})
    assert ok.status_code == 200 and ok.json()["identifiers_locked"] is True


async def test_dependents(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    sub = await register_and_verify(client, citizen_body())
    headers = tokens.bearer(tokens.user(sub))
    born = date.today() - timedelta(days=365 * 8)
    child = {
        "full_name": "Nguyễn Minh Khang",
        "date_of_birth": born.isoformat(),
        "citizen_id": citizen_id(born, province="048"),
    }
    created = await client.post("/v1/identity/me/dependents", headers=headers, json=child)
    assert created.status_code == 201, created.text
    assert created.json()["citizen_id_masked"] == child["citizen_id"][:3] + "*******" + child["citizen_id"][-2:]
    listed = await client.get("/v1/identity/me/dependents", headers=headers)
    assert listed.status_code == 200
    masked = created.json()["citizen_id_masked"]
    assert listed.json() == [
        {
            "id": created.json()["id"],
            "full_name": "Nguyễn Minh Khang",
            "date_of_birth": born.isoformat(),
            "citizen_id_masked": masked,
        }
    ]
    duplicate = await client.post("/v1/identity/me/dependents", headers=headers, json=child)
    assert duplicate.status_code == 409
    # Knowing the child's ID and birth date is not enough to become a guardian...
    other_body = citizen_body(full_name="Trần Thị Hoa")
    other = await register_and_verify(client, other_body)
    other_headers = tokens.bearer(tokens.user(other))
    refused = await client.post("/v1/identity/me/dependents", headers=other_headers, json=child)
    assert refused.status_code == 403 and refused.json()["code"] == "guardian_invitation_required"
    # ...the registered guardian invites the other parent by phone: same person reference.
    invite = await client.post(
        f"/v1/identity/me/dependents/{created.json()['id']}/invitations",
        headers=headers,
        json={"phone": other_body["phone"]},
    )
    assert invite.status_code == 201, invite.text
    invitation = invite.json()["invitation"]
    stranger = await register_and_verify(client, citizen_body(full_name="Lê Văn Cường"))
    stolen = await client.post(
        "/v1/identity/me/dependents",
        headers=tokens.bearer(tokens.user(stranger)),
        json={**child, "invitation": invitation},
    )
    assert stolen.status_code == 403  # the invitation is bound to the invited phone
    forged = await client.post(
        "/v1/identity/me/dependents",
        headers=other_headers,
        json={**child, "invitation": invitation[:-1] + ("0" if invitation[-1] != "0" else "1")},
    )
    assert forged.status_code == 403
    second = await client.post(
        "/v1/identity/me/dependents", headers=other_headers, json={**child, "invitation": invitation}
    )
    assert second.status_code == 201 and second.json()["id"] == created.json()["id"]
    # Only a guardian can invite.
    not_mine = await client.post(
        f"/v1/identity/me/dependents/{created.json()['id']}/invitations",
        headers=tokens.bearer(tokens.user(stranger)),
        json={"phone": other_body["phone"]},
    )
    assert not_mine.status_code == 404


async def test_dependent_rules(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    sub = await register_and_verify(client, citizen_body())
    headers = tokens.bearer(tokens.user(sub))
    today = date.today()
    fourteen = date(today.year - 14, today.month, min(today.day, 28))
    too_old = {"full_name": "A", "date_of_birth": fourteen.isoformat(), "citizen_id": citizen_id(fourteen)}
    response = await client.post("/v1/identity/me/dependents", headers=headers, json=too_old)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.date_of_birth"
    born = date(today.year - 5, 1, 15)
    # Century digit 0 (1900s) for a child born in the 2020s.
    wrong_century = {
        "full_name": "B",
        "date_of_birth": born.isoformat(),
        "citizen_id": "048" + "0" + citizen_id(born)[4:],
    }
    response = await client.post("/v1/identity/me/dependents", headers=headers, json=wrong_century)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.citizen_id"
    tourist = await register_and_verify(client, foreigner_body())
    response = await client.post(
        "/v1/identity/me/dependents",
        headers=tokens.bearer(tokens.user(tourist)),
        json={"full_name": "C", "date_of_birth": born.isoformat(), "citizen_id": citizen_id(born)},
    )
    assert response.status_code == 403 and response.json()["code"] == "citizens_only"
    assert (await client.get("/v1/identity/me/dependents", headers=headers)).json() == []


async def test_bola_a_cannot_read_or_change_b(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    a = await register_and_verify(client, citizen_body(full_name="Người A"))
    b_body = citizen_body(full_name="Người B")
    b = await register_and_verify(client, b_body)
    a_headers, b_headers = tokens.bearer(tokens.user(a)), tokens.bearer(tokens.user(b))
    born = date.today() - timedelta(days=365 * 3)
    await client.post(
        "/v1/identity/me/dependents",
        headers=b_headers,
        json={"full_name": "Con của B", "date_of_birth": born.isoformat(), "citizen_id": citizen_id(born)},
    )
    # Everything A reaches is A's own: there is no endpoint that takes another person's id.
    me = (await client.get("/v1/identity/me", headers=a_headers)).json()
    assert me["sub"] == a and me["full_name"] == "Người A"
    assert (await client.get("/v1/identity/me/dependents", headers=a_headers)).json() == []
    export = (await client.get("/v1/identity/me/export", headers=a_headers)).json()
    assert b not in str(export) and "Người B" not in str(export) and "Con của B" not in str(export)
    audit = (await client.get("/v1/identity/me/audit", headers=a_headers)).json()["items"]
    assert audit and all(b not in str(e) for e in audit)
    await client.patch("/v1/identity/me", headers=a_headers, json={"full_name": "Đổi tên"})
    assert (await client.get("/v1/identity/me", headers=b_headers)).json()["full_name"] == "Người B"
    # A cannot delete B's account with B's password (A's token names A).
    denied = await client.request("DELETE", "/v1/identity/me", headers=a_headers, json={"password": "x" * 12})
    assert denied.status_code == 403
    assert (await client.get("/v1/identity/me", headers=b_headers)).status_code == 200
    # Audit pagination with someone else's cursor still only lists one's own events.
    page = await client.get("/v1/identity/me/audit", headers=a_headers, params={"limit": 1})
    cursor = page.json()["next_cursor"]
    other = await client.get("/v1/identity/me/audit", headers=b_headers, params={"cursor": cursor})
    assert all(e["id"] not in {x["id"] for x in audit} for e in other.json()["items"])


async def test_audit_pagination(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    sub = await register_and_verify(client, citizen_body())
    headers = tokens.bearer(tokens.user(sub))
    for _ in range(3):
        await client.get("/v1/identity/me", params={"reveal": "identifiers"}, headers=headers)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/identity/me/audit", headers=headers, params=params)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    everything = (await client.get("/v1/identity/me/audit", headers=headers)).json()["items"]
    assert seen == [e["id"] for e in everything] and len(seen) == 6  # registered, verified, level 0→1, three reveals
    bad = await client.get("/v1/identity/me/audit", headers=headers, params={"cursor": "garbage!"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.cursor"

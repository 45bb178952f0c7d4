"""Guardianship: link codes (expiry, single use), personal ID + birth date, revocation, BOLA."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import httpx
from sqlalchemy import update

from services.tuition.guardians.models import LinkCode
from shared.db import Database, utcnow
from tests.helpers.tokens import TokenFactory
from tests.tuition.conftest import OTHER_SCHOOL, Guardian, School, student_row


async def test_link_with_code_then_the_guardian_sees_the_student(
    school: School, guardian_factory: Callable[[str], Guardian]
) -> None:
    [child] = await school.students(student_row("HS001", personal_id="048214000001"))
    parent = guardian_factory("parent-1")
    linked = await parent.link(await school.link_code(child["id"]))
    assert linked.status_code == 201, linked.text
    assert linked.json()["personal_id_masked"] == "********0001"
    assert "personal_id" not in linked.json()
    mine = (await parent.client.get("/v1/tuition/me/students", headers=parent.headers)).json()
    assert [s["student_code"] for s in mine["items"]] == ["HS001"] and mine["next_cursor"] is None
    one = await parent.client.get(f"/v1/tuition/students/{child['id']}", headers=parent.headers)
    assert one.status_code == 200 and one.json()["full_name"] == "Học sinh HS001"
    assert "personal_id" not in one.json() and one.json()["personal_id_masked"] == "********0001"


async def test_a_code_works_once(school: School, guardian_factory: Callable[[str], Guardian]) -> None:
    [child] = await school.students(student_row("HS002"))
    code = await school.link_code(child["id"])
    assert (await guardian_factory("parent-1").link(code)).status_code == 201
    reuse = await guardian_factory("stranger").link(code)
    assert reuse.status_code == 409 and reuse.json()["code"] == "link_code_used"
    stranger = guardian_factory("stranger")
    assert (await stranger.client.get("/v1/tuition/me/students", headers=stranger.headers)).json()["items"] == []


async def test_concurrent_redemptions_of_one_code_link_one_guardian(
    school: School, guardian_factory: Callable[[str], Guardian]
) -> None:
    [child] = await school.students(student_row("HS003"))
    code = await school.link_code(child["id"])
    results = await asyncio.gather(*[guardian_factory(f"p-{i}").link(code) for i in range(5)])
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409, 409]
    guardians = (
        await school.client.get(f"/v1/tuition/students/{child['id']}/guardians", headers=school.headers)
    ).json()["items"]
    assert len(guardians) == 1


async def test_expired_code_is_refused(
    school: School, guardian_factory: Callable[[str], Guardian], database_urls: dict[str, str]
) -> None:
    [child] = await school.students(student_row("HS004"))
    code = await school.link_code(child["id"])
    db = Database(database_urls["tuition"])
    async with db.sessionmaker() as session, session.begin():
        await session.execute(update(LinkCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    await db.dispose()
    response = await guardian_factory("parent-1").link(code)
    assert response.status_code == 422
    assert response.json()["code"] == "link_code_expired"
    assert response.json()["errors"][0]["field"] == "body.link_code"


async def test_unknown_code_and_bad_bodies_name_the_field(
    school: School, guardian_factory: Callable[[str], Guardian]
) -> None:
    parent = guardian_factory("parent-1")
    unknown = await parent.link("AAAAA-BBBBB")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.link_code"
    for body in (
        {},
        {"personal_id": "048214000001"},
        {"personal_id": "12ab", "date_of_birth": "2014-01-01"},
        {"link_code": "AAAAA-BBBBB", "personal_id": "048214000001", "date_of_birth": "2014-01-01"},
    ):
        response = await parent.client.post("/v1/tuition/me/students", headers=parent.headers, json=body)
        assert response.status_code == 422, body
        assert response.json()["errors"], body


async def test_link_with_personal_id_and_birth_date(
    school: School, guardian_factory: Callable[[str], Guardian]
) -> None:
    await school.students(student_row("HS005", personal_id="048214000005", date_of_birth="2012-12-12"))
    parent = guardian_factory("parent-1")
    wrong = await parent.client.post(
        "/v1/tuition/me/students",
        headers=parent.headers,
        json={"personal_id": "048214000005", "date_of_birth": "2012-12-13"},
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "body.personal_id"
    right = await parent.client.post(
        "/v1/tuition/me/students",
        headers=parent.headers,
        json={"personal_id": "048214000005", "date_of_birth": "2012-12-12"},
    )
    assert right.status_code == 201 and right.json()["student_code"] == "HS005"


async def test_several_guardians_and_revocation(school: School, guardian_factory: Callable[[str], Guardian]) -> None:
    [child] = await school.students(student_row("HS006", personal_id="048214000006"))
    mother, father = guardian_factory("mother"), guardian_factory("father")
    assert (await mother.link(await school.link_code(child["id"]))).status_code == 201
    assert (await father.link(await school.link_code(child["id"]))).status_code == 201
    links = (await school.client.get(f"/v1/tuition/students/{child['id']}/guardians", headers=school.headers)).json()[
        "items"
    ]
    assert {g["guardian_sub"] for g in links} == {"mother", "father"}

    father_link = next(g for g in links if g["guardian_sub"] == "father")
    revoked = await school.client.delete(
        f"/v1/tuition/students/{child['id']}/guardians/{father_link['id']}", headers=school.headers
    )
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert (await father.client.get(f"/v1/tuition/students/{child['id']}", headers=father.headers)).status_code == 404
    assert (await father.client.get("/v1/tuition/me/students", headers=father.headers)).json()["items"] == []
    # The personal ID route cannot undo the school's decision; a new code from the school can.
    again = await father.client.post(
        "/v1/tuition/me/students",
        headers=father.headers,
        json={"personal_id": "048214000006", "date_of_birth": "2014-05-01"},
    )
    assert again.status_code == 403 and again.json()["code"] == "link_revoked"
    assert (await father.link(await school.link_code(child["id"]))).status_code == 201
    assert len((await father.client.get("/v1/tuition/me/students", headers=father.headers)).json()["items"]) == 1


async def test_guardian_sees_only_linked_students(
    school: School, guardian_factory: Callable[[str], Guardian], tuition: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    mine, theirs = await school.students(student_row("HS007"), student_row("HS008"))
    parent = guardian_factory("parent-1")
    await parent.link(await school.link_code(mine["id"]))
    for path in (f"/v1/tuition/students/{theirs['id']}", f"/v1/tuition/students/{theirs['id']}/invoices"):
        assert (await tuition.get(path, headers=parent.headers)).status_code == 404
    # A person may not use school endpoints, nor a school another school's codes.
    assert (
        await tuition.post(f"/v1/tuition/students/{mine['id']}/link-codes", headers=parent.headers)
    ).status_code == 403
    other = School(tuition, tokens, OTHER_SCHOOL)
    assert (
        await tuition.post(f"/v1/tuition/students/{mine['id']}/link-codes", headers=other.headers)
    ).status_code == 404
    no_scope = tokens.bearer(tokens.user("parent-1", ["openid"]))
    assert (await tuition.get("/v1/tuition/me/students", headers=no_scope)).status_code == 403


async def test_erasing_an_account_removes_its_guardian_links(
    school: School, guardian_factory: Callable[[str], Guardian], redis_url: str
) -> None:
    from shared.db import new_id
    from shared.events import CloudEvent, stream_for
    from shared.redis import create_redis
    from tests.tuition.conftest import wait_for

    [child] = await school.students(student_row("HS009"))
    leaving, staying = guardian_factory("leaving"), guardian_factory("staying")
    for parent in (leaving, staying):
        assert (await parent.link(await school.link_code(child["id"]))).status_code == 201
    event = CloudEvent(
        id=new_id(),
        source="/dncity/identity",
        type="identity.account.erased",
        time=utcnow(),
        subject="leaving",
        data={"sub": "leaving"},
    )
    redis = create_redis(redis_url)
    try:
        await redis.xadd(stream_for("identity"), event.to_fields())
    finally:
        await redis.aclose()

    async def gone() -> bool:
        links = (
            await school.client.get(f"/v1/tuition/students/{child['id']}/guardians", headers=school.headers)
        ).json()["items"]
        return [g["guardian_sub"] for g in links] == ["staying"]

    await wait_for(gone)
    assert (await leaving.client.get("/v1/tuition/me/students", headers=leaving.headers)).json()["items"] == []


async def test_a_guardian_ends_their_own_link(school: School, guardian_factory: Callable[[str], Guardian]) -> None:
    [child] = await school.students(student_row("HS010", personal_id="048214000010"))
    mother, father = guardian_factory("mother"), guardian_factory("father")
    for parent in (mother, father):
        assert (await parent.link(await school.link_code(child["id"]))).status_code == 201
    # Nobody ends a link they do not hold: a stranger's attempt is a 404 and changes nothing.
    stranger = guardian_factory("stranger")
    refused = await stranger.client.delete(f"/v1/tuition/me/students/{child['id']}", headers=stranger.headers)
    assert refused.status_code == 404 and refused.json()["code"] == "student_not_found"

    ended = await father.client.delete(f"/v1/tuition/me/students/{child['id']}", headers=father.headers)
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "revoked" and ended.json()["guardian_sub"] == "father"
    assert (await father.client.get("/v1/tuition/me/students", headers=father.headers)).json()["items"] == []
    assert (
        await father.client.get(f"/v1/tuition/students/{child['id']}/invoices", headers=father.headers)
    ).status_code == 404
    again = await father.client.delete(f"/v1/tuition/me/students/{child['id']}", headers=father.headers)
    assert again.status_code == 404
    # The mother's link is untouched; the school's list shows the father's as revoked.
    assert len((await mother.client.get("/v1/tuition/me/students", headers=mother.headers)).json()["items"]) == 1
    links = (await school.client.get(f"/v1/tuition/students/{child['id']}/guardians", headers=school.headers)).json()[
        "items"
    ]
    assert {g["guardian_sub"]: g["status"] for g in links} == {"mother": "active", "father": "revoked"}
    # Having left by choice, the father may come back with the personal ID (unlike after a school's revocation).
    back = await father.client.post(
        "/v1/tuition/me/students",
        headers=father.headers,
        json={"personal_id": "048214000010", "date_of_birth": "2014-05-01"},
    )
    assert back.status_code == 201, back.text
    assert len((await father.client.get("/v1/tuition/me/students", headers=father.headers)).json()["items"]) == 1

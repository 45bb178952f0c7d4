"""Students: bulk import (JSON and CSV, all-or-nothing and per-row), updates, school isolation."""

from __future__ import annotations

import httpx

from tests.helpers.tokens import TokenFactory
from tests.tuition.conftest import OTHER_SCHOOL, School, student_row


async def test_json_import_creates_then_updates_with_a_report(school: School) -> None:
    first = await school.import_students([student_row("HS001", personal_id="048214000001"), student_row("HS002")])
    assert first.status_code == 200, first.text
    report = first.json()
    assert (report["created"], report["updated"], report["failed"], report["applied"]) == (2, 0, 0, True)
    assert [r["outcome"] for r in report["rows"]] == ["created", "created"]

    again = await school.import_students(
        [student_row("HS001", personal_id="048214000001", class_name="6B"), student_row("HS002")]
    )
    report = again.json()
    assert [r["outcome"] for r in report["rows"]] == ["updated", "unchanged"]
    listed = (await school.client.get("/v1/tuition/students", headers=school.headers)).json()["items"]
    assert {s["student_code"]: s["class_name"] for s in listed} == {"HS001": "6B", "HS002": "6A"}
    assert listed[0]["personal_id"] == "048214000001"


async def test_csv_import_with_header_and_bom(school: School) -> None:
    csv_body = (
        "\ufeffstudent_code,personal_id,full_name,date_of_birth,grade,class_name\n"
        "HS101,048214000101,Nguyễn Văn An,2013-02-03,7,7A\n"
        "HS102,,Trần Thị Bình,2013-09-30,7,7B\n"
    )
    response = await school.client.post(
        "/v1/tuition/students/import", content=csv_body.encode(), headers={**school.headers, "Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 2
    listed = (await school.client.get("/v1/tuition/students", headers=school.headers)).json()["items"]
    assert {s["full_name"] for s in listed} == {"Nguyễn Văn An", "Trần Thị Bình"}
    assert next(s for s in listed if s["student_code"] == "HS102")["personal_id"] is None


async def test_all_or_nothing_with_bad_rows_stores_nothing_and_names_each_field(school: School) -> None:
    rows = [
        student_row("HS201"),
        student_row("HS202", date_of_birth="2099-01-01"),  # in the future
        student_row("HS203", personal_id="12345"),  # not 12 digits
        student_row("HS201"),  # duplicate of row 1
        {"student_code": "HS204", "full_name": "Thiếu lớp", "date_of_birth": "2014-01-01", "grade": "6"},
    ]
    response = await school.import_students(rows)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "import_rejected"
    fields = {e["field"] for e in body["errors"]}
    assert {"rows[2].date_of_birth", "rows[3].personal_id", "rows[4].student_code", "rows[5].class_name"} <= fields
    assert body["report"]["applied"] is False
    assert body["report"]["rows"][0]["outcome"] == "not_applied"
    listed = (await school.client.get("/v1/tuition/students", headers=school.headers)).json()["items"]
    assert listed == []


async def test_per_row_mode_applies_good_rows_and_reports_the_bad(school: School) -> None:
    response = await school.import_students(
        [student_row("HS301"), student_row("HS302", grade=""), student_row("HS303")], mode="per_row"
    )
    assert response.status_code == 200
    report = response.json()
    assert [r["outcome"] for r in report["rows"]] == ["created", "error", "created"]
    assert report["rows"][1]["errors"][0]["field"] == "grade"
    assert (report["created"], report["failed"]) == (2, 1)
    listed = (await school.client.get("/v1/tuition/students", headers=school.headers)).json()["items"]
    assert [s["student_code"] for s in listed] == ["HS301", "HS303"]


async def test_codes_and_personal_ids_are_unique_across_schools(
    school: School, tuition: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    await school.students(student_row("HS401", personal_id="048214000401"))
    other = School(tuition, tokens, OTHER_SCHOOL)
    response = await other.import_students(
        [student_row("HS401"), student_row("X-9", personal_id="048214000401")], mode="per_row"
    )
    rows = response.json()["rows"]
    assert rows[0]["errors"][0]["field"] == "student_code"
    assert rows[1]["errors"][0]["field"] == "personal_id"
    # And the first school's record is untouched.
    listed = (await school.client.get("/v1/tuition/students", headers=school.headers)).json()["items"]
    assert listed[0]["full_name"] == "Học sinh HS401"


async def test_a_school_never_sees_another_schools_students(
    school: School, tuition: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    [student] = await school.students(student_row("HS501"))
    other = School(tuition, tokens, OTHER_SCHOOL)
    for method, path in [
        ("GET", f"/v1/tuition/students/{student['id']}"),
        ("PATCH", f"/v1/tuition/students/{student['id']}"),
        ("POST", f"/v1/tuition/students/{student['id']}/link-codes"),
        ("GET", f"/v1/tuition/students/{student['id']}/guardians"),
        ("GET", f"/v1/tuition/students/{student['id']}/invoices"),
    ]:
        response = await tuition.request(
            method, path, headers=other.headers, json={"class_name": "9Z"} if method == "PATCH" else None
        )
        assert response.status_code == 404, (method, path, response.text)
    assert (await tuition.get("/v1/tuition/students", headers=other.headers)).json()["items"] == []
    assert (await school.client.get(f"/v1/tuition/students/{student['id']}", headers=school.headers)).json()[
        "class_name"
    ] == "6A"


async def test_update_validates_and_names_the_field(school: School) -> None:
    [student] = await school.students(
        student_row("HS601"),
    )
    url = f"/v1/tuition/students/{student['id']}"
    bad = await school.client.patch(url, headers=school.headers, json={"status": "expelled"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.status"
    ok = await school.client.patch(url, headers=school.headers, json={"class_name": "6C", "status": "transferred"})
    assert ok.status_code == 200 and ok.json()["status"] == "transferred"


async def test_bad_import_bodies_are_4xx_naming_the_problem(school: School) -> None:
    url = "/v1/tuition/students/import"
    json_headers = {**school.headers, "Content-Type": "application/json"}
    not_json = await school.client.post(url, content=b"{", headers=json_headers)
    assert not_json.status_code == 422 and not_json.json()["errors"][0]["field"] == "body"
    no_list = await school.client.post(url, json={"pupils": []}, headers=school.headers)
    assert no_list.status_code == 422 and no_list.json()["errors"][0]["field"] == "body.students"
    empty = await school.client.post(url, json={"students": []}, headers=school.headers)
    assert empty.status_code == 422
    bad_header = await school.client.post(
        url, content=b"code,name\nA,B\n", headers={**school.headers, "Content-Type": "text/csv"}
    )
    assert bad_header.status_code == 422 and bad_header.json()["errors"][0]["field"] == "body.header"
    wrong_type = await school.client.post(url, content=b"x", headers={**school.headers, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    mode = await school.client.post(
        url + "?mode=sometimes", json={"students": [student_row("HS701")]}, headers=school.headers
    )
    assert mode.status_code == 422 and mode.json()["errors"][0]["field"] == "query.mode"
    assert (await school.client.get("/v1/tuition/students", headers=school.headers)).json()["items"] == []


async def test_school_endpoints_need_a_school_token(tuition: httpx.AsyncClient, tokens: TokenFactory) -> None:
    person = tokens.bearer(tokens.user("citizen-1", ["tuition"]))
    assert (await tuition.get("/v1/tuition/students", headers=person)).status_code == 403
    wrong_scope = tokens.bearer(tokens.client("demo-hospital", ["health.records.write"]))
    assert (await tuition.get("/v1/tuition/students", headers=wrong_scope)).status_code == 403
    assert (await tuition.get("/v1/tuition/students")).status_code == 401

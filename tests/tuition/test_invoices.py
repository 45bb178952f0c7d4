"""Fee items, rounds, invoices (generated and imported), exemptions, adjustments, voids, views, reports."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, timedelta

import httpx

from tests.helpers.tokens import TokenFactory
from tests.tuition.conftest import OTHER_SCHOOL, Guardian, School, student_row


async def test_generate_invoices_from_fee_items_per_grade(school: School) -> None:
    await school.students(
        student_row("HS001"),
        student_row("HS002", grade="7", class_name="7A"),
        student_row("HS003", grade="9", class_name="9A"),
        student_row("HS004", status="withdrawn"),
    )
    await school.fee_item("HP6", 1_500_000)
    await school.fee_item("AN6", 600_000, kind="meals")
    await school.fee_item("HP7", 1_600_000, grade="7")
    await school.fee_item("HP6-HK2", 9_999, term="2025-2026/HK2")  # another term: not in this round
    rnd = await school.round()
    response = await school.client.post(f"/v1/tuition/rounds/{rnd['id']}/invoices/generate", headers=school.headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["created"], report["skipped_no_fee_items"]) == (2, 1)  # grade 9 has no items; withdrawn skipped
    invoices = (
        await school.client.get("/v1/tuition/invoices", headers=school.headers, params={"round_id": rnd["id"]})
    ).json()["items"]
    totals = {i["student_code"]: (i["total_vnd"], i["status"], len(i["lines"])) for i in invoices}
    assert totals == {"HS001": (2_100_000, "open", 2), "HS002": (1_600_000, "open", 1)}
    again = (
        await school.client.post(f"/v1/tuition/rounds/{rnd['id']}/invoices/generate", headers=school.headers)
    ).json()
    assert (again["created"], again["skipped_existing"]) == (0, 2)


async def test_invoice_import_all_or_nothing_and_per_row(school: School) -> None:
    await school.students(student_row("HS001"), student_row("HS002"), student_row("HS003"))
    await school.fee_item("HP6", 1_500_000)
    rnd = await school.round()
    url = f"/v1/tuition/rounds/{rnd['id']}/invoices/import"
    lines = [
        {"student_code": "HS001", "fee_item_code": "HP6"},
        {"student_code": "HS001", "kind": "meals", "description": "Tiền ăn", "amount_vnd": 500_000},
        {"student_code": "HS002", "kind": "uniform", "description": "Đồng phục", "amount_vnd": -1},  # bad amount
        {"student_code": "HS002", "fee_item_code": "HP6"},  # same invoice as the bad line
        {"student_code": "NOPE1", "fee_item_code": "HP6"},  # unknown student
        {"student_code": "HS003", "fee_item_code": "XX"},  # unknown fee item
        {"student_code": "HS003", "kind": "meals"},  # incomplete line
    ]
    rejected = await school.client.post(url, json={"lines": lines}, headers=school.headers)
    assert rejected.status_code == 422
    fields = {e["field"] for e in rejected.json()["errors"]}
    assert {"rows[3].amount_vnd", "rows[5].student_code", "rows[6].fee_item_code", "rows[7].row"} <= fields
    assert (await school.client.get("/v1/tuition/invoices", headers=school.headers)).json()["items"] == []

    per_row = await school.client.post(url + "?mode=per_row", json={"lines": lines}, headers=school.headers)
    assert per_row.status_code == 200, per_row.text
    outcomes = [r["outcome"] for r in per_row.json()["rows"]]
    # HS002's good line is held back with its bad line: an invoice is never created half.
    assert outcomes == ["created", "created", "error", "error", "error", "error", "error"]
    invoices = (await school.client.get("/v1/tuition/invoices", headers=school.headers)).json()["items"]
    assert [(i["student_code"], i["total_vnd"]) for i in invoices] == [("HS001", 2_000_000)]


async def test_invoice_import_from_csv(school: School) -> None:
    await school.students(student_row("HS001"), student_row("HS002"))
    rnd = await school.round()
    body = (
        "student_code,kind,description,amount_vnd\n"
        "HS001,tuition,Học phí HK1,1500000\nHS001,boarding,Bán trú,300000\nHS002,meals,Tiền ăn,450000\n"
    )
    response = await school.client.post(
        f"/v1/tuition/rounds/{rnd['id']}/invoices/import",
        content=body.encode(),
        headers={**school.headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 3  # three rows, two invoices
    invoices = (await school.client.get("/v1/tuition/invoices", headers=school.headers)).json()["items"]
    assert sorted(i["total_vnd"] for i in invoices) == [450_000, 1_800_000]


async def test_exemptions_apply_to_tuition_lines_with_the_rounding_rule(school: School) -> None:
    a, b, c = await school.students(student_row("HS001"), student_row("HS002"), student_row("HS003"))
    rnd = await school.round()
    grant = await school.client.post(
        f"/v1/tuition/students/{a['id']}/exemptions",
        headers=school.headers,
        json={"category": "ethnic_minority_difficult_area", "evidence_ref": "QĐ 123/QĐ-UBND ngày 01/08/2025"},
    )
    assert grant.status_code == 201 and grant.json()["percent"] == 70
    await school.client.post(
        f"/v1/tuition/students/{b['id']}/exemptions",
        headers=school.headers,
        json={"category": "near_poor_household", "evidence_ref": "Sổ hộ cận nghèo 2025/045", "percent": 50},
    )
    invoice_a = await school.invoice(
        rnd["id"], "HS001", ("tuition", "Học phí", 1_234_567), ("meals", "Tiền ăn", 500_000)
    )
    # 70 % of 1 234 567 = 864 196.9 → 864 197; meals are not covered by Decree 81.
    assert [ln["reduction_vnd"] for ln in invoice_a["lines"]] == [864_197, 0]
    assert invoice_a["total_vnd"] == 1_234_567 - 864_197 + 500_000
    assert invoice_a["gross_vnd"] - invoice_a["reduction_vnd"] == invoice_a["total_vnd"]
    invoice_b = await school.invoice(rnd["id"], "HS002", ("tuition", "Học phí", 333_335))
    assert invoice_b["lines"][0]["reduction_vnd"] == 166_668  # 166 667.5 → halves up
    # Granted after invoicing: the unpaid invoice takes it at once, and the trail says so.
    invoice_c = await school.invoice(rnd["id"], "HS003", ("tuition", "Học phí", 999_999))
    full = await school.client.post(
        f"/v1/tuition/students/{c['id']}/exemptions",
        headers=school.headers,
        json={"category": "poor_household", "evidence_ref": "GCN hộ nghèo 2025/77"},
    )
    assert full.json()["applied_to_invoices"] == [invoice_c["id"]]
    invoice_c = await school.get_invoice(invoice_c["id"])
    assert (invoice_c["total_vnd"], invoice_c["status"]) == (0, "paid")
    trail = (await school.client.get(f"/v1/tuition/invoices/{invoice_c['id']}/audit", headers=school.headers)).json()[
        "items"
    ]
    assert [e["action"] for e in trail] == ["created", "exemption_applied"]
    assert trail[1]["detail"]["evidence_ref"] == "GCN hộ nghèo 2025/77"


async def test_exemption_input_is_checked(school: School) -> None:
    [a] = await school.students(student_row("HS001"))
    url = f"/v1/tuition/students/{a['id']}/exemptions"
    unknown = await school.client.post(url, headers=school.headers, json={"category": "vip", "evidence_ref": "x-1"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "body.category"
    mismatch = await school.client.post(
        url, headers=school.headers, json={"category": "near_poor_household", "evidence_ref": "abc", "percent": 70}
    )
    assert mismatch.status_code == 422 and mismatch.json()["errors"][0]["field"] == "body.percent"
    no_evidence = await school.client.post(url, headers=school.headers, json={"category": "disabled"})
    assert no_evidence.status_code == 422 and no_evidence.json()["errors"][0]["field"] == "body.evidence_ref"
    assert (await school.client.get(url, headers=school.headers)).json()["items"] == []


async def test_adjustments_and_voids_keep_an_audit_trail(school: School) -> None:
    await school.students(student_row("HS001"))
    rnd = await school.round()
    invoice = await school.invoice(rnd["id"], "HS001", ("tuition", "Học phí", 1_000_000), ("club", "CLB", 200_000))
    url = f"/v1/tuition/invoices/{invoice['id']}"
    adjusted = await school.client.post(
        url + "/adjustments",
        headers=school.headers,
        json={"description": "Giảm tiền CLB tháng 9", "amount_vnd": -50_000, "reason": "CLB nghỉ 1 buổi"},
    )
    assert adjusted.status_code == 200 and adjusted.json()["total_vnd"] == 1_150_000
    club = invoice["lines"][1]
    voided = await school.client.post(
        f"{url}/lines/{club['id']}/void", headers=school.headers, json={"reason": "Học sinh không đăng ký CLB"}
    )
    assert voided.status_code == 200 and voided.json()["total_vnd"] == 950_000
    again = await school.client.post(f"{url}/lines/{club['id']}/void", headers=school.headers, json={"reason": "again"})
    assert again.status_code == 409
    whole = await school.client.post(url + "/void", headers=school.headers, json={"reason": "Nhập trùng"})
    assert whole.status_code == 200 and whole.json()["status"] == "void" and whole.json()["outstanding_vnd"] == 0
    trail = (await school.client.get(url + "/audit", headers=school.headers)).json()["items"]
    assert [e["action"] for e in trail] == ["created", "adjusted", "line_voided", "voided"]
    assert trail[2]["note"] == "Học sinh không đăng ký CLB"
    zero = await school.client.post(
        url + "/adjustments", headers=school.headers, json={"description": "x", "amount_vnd": 0, "reason": "nothing"}
    )
    assert zero.status_code == 422 and zero.json()["errors"][0]["field"] == "body.amount_vnd"


async def test_a_voided_invoice_is_reissued_in_the_same_round(school: School) -> None:
    await school.students(student_row("HS001"), student_row("HS002"))
    await school.fee_item("HP6", 1_500_000)
    rnd = await school.round()
    wrong = await school.invoice(rnd["id"], "HS001", ("tuition", "Học phí", 15_000_000))  # a typo: ten times
    # While it is live, the student cannot get a second invoice in the round.
    twice = await school.client.post(
        f"/v1/tuition/rounds/{rnd['id']}/invoices/import",
        headers=school.headers,
        json={
            "lines": [{"student_code": "HS001", "kind": "tuition", "description": "Học phí", "amount_vnd": 1_500_000}]
        },
    )
    assert twice.status_code == 422 and twice.json()["errors"][0]["type"] == "exists"
    voided = await school.client.post(
        f"/v1/tuition/invoices/{wrong['id']}/void", headers=school.headers, json={"reason": "Sai số tiền"}
    )
    assert voided.status_code == 200 and voided.json()["status"] == "void"
    fixed = await school.invoice(rnd["id"], "HS001", ("tuition", "Học phí", 1_500_000))
    assert fixed["id"] != wrong["id"] and fixed["total_vnd"] == 1_500_000 and fixed["status"] == "open"
    # Generating the round fills in HS002 and leaves HS001's new invoice alone.
    report = (
        await school.client.post(f"/v1/tuition/rounds/{rnd['id']}/invoices/generate", headers=school.headers)
    ).json()
    assert (report["created"], report["skipped_existing"]) == (1, 1)
    listed = (
        await school.client.get("/v1/tuition/invoices", headers=school.headers, params={"round_id": rnd["id"]})
    ).json()["items"]
    assert sorted((i["student_code"], i["status"], i["total_vnd"]) for i in listed) == [
        ("HS001", "open", 1_500_000),
        ("HS001", "void", 15_000_000),
        ("HS002", "open", 1_500_000),
    ]
    trail = (await school.client.get(f"/v1/tuition/invoices/{wrong['id']}/audit", headers=school.headers)).json()
    assert [(e["action"], e["note"]) for e in trail["items"]][-1] == ("voided", "Sai số tiền")


async def test_guardian_views_and_bola(
    school: School, guardian_factory: Callable[[str], Guardian], tuition: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    a, b, c = await school.students(student_row("HS001"), student_row("HS002"), student_row("HS003"))
    rnd = await school.round()
    inv_a = await school.invoice(rnd["id"], "HS001", ("tuition", "Học phí", 1_000_000))
    inv_b = await school.invoice(rnd["id"], "HS002", ("meals", "Tiền ăn", 400_000))
    inv_c = await school.invoice(rnd["id"], "HS003", ("meals", "Tiền ăn", 400_000))
    parent = guardian_factory("parent-1")
    for child in (a, b):
        assert (await parent.link(await school.link_code(child["id"]))).status_code == 201
    open_items = await parent.invoices("open")
    assert {i["id"] for i in open_items} == {inv_a["id"], inv_b["id"]}
    assert await parent.invoices("paid") == []
    page = (
        await tuition.get("/v1/tuition/me/invoices", headers=parent.headers, params={"status": "open", "limit": 1})
    ).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = (
        await tuition.get(
            "/v1/tuition/me/invoices",
            headers=parent.headers,
            params={"status": "open", "limit": 1, "cursor": page["next_cursor"]},
        )
    ).json()
    assert {page["items"][0]["id"], rest["items"][0]["id"]} == {inv_a["id"], inv_b["id"]}
    assert rest["next_cursor"] is None
    by_student = (await tuition.get(f"/v1/tuition/students/{a['id']}/invoices", headers=parent.headers)).json()
    assert [i["id"] for i in by_student["items"]] == [inv_a["id"]]
    # Not theirs: another child's invoice, and school-only endpoints.
    assert (await tuition.get(f"/v1/tuition/invoices/{inv_c['id']}", headers=parent.headers)).status_code == 404
    assert (await tuition.get(f"/v1/tuition/students/{c['id']}/invoices", headers=parent.headers)).status_code == 404
    assert (await tuition.get(f"/v1/tuition/invoices/{inv_a['id']}/audit", headers=parent.headers)).status_code == 403
    other = School(tuition, tokens, OTHER_SCHOOL)
    assert (await tuition.get(f"/v1/tuition/invoices/{inv_a['id']}", headers=other.headers)).status_code == 404
    assert (
        await tuition.post(
            f"/v1/tuition/invoices/{inv_a['id']}/void", headers=other.headers, json={"reason": "not mine"}
        )
    ).status_code == 404
    assert (await tuition.get("/v1/tuition/invoices", headers=other.headers)).json()["items"] == []
    bad = await tuition.get("/v1/tuition/me/invoices", headers=parent.headers, params={"status": "owed"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.status"
    bad_cursor = await tuition.get("/v1/tuition/me/invoices", headers=parent.headers, params={"cursor": "!!"})
    assert bad_cursor.status_code == 422 and bad_cursor.json()["errors"][0]["field"] == "query.cursor"


async def test_round_and_fee_item_input_is_checked(school: School) -> None:
    today = date.today()
    bad_dates = await school.client.post(
        "/v1/tuition/rounds",
        headers=school.headers,
        json={
            "code": "R1",
            "name": "R1",
            "term": "T",
            "due_dates": [(today + timedelta(days=9)).isoformat(), today.isoformat()],
        },
    )
    assert bad_dates.status_code == 422 and bad_dates.json()["errors"][0]["field"] == "body.due_dates"
    negative = await school.client.post(
        "/v1/tuition/fee-items",
        headers=school.headers,
        json={"code": "HP", "name": "HP", "kind": "tuition", "grade": "6", "term": "T", "amount_vnd": -5},
    )
    assert negative.status_code == 422 and negative.json()["errors"][0]["field"] == "body.amount_vnd"
    fractional = await school.client.post(
        "/v1/tuition/fee-items",
        headers=school.headers,
        json={"code": "HP", "name": "HP", "kind": "tuition", "grade": "6", "term": "T", "amount_vnd": 10.5},
    )
    assert fractional.status_code == 422
    await school.fee_item("HP", 100_000, term="T")
    duplicate = await school.client.post(
        "/v1/tuition/fee-items",
        headers=school.headers,
        json={"code": "HP", "name": "HP", "kind": "tuition", "grade": "6", "term": "T", "amount_vnd": 5},
    )
    assert duplicate.status_code == 409
    assert len((await school.client.get("/v1/tuition/fee-items", headers=school.headers)).json()["items"]) == 1
    assert (await school.client.get("/v1/tuition/rounds", headers=school.headers)).json()["items"] == []


async def test_collection_report_per_class_as_json_and_csv(school: School) -> None:
    await school.students(student_row("HS001"), student_row("HS002"), student_row("HS003", class_name="6B"))
    rnd = await school.round()
    await school.invoice(rnd["id"], "HS001", ("tuition", "Học phí", 1_000_000))
    await school.invoice(rnd["id"], "HS002", ("tuition", "Học phí", 800_000))
    voided = await school.invoice(rnd["id"], "HS003", ("tuition", "Học phí", 500_000))
    await school.client.post(
        f"/v1/tuition/invoices/{voided['id']}/void", headers=school.headers, json={"reason": "Chuyển trường"}
    )
    report = (
        await school.client.get(
            "/v1/tuition/reports/collections", headers=school.headers, params={"round_id": rnd["id"]}
        )
    ).json()
    rows = {r["class_name"]: r for r in report["items"]}
    six_a = rows["6A"]
    assert (six_a["invoices"], six_a["invoiced_vnd"], six_a["outstanding_vnd"]) == (2, 1_800_000, 1_800_000)
    assert (rows["6B"]["invoices"], rows["6B"]["void_invoices"], rows["6B"]["invoiced_vnd"]) == (0, 1, 0)
    assert report["totals"]["outstanding_vnd"] == 1_800_000
    as_csv = await school.client.get(
        "/v1/tuition/reports/collections", headers={**school.headers, "Accept": "text/csv"}
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["class_name"], r["collected_vnd"], r["outstanding_vnd"]) for r in parsed] == [
        ("6A", "0", "1800000"),
        ("6B", "0", "0"),
    ]
    unknown = await school.client.get(
        "/v1/tuition/reports/collections", headers=school.headers, params={"round_id": "nope"}
    )
    assert unknown.status_code == 404


async def test_revoking_an_exemption_restores_unpaid_invoices(school: School) -> None:
    [a] = await school.students(student_row("HS001"))
    rnd = await school.round()
    near_poor = (
        await school.client.post(
            f"/v1/tuition/students/{a['id']}/exemptions",
            headers=school.headers,
            json={"category": "near_poor_household", "evidence_ref": "CN-01"},
        )
    ).json()
    orphan = (
        await school.client.post(
            f"/v1/tuition/students/{a['id']}/exemptions",
            headers=school.headers,
            json={"category": "orphan_no_support", "evidence_ref": "QĐ-77"},
        )
    ).json()
    invoice = await school.invoice(rnd["id"], "HS001", ("tuition", "Học phí", 2_000_001), ("meals", "Ăn", 100_000))
    assert invoice["total_vnd"] == 100_000  # the highest percentage (100 %) wins, meals stay
    url = f"/v1/tuition/students/{a['id']}/exemptions"
    revoked = await school.client.delete(f"{url}/{orphan['id']}", headers=school.headers)
    assert revoked.status_code == 200 and revoked.json()["applied_to_invoices"] == [invoice["id"]]
    invoice = await school.get_invoice(invoice["id"])
    assert invoice["lines"][0]["reduction_vnd"] == 1_000_001  # 50 % of 2 000 001 = 1 000 000.5 → halves up
    assert invoice["total_vnd"] == 2_000_001 - 1_000_001 + 100_000
    assert (await school.client.delete(f"{url}/{orphan['id']}", headers=school.headers)).status_code == 409
    await school.client.delete(f"{url}/{near_poor['id']}", headers=school.headers)
    assert (await school.get_invoice(invoice["id"]))["total_vnd"] == 2_100_001
    trail = (await school.client.get(f"/v1/tuition/invoices/{invoice['id']}/audit", headers=school.headers)).json()[
        "items"
    ]
    assert [e["action"] for e in trail] == ["created", "exemption_revoked", "exemption_revoked"]
    listed = (await school.client.get(url, headers=school.headers)).json()["items"]
    assert all(e["revoked_at"] for e in listed) and len(listed) == 2

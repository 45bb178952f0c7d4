"""Another guardian never sees, cancels or pays through someone else's payment order (BOLA)."""

from __future__ import annotations

import httpx

from tests.helpers.tokens import TokenFactory
from tests.tuition.conftest import Guardian, PaymentsStack
from tests.tuition.test_payments import order_as, setup_family


async def test_another_guardian_cannot_read_cancel_or_take_over_my_order(
    paying: httpx.AsyncClient, tokens: TokenFactory, payments_stack: PaymentsStack
) -> None:
    school, parent, (a, _b) = await setup_family(paying, tokens)
    created = await parent.pay(a["id"])
    assert created.status_code == 201, created.text
    order = created.json()
    stranger = Guardian(paying, tokens, "stranger-1")
    for method, path in [
        ("GET", f"/v1/tuition/me/payments/{order['id']}"),
        ("GET", f"/v1/tuition/me/payments/{order['id']}/receipt"),
        ("POST", f"/v1/tuition/me/payments/{order['id']}/cancel"),
    ]:
        response = await paying.request(method, path, headers=stranger.headers)
        assert response.status_code == 404, (method, path, response.text)
    # Nor may they pay (and so learn about) an invoice of a child they are not linked to.
    taken = await stranger.pay(a["id"], key="stranger-pays")
    assert taken.status_code == 404 and taken.json()["errors"][0]["field"] == "body.items.0.invoice_id"
    assert (await paying.get("/v1/tuition/me/payments", headers=stranger.headers)).json()["items"] == []
    assert (await paying.get(f"/v1/tuition/invoices/{a['id']}", headers=stranger.headers)).status_code == 404
    # A school is not a guardian either.
    as_school = await paying.get(f"/v1/tuition/me/payments/{order['id']}", headers=school.headers)
    assert as_school.status_code in (403, 404)
    assert (await order_as(parent, order["id"]))["status"] == order["status"]

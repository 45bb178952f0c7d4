"""The callers' own client (shared/clients/payments.py) against this service: the contract holds."""

from __future__ import annotations

import pytest

from shared.clients.payments import PaymentCreate, PaymentsClient, PaymentsError, RefundCreate
from shared.http import ServiceClient
from shared.service_auth import ServiceTokenProvider
from tests.helpers.tokens import TokenFactory
from tests.payments.conftest import Stack


async def test_payments_client_create_get_cancel_refund(stack: Stack, tokens: TokenFactory) -> None:
    token = tokens.client("svc-health_booking", ["payments.write"])

    async def fetch() -> tuple[str, int]:
        return token, 600

    http = ServiceClient()
    client = PaymentsClient(http, stack.payments_url, ServiceTokenProvider(fetch))
    try:
        data = PaymentCreate(
            amount_vnd=150_000,
            purpose="health",
            reference="appt-1",
            payer_sub="citizen-9",
            description="Khám tổng quát",
        )
        created = await client.create(data, idempotency_key="appt-1-pay")
        assert created.status == "requires_action" and created.next_action is not None
        assert (await client.create(data, idempotency_key="appt-1-pay")).id == created.id
        assert (await client.get(created.id)).purpose == "health"

        lapsed = await client.create(data.model_copy(update={"reference": "appt-2"}), idempotency_key="appt-2-pay")
        assert (await client.cancel(lapsed.id)).status == "canceled"

        await stack.approve(created.model_dump(mode="json"))
        await stack.wait_status(created.id, "succeeded", headers=tokens.bearer(token))
        with pytest.raises(PaymentsError) as info:
            await client.cancel(created.id)
        assert info.value.code == "payment_not_cancelable" and info.value.status == 409
        refund = await client.refund(
            created.id, RefundCreate(amount_vnd=50_000, reason="partly canceled"), idempotency_key="appt-1-refund"
        )
        assert refund.amount_vnd == 50_000 and refund.status == "succeeded" and refund.payment_id == created.id
        with pytest.raises(PaymentsError) as info:
            await client.refund(
                created.id, RefundCreate(amount_vnd=100_001, reason="too much"), idempotency_key="appt-1-refund-2"
            )
        assert info.value.code == "refund_exceeds_remaining" and info.value.status == 409
        assert (await client.get(created.id)).amount_refunded_vnd == 50_000
    finally:
        await http.aclose()

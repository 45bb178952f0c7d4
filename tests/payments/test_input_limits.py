"""Input beyond what the columns hold is a 422 naming the field, never a database error (found on PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import func, select

from services.payments.payments.models import Payment
from tests.payments.conftest import Stack


async def _count_payments(stack: Stack) -> int:
    async with stack.db.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(Payment))).scalar_one())


async def test_a_return_url_longer_than_its_column_is_a_422_and_stores_nothing(stack: Stack) -> None:
    # payments.return_url is varchar(2000): 5000 characters were a PostgreSQL DataError (500) after the
    # provider had already been asked for an intent.
    response = await stack.create(return_url="https://app.example/" + "x" * 5000)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == ["body.return_url"]
    assert await _count_payments(stack) == 0
    # The longest URL the column holds is still accepted.
    ok = await stack.create(return_url="https://app.example/" + "x" * (2000 - len("https://app.example/")))
    assert ok.status_code == 201, ok.text


async def test_nul_in_a_payment_field_is_a_422_naming_it(stack: Stack) -> None:
    response = await stack.create(description="Phí\x00 gửi xe")
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["body.description"]
    assert await _count_payments(stack) == 0

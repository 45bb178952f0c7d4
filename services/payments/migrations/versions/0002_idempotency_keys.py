"""Idempotency keys for POSTs that move money or take a booking.

Revision ID: payments_0002
Revises: payments_0001
"""

from shared.events.migration import create_idempotency_table, drop_idempotency_table

revision = "payments_0002"
down_revision = "payments_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table()


def downgrade() -> None:
    drop_idempotency_table()

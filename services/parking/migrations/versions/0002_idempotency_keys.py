"""Idempotency keys for POSTs that move money or take a booking.

Revision ID: parking_0002
Revises: parking_0001
"""

from shared.events.migration import create_idempotency_table, drop_idempotency_table

revision = "parking_0002"
down_revision = "parking_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table()


def downgrade() -> None:
    drop_idempotency_table()

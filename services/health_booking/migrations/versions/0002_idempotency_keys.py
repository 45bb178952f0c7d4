"""Idempotency keys for POSTs that move money or take a booking.

Revision ID: health_booking_0002
Revises: health_booking_0001
"""

from shared.events.migration import create_idempotency_table, drop_idempotency_table

revision = "health_booking_0002"
down_revision = "health_booking_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_table()


def downgrade() -> None:
    drop_idempotency_table()

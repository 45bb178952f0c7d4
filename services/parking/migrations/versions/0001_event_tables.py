"""Outbox and processed-message tables for the event bus.

Revision ID: parking_0001
Revises:
"""

from shared.events.migration import create_event_tables, drop_event_tables

revision = "parking_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_event_tables()


def downgrade() -> None:
    drop_event_tables()

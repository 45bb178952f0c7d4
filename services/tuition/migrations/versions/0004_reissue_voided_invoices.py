"""One live invoice per student and round: a voided invoice may be re-issued corrected.

The unique constraint on (round_id, student_id) becomes a unique index over the invoices that are
not void (a partial index, which PostgreSQL and SQLite both have).

Revision ID: tuition_0004
Revises: tuition_0003
Create Date: 2026-11-29 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tuition_0004"
down_revision: str | None = "tuition_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("status <> 'void'")


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_invoices_round_id"), type_="unique")
    op.create_index(
        "uq_invoices_round_student_live",
        "invoices",
        ["round_id", "student_id"],
        unique=True,
        postgresql_where=_LIVE,
        sqlite_where=_LIVE,
    )


def downgrade() -> None:
    # Fails if a voided invoice was re-issued: two invoices of one student in one round then exist.
    op.drop_index("uq_invoices_round_student_live", table_name="invoices")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_invoices_round_id"), ["round_id", "student_id"])

"""A token that changes whenever lots, spaces, pools or rates change (search's inventory cache).

Triggers, not the service code, change it: every write to the inventory, whoever makes it (the
operator API, a seed script, an administrator's SQL), makes each process's cached copy stale. The
token is random rather than a counter, so a table emptied and refilled never repeats an old value.

Revision ID: parking_0004
Revises: parking_0003
Create Date: 2026-11-29 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "parking_0004"
down_revision: str | None = "parking_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("lots", "spaces", "pools", "rates")


def upgrade() -> None:
    op.create_table(
        "inventory_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_versions")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION parking_inventory_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO inventory_versions (id, token) VALUES (1, md5(random()::text || clock_timestamp()::text))
                ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token;
                RETURN NULL;
            END $$
            """
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_inventory_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION parking_inventory_changed()"
            )
    else:
        for table in TABLES:
            for event in ("INSERT", "UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_inventory_{event.lower()} AFTER {event} ON {table} BEGIN "  # noqa: S608 (constants)
                    "INSERT INTO inventory_versions (id, token) VALUES (1, lower(hex(randomblob(16)))) "
                    "ON CONFLICT (id) DO UPDATE SET token = excluded.token; END"
                )
    op.execute("INSERT INTO inventory_versions (id, token) VALUES (1, 'initial')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_inventory_changed ON {table}")
        op.execute("DROP FUNCTION IF EXISTS parking_inventory_changed()")
    else:
        for table in TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_inventory_{event}")
    op.drop_table("inventory_versions")

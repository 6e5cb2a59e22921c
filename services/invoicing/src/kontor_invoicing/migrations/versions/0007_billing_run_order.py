"""Billing runs carry the order they were created in (`seq`, an identity column): the newest run is
the one created last even when two runs share a `created_at` (a fixed clock, or replicas whose
clocks disagree). Existing runs are numbered in their order of creation.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("billing_runs", sa.Column("seq", sa.BigInteger, nullable=True))
    op.execute("UPDATE billing_runs AS r SET seq = o.n FROM (SELECT id, row_number() OVER "
               "(ORDER BY created_at, id) AS n FROM billing_runs) AS o WHERE r.id = o.id")
    start = op.get_bind().execute(sa.text("SELECT coalesce(max(seq), 0) + 1 FROM billing_runs")).scalar_one()
    op.alter_column("billing_runs", "seq", nullable=False)
    op.execute(f"ALTER TABLE billing_runs ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (START WITH {int(start)})")
    op.drop_index("ix_billing_runs_created_at", table_name="billing_runs")
    op.create_index("ix_billing_runs_created_at", "billing_runs", ["created_at", "seq"])


def downgrade() -> None:
    op.drop_index("ix_billing_runs_created_at", table_name="billing_runs")
    op.create_index("ix_billing_runs_created_at", "billing_runs", ["created_at"])
    op.drop_column("billing_runs", "seq")

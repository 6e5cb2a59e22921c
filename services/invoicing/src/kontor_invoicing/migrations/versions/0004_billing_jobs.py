"""Billing runs as jobs, issuing in steps: the invoice's run, the lease of the worker preparing
it, render attempts; the runs and what each worker did for them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("run_id", UUID(as_uuid=True)))
    op.add_column("invoices", sa.Column("claimed_until", sa.DateTime(timezone=True)))
    op.add_column("invoices", sa.Column("render_attempts", sa.Integer, nullable=False, server_default="0"))
    op.add_column("invoices", sa.Column("render_error", sa.Text))
    op.create_index("ix_invoices_run_id", "invoices", ["run_id"])
    op.create_index("ix_invoices_issuing", "invoices", ["number"], postgresql_where=sa.text("status = 'issuing'"))
    op.create_index("ix_invoices_drafts_due", "invoices", ["invoice_date"], postgresql_where=sa.text("status = 'draft'"))
    op.create_table(
        "billing_runs",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("phase", sa.Text, nullable=False),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("errors", JSONB, nullable=False, server_default="[]"),
    )
    op.create_index("uq_billing_runs_active_as_of", "billing_runs", ["as_of"], unique=True,
                    postgresql_where=sa.text("status IN ('queued', 'running')"))
    op.create_index("ix_billing_runs_created_at", "billing_runs", ["created_at"])
    op.create_table(
        "billing_run_progress",
        sa.Column("run_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("worker", sa.Text, primary_key=True),
        *(sa.Column(c, sa.Integer, nullable=False, server_default="0")
          for c in ("drafted", "queued", "issued", "held", "reminded")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("billing_run_progress")
    op.drop_table("billing_runs")
    for index in ("ix_invoices_drafts_due", "ix_invoices_issuing", "ix_invoices_run_id"):
        op.drop_index(index, "invoices")
    for column in ("render_error", "render_attempts", "claimed_until", "run_id"):
        op.drop_column("invoices", column)

"""Reminders sent as a column, so that the reminder run selects exactly the invoices whose
next reminder is due.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("reminders_sent", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE invoices SET reminders_sent = COALESCE((data->>'reminders_sent')::int, 0)")
    op.create_index("ix_invoices_unpaid_due", "invoices", ["due_date"], postgresql_where=sa.text("status = 'invoiced'"))


def downgrade() -> None:
    op.drop_index("ix_invoices_unpaid_due", "invoices")
    op.drop_column("invoices", "reminders_sent")

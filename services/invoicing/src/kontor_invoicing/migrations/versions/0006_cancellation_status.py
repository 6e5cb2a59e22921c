"""Issued cancellation invoices have a status of their own, `cancellation` (never open, reminded
or paid), instead of `invoiced`.

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-12
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE invoices SET status = 'cancellation', data = jsonb_set(data, '{status}', '\"cancellation\"') "
               "WHERE kind = 'cancellation' AND status = 'invoiced'")


def downgrade() -> None:
    op.execute("UPDATE invoices SET status = 'invoiced', data = jsonb_set(data, '{status}', '\"invoiced\"') "
               "WHERE kind = 'cancellation' AND status = 'cancellation'")

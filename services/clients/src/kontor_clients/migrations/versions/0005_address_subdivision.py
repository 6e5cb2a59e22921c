"""Addresses have a country subdivision (ISO 3166-2 code part: the state, province or territory).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("subdivision", sa.Text))


def downgrade() -> None:
    op.drop_column("clients", "subdivision")

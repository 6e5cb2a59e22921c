"""Initial schema: clients, outbox, inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from kontor.migrations import create_messaging_tables_v1, drop_messaging_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables_v1()
    op.create_table(
        "clients",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("street", sa.Text, nullable=False),
        sa.Column("postal_code", sa.Text, nullable=False),
        sa.Column("city", sa.Text, nullable=False),
        sa.Column("country", sa.CHAR(2), nullable=False),
        sa.Column("vat_id", sa.Text),
        sa.Column("leitweg_id", sa.Text),
        sa.Column("invoice_email", sa.Text),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("standing", sa.Text, nullable=False),
        sa.Column("standing_reason", sa.Text),
        sa.Column("standing_source", sa.Text, nullable=False),
        sa.Column("standing_since", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_by", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("clients")
    drop_messaging_tables_v1()

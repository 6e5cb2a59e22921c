"""E-mails keep the client's confirmation link apart from their bodies (which carry it
redacted) and the recipients they did not reach (invalid addresses, refused by the server).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("emails", sa.Column("secret_link", sa.Text))
    op.add_column("emails", sa.Column("refused", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")))


def downgrade() -> None:
    op.drop_column("emails", "refused")
    op.drop_column("emails", "secret_link")

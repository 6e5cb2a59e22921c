"""Members' addresses, read models of orders and invoices, the e-mail queue and delivery log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    now = sa.text("now()")
    op.create_table(
        "members",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
    )
    op.create_table(
        "known_orders",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("member_id", sa.Text, nullable=False),
        sa.Column("client_id", UUID(as_uuid=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("data", JSONB, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
    )
    op.create_index("ix_known_orders_client_id", "known_orders", ["client_id"])
    op.create_table(
        "known_invoices",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("data", JSONB, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
    )
    op.create_table(
        "emails",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("recipients_key", sa.Text, nullable=False),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("to", ARRAY(sa.Text), nullable=False),
        sa.Column("cc", ARRAY(sa.Text), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("text_body", sa.Text, nullable=False),
        sa.Column("html_body", sa.Text, nullable=False),
        sa.Column("attachments", JSONB, nullable=False),
        sa.Column("order_id", UUID(as_uuid=True)),
        sa.Column("invoice_id", UUID(as_uuid=True)),
        sa.Column("client_id", UUID(as_uuid=True)),
        sa.Column("member_id", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.UniqueConstraint("event_id", "template", "recipients_key", name="uq_emails_event_template_recipients"),
    )
    op.create_index("ix_emails_order_id", "emails", ["order_id"])
    op.create_index("ix_emails_invoice_id", "emails", ["invoice_id"])
    op.create_index("ix_emails_member_id", "emails", ["member_id"])
    op.create_index("ix_emails_due", "emails", ["next_attempt_at"], postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_emails_recipients", "emails", ["to", "cc"], postgresql_using="gin")


def downgrade() -> None:
    for table in ("emails", "known_invoices", "known_orders", "members"):
        op.drop_table(table)

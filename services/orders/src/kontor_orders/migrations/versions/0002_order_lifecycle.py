"""The whole order: document storage, history, comments, attachments, confirmation tokens.

Existing drafts (0001 stored them in columns) are carried over into the document form.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_COLUMNS = ("client_name", "contact_name", "contact_email", "currency", "project_name", "description", "lines")


def upgrade() -> None:
    op.add_column("orders", sa.Column("version", sa.Integer, nullable=False, server_default="1"))
    op.add_column("orders", sa.Column("offer_valid_until", sa.Date))
    op.add_column("orders", sa.Column("service_end", sa.Date))
    op.add_column("orders", sa.Column("data", JSONB))
    op.add_column("orders", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                                      server_default=sa.func.now()))
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT o.*, k.snapshot FROM orders o LEFT JOIN known_clients k ON k.id = o.client_id")).mappings().all()
    for r in rows:
        snap = r["snapshot"] or {}
        document = {
            "id": str(r["id"]), "member_id": r["member_id"], "status": r["status"],
            "created_at": r["created_at"].isoformat(), "currency": r["currency"], "lines": r["lines"],
            "client": {"id": str(r["client_id"]), "name": r["client_name"], "kind": snap.get("kind", "company"),
                       "vat_id": snap.get("vat_id"), "country": (snap.get("address") or {}).get("country", "DE"),
                       "language": snap.get("language", "de"),
                       "standing": (snap.get("standing") or {}).get("status", "ok")},
            "contact_person": {"name": r["contact_name"], "email": r["contact_email"]},
            "project_name": r["project_name"], "description": r["description"], "version": 1,
        }
        conn.execute(sa.text("UPDATE orders SET data = CAST(:d AS jsonb) WHERE id = :id"),
                     {"d": json.dumps(document), "id": r["id"]})
    op.alter_column("orders", "data", nullable=False)
    op.alter_column("orders", "version", server_default=None)
    for column in OLD_COLUMNS:
        op.drop_column("orders", column)
    op.create_index("ix_orders_client_id", "orders", ["client_id"])
    op.create_index("ix_orders_status", "orders", ["status"])

    op.create_table(
        "order_history",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("order_id", UUID(as_uuid=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.Text, nullable=False),
        sa.Column("actor_id", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("from_status", sa.Text),
        sa.Column("to_status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("details", JSONB),
    )
    op.create_index("ix_order_history_order_id", "order_history", ["order_id"])
    op.create_table(
        "order_comments",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("order_id", UUID(as_uuid=True), nullable=False),
        sa.Column("author_id", sa.Text, nullable=False),
        sa.Column("author_role", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_order_comments_order_id", "order_comments", ["order_id"])
    op.create_table(
        "attachments",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("order_id", UUID(as_uuid=True), nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("media_type", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.CHAR(64), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("uploaded_by", sa.Text, nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_attachments_order_id", "attachments", ["order_id"])
    op.create_table(
        "confirmation_tokens",
        sa.Column("token_hash", sa.CHAR(64), primary_key=True),
        sa.Column("order_id", UUID(as_uuid=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.Text),
    )
    op.create_index("ix_confirmation_tokens_order_id", "confirmation_tokens", ["order_id"])


def downgrade() -> None:
    raise NotImplementedError("0002 converts drafts into documents; restore from a backup to go back")

"""Tables of the orders database (SQLAlchemy Core).

An order is stored as its document (`data`, the domain object as JSON) with the columns
that queries filter on beside it; `version` guards against lost updates.
"""
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from kontor.db import new_metadata
from kontor.inbox import define_inbox_table
from kontor.outbox import define_outbox_table

metadata = new_metadata()
outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)

# Read model of the clients service's registry, fed by kontor.clients.v1.
known_clients = sa.Table(
    "known_clients",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("standing", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("snapshot", JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("member_id", sa.Text, nullable=False, index=True),
    sa.Column("client_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("status", sa.Text, nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("offer_valid_until", sa.Date),
    sa.Column("service_end", sa.Date),
    sa.Column("data", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

order_history = sa.Table(
    "order_history",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("order_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor_kind", sa.Text, nullable=False),
    sa.Column("actor_id", sa.Text),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("from_status", sa.Text),
    sa.Column("to_status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("details", JSONB),
)

order_comments = sa.Table(
    "order_comments",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("order_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("author_id", sa.Text, nullable=False),
    sa.Column("author_role", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("order_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("media_type", sa.Text, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.CHAR(64), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("uploaded_by", sa.Text, nullable=False),
    sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
)

# Client confirmation links: only the SHA-256 of the token is stored.
confirmation_tokens = sa.Table(
    "confirmation_tokens",
    metadata,
    sa.Column("token_hash", sa.CHAR(64), primary_key=True),
    sa.Column("order_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True)),
    sa.Column("outcome", sa.Text),
)

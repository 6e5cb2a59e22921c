"""Tables of the orders database (SQLAlchemy Core)."""
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
    sa.Column("client_id", UUID(as_uuid=True), nullable=False),
    sa.Column("client_name", sa.Text, nullable=False),
    sa.Column("contact_name", sa.Text, nullable=False),
    sa.Column("contact_email", sa.Text, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("project_name", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("lines", JSONB, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

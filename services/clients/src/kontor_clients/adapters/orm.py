"""Tables of the clients database (SQLAlchemy Core)."""
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from kontor.db import new_metadata
from kontor.inbox import define_inbox_table
from kontor.outbox import define_outbox_table

metadata = new_metadata()
outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)

clients = sa.Table(
    "clients",
    metadata,
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

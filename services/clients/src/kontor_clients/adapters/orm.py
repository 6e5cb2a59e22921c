"""Tables of the clients database (SQLAlchemy Core).

Names are searched through `name_key` and `client_search_terms.term`: case- and
accent-folded forms (`identifiers.search_key`) in the "C" collation, so that a btree
index serves both `LIKE 'prefix%'` and the ordering of the results.
"""
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from kontor.db import new_metadata
from kontor.inbox import define_inbox_table
from kontor.outbox import define_outbox_table

metadata = new_metadata()
outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)

SEARCH_TEXT = sa.Text(collation="C")

clients = sa.Table(
    "clients",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("name_key", SEARCH_TEXT, nullable=False),
    sa.Column("street", sa.Text, nullable=False),
    sa.Column("postal_code", sa.Text, nullable=False),
    sa.Column("city", sa.Text, nullable=False),
    sa.Column("country", sa.CHAR(2), nullable=False),
    sa.Column("subdivision", sa.Text),  # ISO 3166-2 code part, e.g. TX
    sa.Column("vat_id", sa.Text),
    sa.Column("leitweg_id", sa.Text),
    sa.Column("invoice_email", sa.Text),
    sa.Column("language", sa.Text, nullable=False),
    sa.Column("zugferd", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("standing", sa.Text, nullable=False),
    sa.Column("standing_reason", sa.Text),
    sa.Column("standing_source", sa.Text, nullable=False),
    sa.Column("standing_since", sa.DateTime(timezone=True)),
    sa.Column("standing_set_by", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_by", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # duplicates: the same VAT id, or the same name at the same postal code
    sa.Index("uq_clients_vat_id", "vat_id", unique=True, postgresql_where=sa.text("vat_id IS NOT NULL")),
    sa.Index("uq_clients_name_postal_code", "name_key", "postal_code", "country", unique=True),
    sa.Index("ix_clients_debt_rule_standing", "id", postgresql_where=sa.text("standing_source = 'debt_rule'")),
)

client_search_terms = sa.Table(
    "client_search_terms",
    metadata,
    sa.Column("client_id", UUID(as_uuid=True), sa.ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("position", sa.SmallInteger, primary_key=True),  # word index; 0 = the whole name
    sa.Column("term", SEARCH_TEXT, nullable=False),
    sa.Index("ix_client_search_terms_term", "term"),
)

standing_changes = sa.Table(
    "standing_changes",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("client_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("set_by", sa.Text),
    sa.Column("previous_status", sa.Text, nullable=False),
    sa.Column("previous_source", sa.Text, nullable=False),
    sa.Column("client_version", sa.Integer, nullable=False),
    sa.Column("run_id", UUID(as_uuid=True)),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)

receivables = sa.Table(
    "receivables",
    metadata,
    sa.Column("invoice_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("client_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("order_id", UUID(as_uuid=True), nullable=False),
    sa.Column("member_id", sa.Text, nullable=False),
    sa.Column("number", sa.Text, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("amount_due", sa.Numeric, nullable=False),
    sa.Column("paid_total", sa.Numeric, nullable=False),
    sa.Column("refund_due", sa.Numeric, nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("ix_receivables_open_due", "due_date", postgresql_where=sa.text("status = 'open'")),
)

standing_runs = sa.Table(
    "standing_runs",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("trigger", sa.Text, nullable=False),  # scheduled | advisor
    sa.Column("requested_by", sa.Text),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("evaluated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("restricted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lifted", sa.Integer, nullable=False, server_default="0"),
    # one scheduled run per day, whatever the number of replicas
    sa.Index("uq_standing_runs_scheduled_day", "as_of", unique=True,
             postgresql_where=sa.text("trigger = 'scheduled'")),
)

# Every change of a client's record: who, when, what (before and after). Standing changes have their own.
client_changes = sa.Table(
    "client_changes",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("client_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("client_version", sa.Integer, nullable=False),
    sa.Column("action", sa.Text, nullable=False),  # registered | updated
    sa.Column("actor_kind", sa.Text, nullable=False),  # member | advisor | system
    sa.Column("actor_id", sa.Text, nullable=False),
    sa.Column("actor_name", sa.Text),
    sa.Column("changes", JSONB, nullable=False),  # {field: {"before": ..., "after": ...}}
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)

# Which member has which order for which client, from order events: who else relies on the
# client's billing data. The latest version of an order wins (a replayed older event changes nothing).
client_orders = sa.Table(
    "client_orders",
    metadata,
    sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("client_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("member_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("order_version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

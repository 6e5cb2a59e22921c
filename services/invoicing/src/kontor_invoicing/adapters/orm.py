"""Tables of the invoicing database (SQLAlchemy Core).

Invoices are stored as documents (`data`, the domain object as JSON) with the columns
queries filter on. Uniqueness does the heavy lifting under several replicas:
`(order_id, seq)` of an invoice means a planned invoice is drafted once; `number` is
unique; `invoice_counters` holds the last number of each year, and taking the next
one locks that row until the issuing transaction ends, so numbers have no gaps.
"""
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from kontor.db import new_metadata
from kontor.inbox import define_inbox_table
from kontor.outbox import define_outbox_table

metadata = new_metadata()
outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)

known_clients = sa.Table(
    "known_clients",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("snapshot", JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

known_orders = sa.Table(
    "known_orders",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("member_id", sa.Text, nullable=False),
    sa.Column("client_id", UUID(as_uuid=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("data", JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

planned_invoices = sa.Table(
    "planned_invoices",
    metadata,
    sa.Column("order_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("invoice_date", sa.Date, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # planned | drafted | dropped
    sa.Column("plan", JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("ix_planned_invoices_due", "invoice_date", postgresql_where=sa.text("status = 'planned'")),
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("order_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("member_id", sa.Text, nullable=False, index=True),
    sa.Column("client_id", UUID(as_uuid=True), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, index=True),
    sa.Column("number", sa.Text, unique=True),
    sa.Column("invoice_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date),
    sa.Column("reminders_sent", sa.Integer, nullable=False, server_default="0"),
    sa.Column("run_id", UUID(as_uuid=True), index=True),  # the billing run that queued it for issuing
    # issuing: a worker that prepares it holds it until then (a lease, so that a dead worker's claim runs out)
    sa.Column("claimed_until", sa.DateTime(timezone=True)),
    sa.Column("render_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("render_error", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("data", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("uq_invoices_planned", "order_id", "seq", unique=True, postgresql_where=sa.text("kind = 'invoice'")),
    sa.Index("ix_invoices_unpaid_due", "due_date", postgresql_where=sa.text("status = 'invoiced'")),
    sa.Index("ix_invoices_issuing", "number", postgresql_where=sa.text("status = 'issuing'")),
    sa.Index("ix_invoices_drafts_due", "invoice_date", postgresql_where=sa.text("status = 'draft'")),
)

invoice_counters = sa.Table(
    "invoice_counters",
    metadata,
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("last_number", sa.Integer, nullable=False),
)

invoice_documents = sa.Table(
    "invoice_documents",
    metadata,
    sa.Column("invoice_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),  # pdf | xrechnung
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("media_type", sa.Text, nullable=False),
    sa.Column("sha256", sa.CHAR(64), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Files a member or an advisor added to a draft, sent with the invoice e-mail and kept with the
# invoice once issued (`invoices.data` lists them as documents of kind "attachment").
invoice_attachments = sa.Table(
    "invoice_attachments",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("invoice_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("media_type", sa.Text, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("sha256", sa.CHAR(64), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("uploaded_by", sa.Text, nullable=False),
    sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
)

billing_runs = sa.Table(
    "billing_runs",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # queued | running | finished | failed
    sa.Column("phase", sa.Text, nullable=False),  # drafting | issuing | reminding | done
    sa.Column("requested_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("errors", JSONB, nullable=False, server_default="[]"),
    # the order the runs were created in, from the database: newest first even when two runs share
    # a created_at (a fixed clock, or replicas whose clocks disagree)
    sa.Column("seq", sa.BigInteger, sa.Identity(always=True), nullable=False),
    # one active run per as-of: asking again while it is queued or running gives that run
    sa.Index("uq_billing_runs_active_as_of", "as_of", unique=True,
             postgresql_where=sa.text("status IN ('queued', 'running')")),
    sa.Index("ix_billing_runs_created_at", "created_at", "seq"),
)

# What each worker process did for a run, written in the transaction that did it (exact counts;
# one row per worker, so that workers never wait for each other's counter).
billing_run_progress = sa.Table(
    "billing_run_progress",
    metadata,
    sa.Column("run_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("worker", sa.Text, primary_key=True),
    sa.Column("drafted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("queued", sa.Integer, nullable=False, server_default="0"),
    sa.Column("issued", sa.Integer, nullable=False, server_default="0"),
    sa.Column("held", sa.Integer, nullable=False, server_default="0"),
    sa.Column("reminded", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

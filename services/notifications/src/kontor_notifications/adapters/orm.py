"""Tables of the notifications database (SQLAlchemy Core).

`emails` is the delivery log and the queue at once: a row is written in the transaction
that consumes the causing event (rendered subject and bodies, recipients, attachments by
reference), unique per (event, template, recipients), and the delivery loop takes due rows
one at a time with `FOR UPDATE SKIP LOCKED`, so replicas never send the same e-mail.
"""
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from kontor.db import new_metadata
from kontor.inbox import define_inbox_table
from kontor.outbox import define_outbox_table

metadata = new_metadata()
outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)

members = sa.Table(
    "members",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("language", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

known_orders = sa.Table(
    "known_orders",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("member_id", sa.Text, nullable=False),
    sa.Column("client_id", UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("data", JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

known_invoices = sa.Table(
    "known_invoices",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("data", JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

emails = sa.Table(
    "emails",
    metadata,
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
    # the client's confirmation link, put into the message only when it is sent: the stored
    # bodies carry it redacted, since members and advisors read them (GET /emails/{id})
    sa.Column("secret_link", sa.Text),
    # [{address, reason}]: recipients it did not reach (not an address; refused by the SMTP server)
    sa.Column("refused", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("order_id", UUID(as_uuid=True), index=True),
    sa.Column("invoice_id", UUID(as_uuid=True), index=True),
    sa.Column("client_id", UUID(as_uuid=True)),
    sa.Column("member_id", sa.Text, index=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("event_id", "template", "recipients_key", name="uq_emails_event_template_recipients"),
    sa.Index("ix_emails_due", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")),
    sa.Index("ix_emails_recipients", "to", "cc", postgresql_using="gin"),
)

"""Search keys and duplicate detection, standing history, receivables ledger, standing runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from kontor_clients.domain.identifiers import search_key, search_terms

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEARCH_TEXT = sa.Text(collation="C")


def upgrade() -> None:
    op.add_column("clients", sa.Column("name_key", SEARCH_TEXT))
    op.add_column("clients", sa.Column("standing_set_by", sa.Text))
    op.create_table(
        "client_search_terms",
        sa.Column("client_id", UUID(as_uuid=True), sa.ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.SmallInteger, primary_key=True),
        sa.Column("term", SEARCH_TEXT, nullable=False),
    )
    # Existing clients get their keys from the same function the code uses.
    conn = op.get_bind()
    for client_id, name in conn.execute(sa.text("SELECT id, name FROM clients")).all():
        conn.execute(sa.text("UPDATE clients SET name_key = :k WHERE id = :id"), {"k": search_key(name), "id": client_id})
        for position, term in enumerate(search_terms(name)):
            conn.execute(sa.text("INSERT INTO client_search_terms VALUES (:id, :p, :t)"),
                         {"id": client_id, "p": position, "t": term})
    op.alter_column("clients", "name_key", nullable=False)
    op.create_index("uq_clients_vat_id", "clients", ["vat_id"], unique=True,
                    postgresql_where=sa.text("vat_id IS NOT NULL"))
    op.create_index("uq_clients_name_postal_code", "clients", ["name_key", "postal_code", "country"], unique=True)
    op.create_index("ix_clients_debt_rule_standing", "clients", ["id"],
                    postgresql_where=sa.text("standing_source = 'debt_rule'"))
    op.create_index("ix_client_search_terms_term", "client_search_terms", ["term"])

    op.create_table(
        "standing_changes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("client_id", UUID(as_uuid=True), nullable=False),
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
    op.create_index("ix_standing_changes_client_id", "standing_changes", ["client_id"])

    op.create_table(
        "receivables",
        sa.Column("invoice_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("client_id", UUID(as_uuid=True), nullable=False),
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
    )
    op.create_index("ix_receivables_client_id", "receivables", ["client_id"])
    op.create_index("ix_receivables_open_due", "receivables", ["due_date"],
                    postgresql_where=sa.text("status = 'open'"))

    op.create_table(
        "standing_runs",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("requested_by", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("evaluated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("restricted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("lifted", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("uq_standing_runs_scheduled_day", "standing_runs", ["as_of"], unique=True,
                    postgresql_where=sa.text("trigger = 'scheduled'"))


def downgrade() -> None:
    op.drop_table("standing_runs")
    op.drop_table("receivables")
    op.drop_table("standing_changes")
    op.drop_table("client_search_terms")
    op.drop_index("ix_clients_debt_rule_standing", "clients")
    op.drop_index("uq_clients_name_postal_code", "clients")
    op.drop_index("uq_clients_vat_id", "clients")
    op.drop_column("clients", "standing_set_by")
    op.drop_column("clients", "name_key")

"""Three invoicing workers as separate processes (one consumer group), their billing runs
competing over 1,000 due drafts, one worker killed in the middle: exactly 1,000 invoices
are issued, with 1,000 consecutive numbers, each with its documents and one event."""
import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from kontor.clock import SystemClock, business_today
from kontor.db import create_engine, create_session_factory
from kontor.testing import eventually
from kontor.testing.services import fresh_database
from kontor_invoicing.adapters import repository
from kontor_invoicing.adapters.orm import invoice_documents, invoices, outbox
from kontor_invoicing.domain import model
from kontor_invoicing.spec import SPEC

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
COUNT = 1000
BUYER = {"name": "ACME Werkstatt GmbH", "vat_id": "DE811569869", "invoice_email": "rechnung@acme.example",
         "language": "de", "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin",
                                       "country": "DE"}}


def due_draft(today: dt.date, i: int) -> model.Invoice:
    line = model.Line(f"Leistung {i}", Decimal(1), "lump_sum", Decimal("100.00"), Decimal("100.00"), "S", Decimal(19))
    return model.Invoice(id=uuid.uuid4(), order_id=uuid.uuid4(), member_id=f"member-{i % 7}", client_id=uuid.uuid4(),
                         seq=1, kind="invoice", schedule_kind="after_completion", status="draft", currency="EUR",
                         lines=(line,), invoice_date=today - dt.timedelta(days=1), due_in_days=14,
                         created_at=SystemClock().now(), project_name=f"Projekt {i}", buyer=BUYER,
                         contact_name="Erika", contact_email="erika@acme.example")


def start_worker(url: str, infra, prefix: str, n: int) -> subprocess.Popen:
    env = {**os.environ, "KONTOR_INVOICING_DATABASE_URL": url, "KONTOR_INVOICING_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
           "KONTOR_INVOICING_TOPIC_PREFIX": prefix, "KONTOR_INVOICING_BILLING_RUN_INTERVAL_S": "0.2",
           "KONTOR_INVOICING_LOG_LEVEL": "WARNING", "KONTOR_INVOICING_RELAY_POLL_INTERVAL_S": "0.2"}
    return subprocess.Popen([sys.executable, "-m", "kontor_invoicing", "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def test_three_worker_processes_and_a_kill_issue_each_invoice_once(infra, topic_prefix):
    today = business_today(SystemClock())
    async with fresh_database(infra, SPEC) as url:
        engine = create_engine(url)
        sessions = create_session_factory(engine)
        async with sessions.begin() as session:
            for i in range(COUNT):
                await repository.add(session, due_draft(today, i))

        async def issued() -> int:
            async with engine.connect() as conn:
                return (await conn.execute(sa.select(sa.func.count()).select_from(invoices)
                                           .where(invoices.c.status == "invoiced"))).scalar_one()

        workers = [start_worker(url, infra, topic_prefix, n) for n in range(3)]
        try:
            await eventually(lambda: issued_at_least(issued, 150), timeout_s=300, interval_s=0.5,
                             what="150 invoices issued by the three workers")
            workers[0].send_signal(signal.SIGKILL)  # in the middle of its run, holding rows and maybe the counter
            workers[0].wait(timeout=10)
            print(f"\n[concurrency] worker 0 killed after {await issued()} issued invoices")
            await eventually(lambda: issued_at_least(issued, COUNT), timeout_s=600, interval_s=1,
                             what=f"all {COUNT} invoices issued")
        finally:
            for w in workers[1:]:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                try:
                    w.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    w.kill()
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(invoices.c.number, invoices.c.status))).all()
            documents = (await conn.execute(sa.select(sa.func.count()).select_from(invoice_documents))).scalar_one()
            events = (await conn.execute(sa.select(sa.func.count()).select_from(outbox).where(
                outbox.c.event_type == "kontor.invoice.issued.v1"))).scalar_one()
        await engine.dispose()
        assert len(rows) == COUNT and {status for _, status in rows} == {"invoiced"}
        assert sorted(number for number, _ in rows) == [model.format_number(today.year, n) for n in range(1, COUNT + 1)]
        assert documents == 2 * COUNT, "a PDF and an X-Rechnung per invoice"
        assert events == COUNT, "one invoice.issued per invoice"
        stderr = b"".join(w.stderr.read() or b"" for w in workers[1:]).decode(errors="replace")
        assert "Traceback" not in stderr, stderr[-3000:]


async def issued_at_least(probe, n: int) -> bool:
    return await probe() >= n

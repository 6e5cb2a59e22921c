"""Three invoicing workers as separate processes and the API sharing one billing run of 1,000
due drafts, one worker killed with SIGKILL while it renders: every invoice is issued once,
numbers are consecutive with no gap or duplicate, each issued invoice has exactly its two
documents and exactly one `invoice.issued`; invoices whose X-Rechnung fails the official rules
take no number; the run's counts match what was done; a second run of the same date issues
nothing."""
import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager

from kontor.clock import SystemClock, business_today
from kontor.db import create_engine, create_session_factory
from kontor.testing import eventually
from kontor.testing.services import auth, fresh_database
from kontor_invoicing.adapters import repository
from kontor_invoicing.adapters.orm import invoice_counters, invoice_documents, invoices, outbox
from kontor_invoicing.domain import model
from kontor_invoicing.entrypoints.api import create_api_app
from kontor_invoicing.settings import InvoicingSettings
from kontor_invoicing.spec import SPEC

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
COUNT = 1000
INVALID = 5  # their buyer's country is no ISO 3166 code: BR-CL-14 fails, so they wait for an advisor
RULES = Path(__file__).resolve().parents[4] / "shared" / "xrechnung"
ADVISOR = auth("advisor-1", "advisor")
BUYER = {"name": "ACME Werkstatt GmbH", "vat_id": "DE811569869", "invoice_email": "rechnung@acme.example",
         "language": "de", "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin",
                                       "country": "DE"}}


def due_draft(today: dt.date, i: int, *, valid: bool = True) -> model.Invoice:
    line = model.Line(f"Leistung {i}", Decimal(1 + i % 3), "day", Decimal("640.00"),
                      Decimal(640 * (1 + i % 3)).quantize(Decimal("0.01")), "S", Decimal(19))
    buyer = BUYER if valid else {**BUYER, "address": {**BUYER["address"], "country": "XX"}}
    return model.Invoice(id=uuid.uuid4(), order_id=uuid.uuid4(), member_id=f"member-{i % 7}", client_id=uuid.uuid4(),
                         seq=1, kind="invoice", schedule_kind="after_completion", status="draft", currency="EUR",
                         lines=(line,), invoice_date=today - dt.timedelta(days=1), due_in_days=14,
                         created_at=SystemClock().now(), project_name=f"Projekt {i}", buyer=buyer,
                         contact_name="Erika", contact_email="erika@acme.example")


def start_worker(url: str, infra, prefix: str) -> subprocess.Popen:
    env = {**os.environ, "KONTOR_INVOICING_DATABASE_URL": url,
           "KONTOR_INVOICING_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
           "KONTOR_INVOICING_TOPIC_PREFIX": prefix, "KONTOR_INVOICING_BILLING_RUNS_ENABLED": "false",
           "KONTOR_INVOICING_LOG_LEVEL": "WARNING", "KONTOR_INVOICING_RELAY_POLL_INTERVAL_S": "0.2",
           "KONTOR_INVOICING_ISSUE_LEASE_S": "3", "KONTOR_INVOICING_RENDER_PROCESSES": "1",
           "KONTOR_INVOICING_XRECHNUNG_RULES_DIR": str(RULES)}
    return subprocess.Popen([sys.executable, "-m", "kontor_invoicing", "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


async def test_three_workers_and_the_api_share_a_run_while_one_is_killed_rendering(infra, topic_prefix):
    if not (RULES / "validate.py").exists():
        pytest.skip(f"official X-Rechnung rules not found at {RULES}")
    today = business_today(SystemClock())
    async with fresh_database(infra, SPEC) as url:
        engine = create_engine(url)
        sessions = create_session_factory(engine)
        async with sessions.begin() as session:
            for i in range(COUNT):
                await repository.add(session, due_draft(today, i, valid=i % (COUNT // INVALID) != 7))

        async def count(*where) -> int:
            async with engine.connect() as conn:
                return (await conn.execute(sa.select(sa.func.count()).select_from(invoices).where(*where))).scalar_one()

        settings = InvoicingSettings(database_url=url, kafka_bootstrap=infra.kafka_bootstrap, topic_prefix=topic_prefix)
        app = create_api_app(settings)
        workers = [start_worker(url, infra, topic_prefix) for _ in range(3)]
        try:
            async with LifespanManager(app) as manager, httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=manager.app), base_url="http://invoicing.test") as api:
                started = await api.post("/billing-runs", json={"as_of": today.isoformat()}, headers=ADVISOR)
                assert started.status_code == 202, started.text
                run_id = started.json()["run_id"]
                assert started.headers["location"] == f"/billing-runs/{run_id}"

                await eventually(lambda: at_least(count(invoices.c.status == "invoiced"), 150), timeout_s=300,
                                 interval_s=0.2, what="150 invoices issued by the three workers")
                os.killpg(workers[0].pid, signal.SIGKILL)  # the worker and its rendering process, mid-render
                workers[0].wait(timeout=10)
                in_flight = await count(invoices.c.status == "issuing", invoices.c.number.is_not(None))
                print(f"\n[concurrency] worker 0 killed after {await count(invoices.c.status == 'invoiced')} "
                      f"issued; {in_flight} numbered invoices were still being rendered")

                async def run_ended():
                    r = (await api.get(f"/billing-runs/{run_id}", headers=ADVISOR)).json()
                    return r if r["status"] in ("finished", "failed") else None
                report = await eventually(run_ended, timeout_s=600, interval_s=0.5, what="the run ended")
                print(f"[concurrency] run: {report['status']} issued {report['issued']} held {report['held']} "
                      f"in {report['elapsed_s']} s ({report['invoices_per_s']}/s) by {report['workers']} workers")

                again = await api.post("/billing-runs", json={"as_of": today.isoformat()}, headers=ADVISOR)
                assert again.status_code == 202 and again.json()["run_id"] != run_id
                second = await eventually(lambda: ended(api, again.json()["run_id"]), timeout_s=60,
                                          what="the second run of the same date ended")
        finally:
            for w in workers[1:]:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                try:
                    w.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(w.pid, signal.SIGKILL)

        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(invoices.c.id, invoices.c.number, invoices.c.status))).all()
            documents = (await conn.execute(sa.select(invoice_documents.c.invoice_id, sa.func.count())
                                            .group_by(invoice_documents.c.invoice_id))).all()
            events = (await conn.execute(sa.select(outbox.c.aggregate_id, sa.func.count()).where(
                outbox.c.event_type == "kontor.invoice.issued.v1").group_by(outbox.c.aggregate_id))).all()
            counter = (await conn.execute(sa.select(invoice_counters.c.last_number)
                                          .where(invoice_counters.c.year == today.year))).scalar_one()
        await engine.dispose()

        issued = {r.id: r.number for r in rows if r.status == "invoiced"}
        held = [r for r in rows if r.status == "waiting_for_adjustment"]
        assert len(rows) == COUNT and len(issued) == COUNT - INVALID and len(held) == INVALID
        assert all(r.number is None for r in held), "an invoice failing the rules takes no number"
        assert sorted(issued.values()) == [model.format_number(today.year, n) for n in range(1, COUNT - INVALID + 1)]
        assert counter == COUNT - INVALID, "no number was taken and lost"
        assert {uuid.UUID(str(i)): n for i, n in documents} == dict.fromkeys(issued, 2), "exactly a PDF and an XML each"
        assert {uuid.UUID(a): n for a, n in events} == dict.fromkeys(issued, 1), "exactly one invoice.issued each"
        assert (report["status"], report["queued"], report["issued"], report["held"]) == \
            ("finished", COUNT, COUNT - INVALID, INVALID), report
        assert (second["status"], second["queued"], second["issued"], second["held"]) == ("finished", 0, 0, 0)
        stderr = b"".join(w.stderr.read() or b"" for w in workers[1:]).decode(errors="replace")
        assert "Traceback" not in stderr, stderr[-3000:]


async def at_least(probe, n: int) -> bool:
    return await probe >= n


async def ended(api, run_id: str):
    r = (await api.get(f"/billing-runs/{run_id}", headers=ADVISOR)).json()
    return r if r["status"] in ("finished", "failed") else None

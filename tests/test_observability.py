"""What an operator sees of the running platform: Prometheus metrics on every API and worker,
scraped by a real Prometheus, and one OpenTelemetry trace from an advisor's approval over the
outbox and Kafka to the invoices the invoicing service plans.

The four services run in this test's process (APIs on real ports, each worker serving /metrics on
a port of its own, as `kontor-<service> worker` does with WORKER_HTTP_PORT). What each API and
worker counts lives in its own registry; the counters that deep code increments (invoices
issued, documents rendered, e-mails delivered, billing runs) are process-wide, so here they
are read as the difference between before and after the flow.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kontor.clock import FixedClock
from kontor.testing import eventually, free_port
from kontor.testing.services import RunningService, auth, ok, running_service
from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_notifications.spec import SPEC as NOTIFICATIONS
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "shared" / "xrechnung"
MEMBER = auth("member-1", "member")
ADVISOR = auth("advisor-1", "advisor")
Samples = dict[tuple[str, frozenset], float]


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.get(f"{url}/metrics")
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers["content-type"]
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the series of `name` that have these labels (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def series(samples: Samples, name: str, **labels: str) -> list[dict[str, str]]:
    wanted = set(labels.items())
    return [dict(have) for (n, have) in samples if n == name and wanted <= have]


@contextlib.asynccontextmanager
async def platform(infra, topic_prefix: str) -> AsyncIterator[dict[str, RunningService]]:
    """The four services, each API on a real port and each worker serving /metrics on its own."""
    common = dict(topic_prefix=topic_prefix, serve_http=True)
    async with running_service(CLIENTS, infra, **common, worker_http_port=free_port(),
                               standing_run_enabled=False) as clients, \
            running_service(ORDERS, infra, **common, worker_http_port=free_port(),
                            order_runs_enabled=False) as orders, \
            running_service(INVOICING, infra, **common, worker_http_port=free_port(), billing_runs_enabled=False,
                            clock=FixedClock(dt.datetime(2027, 4, 1, 9, tzinfo=dt.UTC)),
                            xrechnung_rules_dir=RULES if RULES.exists() else None) as invoicing, \
            running_service(NOTIFICATIONS, infra, **common, worker_http_port=free_port(), smtp_host=infra.smtp_host,
                            smtp_port=infra.smtp_port, delivery_interval_s=0.1, retry_base_s=0.2) as notifications:
        yield {"clients": clients, "orders": orders, "invoicing": invoicing, "notifications": notifications}


def endpoints(services: dict[str, RunningService]) -> dict[str, str]:
    """Where each process serves its metrics: `<service>-api` and `<service>-worker`."""
    found: dict[str, str] = {}
    for name, svc in services.items():
        assert svc.base_url and svc.worker_url
        found[f"{name}-api"] = svc.base_url
        found[f"{name}-worker"] = svc.worker_url
    return found


def order_body(client_id: str, **changes) -> dict:
    body = {
        "client_id": client_id, "contact_person": {"name": "Erika Muster", "email": "erika@acme.example"},
        "sector": "design", "place_of_service": "DE", "project_name": "Relaunch 2027",
        "description": "Redesign of the company website.",
        "lines": [{"description": "Design workshop", "quantity": "2", "unit": "day", "unit_price": "640.00"}],
        "currency": "EUR", "service_period": {"start": "2027-01-01", "end": "2027-02-28"},
        "confirmation": {"mode": "skip", "skip_reason": "framework contract signed"},
        "payment": {"mode": "installments", "due_in_days": 14, "installments": [
            {"date": "2027-01-15", "percentage": "50"}, {"date": "2027-02-15", "percentage": "50"}]}}
    body.update(changes)
    return body


async def approved_order(services: dict[str, RunningService], run: str) -> tuple[dict, dict]:
    """A client registered and an order for it submitted and approved (confirmation skipped: active)."""
    clients, orders = services["clients"].http, services["orders"].http
    client = await ok(clients.post("/clients", headers=MEMBER, json={
        "kind": "company", "name": f"ACME Werkstatt {run} GmbH", "invoice_email": f"rechnung.{run}@acme.example",
        "language": "de",
        "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}}))

    async def accepted():
        r = await orders.post("/orders", json=order_body(client["id"]), headers=MEMBER)
        return r.json() if r.status_code == 201 else None
    order = await eventually(accepted, what="orders knowing the new client")
    await ok(orders.post(f"/orders/{order['order_id']}/submit", headers=MEMBER))
    active = await ok(orders.post(f"/orders/{order['order_id']}/approve", headers=ADVISOR))
    assert active["status"] == "active", active
    return client, active


async def test_every_api_and_worker_serves_metrics_that_follow_a_flow(infra, topic_prefix):
    if infra.maildir is None:
        pytest.skip("the SMTP server's Maildir is not readable here (KONTOR_TEST_MAILDIR unset)")
    async with platform(infra, topic_prefix) as services:
        where = endpoints(services)
        before = {name: await scrape(url) for name, url in where.items()}
        invoicing = services["invoicing"].http
        run = uuid.uuid4().hex[:8]
        await ok(services["notifications"].http.put("/members/member-1", headers=MEMBER, json={
            "email": f"anna.{run}@member.example", "name": "Anna Freiberuf", "language": "de"}))
        _, order = await approved_order(services, run)
        oid = order["order_id"]

        runs = 0

        async def billing_run(as_of: str) -> dict:
            nonlocal runs
            started = await ok(invoicing.post("/billing-runs", json={"as_of": as_of}, headers=ADVISOR), 202)
            runs += 1

            async def ended():
                report = await ok(invoicing.get(f"/billing-runs/{started['run_id']}", headers=ADVISOR))
                return report if report["status"] in ("finished", "failed") else None
            report = await eventually(ended, timeout_s=120, interval_s=0.2, what=f"the billing run as of {as_of}")
            assert report["status"] == "finished", report
            return report

        async def issued() -> list[dict]:
            found = await ok(invoicing.get("/invoices", params={"order_id": oid}, headers=ADVISOR))
            return [i for i in found if i["status"] == "invoiced"]

        async def first_issued():  # invoicing may learn the order only after the first run
            await billing_run("2027-01-15")
            return await issued() or None
        await eventually(first_issued, timeout_s=120, interval_s=0.5, what="the first installment issued")
        await billing_run("2027-02-15")
        invoices = await issued()
        assert sorted(i["number"][:4] for i in invoices) == ["2027", "2027"], invoices

        async def settled():
            """Every outbox published, every consumer caught up and no e-mail waiting, as the workers'
            metrics say; and the delivery log, read afterwards, with both invoices sent."""
            now = {name: await scrape(url) for name, url in where.items()}
            for name in ("clients-worker", "orders-worker", "invoicing-worker", "notifications-worker"):
                samples = now[name]
                if value(samples, "kontor_outbox_backlog") != 0 or value(samples, "kontor_outbox_oldest_age_seconds"):
                    return None
                if not series(samples, "kontor_consumer_lag") or value(samples, "kontor_consumer_lag") != 0:
                    return None
            if value(now["notifications-worker"], "kontor_emails", status="pending"):
                return None
            log = await ok(services["notifications"].http.get("/emails", params={"limit": 500}, headers=ADVISOR))
            invoice_mails = [e for e in log if e["invoice_id"] in {i["invoice_id"] for i in invoices}
                             and e["template"] == "invoice_issued" and e["status"] == "sent"]
            return (now, log) if len(invoice_mails) == 2 else None
        after, emails = await eventually(settled, timeout_s=60, interval_s=0.5,
                                         what="outbox backlogs, consumer lags and the e-mail queue at 0")
        assert emails and all(e["status"] == "sent" for e in emails), [(e["template"], e["status"]) for e in emails]

        def delta(process: str, name: str, **labels: str) -> float:
            return value(after[process], name, **labels) - value(before[process], name, **labels)

        # HTTP, per API and route template (ids never become labels)
        approve = dict(handler="/orders/{order_id}/approve", method="POST", status="200")
        assert value(after["orders-api"], "http_requests_total", **approve) == 1
        assert value(after["orders-api"], "http_request_duration_seconds_count", **approve) == 1
        assert value(after["orders-api"], "http_request_duration_seconds_bucket", le="+Inf", **approve) == 1
        assert value(after["clients-api"], "http_requests_total", handler="/clients", method="POST",
                     status="201") == 1
        assert value(after["invoicing-api"], "http_requests_total", handler="/billing-runs", method="POST",
                     status="202") == runs
        assert not series(after["orders-api"], "http_requests_total", handler="/metrics")
        assert not any(oid in labels.get("handler", "") for labels in series(after["orders-api"],
                                                                              "http_requests_total"))
        assert series(after["invoicing-api"], "http_requests_total", handler="/invoices", method="GET", status="200")

        # the outbox relays and the consumers
        orders_worker, invoicing_worker = after["orders-worker"], after["invoicing-worker"]
        assert value(orders_worker, "kontor_outbox_published_total", event_type="kontor.order.activated.v1") == 1
        assert value(orders_worker, "kontor_outbox_published_total", event_type="kontor.order.approved.v1") == 1
        assert value(after["clients-worker"], "kontor_outbox_published_total",
                     event_type="kontor.client.registered.v1") == 1
        assert value(invoicing_worker, "kontor_outbox_published_total", event_type="kontor.invoice.issued.v1") == 2
        assert value(orders_worker, "kontor_outbox_publish_batch_seconds_count") >= 1
        assert value(invoicing_worker, "kontor_consumer_events_total", consumer_group="kontor-invoicing",
                     event_type="kontor.order.activated.v1", outcome="applied") == 1
        assert value(orders_worker, "kontor_consumer_events_total", consumer_group="kontor-orders",
                     event_type="kontor.client.registered.v1", outcome="applied") == 1
        assert value(invoicing_worker, "kontor_consumer_handle_seconds_count", consumer_group="kontor-invoicing",
                     event_type="kontor.order.activated.v1") == 1
        for name in ("clients-worker", "orders-worker", "invoicing-worker", "notifications-worker"):
            samples = after[name]
            # FastStream's own count of records received equals Kontor's count of records handled
            assert value(samples, "faststream_received_messages_total") == \
                value(samples, "kontor_consumer_events_total") > 0, name
            assert value(samples, "kontor_dead_letters_total") == 0, name
            lags = series(samples, "kontor_consumer_lag")
            assert {lag["partition"] for lag in lags} == {"0", "1", "2"}, (name, lags)
            assert all(lag["topic"].startswith(topic_prefix) for lag in lags), lags

        # invoicing: issued per year, rendering measured in the worker, the billing runs
        assert delta("invoicing-worker", "kontor_invoices_issued_total", year="2027", kind="invoice") == 2
        assert delta("invoicing-worker", "kontor_invoices_issued_total") == 2
        assert delta("invoicing-worker", "kontor_documents_rendered_total", kind="pdf") == 2
        assert delta("invoicing-worker", "kontor_documents_rendered_total", kind="xrechnung") == 2
        assert delta("invoicing-worker", "kontor_invoice_render_seconds_count") == 2
        assert 0 < delta("invoicing-worker", "kontor_invoice_render_seconds_sum") < 60
        if RULES.exists():
            assert delta("invoicing-worker", "kontor_xrechnung_validate_seconds_count") == 2
        assert value(invoicing_worker, "kontor_pdf_speedups_active") == 1
        assert value(after["invoicing-api"], "kontor_pdf_speedups_active") == 1
        assert delta("invoicing-worker", "kontor_billing_runs_ended_total", status="finished") == runs
        assert delta("invoicing-worker", "kontor_billing_run_duration_seconds_count") == runs
        assert value(invoicing_worker, "kontor_billing_runs_active") == 0
        assert value(invoicing_worker, "kontor_billing_run_invoices", state="issued") == 1  # the newest run's
        assert value(invoicing_worker, "kontor_billing_run_invoices", state="to_issue") == 0

        # notifications: the delivery log by status, attempts and latency
        notifications_worker = after["notifications-worker"]
        assert value(notifications_worker, "kontor_emails", status="sent") == len(emails)
        assert value(notifications_worker, "kontor_emails", status="pending") == 0
        assert value(notifications_worker, "kontor_emails_due") == 0
        assert delta("notifications-worker", "kontor_email_delivery_attempts_total", outcome="sent") == len(emails)
        assert delta("notifications-worker", "kontor_email_delivery_latency_seconds_count") == len(emails)
        assert value(notifications_worker, "kontor_metrics_refresh_failures_total") == 0
        assert value(notifications_worker, "process_resident_memory_bytes") > 0


async def test_a_real_prometheus_scrapes_the_services_and_answers_promql(infra, topic_prefix, tmp_path):
    binary = shutil.which("prometheus")
    assert binary, "Prometheus is not installed: deploy/bootstrap.sh installs Debian's package"
    async with platform(infra, topic_prefix) as services:
        where = endpoints(services)
        run = uuid.uuid4().hex[:8]
        await ok(services["clients"].http.post("/clients", headers=MEMBER, json={
            "kind": "company", "name": f"Prometheus {run} GmbH", "language": "de",
            "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}}))
        scrape_configs = [{"job_name": f"kontor-{role}", "scrape_interval": "1s", "static_configs": [
            {"targets": [url.removeprefix("http://")], "labels": {"service": name.split("-")[0]}}
            for name, url in where.items() if name.endswith(f"-{role}")]} for role in ("api", "worker")]
        config = tmp_path / "prometheus.yml"
        config.write_text(json.dumps({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                                      "scrape_configs": scrape_configs}))  # JSON is YAML
        port = free_port()
        log = (tmp_path / "prometheus.log").open("wb")
        server = await asyncio.create_subprocess_exec(
            binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", stdout=log, stderr=subprocess.STDOUT)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as prometheus:
                async def query(promql: str) -> dict[str, float] | None:
                    assert server.returncode is None, (tmp_path / "prometheus.log").read_text()[-2000:]
                    try:
                        r = await prometheus.get("/api/v1/query", params={"query": promql})
                    except httpx.TransportError:
                        return None  # not listening yet
                    body = r.json()
                    assert body["status"] == "success", body
                    return {json.dumps(item["metric"], sort_keys=True): float(item["value"][1])
                            for item in body["data"]["result"]}

                async def all_up():
                    found = await query("up")
                    return found if found and len(found) == 8 and set(found.values()) == {1.0} else None
                up = await eventually(all_up, timeout_s=60, interval_s=0.5, what="Prometheus scraping all 8 targets")
                assert {json.loads(k)["job"] for k in up} == {"kontor-api", "kontor-worker"}

                applied = ('sum by (service) (kontor_consumer_events_total{event_type="kontor.client.registered.v1",'
                           'outcome="applied"})')

                async def registration_applied():
                    found = await query(applied)
                    return found if found and len(found) == 2 else None
                found = await eventually(registration_applied, timeout_s=60, interval_s=0.5,
                                         what="the client's registration applied by orders and invoicing")
                assert found == {'{"service": "invoicing"}': 1.0, '{"service": "orders"}': 1.0}

                created = await query('sum(http_requests_total{job="kontor-api",handler="/clients",method="POST",'
                                      'status="201"})')
                assert created == {"{}": 1.0}
        finally:
            server.terminate()
            try:
                await asyncio.wait_for(server.wait(), 15)
            except TimeoutError:
                server.kill()
                await server.wait()
            log.close()


@contextlib.contextmanager
def captured_spans():
    """Every span this process ends while the block runs, in memory (database spans included)."""
    from opentelemetry import trace
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the process's first: it stays (OpenTelemetry allows one)
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = AsyncPGInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()
        exporter.shutdown()  # its processor stays attached, exporting nothing


async def test_one_trace_runs_from_the_approval_to_the_invoices_invoicing_plans(infra, topic_prefix):
    from opentelemetry.trace import SpanKind

    with captured_spans() as exporter:
        common = dict(topic_prefix=topic_prefix)
        async with running_service(CLIENTS, infra, **common, standing_run_enabled=False) as clients, \
                running_service(ORDERS, infra, **common, order_runs_enabled=False) as orders, \
                running_service(INVOICING, infra, **common, billing_runs_enabled=False) as invoicing:
            services = {"clients": clients, "orders": orders, "invoicing": invoicing}
            _, order = await approved_order(services, uuid.uuid4().hex[:8])
            oid = order["order_id"]

            def spans():
                return list(exporter.get_finished_spans())

            def approval():
                return next((s for s in spans() if s.kind == SpanKind.SERVER
                             and s.attributes.get("http.route") == "/orders/{order_id}/approve"), None)

            async def planned():
                server = approval()
                if server is None:
                    return None
                inserts = [s for s in spans() if s.context.trace_id == server.context.trace_id
                           and "INSERT INTO planned_invoices" in str(s.attributes.get("db.statement", ""))]
                return (server, inserts[0]) if inserts else None
            server, insert = await eventually(planned, timeout_s=30, what="the planned invoices' insert in the trace")

        trace_id = server.context.trace_id
        in_trace = {s.context.span_id: s for s in spans() if s.context.trace_id == trace_id}
        assert server.attributes["http.method"] == "POST" and server.attributes["http.status_code"] == 200
        assert oid not in server.name, "the span is named by the route template"

        # insert ← consumer (invoicing) ← publish (orders' relay) ← the approval request
        consumer = in_trace[insert.parent.span_id]
        assert consumer.kind == SpanKind.CONSUMER, consumer.name
        assert consumer.attributes["messaging.consumer.group.name"] == "kontor-invoicing"
        assert consumer.attributes["cloudevents.event_type"] == "kontor.order.activated.v1"
        assert consumer.attributes["kontor.outcome"] == "applied"
        assert consumer.attributes["messaging.destination.name"] == f"{topic_prefix}kontor.orders.v1"
        producer = in_trace[consumer.parent.span_id]
        assert producer.kind == SpanKind.PRODUCER
        assert producer.name == f"publish {topic_prefix}kontor.orders.v1"
        assert producer.attributes["cloudevents.event_type"] == "kontor.order.activated.v1"
        assert producer.parent.span_id == server.context.span_id, "the outbox row carried the request's context"
        assert server.parent is None, "the request began the trace"
        assert insert.attributes["db.name"] == invoicing.database.rsplit("/", 1)[1], "in invoicing's database"

        # the approval's other event went the same way; other consumer groups' spans are in the trace too
        published = {s.attributes["cloudevents.event_type"] for s in in_trace.values() if s.kind == SpanKind.PRODUCER}
        assert {"kontor.order.approved.v1", "kontor.order.activated.v1"} <= published
        groups = {s.attributes["messaging.consumer.group.name"] for s in in_trace.values()
                  if s.kind == SpanKind.CONSUMER}
        assert "kontor-invoicing" in groups


def test_log_lines_carry_the_trace_and_span_ids_and_stay_redacted(monkeypatch):
    from opentelemetry.sdk.trace import TracerProvider

    from kontor.logging import configure_logging, get_logger

    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("INFO", "json")
    try:
        tracer = TracerProvider().get_tracer("test")
        with tracer.start_as_current_span("request") as span:
            get_logger("kontor.test.tracing").info("inside", path="/confirm/secret-token-123")
        get_logger("kontor.test.tracing").info("outside")
    finally:
        monkeypatch.undo()  # the real stderr again, for the configuration every test has
        configure_logging("WARNING", "console")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x") and len(inside["trace_id"]) == 32
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")
    assert inside["path"] == "/confirm/[redacted]"
    assert "trace_id" not in outside and "span_id" not in outside

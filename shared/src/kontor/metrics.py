"""Every Prometheus metric of Kontor, named, typed and explained in this one module.

Where a metric lives:
- **Process-wide** (prometheus_client's default registry): what deep code counts where it happens,
  e.g. an invoice issued or a document rendered. In production one process is one API or one worker,
  so these are that process's; they are served by its `/metrics`, beside its own.
- **One API** (`ApiMetrics`, a registry of its own): `http_requests_total{handler,method,status}`,
  `http_request_duration_seconds{handler,method,status}` (histogram), `http_requests_in_progress`.
- **One worker** (`WorkerMetrics`, a registry of its own, served on `WORKER_HTTP_PORT` at `/metrics`):
  FastStream's consumer metrics (`faststream_received_messages_total`, `..._processing_time_seconds`,
  `..._exceptions_total`, ... by topic and handler), the outbox relay, the consumers, and gauges that
  need a query (outbox backlog, consumer lag, e-mails by status, billing run progress), refreshed when
  `/metrics` is scraped. Several worker processes of a service each serve their own port: counters add
  up across them; a gauge that every replica measures alike (backlog, e-mails by status, run progress)
  is read with `max`, consumer lag (each worker its assigned partitions) with `sum`.

No label takes an id or free text: labels are event types the code knows, topics, partitions,
statuses, years. Names follow Prometheus conventions (`_total` counters, `_seconds` durations).
The README's "Operations" section lists them all; deploy/grafana/ queries them.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from kontor.logging import get_logger

log = get_logger(__name__)

# -- process-wide: counted where it happens ----------------------------------------------------

INVOICES_ISSUED = Counter(
    "kontor_invoices_issued", "Invoices and cancellation invoices issued (numbered, rendered, stored, event "
    "written), by the year of their number and kind (invoice | cancellation)", ["year", "kind"])
DOCUMENTS_RENDERED = Counter(
    "kontor_documents_rendered", "Documents rendered for issued invoices, by kind (pdf | xrechnung)", ["kind"])
RENDERING_FAILURES = Counter(
    "kontor_rendering_failures", "Jobs of the rendering processes that failed (a process died or the job raised), "
    "by job (render | check)", ["job"])
RENDER_SECONDS = Histogram(
    "kontor_invoice_render_seconds", "Seconds one invoice's PDF and X-Rechnung took in a rendering process "
    "(measured there, recorded by the worker)", buckets=(0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10))
VALIDATE_SECONDS = Histogram(
    "kontor_xrechnung_validate_seconds", "Seconds one X-Rechnung took to be built and checked by the official "
    "rules in a rendering process", buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5))
PDF_SPEEDUPS_ACTIVE = Gauge(
    "kontor_pdf_speedups_active", "1 when the WeasyPrint speed-ups are active (installed WeasyPrint and pydyf are "
    "the versions they were written for), 0 when invoices render with WeasyPrint's own, slower code")
BILLING_RUNS_ENDED = Counter(
    "kontor_billing_runs_ended", "Billing runs that ended, by status (finished | failed)", ["status"])
BILLING_RUN_SECONDS = Histogram(
    "kontor_billing_run_duration_seconds", "Seconds from a billing run's start to its end",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200))
EMAIL_ATTEMPTS = Counter(
    "kontor_email_delivery_attempts", "Delivery attempts of e-mails, by the e-mail's status afterwards "
    "(sent | pending: retried later | failed: given up | error: the attempt could not be recorded)", ["outcome"])
EMAIL_DELIVERY_SECONDS = Histogram(
    "kontor_email_delivery_latency_seconds", "Seconds from an e-mail being queued to its being sent",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400))


def render(*registries: CollectorRegistry) -> bytes:
    """The text exposition of these registries and the process-wide one (their names never overlap)."""
    return b"".join(generate_latest(r) for r in (*registries, REGISTRY))


def metrics_response(*registries: CollectorRegistry) -> Response:
    # the classic text format, which every Prometheus reads (names are plain, no escaping needed)
    return Response(render(*registries), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


# -- one API -----------------------------------------------------------------------------------

class ApiMetrics:
    """An API's HTTP metrics in a registry of its own (several apps may share a process in tests),
    and its `/metrics`.

    Measured by a plain ASGI middleware (`_HttpMetrics`), outermost but for the tracing one, so
    refusals by the input guard count too. The route is its template, read after routing
    (`/orders/{order_id}`; `none` for a path no route matched), so no id becomes a label.
    prometheus-fastapi-instrumentator would be the usual choice; its last version that runs with
    this project's Starlette (< 1.0, which schemathesis needs) fails on FastAPI's included routers.
    """

    EXCLUDED = frozenset({"/metrics", "/healthz", "/readyz"})

    def __init__(self, app: FastAPI) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("http_requests", "HTTP requests answered, by route template, method and status",
                                ["handler", "method", "status"], registry=r)
        self.duration = Histogram("http_request_duration_seconds", "Seconds from a request's arrival to the end of "
                                  "its answer, by route template, method and status",
                                  ["handler", "method", "status"],
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r)
        self.in_progress = Gauge("http_requests_in_progress", "HTTP requests being answered", registry=r)
        app.add_middleware(_HttpMetrics, metrics=self)
        registry = self.registry

        @app.get("/metrics", include_in_schema=False)
        async def prometheus_metrics() -> Response:
            return metrics_response(registry)

    def observe(self, scope: dict, status: int, seconds: float) -> None:
        route = scope.get("route")
        handler = getattr(route, "path_format", None) or getattr(route, "path", None) or "none"
        if handler in self.EXCLUDED:
            return
        labels = (handler, scope.get("method", ""), str(status))
        self.requests.labels(*labels).inc()
        self.duration.labels(*labels).observe(seconds)


class _HttpMetrics:
    def __init__(self, app: Any, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before any answer is what the server answers with

        async def sending(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.in_progress.dec()
            self.metrics.observe(scope, status, time.perf_counter() - started)


# -- one worker --------------------------------------------------------------------------------

Refresh = Callable[[], Awaitable[None]]


class WorkerMetrics:
    """The metrics of one worker: what its relay and consumers count, and the gauges refreshed at
    each scrape by the `refreshers` (each bounded by `refresh_timeout_s`; one that fails is logged
    and counted, its gauges keep their last values)."""

    def __init__(self, *, refresh_timeout_s: float = 5.0) -> None:
        self.registry = r = CollectorRegistry()
        self.refresh_timeout_s = refresh_timeout_s
        self.refreshers: list[tuple[str, Refresh]] = []
        # outbox relay
        self.published = Counter("kontor_outbox_published", "Events the outbox relay published, by event type",
                                 ["event_type"], registry=r)
        self.publish_seconds = Histogram("kontor_outbox_publish_batch_seconds", "Seconds one outbox batch took "
                                         "(claim, publish, acknowledged by all in-sync replicas, marked)",
                                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=r)
        self.publish_errors = Counter("kontor_outbox_publish_errors", "Outbox batches that failed and were retried",
                                      registry=r)
        self.outbox_backlog = Gauge("kontor_outbox_backlog", "Outbox rows not yet published", registry=r)
        self.outbox_oldest_age = Gauge("kontor_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row "
                                       "(0 when none)", registry=r)
        # consumers
        self.consumed = Counter("kontor_consumer_events", "Records a consumer group handled, by event type (other: "
                                "a type it does not handle) and outcome (applied | duplicate | skipped | "
                                "dead_lettered)", ["consumer_group", "event_type", "outcome"], registry=r)
        self.handle_seconds = Histogram("kontor_consumer_handle_seconds", "Seconds from a record's arrival to its "
                                        "handler's transaction committed (retries included)",
                                        ["consumer_group", "event_type"],
                                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                                        registry=r)
        self.dead_letters = Counter("kontor_dead_letters", "Records sent to a dead-letter topic, by consumer group, "
                                    "original topic and reason", ["consumer_group", "topic", "reason"], registry=r)
        self.infrastructure_waits = Counter("kontor_consumer_infrastructure_waits", "Times a record waited for the "
                                            "database or the broker to come back", ["consumer_group"], registry=r)
        self.consumer_lag = Gauge("kontor_consumer_lag", "Records not yet committed by the consumer group, per "
                                  "partition assigned to this worker (end offset − committed offset)",
                                  ["consumer_group", "topic", "partition"], registry=r)
        self.refresh_failures = Counter("kontor_metrics_refresh_failures", "Scrapes at which a gauge could not be "
                                        "refreshed (it kept its last value)", ["gauge"], registry=r)

    def add_refresher(self, name: str, refresh: Refresh) -> None:
        self.refreshers.append((name, refresh))

    async def refresh(self) -> None:
        async def one(name: str, refresh: Refresh) -> None:
            try:
                await asyncio.wait_for(refresh(), timeout=self.refresh_timeout_s)
            except Exception as exc:  # noqa: BLE001 - a gauge left stale is reported, the scrape still answers
                self.refresh_failures.labels(name).inc()
                log.warning("metrics refresh failed", gauge=name, error=f"{type(exc).__name__}: {exc}"[:300])

        await asyncio.gather(*(one(n, r) for n, r in self.refreshers))

    async def response(self) -> Response:
        await self.refresh()
        return metrics_response(self.registry)


class EmailGauges:
    """Notifications: the delivery log by status (its worker's refresher runs the query)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.by_status = Gauge("kontor_emails", "E-mails in the delivery log by status (pending | sent | failed)",
                               ["status"], registry=registry)
        self.due = Gauge("kontor_emails_due", "Pending e-mails whose next attempt is due now", registry=registry)
        self.oldest_due_age = Gauge("kontor_emails_oldest_due_age_seconds", "How long the longest-waiting due "
                                    "e-mail has been due (0 when none)", registry=registry)


class BillingRunGauges:
    """Invoicing: the billing runs' progress (its worker's refresher reads the newest run)."""

    STATES = ("drafted", "queued", "issued", "held", "reminded", "to_draft", "to_queue", "to_issue", "stuck",
              "to_remind")

    def __init__(self, registry: CollectorRegistry) -> None:
        self.active = Gauge("kontor_billing_runs_active", "Billing runs queued or running", registry=registry)
        self.invoices = Gauge("kontor_billing_run_invoices", "The newest billing run's invoices by state: done "
                              "(drafted, queued, issued, held, reminded) and still to do while it is active "
                              "(to_draft, to_queue, to_issue, stuck, to_remind; 0 once it ended)", ["state"],
                              registry=registry)
        self.running_seconds = Gauge("kontor_billing_run_elapsed_seconds", "Seconds since the active billing run "
                                     "started (0 when none runs)", registry=registry)

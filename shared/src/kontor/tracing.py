"""OpenTelemetry traces across services: one trace from an HTTP request through the outbox, Kafka
and the consumer to the next service's effect.

How the context travels (W3C Trace Context, in CloudEvents' distributed-tracing extension):
- an API request runs in the span of the FastAPI instrumentation (an incoming `traceparent` header
  continues the caller's trace);
- `Outbox.add` stores the current span's context with the event, as the extension attributes
  `traceparent` / `tracestate`, i.e. the Kafka headers `ce_traceparent` / `ce_tracestate` (binary mode);
- the relay publishes each such row in a PRODUCER span, child of the stored context, and sends that
  span's context in the header;
- the consumer handles the record in a CONSUMER span, child of the header's context; what the handler
  writes to its own outbox carries the trace on.

Configuration by the standard variables (`configure_tracing`, called once per API or worker process):
spans get trace and span ids always (logs carry them: `kontor.logging`), and are exported only when
`OTEL_TRACES_EXPORTER` (`otlp`, `console`) or `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` is set; the OTLP
exporter (HTTP/protobuf) reads its own `OTEL_EXPORTER_OTLP_*`, the SDK `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]` and `OTEL_BSP_*`. `OTEL_SDK_DISABLED=true`
turns all of it off. Database spans (asyncpg) are recorded only while spans are exported.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from kontor.logging import get_logger

log = get_logger(__name__)

TRACEPARENT = "ce_traceparent"  # CloudEvents extension `traceparent` as a Kafka header (binary mode)
TRACESTATE = "ce_tracestate"
_W3C = TraceContextTextMapPropagator()


def tracer() -> trace.Tracer:
    return trace.get_tracer("kontor")


def trace_headers(span: Span | None = None) -> dict[str, str]:
    """The W3C context of `span` (default: the current one) as CloudEvents extension headers;
    empty when there is no valid span."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=trace.set_span_in_context(span) if span is not None else None)
    headers = {TRACEPARENT: carrier["traceparent"]} if carrier.get("traceparent") else {}
    if headers and carrier.get("tracestate"):
        headers[TRACESTATE] = carrier["tracestate"]
    return headers


def context_from(headers: Mapping[str, str]) -> Context | None:
    """The trace context these CloudEvents headers carry; None when they carry none (or a malformed one)."""
    traceparent = headers.get(TRACEPARENT)
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if headers.get(TRACESTATE):
        carrier["tracestate"] = headers[TRACESTATE]
    ctx = _W3C.extract(carrier)
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def start_publish_span(topic: str, event_type: str, headers: Mapping[str, str]) -> Span | None:
    """A PRODUCER span for publishing one outbox row, child of the context stored with it; None
    when the row carries no trace (an event written outside any span)."""
    parent = context_from(headers)
    if parent is None:
        return None
    return tracer().start_span(f"publish {topic}", context=parent, kind=SpanKind.PRODUCER, attributes={
        "messaging.system": "kafka", "messaging.operation.type": "send", "messaging.destination.name": topic,
        "cloudevents.event_type": event_type})


@contextmanager
def consume_span(record: Any, envelope_headers: Mapping[str, str], *, group: str, event_type: str,
                 event_id: str) -> Iterator[Span]:
    """The current span while a consumer handles one record: a CONSUMER span, child of the record's
    trace context (a new trace when it has none)."""
    with tracer().start_as_current_span(
            f"process {record.topic}", context=context_from(envelope_headers), kind=SpanKind.CONSUMER, attributes={
                "messaging.system": "kafka", "messaging.operation.type": "process",
                "messaging.destination.name": record.topic, "messaging.consumer.group.name": group,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset, "cloudevents.event_type": event_type,
                "cloudevents.event_id": event_id}) as span:
        yield span


def instrument_app(app: Any) -> None:
    """Spans for the API's requests (not its probes and metrics); incoming `traceparent` continues."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="/healthz,/readyz,/metrics")


def _exporter_configured() -> bool:
    names = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if names:
        return names != "none"
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def configure_tracing(service: str) -> bool:
    """The process's tracer provider from the standard `OTEL_*` variables; True when spans are exported."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or f"kontor-{service}"})
    provider = TracerProvider(resource=resource)
    exporting = _exporter_configured()
    if exporting:
        names = [n.strip() for n in (os.environ.get("OTEL_TRACES_EXPORTER") or "otlp").lower().split(",") if n.strip()]
        for name in names:
            exporter: SpanExporter
            if name == "otlp":
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                exporter = OTLPSpanExporter()
            elif name == "console":
                exporter = ConsoleSpanExporter()
            else:
                raise ValueError(f"OTEL_TRACES_EXPORTER: unknown exporter {name!r} (otlp, console or none)")
            provider.add_span_processor(BatchSpanProcessor(exporter))
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().instrument(tracer_provider=provider)
    trace.set_tracer_provider(provider)
    log.info("tracing configured", service=service, exporting=exporting,
             exporters=os.environ.get("OTEL_TRACES_EXPORTER") or ("otlp" if exporting else "none"))
    return exporting

"""Structured logging: structlog over the standard library, JSON lines by default.

Every service calls `configure_logging` once in its entry point; libraries that log
through `logging` (uvicorn, aiokafka, alembic) end up in the same structured stream.
A line logged inside an OpenTelemetry span (a request, a consumed record: `kontor.tracing`)
carries its `trace_id` and `span_id`.
"""
from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from opentelemetry import trace as otel_trace

# A client's confirmation link is a bearer secret: whoever has it answers for the client. It never
# reaches a log line (uvicorn's access log included), wherever in the line it stands.
_CONFIRMATION_PATH = re.compile(r"(/confirm/)[^/\s?#\"']+")


def redact(text: str) -> str:
    return _CONFIRMATION_PATH.sub(r"\1[redacted]", text) if "/confirm/" in text else text


def _redact_secrets(_logger: Any, _name: str, event_dict: dict) -> dict:
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


def _add_trace_ids(_logger: Any, _name: str, event_dict: dict) -> dict:
    """The current OpenTelemetry span's ids (`kontor.tracing`), so a line is found from its trace and back."""
    context = otel_trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


class _StderrHandler(logging.StreamHandler):
    """Writes to `sys.stderr` as it is when the line is written, not as it was when logging was configured
    (as the standard library's last-resort handler does): a tool or a test that replaces and later closes
    it leaves no handler writing to a closed file."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(level: str = "INFO", fmt: str = "json", service: str | None = None) -> None:
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
        _add_trace_ids,
        _redact_secrets,
    ]
    if service:
        shared.insert(0, _bind_service(service))
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Every line goes through the one handler above, and so through the redaction: a handler of its own
    # on uvicorn's loggers (uvicorn installs them unless log_config=None) would print access lines, and
    # the confirmation tokens in their paths, unredacted; a level set on them would hide lines.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
        server_logger.setLevel(logging.NOTSET)
    # aiokafka is chatty at INFO about group rebalances; keep its warnings.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))


def _bind_service(service: str):
    def processor(_logger, _name, event_dict):
        event_dict.setdefault("service", service)
        return event_dict

    return processor


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)

"""The event envelope: CloudEvents 1.0 in Kafka binary mode.

Attributes travel as `ce_*` headers, the payload is the contract's JSON. Correlation
and causation ids are extension attributes (`ce_correlationid`, `ce_causationid`); the W3C trace
context is the distributed-tracing extension (`ce_traceparent`, `ce_tracestate`), kept in `extra`
(`kontor.tracing` writes and reads it).
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field, replace

from kontor.contracts import Contract

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"


class EnvelopeError(ValueError):
    """A Kafka record that is not a well-formed Kontor CloudEvent."""


@dataclass(frozen=True)
class Envelope:
    id: uuid.UUID
    type: str
    source: str
    subject: str
    time: dt.datetime
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    specversion: str = SPECVERSION
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_event(
        cls,
        event: Contract,
        *,
        time: dt.datetime,
        caused_by: Envelope | None = None,
        correlation_id: uuid.UUID | None = None,
    ) -> Envelope:
        """A new envelope; an event caused by another inherits its correlation id."""
        event_id = uuid.uuid4()
        if caused_by is not None:
            correlation_id = caused_by.correlation_id
        return cls(
            id=event_id,
            type=event.event_type,
            source=event.source,
            subject=event.aggregate_id,
            time=time.astimezone(dt.UTC),
            correlation_id=correlation_id or event_id,
            causation_id=caused_by.id if caused_by else None,
        )

    def headers(self) -> list[tuple[str, bytes]]:
        pairs = {
            "ce_specversion": self.specversion,
            "ce_id": str(self.id),
            "ce_source": self.source,
            "ce_type": self.type,
            "ce_time": self.time.isoformat().replace("+00:00", "Z"),
            "ce_subject": self.subject,
            "ce_correlationid": str(self.correlation_id),
            "content-type": CONTENT_TYPE,
        }
        if self.causation_id:
            pairs["ce_causationid"] = str(self.causation_id)
        pairs.update(self.extra)
        return [(k, v.encode()) for k, v in pairs.items()]

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | tuple) -> Envelope:
        values: dict[str, str] = {}
        for key, raw in headers or ():
            try:
                values[key] = raw.decode() if isinstance(raw, (bytes, bytearray)) else str(raw)
            except UnicodeDecodeError as exc:
                raise EnvelopeError(f"header {key!r} is not UTF-8") from exc
        missing = [h for h in ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time") if h not in values]
        if missing:
            raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
        if values["ce_specversion"] != SPECVERSION:
            raise EnvelopeError(f"unsupported ce_specversion {values['ce_specversion']!r}")
        try:
            event_id = uuid.UUID(values["ce_id"])
            time = dt.datetime.fromisoformat(values["ce_time"].replace("Z", "+00:00"))
            correlation = uuid.UUID(values.get("ce_correlationid") or values["ce_id"])
            causation = uuid.UUID(values["ce_causationid"]) if values.get("ce_causationid") else None
        except ValueError as exc:
            raise EnvelopeError(f"malformed CloudEvents header: {exc}") from exc
        known = {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject",
                 "ce_correlationid", "ce_causationid", "content-type"}
        return cls(
            id=event_id,
            type=values["ce_type"],
            source=values["ce_source"],
            subject=values.get("ce_subject", ""),
            time=time,
            correlation_id=correlation,
            causation_id=causation,
            extra={k: v for k, v in values.items() if k not in known},
        )

    def with_extra(self, **extra: str) -> Envelope:
        return replace(self, extra={**self.extra, **extra})


def encode_payload(event: Contract) -> bytes:
    return event.model_dump_json().encode()

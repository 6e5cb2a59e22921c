"""AsyncAPI 3.0 documents generated from the code: what a service publishes and consumes.

Messages are the versioned contracts (payload = the contract's JSON Schema), headers
are the CloudEvents binary-mode attributes, the Kafka key is the aggregate id.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic.json_schema import models_json_schema

from kontor.contracts import Contract

if TYPE_CHECKING:
    from kontor.service import ServiceSpec

CLOUDEVENT_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 attributes in Kafka binary mode",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "format": "uuid", "description": "event id; consumers deduplicate on it"},
        "ce_source": {"type": "string", "description": "producing service, e.g. kontor/clients"},
        "ce_type": {"type": "string", "description": "versioned event type, e.g. kontor.client.registered.v1"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string", "description": "aggregate id, also the Kafka key"},
        "ce_correlationid": {"type": "string", "format": "uuid"},
        "ce_causationid": {"type": "string", "format": "uuid"},
        "ce_traceparent": {"type": "string", "description": "W3C trace context of the span that published the "
                           "event (CloudEvents distributed-tracing extension); a consumer's span continues it"},
        "ce_tracestate": {"type": "string", "description": "W3C tracestate, when the trace has one"},
        "content-type": {"type": "string", "const": "application/json"},
    },
}


def _message_name(contract: type[Contract]) -> str:
    return contract.__name__


def contract_schemas(contracts: list[type[Contract]], ref_template: str) -> tuple[dict, dict]:
    _, top = models_json_schema([(c, "validation") for c in contracts], ref_template=ref_template)
    return top.get("$defs", {}), {c.__name__: {"$ref": ref_template.format(model=c.__name__)} for c in contracts}


def build_document(spec: ServiceSpec) -> dict[str, Any]:
    consumed = spec.consumes()
    every: dict[str, type[Contract]] = {c.event_type: c for c in spec.publishes}
    for _, contracts in consumed:
        every.update({c.event_type: c for c in contracts})
    contracts = [every[k] for k in sorted(every)]
    defs, _ = contract_schemas(contracts, "#/components/schemas/{model}")

    channels: dict[str, Any] = {}
    for c in contracts:
        ch = channels.setdefault(c.topic.replace(".", "_"), {"address": c.topic, "messages": {}})
        ch["messages"][_message_name(c)] = {"$ref": f"#/components/messages/{_message_name(c)}"}

    operations: dict[str, Any] = {}
    for c in sorted(spec.publishes, key=lambda c: c.event_type):
        operations[f"publish{_message_name(c)}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{c.topic.replace('.', '_')}"},
            "messages": [{"$ref": f"#/channels/{c.topic.replace('.', '_')}/messages/{_message_name(c)}"}],
        }
    for group, group_contracts in consumed:
        for c in sorted(group_contracts, key=lambda c: c.event_type):
            operations[f"receive{_message_name(c)}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{c.topic.replace('.', '_')}"},
                "messages": [{"$ref": f"#/channels/{c.topic.replace('.', '_')}/messages/{_message_name(c)}"}],
                "bindings": {"kafka": {"groupId": {"type": "string", "enum": [group]}}},
                "description": f"Consumer group {group}; failures go to {c.topic}.dlq.{group} after bounded retries.",
            }

    messages = {
        _message_name(c): {
            "name": c.event_type,
            "title": c.__name__,
            "summary": (c.__doc__ or "").strip().splitlines()[0] if c.__doc__ else c.event_type,
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
            "payload": {"$ref": f"#/components/schemas/{c.__name__}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": f"aggregate id ({c.aggregate_field})"}}},
        }
        for c in contracts
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"Kontor {spec.title}",
            "version": "1.0.0",
            "description": f"Events published and consumed by the Kontor {spec.name} service. "
                           "Generated from the code by `kontor-" + spec.name + " asyncapi --write`.",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:19092", "protocol": "kafka", "description": "make up"}},
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {"CloudEventHeaders": CLOUDEVENT_HEADERS, **dict(sorted(defs.items()))},
        },
    }

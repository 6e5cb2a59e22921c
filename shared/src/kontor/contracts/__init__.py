"""Versioned event contracts: frozen pydantic models, one class per event type and version.

A contract names its CloudEvents type (`kontor.client.registered.v1`), its logical topic
and which field is the aggregate id (the Kafka key). Within a version only optional
fields are added; a breaking change is a new class with the next version. Readers
ignore unknown fields so that an added optional field never breaks an older consumer.
"""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

_REGISTRY: dict[str, type[Contract]] = {}


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    topic: ClassVar[str]
    aggregate_field: ClassVar[str]
    source: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        event_type = cls.__dict__.get("event_type")
        if event_type is None:  # an abstract intermediate class
            return
        if event_type in _REGISTRY and _REGISTRY[event_type] is not cls:
            raise TypeError(f"event type {event_type!r} is defined twice")
        _REGISTRY[event_type] = cls

    @property
    def aggregate_id(self) -> str:
        return str(getattr(self, self.aggregate_field))


def contract_for(event_type: str) -> type[Contract] | None:
    _load_all()
    return _REGISTRY.get(event_type)


def all_contracts() -> dict[str, type[Contract]]:
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def _load_all() -> None:
    # importing the modules registers their classes
    from kontor.contracts import clients, invoices, notifications, orders  # noqa: F401


def json_schema(contract: type[Contract]) -> dict[str, Any]:
    """The committed snapshot form of a contract's JSON Schema."""
    schema = contract.model_json_schema(mode="validation")
    schema["$id"] = f"urn:kontor:event:{contract.event_type}"
    schema["x-topic"] = contract.topic
    schema["x-key"] = contract.aggregate_field
    return schema

"""Events of the clients service (topic kontor.clients.v1, key = client id).

Each carries the full billing data, so that orders and invoicing can keep their
read models from events alone.
"""
from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from kontor import topics
from kontor.contracts import Contract
from kontor.contracts.common import Actor, Address, ClientKind, Language, Standing


class ClientStandingV1(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    status: Standing
    reason: str | None = None
    source: Literal["advisor", "debt_rule", "initial"] = "initial"
    since: dt.datetime | None = None


class ClientSnapshotV1(BaseModel):
    """The billing data of a client as other services need it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    client_id: UUID
    kind: ClientKind
    name: str
    address: Address
    vat_id: str | None = None
    leitweg_id: str | None = None
    invoice_email: str | None = None
    language: Language = "de"
    zugferd: bool = False  # added compatibly: invoices as ZUGFeRD hybrid PDFs
    standing: ClientStandingV1
    version: int


class _ClientEvent(Contract):
    topic: ClassVar[str] = topics.CLIENTS
    aggregate_field: ClassVar[str] = "client_id"
    source: ClassVar[str] = "kontor/clients"

    client_id: UUID
    client: ClientSnapshotV1
    occurred_at: dt.datetime
    actor: Actor


class ClientRegisteredV1(_ClientEvent):
    event_type: ClassVar[str] = "kontor.client.registered.v1"


class ClientUpdatedV1(_ClientEvent):
    event_type: ClassVar[str] = "kontor.client.updated.v1"

    changed_fields: tuple[str, ...] = ()


class ClientStandingChangedV1(_ClientEvent):
    event_type: ClassVar[str] = "kontor.client.standing-changed.v1"

    previous: ClientStandingV1

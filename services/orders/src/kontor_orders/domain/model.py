"""The order's domain: a draft with its client, contact person and line items. No I/O.

The full lifecycle (review, confirmation, activation, billing schedule) builds on this.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from kontor.errors import InvalidInput
from kontor.money import CURRENCIES, MINOR_UNITS, round_money

UNITS = ("day", "hour", "lump_sum", "week", "month", "other")


@dataclass(frozen=True)
class ContactPerson:
    name: str
    email: str


@dataclass(frozen=True)
class Line:
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    net_amount: Decimal


@dataclass(frozen=True)
class KnownClient:
    """What orders knows of a client, from the clients service's events."""

    id: uuid.UUID
    name: str
    standing: str


@dataclass(frozen=True)
class Order:
    id: uuid.UUID
    member_id: str
    client_id: uuid.UUID
    client_name: str
    contact_person: ContactPerson
    currency: str
    project_name: str | None
    description: str | None
    lines: tuple[Line, ...]
    status: str
    created_at: dt.datetime

    @property
    def net_total(self) -> Decimal:
        return sum((line.net_amount for line in self.lines), Decimal(0))


def _decimal(value: object, field: str, errors: list[tuple[str, str]]) -> Decimal | None:
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        errors.append((field, f"{value!r} is not a decimal number"))
        return None
    if not d.is_finite() or d <= 0:
        errors.append((field, "must be greater than 0"))
        return None
    return d


def create_draft(*, order_id: uuid.UUID, member_id: str, client: KnownClient | None, client_id: uuid.UUID,
                 contact_person: ContactPerson, currency: str, lines: list[dict], project_name: str | None,
                 description: str | None, now: dt.datetime) -> Order:
    errors: list[tuple[str, str]] = []
    if client is None:
        errors.append(("client_id", f"unknown client {client_id}: register it with the clients service first"))
    if not contact_person.name.strip():
        errors.append(("contact_person.name", "is required"))
    if "@" not in contact_person.email:
        errors.append(("contact_person.email", f"{contact_person.email!r} is not a valid e-mail address"))
    if currency not in CURRENCIES:
        errors.append(("currency", f"must be one of {', '.join(CURRENCIES)}"))
    if not lines:
        errors.append(("lines", "at least one line item is required"))
    parsed: list[Line] = []
    for i, raw in enumerate(lines):
        quantity = _decimal(raw.get("quantity"), f"lines.{i}.quantity", errors)
        price = _decimal(raw.get("unit_price"), f"lines.{i}.unit_price", errors)
        if raw.get("unit") not in UNITS:
            errors.append((f"lines.{i}.unit", f"must be one of {', '.join(UNITS)}"))
        if not str(raw.get("description") or "").strip():
            errors.append((f"lines.{i}.description", "is required"))
        if price is not None and currency in MINOR_UNITS and price != round_money(price, currency):
            errors.append((f"lines.{i}.unit_price", f"{currency} has {MINOR_UNITS[currency]} decimal places"))
        if quantity is not None and price is not None and currency in MINOR_UNITS:
            parsed.append(Line(description=str(raw["description"]).strip(), quantity=quantity, unit=raw.get("unit"),
                               unit_price=price, net_amount=round_money(quantity * price, currency)))
    if errors:
        raise InvalidInput(errors)
    assert client is not None
    return Order(id=order_id, member_id=member_id, client_id=client.id, client_name=client.name,
                 contact_person=ContactPerson(contact_person.name.strip(), contact_person.email.strip()),
                 currency=currency, project_name=project_name, description=description, lines=tuple(parsed),
                 status="draft", created_at=now)

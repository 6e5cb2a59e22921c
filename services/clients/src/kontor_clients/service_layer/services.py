"""Use cases of the clients service: each runs in one transaction with its outbox events.

Standing changes, whoever causes them (an advisor, the debt rule on an invoice event,
a standing run), go through `_change_standing`: the client row, the history row and
`client.standing-changed` are written together. Registrations and changes of the record
are written with their row of the change history (who, when, before and after) and their event.

Who may change a client's billing data is the domain's rule (`model.authorize_change`), judged
on what the service knows of the client's issued invoices (invoice events) and of the members
with orders for it (order events).
"""
from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kontor.auth import Principal
from kontor.clock import Clock, business_today, check_run_date
from kontor.contracts.clients import (
    ClientRegisteredV1,
    ClientSnapshotV1,
    ClientStandingChangedV1,
    ClientStandingV1,
    ClientUpdatedV1,
)
from kontor.contracts.common import Actor
from kontor.contracts.common import Address as AddressV1
from kontor.contracts.invoices import (
    InvoiceCancelledV1,
    InvoiceIssuedV1,
    InvoicePaidV1,
    InvoicePaymentRecordedV1,
)
from kontor.contracts.orders import OrderV1
from kontor.envelope import Envelope
from kontor.errors import Conflict, Forbidden, InvalidInput
from kontor.logging import get_logger
from kontor.outbox import Outbox
from kontor_clients.adapters import repository
from kontor_clients.domain import model
from kontor_clients.domain import receivables as ledger
from kontor_clients.domain.identifiers import search_key

log = get_logger(__name__)

SYSTEM = Actor(kind="system", id="debt-rule", name="debt rule")
MIN_QUERY = 3


def _standing(s: model.Standing) -> ClientStandingV1:
    return ClientStandingV1(status=s.status, reason=s.reason, source=s.source, since=s.since)


def snapshot(c: model.Client) -> ClientSnapshotV1:
    return ClientSnapshotV1(
        client_id=c.id, kind=c.kind, name=c.name,
        address=AddressV1(street=c.address.street, postal_code=c.address.postal_code, city=c.address.city,
                          country=c.address.country, subdivision=c.address.subdivision),
        vat_id=c.vat_id, leitweg_id=c.leitweg_id, invoice_email=c.invoice_email, language=c.language,
        zugferd=c.zugferd, standing=_standing(c.standing), version=c.version,
    )



# -- the registry -------------------------------------------------------------------------

@dataclass(frozen=True)
class Registration:
    client: model.Client
    duplicate_of: str | None = None  # why an existing client was answered: vat_id | name_and_postal_code


async def register_client(session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                          details: dict) -> Registration:
    """Register a client, or answer with the one already registered (same VAT id, or same
    name at the same postal code): the registry holds each client once."""
    now = clock.now()
    address = model.Address(**details.pop("address"))
    client = model.register(client_id=uuid.uuid4(), address=address, created_by=principal.sub, now=now, **details)
    if existing := await repository.find_duplicate(session, client):
        return Registration(existing, model.duplicate_reason(client, existing))
    try:
        async with session.begin_nested():  # a concurrent registration of the same client wins the race
            await repository.add(session, client)
    except IntegrityError:
        existing = await repository.find_duplicate(session, client)
        if existing is None:
            raise
        return Registration(existing, model.duplicate_reason(client, existing))
    await repository.add_change(session, client, action="registered", actor=principal.actor, at=now,
                                changes=model.differences(None, client, model.UPDATABLE))
    await outbox.add(session, ClientRegisteredV1(client_id=client.id, client=snapshot(client), occurred_at=now,
                                                 actor=principal.actor), time=now)
    log.info("client registered", client_id=str(client.id), kind=client.kind)
    return Registration(client)


async def update_client(session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                        client_id: uuid.UUID, changes: dict) -> model.Client:
    now = clock.now()
    current = await repository.get(session, client_id, for_update=True)
    if isinstance(changes.get("address"), dict):
        changes["address"] = model.Address(**changes["address"])
    updated, changed = model.update(current, changes, now=now)
    if not changed:
        return current
    try:
        model.authorize_change(changed, await repository.ties_of(session, client_id), actor_id=principal.sub,
                               is_advisor=principal.is_advisor)
    except Forbidden as refused:
        log.info("client change refused", client_id=str(client_id), member_id=principal.sub,
                 fields=list(changed), reason=str(refused))
        raise
    if other := await repository.find_duplicate(session, updated):
        raise _duplicate(updated, other)
    try:
        async with session.begin_nested():  # a concurrent change into the same client wins the race
            await repository.save(session, updated, name_changed="name" in changed)
    except IntegrityError:
        other = await repository.find_duplicate(session, updated)
        if other is None:
            raise
        raise _duplicate(updated, other) from None
    await repository.add_change(session, updated, action="updated", actor=principal.actor, at=now,
                                changes=model.differences(current, updated, changed))
    log.info("client updated", client_id=str(client_id), version=updated.version, fields=list(changed),
             actor_kind=principal.actor.kind)
    await outbox.add(session, ClientUpdatedV1(client_id=updated.id, client=snapshot(updated), occurred_at=now,
                                              actor=principal.actor, changed_fields=changed), time=now)
    return updated


def _duplicate(client: model.Client, other: model.Client) -> Conflict:
    field = model.duplicate_reason(client, other) or "data"
    return Conflict(f"client {other.id} is already registered with this {field.replace('_', ' ')}")


async def search_clients(session: AsyncSession, q: str, *, limit: int) -> list[model.Client]:
    key = search_key(q)
    if len(key) < MIN_QUERY:
        raise InvalidInput(field="q", message=f"type at least {MIN_QUERY} characters of the name", location="query")
    return await repository.search(session, key, limit=limit)


# -- standing -----------------------------------------------------------------------------

async def _change_standing(session: AsyncSession, outbox: Outbox, previous: model.Client, changed: model.Client,
                           actor: Actor, *, caused_by: Envelope | None = None, run_id: uuid.UUID | None = None) -> None:
    await repository.save(session, changed)
    await repository.add_standing_change(session, changed, previous.standing, run_id=run_id)
    now = changed.standing.since
    if now is None:  # every change of the standing says since when
        raise TypeError(f"client {changed.id}: a standing changed without its time")
    await outbox.add(session, ClientStandingChangedV1(
        client_id=changed.id, client=snapshot(changed), occurred_at=now, actor=actor,
        previous=_standing(previous.standing)), time=now, caused_by=caused_by)
    log.info("client standing changed", client_id=str(changed.id), status=changed.standing.status,
             previous=previous.standing.status, source=changed.standing.source, reason=changed.standing.reason)


async def set_standing(session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                       client_id: uuid.UUID, *, status: str, reason: str | None) -> model.Client:
    principal.require_advisor("set or lift a client's standing")
    current = await repository.get(session, client_id, for_update=True)
    changed = model.set_standing(current, status=status, reason=reason, advisor_id=principal.sub, now=clock.now())
    if changed is None:
        return current
    await _change_standing(session, outbox, current, changed, principal.actor)
    return changed


async def _debt_rule_date(session: AsyncSession, clock: Clock) -> dt.date:
    """Today: an invoice event is judged by what is true today, never as of the date of an
    earlier "as of" run (one as of a later date would make every later event look overdue)."""
    return business_today(clock)


async def evaluate_debt(session: AsyncSession, outbox: Outbox, clock: Clock, client_id: uuid.UUID, *,
                        as_of: dt.date, caused_by: Envelope | None = None,
                        run_id: uuid.UUID | None = None) -> str | None:
    """Apply the debt rule to one client; returns "restricted", "lifted" or None."""
    current = await repository.get(session, client_id, for_update=True)
    candidates = await repository.receivables_of(session, client_id,
                                                 open_due_before=ledger.debt_rule_horizon(as_of))
    changed = ledger.debt_rule(current, candidates, as_of=as_of, now=clock.now())
    if changed is None:
        return None
    await _change_standing(session, outbox, current, changed, SYSTEM, caused_by=caused_by, run_id=run_id)
    return "lifted" if changed.standing.status == "ok" else "restricted"


# -- the orders of each client, from order events -----------------------------------------

async def record_order(session: AsyncSession, order: OrderV1) -> None:
    """Note which member has this order for which client, and its status: whether the client's
    billing data is relied on by others than the member who changes it."""
    await repository.record_order(session, order_id=order.order_id, client_id=order.client.client_id,
                                  member_id=order.member_id, status=order.status, version=order.version)


async def change_history(session: AsyncSession, client_id: uuid.UUID) -> Sequence:
    """Every registration and change of the client's record (404 if the client is unknown)."""
    await repository.get(session, client_id)
    return await repository.change_history(session, client_id)


# -- the receivables ledger, from invoice events ------------------------------------------

async def record_invoice_issued(session: AsyncSession, outbox: Outbox, clock: Clock, event: InvoiceIssuedV1,
                                envelope: Envelope) -> None:
    inv = event.invoice
    if inv.kind == "cancellation":
        return  # a cancellation invoice settles the original (invoice.cancelled); it is not a debt
    if inv.number is None or inv.issue_date is None or inv.due_date is None:
        raise ValueError(f"invoice {inv.invoice_id} issued without its number, issue date or due date")
    if await repository.get_receivable(session, inv.invoice_id) is None:
        await repository.add_receivable(session, ledger.Receivable(
            invoice_id=inv.invoice_id, client_id=inv.client_id, number=inv.number, currency=inv.currency,
            amount_due=inv.amount_due, issue_date=inv.issue_date, due_date=inv.due_date,
        ), order_id=inv.order_id, member_id=inv.member_id)
    await evaluate_debt(session, outbox, clock, inv.client_id, as_of=await _debt_rule_date(session, clock),
                        caused_by=envelope)


async def _update_receivable(session: AsyncSession, outbox: Outbox, clock: Clock, invoice_id: uuid.UUID,
                             client_id: uuid.UUID, envelope: Envelope, change) -> None:
    current = await repository.get_receivable(session, invoice_id)
    if current is None:
        # Events of one invoice share its partition, so "issued" always comes first;
        # an unknown invoice is a real inconsistency: let it go to the dead-letter topic.
        raise LookupError(f"{envelope.type} for invoice {invoice_id}, which was never issued to this ledger")
    await repository.save_receivable(session, change(current))
    await evaluate_debt(session, outbox, clock, client_id, as_of=await _debt_rule_date(session, clock),
                        caused_by=envelope)


async def record_payment(session: AsyncSession, outbox: Outbox, clock: Clock, event: InvoicePaymentRecordedV1,
                         envelope: Envelope) -> None:
    await _update_receivable(session, outbox, clock, event.invoice_id, event.client_id, envelope,
                             lambda r: ledger.record_payment(r, paid_total=event.paid_total))


async def record_paid(session: AsyncSession, outbox: Outbox, clock: Clock, event: InvoicePaidV1,
                      envelope: Envelope) -> None:
    await _update_receivable(session, outbox, clock, event.invoice_id, event.client_id, envelope,
                             lambda r: ledger.mark_paid(r, paid_total=event.paid_total))


async def record_cancelled(session: AsyncSession, outbox: Outbox, clock: Clock, event: InvoiceCancelledV1,
                           envelope: Envelope) -> None:
    await _update_receivable(session, outbox, clock, event.invoice_id, event.client_id, envelope,
                             lambda r: ledger.mark_cancelled(r, refund_due=event.refund_due))


async def receivables_position(session: AsyncSession, client_id: uuid.UUID, as_of: dt.date):
    """The client (404 if unknown), its positions per currency and its open invoices."""
    client = await repository.get(session, client_id)
    items = await repository.receivables_of(session, client_id)
    return client, ledger.positions(items, as_of), [r for r in items if r.open_amount > 0]


# -- standing runs ------------------------------------------------------------------------

@dataclass(frozen=True)
class RunReport:
    run_id: uuid.UUID
    as_of: dt.date
    evaluated: int
    restricted: int
    lifted: int


async def run_standing(session_factory: async_sessionmaker[AsyncSession], outbox: Outbox, clock: Clock, *,
                       as_of: dt.date, trigger: str, requested_by: str | None = None,
                       progress_every: int = 500, allow_future: bool = False) -> RunReport | None:
    """Apply the debt rule as of `as_of` to every client it may change, one transaction per
    client (a failure stops the run and is raised; what was done stays done and a re-run
    picks up the rest). None if the day's scheduled run was already taken by another replica."""
    check_run_date(as_of, today=business_today(clock), allow_future=allow_future)
    async with session_factory.begin() as session:
        run_id = await repository.start_run(session, as_of=as_of, trigger=trigger, requested_by=requested_by,
                                            now=clock.now())
        if run_id is None:
            return None
        candidates = await repository.clients_to_evaluate(session)
    log.info("standing run started", run_id=str(run_id), as_of=as_of.isoformat(), trigger=trigger,
             candidates=len(candidates))
    counts = {"restricted": 0, "lifted": 0}
    started = time.monotonic()
    for done, client_id in enumerate(candidates, start=1):
        async with session_factory.begin() as session:
            outcome = await evaluate_debt(session, outbox, clock, client_id, as_of=as_of, run_id=run_id)
        if outcome:
            counts[outcome] += 1
        if done % progress_every == 0:
            log.info("standing run progress", run_id=str(run_id), done=done, total=len(candidates), **counts,
                     elapsed_s=round(time.monotonic() - started, 1))
    async with session_factory.begin() as session:
        await repository.finish_run(session, run_id, evaluated=len(candidates), now=clock.now(), **counts)
    log.info("standing run finished", run_id=str(run_id), as_of=as_of.isoformat(), evaluated=len(candidates),
             **counts, elapsed_s=round(time.monotonic() - started, 1))
    return RunReport(run_id, as_of, len(candidates), counts["restricted"], counts["lifted"])

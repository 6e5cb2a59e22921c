"""Use cases of the clients service: each runs in one transaction with its outbox events."""
from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from kontor.auth import Principal
from kontor.clock import Clock
from kontor.contracts.clients import ClientRegisteredV1, ClientSnapshotV1, ClientStandingV1, ClientUpdatedV1
from kontor.contracts.common import Actor
from kontor.contracts.common import Address as AddressV1
from kontor.outbox import Outbox
from kontor_clients.adapters import repository
from kontor_clients.domain import model


def snapshot(c: model.Client) -> ClientSnapshotV1:
    return ClientSnapshotV1(
        client_id=c.id, kind=c.kind, name=c.name,
        address=AddressV1(street=c.address.street, postal_code=c.address.postal_code, city=c.address.city,
                          country=c.address.country),
        vat_id=c.vat_id, leitweg_id=c.leitweg_id, invoice_email=c.invoice_email, language=c.language,
        standing=ClientStandingV1(status=c.standing.status, reason=c.standing.reason, source=c.standing.source,
                                  since=c.standing.since),
        version=c.version,
    )


def actor_of(principal: Principal) -> Actor:
    return Actor(kind="advisor" if principal.is_advisor else "member", id=principal.sub, name=principal.name)


async def register_client(session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                          details: dict) -> model.Client:
    now = clock.now()
    address = model.Address(**details.pop("address"))
    client = model.register(client_id=uuid.uuid4(), address=address, created_by=principal.sub, now=now, **details)
    await repository.add(session, client)
    await outbox.add(session, ClientRegisteredV1(client_id=client.id, client=snapshot(client), occurred_at=now,
                                                 actor=actor_of(principal)), time=now)
    return client


async def update_client(session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                        client_id: uuid.UUID, changes: dict) -> model.Client:
    now = clock.now()
    current = await repository.get(session, client_id, for_update=True)
    if "address" in changes:
        changes["address"] = model.Address(**changes["address"])
    updated, changed = model.update(current, changes, now=now)
    if not changed:
        return current
    await repository.save(session, updated)
    await outbox.add(session, ClientUpdatedV1(client_id=updated.id, client=snapshot(updated), occurred_at=now,
                                              actor=actor_of(principal), changed_fields=changed), time=now)
    return updated

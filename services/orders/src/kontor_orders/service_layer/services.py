"""Use cases of the orders service."""
from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from kontor.auth import Principal
from kontor.clock import Clock
from kontor.errors import Forbidden, NotFound
from kontor_orders.adapters import repository
from kontor_orders.domain import model


async def create_draft(session: AsyncSession, clock: Clock, principal: Principal, body: dict) -> model.Order:
    if not principal.is_member:
        raise Forbidden("only members create orders")
    client = await repository.get_known_client(session, body["client_id"])
    order = model.create_draft(
        order_id=uuid.uuid4(), member_id=principal.sub, client=client, client_id=body["client_id"],
        contact_person=model.ContactPerson(**body["contact_person"]), currency=body["currency"],
        lines=body["lines"], project_name=body.get("project_name"), description=body.get("description"),
        now=clock.now(),
    )
    await repository.add(session, order)
    return order


async def get_order(session: AsyncSession, principal: Principal, order_id: uuid.UUID) -> model.Order:
    order = await repository.get(session, order_id)
    # A member sees only their own orders; advisors never see drafts. Both get 404, not 403,
    # so that the existence of somebody else's order is not revealed.
    if order.member_id != principal.sub and (not principal.is_advisor or order.status == "draft"):
        raise NotFound("order", order_id)
    return order

"""Inbox: the record of which events a consumer has applied.

`claim` inserts `(consumer, event_id)` in the handler's own transaction. If the row
already exists the event was applied before: the handler is skipped and the message
acknowledged. Because the row commits with the handler's effects, an event is applied
exactly once even when Kafka redelivers it.
"""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession


def define_inbox_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "inbox",
        metadata,
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


async def claim(session: AsyncSession, table: sa.Table, consumer: str, event_id: uuid.UUID, event_type: str) -> bool:
    """True when this consumer has not applied the event yet (and now owns applying it)."""
    result = await session.execute(
        insert(table)
        .values(consumer=consumer, event_id=event_id, event_type=event_type)
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )
    return result.first() is not None

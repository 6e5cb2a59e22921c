"""Kafka edges shared by all services: the idempotent producer, topic creation, reachability."""
from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaClient, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from kontor.logging import get_logger

log = get_logger(__name__)


def create_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    # Idempotent producer: retries never duplicate or reorder records of a partition.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
    )


async def ensure_topics(bootstrap: str, names: list[str], partitions: int = 3, replication: int = 1) -> None:
    """Create the topics that do not exist yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="kontor-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if not missing:
            return
        try:
            await admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=replication) for n in missing])
        except TopicAlreadyExistsError:
            pass  # another replica created it meanwhile
        log.info("topics created", topics=missing, partitions=partitions)
    finally:
        await admin.close()


async def check_reachable(bootstrap: str, timeout_s: float = 3.0) -> None:
    """Raise unless a broker answers a metadata request within the timeout."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout=timeout_s)
    finally:
        await client.close()

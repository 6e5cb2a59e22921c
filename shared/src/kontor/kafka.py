"""Kafka edges shared by all services: the idempotent producer, topic creation, reachability."""
from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaClient, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from kontor.logging import get_logger

log = get_logger(__name__)


def servers(bootstrap: str | list[str]) -> list[str]:
    """`h1:p1,h2:p2,h3:p3` as the list the clients need (a comma string given to FastStream
    reaches aiokafka as one host); any broker of the list is enough to find the cluster."""
    items = bootstrap if isinstance(bootstrap, list) else bootstrap.split(",")
    found = [s.strip() for s in items if s.strip()]
    if not found:
        raise ValueError("KAFKA_BOOTSTRAP names no broker")
    return found


def create_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    # Idempotent producer: retries never duplicate or reorder records of a partition.
    return AIOKafkaProducer(
        bootstrap_servers=servers(bootstrap),
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
    )


async def ensure_topics(bootstrap: str, names: list[str], partitions: int = 3, replication: int = 1,
                        min_insync_replicas: int | None = None) -> None:
    """Create the topics that do not exist yet, with the configured partitions, replication
    factor and `min.insync.replicas` (a 3-broker cluster: 3 and 2, so that `acks=all` survives
    one broker down and no acknowledged record lives on one broker only)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers(bootstrap), client_id="kontor-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if not missing:
            return
        try:
            configs = {"min.insync.replicas": str(min_insync_replicas)} if min_insync_replicas else {}
            await admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=replication,
                                                topic_configs=configs) for n in missing])
        except TopicAlreadyExistsError:
            pass  # another replica created it meanwhile
        log.info("topics created", topics=missing, partitions=partitions, replication=replication,
                 min_insync_replicas=min_insync_replicas)
    finally:
        await admin.close()


async def check_reachable(bootstrap: str, timeout_s: float = 3.0) -> None:
    """Raise unless some broker of the list answers a metadata request within the timeout (the
    cluster is reachable through any of them)."""
    client = AIOKafkaClient(bootstrap_servers=servers(bootstrap), request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout=timeout_s)
    finally:
        await client.close()

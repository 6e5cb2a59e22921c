"""Faults a production deployment meets, against the real processes: PostgreSQL shut down and
killed with -9 while consumers work through a backlog, a dead letter replayed by the CLI, a
worker started while its broker is down, and a 3-broker cluster losing the leader of a
partition in use."""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa

from kontor.contracts.common import Actor
from kontor.contracts.invoices import InvoiceIssuedV1, InvoiceV1
from kontor.db import create_engine
from kontor.devinfra import local_dir
from kontor.dlq import read_dead_letters
from kontor.testing import eventually, free_port
from kontor.testing.kafka import publish_events
from kontor.testing.services import auth, running_service
from kontor.topics import Topics
from kontor_clients.adapters.orm import inbox as clients_inbox
from kontor_clients.adapters.orm import outbox as clients_outbox
from kontor_clients.adapters.orm import receivables
from kontor_clients.spec import SPEC as CLIENTS
from kontor_orders.adapters.orm import inbox as orders_inbox
from kontor_orders.adapters.orm import known_clients
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
MEMBER = auth("member-1", "member")


async def register(svc, n: int) -> uuid.UUID:
    r = await svc.http.post("/clients", headers=MEMBER, json={
        "kind": "company", "name": f"Kunde {n} {uuid.uuid4().hex[:6]} GmbH", "language": "de",
        "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}})
    assert r.status_code == 201, r.text
    return uuid.UUID(r.json()["id"])


def issued(client_id: uuid.UUID, n: int) -> InvoiceIssuedV1:
    invoice_id, order_id = uuid.uuid4(), uuid.uuid4()
    gross = Decimal("119.00")
    return InvoiceIssuedV1(
        invoice_id=invoice_id, client_id=client_id, order_id=order_id, member_id="member-1", occurred_at=NOW,
        actor=Actor(kind="system"), invoice=InvoiceV1(
            invoice_id=invoice_id, number=f"2027-{n:06d}", order_id=order_id, member_id="member-1",
            client_id=client_id, client_name="Kunde GmbH", currency="EUR", issue_date=dt.date(2027, 1, 15),
            due_date=dt.date(2027, 1, 29), status="invoiced", net_total=Decimal("100.00"),
            tax_total=Decimal("19.00"), gross_total=gross, amount_due=gross))


async def count(url: str, table: sa.Table, *where) -> int | None:
    """Rows of a table, or None while the database does not answer."""
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(sa.select(sa.func.count()).select_from(table).where(*where))).scalar_one()
    except Exception:  # noqa: BLE001 - the database is being restarted by the test
        return None
    finally:
        await engine.dispose()


async def at_least(url: str, table: sa.Table, n: int) -> bool:
    found = await count(url, table)
    return found is not None and found >= n


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_postgres_shut_down_and_killed_during_a_backlog_loses_and_dead_letters_nothing(infra, topic_prefix):
    pg = infra.postgres_server
    if pg is None:
        pytest.skip("needs the local PostgreSQL of kontor.devinfra to restart and kill it")
    backlog = 800
    async with running_service(CLIENTS, infra, topic_prefix=topic_prefix, infrastructure_max_backoff_s=1.0,
                               standing_run_enabled=False) as svc:
        clients = [await register(svc, n) for n in range(5)]
        await publish_events(infra.kafka_bootstrap, topic_prefix,
                             [issued(clients[n % 5], n + 1) for n in range(backlog)], time=NOW)
        dispatcher = svc.worker.dispatchers[0]

        await eventually(lambda: at_least(svc.database, receivables, 100), timeout_s=120, interval_s=0.05,
                         what="the consumer under way")
        started = time.monotonic()
        await asyncio.to_thread(pg.fast_shutdown)  # terminating connection due to administrator command
        down_at = await count(svc.database, receivables)
        await asyncio.to_thread(pg.start)
        restart_s = time.monotonic() - started

        applied = await count(svc.database, receivables)
        await eventually(lambda: at_least(svc.database, receivables, (applied or 0) + 100), timeout_s=120,
                         interval_s=0.05, what="the consumer under way again")
        ballast = create_engine(svc.database)
        try:  # WAL to replay after the crash, so that recovery takes a while and the consumer meets it
            async with ballast.begin() as conn:
                await conn.execute(sa.text("CREATE TABLE ballast AS SELECT g AS n, md5(g::text) AS t "
                                           "FROM generate_series(1, 1500000) AS g"))
        finally:
            await ballast.dispose()
        started = time.monotonic()
        await asyncio.to_thread(pg.crash)  # kill -9: the next start runs crash recovery
        await asyncio.to_thread(pg.start)
        crash_s = time.monotonic() - started

        await eventually(lambda: at_least(svc.database, receivables, backlog), timeout_s=300, interval_s=0.2,
                         what=f"all {backlog} invoices in the ledger")
        waits = sum(dispatcher.faults_seen.values())
        print(f"\n[resilience] fast shutdown + start {restart_s:.1f}s (ledger had {down_at}), crash + recovery "
              f"{crash_s:.1f}s; the consumer waited out {waits} infrastructure faults; outcomes "
              f"{dict(dispatcher.outcomes)}, faults by SQLSTATE or kind {dict(dispatcher.faults_seen)}")
        assert await count(svc.database, receivables) == backlog
        assert await count(svc.database, clients_inbox, clients_inbox.c.event_type == "kontor.invoice.issued.v1") \
            == backlog, "each event applied exactly once"
        assert waits > 0, "the consumer met the restarts (else this test proved nothing)"
        assert dispatcher.outcomes["dead_lettered"] == 0
        dlq = Topics(topic_prefix).dlq("kontor.invoices.v1", "kontor-clients")
        assert await read_dead_letters(infra.kafka_bootstrap, [dlq]) == []

        async def outbox_empty():
            return await count(svc.database, clients_outbox, clients_outbox.c.published_at.is_(None)) == 0
        await eventually(outbox_empty, timeout_s=60, what="nothing left in the outbox")


async def test_a_dlq_record_replayed_by_the_cli_is_applied_once(infra, topic_prefix):
    async with running_service(CLIENTS, infra, topic_prefix=topic_prefix, standing_run_enabled=False) as svc:
        client = await register(svc, 1)
        engine = create_engine(svc.database)
        try:
            async with engine.begin() as conn:  # the ledger refuses for a reason of its own (not an outage)
                await conn.execute(sa.text(
                    "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'ledger closed for "
                    "the year-end audit'; END $$ LANGUAGE plpgsql"))
                await conn.execute(sa.text("CREATE TRIGGER refuse BEFORE INSERT ON receivables "
                                           "FOR EACH ROW EXECUTE FUNCTION refuse()"))
            event = issued(client, 1)
            [envelope] = await publish_events(infra.kafka_bootstrap, topic_prefix, [event], time=NOW)
            dlq = Topics(topic_prefix).dlq("kontor.invoices.v1", "kontor-clients")

            async def dead_lettered():
                return await read_dead_letters(infra.kafka_bootstrap, [dlq])
            [letter] = await eventually(dead_lettered, timeout_s=60, what="the event dead-lettered")
            assert letter.event_id == str(envelope.id) and letter.header("x-dlq-reason") == "handler failed"
            assert "year-end audit" in letter.header("x-dlq-error")

            async with engine.begin() as conn:  # the operator fixes the cause
                await conn.execute(sa.text("DROP TRIGGER refuse ON receivables"))
            env = {**os.environ, "KONTOR_CLIENTS_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
                   "KONTOR_CLIENTS_TOPIC_PREFIX": topic_prefix, "KONTOR_CLIENTS_LOG_FORMAT": "console"}

            def cli(*args: str) -> subprocess.CompletedProcess:
                return subprocess.run([sys.executable, "-m", "kontor_clients", "dlq", *args], env=env,
                                      capture_output=True, text=True, timeout=120)
            listed = await asyncio.to_thread(cli, "list")
            assert listed.returncode == 0 and str(envelope.id) in listed.stdout, listed.stderr[-2000:]
            assert "1 dead letter(s)" in listed.stderr
            shown = await asyncio.to_thread(cli, "show", str(envelope.id))
            assert shown.returncode == 0 and "year-end audit" in shown.stdout and '"number": "2027-000001"' in \
                shown.stdout, shown.stdout[-2000:]

            replayed = await asyncio.to_thread(cli, "replay", "--event-id", str(envelope.id))
            assert replayed.returncode == 0 and "replayed 1 dead letter(s)" in replayed.stderr, replayed.stderr
            await eventually(lambda: at_least(svc.database, receivables, 1), what="the replayed event applied")
            dispatcher = svc.worker.dispatchers[0]
            duplicates = dispatcher.outcomes["duplicate"]
            again = await asyncio.to_thread(cli, "replay", "--type", "kontor.invoice.issued.v1")
            assert again.returncode == 0 and "replayed 1 dead letter(s)" in again.stderr

            async def dropped():
                return dispatcher.outcomes["duplicate"] > duplicates
            await eventually(dropped, what="the second replay dropped by the inbox")
            assert await count(svc.database, receivables) == 1, "applied once"
            assert dispatcher.outcomes["dead_lettered"] == 1, "the replay was not dead-lettered again"
        finally:
            await engine.dispose()


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_worker_started_while_its_broker_is_down_becomes_ready_once_it_is_up(infra):
    from kontor.devinfra.kafka import LocalKafka

    base = free_port(2)
    name = f"kafka-test-{uuid.uuid4().hex[:8]}"
    kafka = LocalKafka(port=base, name=name, heap="512m")
    health = free_port()
    from kontor.testing.services import fresh_database

    async with fresh_database(infra, CLIENTS) as url:
        env = {**os.environ, "KONTOR_CLIENTS_DATABASE_URL": url, "KONTOR_CLIENTS_KAFKA_BOOTSTRAP": kafka.bootstrap,
               "KONTOR_CLIENTS_WORKER_HTTP_PORT": str(health), "KONTOR_CLIENTS_LOG_FORMAT": "console",
               "KONTOR_CLIENTS_INFRASTRUCTURE_MAX_BACKOFF_S": "2", "KONTOR_CLIENTS_STANDING_RUN_ENABLED": "false"}
        # Popen only starts it (nothing blocks); the test signals it and reads its stderr at the end
        worker = subprocess.Popen([sys.executable, "-m", "kontor_clients", "worker"], env=env,  # noqa: ASYNC220
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{health}", timeout=10) as http:
                async def answers():
                    try:
                        return await http.get("/readyz")
                    except httpx.HTTPError:
                        return None
                not_ready = await eventually(answers, timeout_s=60, what="the worker's /readyz")
                assert not_ready.status_code == 503 and not_ready.json()["checks"]["started"] == "connecting"
                assert worker.poll() is None, "it waits instead of exiting"
                started = time.monotonic()
                await asyncio.to_thread(kafka.start)

                async def ready():
                    r = await http.get("/readyz")
                    return r if r.status_code == 200 else None
                r = await eventually(ready, timeout_s=120, interval_s=0.5, what="the worker ready once Kafka is up")
                print(f"\n[resilience] worker ready {time.monotonic() - started:.1f}s after the broker was started")
                assert r.json()["checks"] == {"started": "ok", "database": "ok", "kafka": "ok"}
        finally:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
            kafka.stop()
            shutil.rmtree(local_dir(name), ignore_errors=True)
        assert "Traceback" not in (worker.stderr.read() or ""), "waiting is not a crash"


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_a_three_broker_cluster_loses_the_leader_of_a_partition_in_use(infra, topic_prefix):
    from aiokafka import AIOKafkaClient

    from kontor.devinfra.kafka import LocalKafka

    base = free_port(6)
    name = f"kafka-test-{uuid.uuid4().hex[:8]}"
    cluster = LocalKafka(port=base, name=name, nodes=3, heap="512m")
    await asyncio.to_thread(cluster.start)
    on_cluster = replace(infra, kafka_bootstrap=cluster.bootstrap)
    try:
        cluster_settings = dict(topic_replication=3, topic_min_insync_replicas=2, infrastructure_max_backoff_s=1.0)
        async with running_service(CLIENTS, on_cluster, topic_prefix=topic_prefix, standing_run_enabled=False,
                                   **cluster_settings) as clients, \
                running_service(ORDERS, on_cluster, topic_prefix=topic_prefix, order_runs_enabled=False,
                                **cluster_settings) as orders:
            readiness: list[int] = []
            stop = asyncio.Event()

            async def probe() -> None:
                while not stop.is_set():
                    readiness.append((await clients.http.get("/readyz")).status_code)
                    await asyncio.sleep(0.2)
            prober = asyncio.create_task(probe())

            async def register(n: int) -> None:
                r = await clients.http.post("/clients", headers=MEMBER, json={
                    "kind": "company", "name": f"Cluster Kunde {n} GmbH", "language": "de",
                    "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin",
                                "country": "DE"}})
                assert r.status_code == 201, r.text

            for n in range(20):
                await register(n)
            topic = Topics(topic_prefix).name("kontor.clients.v1")
            meta = AIOKafkaClient(bootstrap_servers=cluster.bootstrap.split(","))
            await meta.bootstrap()
            try:
                await meta.force_metadata_update()
                from aiokafka.structs import TopicPartition
                leader = meta.cluster.leader_for_partition(TopicPartition(topic, 0))
            finally:
                await meta.close()
            victim = leader - 1  # node ids are 1-based
            await asyncio.to_thread(cluster.kill_node, victim)
            killed = time.monotonic()
            for n in range(20, 40):
                await register(n)
            await asyncio.to_thread(cluster.start_node, victim)
            for n in range(40, 60):
                await register(n)

            async def all_known():
                return await count(orders.database, known_clients) == 60
            await eventually(all_known, timeout_s=180, interval_s=0.5, what="orders knowing all 60 clients")
            caught_up = time.monotonic() - killed
            stop.set()
            await prober
            print(f"\n[resilience] leader node {leader} of {topic}[0] killed and restarted; orders knew all 60 "
                  f"clients {caught_up:.1f}s after the kill; /readyz answered {len(readiness)} times: "
                  f"{sorted(set(readiness))}")
            assert await count(orders.database, orders_inbox, orders_inbox.c.event_type ==
                               "kontor.client.registered.v1") == 60, "each event applied once"
            assert await count(clients.database, clients_outbox, clients_outbox.c.published_at.is_(None)) == 0
            assert set(readiness) == {200}, "ready throughout: the cluster served through the other brokers"
    finally:
        await asyncio.to_thread(cluster.stop)
        shutil.rmtree(local_dir(name), ignore_errors=True)

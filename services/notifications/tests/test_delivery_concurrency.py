"""Delivery keeps pace with a billing run, against real Kafka, PostgreSQL and SMTP: a backlog
goes out several e-mails at a time over a few reused SMTP connections, each e-mail exactly
once; one e-mail that hangs or fails holds back no other; replicas share the queue."""
import asyncio
import contextlib
import json

import pytest
from aiokafka import AIOKafkaProducer
from notification_samples import NOW, SmtpServer, invoice, invoice_events, order

from kontor.clock import FixedClock, SystemClock
from kontor.db import create_engine, create_session_factory
from kontor.devinfra import local_dir
from kontor.envelope import Envelope, encode_payload
from kontor.outbox import Outbox
from kontor.testing import eventually, unique
from kontor.testing.kafka import read_topic
from kontor.testing.services import auth, running_service
from kontor.topics import Topics
from kontor_notifications.adapters.documents import DocumentFetcher
from kontor_notifications.adapters.orm import outbox
from kontor_notifications.adapters.smtp import Mailer
from kontor_notifications.entrypoints.worker import delivery
from kontor_notifications.service_layer import services
from kontor_notifications.service_layer.delivery import DeliveryLoop, deliver_due
from kontor_notifications.spec import SPEC

pytestmark = pytest.mark.integration
ADVISOR = auth("advisor-1", "advisor")
FAST = dict(delivery_interval_s=0.1, retry_base_s=0.2, retry_max_delay_s=0.5)


def smtp_server(**kw) -> SmtpServer:
    return SmtpServer(local_dir("test-mail", unique("notif")), **kw)


def issued_events(count: int, contact_email: str = "erika@acme.example", start: int = 0,
                  invoice_email: str | None = "rechnung@acme.example") -> list:
    """`count` invoice.issued events, each giving one e-mail (to the contact and the invoice address)."""
    o = order(contact_email=contact_email)
    return [invoice_events(inv, inv)["invoice_issued"]
            for inv in (invoice(o, number=f"2027-{start + i:06d}", invoice_email=invoice_email)
                        for i in range(count))]


async def publish_all(bootstrap: str, topic_prefix: str, events: list) -> None:
    """Publish many events over one producer, as invoicing does after a billing run."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        topics = Topics(topic_prefix)
        sent = [await producer.send(topics.name(e.topic), value=encode_payload(e), key=e.aggregate_id.encode(),
                                    headers=Envelope.for_event(e, time=NOW).headers()) for e in events]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def emails(svc, status: str | None = None) -> list[dict]:
    params = {"limit": 500, **({"status": status} if status else {})}
    return (await svc.http.get("/emails", params=params, headers=ADVISOR)).json()


async def planned(svc, count: int) -> list[dict]:
    async def probe():
        log = await emails(svc, "pending")
        return log if len(log) == count else None
    return await eventually(probe, timeout_s=60, what=f"{count} e-mails planned")


async def sent(svc, count: int, timeout_s: float = 60) -> list[dict]:
    async def probe():
        log = await emails(svc, "sent")
        return log if len(log) >= count else None
    return await eventually(probe, timeout_s=timeout_s, what=f"{count} e-mails sent")


@contextlib.asynccontextmanager
async def replica(svc, topic_prefix: str, *, concurrency: int, mailer: type[Mailer] = Mailer):
    """A delivery loop of its own, as another worker replica runs it: its own engine (database
    connections), SMTP connections and HTTP client, on the service's database."""
    engine = create_engine(svc.database)
    deps = services.Deps(svc.settings, SystemClock(), Outbox(outbox, Topics(topic_prefix)),
                         mailer(svc.settings, pool_size=concurrency), DocumentFetcher(svc.settings))
    loop = DeliveryLoop(create_session_factory(engine), deps, concurrency=concurrency)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        yield loop
    finally:
        stop.set()
        await task
        await deps.mailer.close()
        await deps.documents.close()
        await engine.dispose()


async def test_a_backlog_goes_out_concurrently_over_reused_connections_each_e_mail_once(infra, topic_prefix):
    """After a billing run: 200 e-mails due at once, delivered by the worker's own delivery loop
    with 8 slots. Every e-mail arrives once; the SMTP server saw a handful of sessions, not 200."""
    smtp = smtp_server(data_delay_s=0.005)
    smtp.start()
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW), smtp_host="127.0.0.1",
                               smtp_port=smtp.port, delivery_enabled=False, delivery_concurrency=8, **FAST) as svc:
        await publish_all(infra.kafka_bootstrap, topic_prefix, issued_events(200))
        queued = await planned(svc, 200)

        engine = create_engine(svc.database, pool_size=svc.settings.delivery_concurrency + 2)
        deps = services.Deps(svc.settings, FixedClock(NOW), Outbox(outbox, Topics(topic_prefix)))
        stop = asyncio.Event()
        worker_loop = asyncio.create_task(delivery(create_session_factory(engine), deps)(stop))
        try:
            log = await sent(svc, 200)
        finally:
            stop.set()
            await worker_loop
            await engine.dispose()
        assert await emails(svc, "pending") == [] and await emails(svc, "failed") == []
        assert {e["attempts"] for e in log} == {1}

        messages = smtp.messages()
        ids = [m["Message-ID"] for m in messages]
        assert len(ids) == 200 and set(ids) == {e["message_id"] for e in queued}, "each e-mail exactly once"
        assert 1 < smtp.connections <= svc.settings.delivery_concurrency, \
            f"{smtp.connections} SMTP sessions for 200 e-mails: several at a time, each reused"
        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.notifications.v1", min_count=200)
        assert sorted(json.loads(r.value)["email_id"] for r in records) == sorted(e["email_id"] for e in queued)
    smtp.stop()


async def test_an_e_mail_that_hangs_holds_back_no_other(infra, topic_prefix):
    """The SMTP server stops answering in the middle of one e-mail (for as long as the test
    wants): the others, those due before and those that arrive meanwhile, go out all the same."""
    smtp = smtp_server(stall=frozenset({"slow@acme.example"}))
    smtp.start()
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=None, smtp_host="127.0.0.1",
                               smtp_port=smtp.port, delivery_concurrency=4, delivery_timeout_s=120,
                               smtp_timeout_s=120, **FAST) as svc:
        await publish_all(infra.kafka_bootstrap, topic_prefix, issued_events(1, "slow@acme.example"))
        await eventually(lambda: smtp.stalls == 1, what="the e-mail to slow@ hanging at the SMTP server")
        await publish_all(infra.kafka_bootstrap, topic_prefix, issued_events(30, start=100))

        others = await sent(svc, 30, timeout_s=30)
        assert all("slow@acme.example" not in e["to"] for e in others)
        [hanging] = await emails(svc, "pending")
        assert "slow@acme.example" in hanging["to"] and hanging["attempts"] == 0, "still in its first attempt"
        assert len(smtp.messages()) == 30

        smtp.release()
        log = await sent(svc, 31)
        assert next(e for e in log if e["email_id"] == hanging["email_id"])["attempts"] == 1
        ids = [m["Message-ID"] for m in smtp.messages()]
        assert len(ids) == 31 == len(set(ids))
    smtp.stop()


async def test_timeouts_and_temporary_refusals_are_failed_attempts_of_that_e_mail_alone(infra, topic_prefix):
    """An e-mail that takes longer than `delivery_timeout_s` and one whose recipient gets a 4xx
    are retried with backoff until they fail for good; the rest are sent meanwhile."""
    smtp = smtp_server(stall=frozenset({"slow@acme.example"}), defer=frozenset({"busy@acme.example"}))
    smtp.start()
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=None, smtp_host="127.0.0.1",
                               smtp_port=smtp.port, delivery_concurrency=2, delivery_timeout_s=0.5, max_attempts=3,
                               delivery_interval_s=0.1, retry_base_s=0.2, retry_max_delay_s=0.5) as svc:
        # each of the two alone on its e-mail: a 451 for one of two recipients still sends the e-mail
        events = (issued_events(1, "slow@acme.example", invoice_email=None)
                  + issued_events(1, "busy@acme.example", start=1, invoice_email=None) + issued_events(10, start=2))
        await publish_all(infra.kafka_bootstrap, topic_prefix, events)

        async def settled():
            failed = await emails(svc, "failed")
            return failed if len(failed) == 2 else None
        failed = {e["to"][0]: e for e in await eventually(settled, timeout_s=30, what="two e-mails failed")}
        assert len(await emails(svc, "sent")) == 10 and len(smtp.messages()) == 10
        slow, busy = failed["slow@acme.example"], failed["busy@acme.example"]
        assert slow["attempts"] == 3 and "gave up after 3 attempts: not sent within 0.5 s" in slow["last_error"]
        assert busy["attempts"] == 3 and "451" in busy["last_error"], "only the other address got 451: retried"
        assert smtp.stalls == 3, "each attempt at the hanging e-mail was abandoned after the timeout"
        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.notifications.v1", min_count=12)
        assert sorted(r.type for r in records) == ["kontor.email.failed.v1"] * 2 + ["kontor.email.sent.v1"] * 10
    smtp.stop()


async def test_an_unexpected_error_is_a_failed_attempt_of_that_e_mail(infra, topic_prefix):
    smtp = smtp_server()
    smtp.start()

    class Buggy(Mailer):
        async def send(self, message):
            if "bug@acme.example" in message["To"]:
                raise RuntimeError("a bug while sending")
            await super().send(message)

    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW), smtp_host="127.0.0.1",
                               smtp_port=smtp.port, delivery_enabled=False, delivery_concurrency=3, **FAST) as svc:
        await publish_all(infra.kafka_bootstrap, topic_prefix,
                          issued_events(1, "bug@acme.example") + issued_events(5, start=1))
        await planned(svc, 6)
        engine = create_engine(svc.database)
        deps = services.Deps(svc.settings, FixedClock(NOW), Outbox(outbox, Topics(topic_prefix)),
                             Buggy(svc.settings), DocumentFetcher(svc.settings))
        try:
            assert await deliver_due(create_session_factory(engine), deps) == 6
            assert await deliver_due(create_session_factory(engine), deps) == 0, "the buggy one is due later"
        finally:
            await deps.mailer.close()
            await deps.documents.close()
            await engine.dispose()
        [buggy] = await emails(svc, "pending")
        assert buggy["to"][0] == "bug@acme.example" and buggy["attempts"] == 1
        assert buggy["last_error"] == "unexpected error: RuntimeError: a bug while sending"
        assert len(await emails(svc, "sent")) == 5 and len(smtp.messages()) == 5
    smtp.stop()


async def test_two_replicas_share_the_queue_and_send_nothing_twice(infra, topic_prefix):
    smtp = smtp_server(data_delay_s=0.005)
    smtp.start()
    sends: dict[int, int] = {}

    def counting(replica_no: int) -> type[Mailer]:
        class Counting(Mailer):
            async def send(self, message):
                await super().send(message)
                sends[replica_no] = sends.get(replica_no, 0) + 1
        return Counting

    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=None, smtp_host="127.0.0.1",
                               smtp_port=smtp.port, delivery_enabled=False, **FAST) as svc:
        await publish_all(infra.kafka_bootstrap, topic_prefix, issued_events(200))
        queued = await planned(svc, 200)
        async with replica(svc, topic_prefix, concurrency=4, mailer=counting(1)) as one, \
                replica(svc, topic_prefix, concurrency=4, mailer=counting(2)) as two:
            await sent(svc, 200)
        assert await emails(svc, "pending") == []
        assert one.claimed + two.claimed == 200 and sends[1] + sends[2] == 200
        assert one.claimed > 0 and two.claimed > 0, f"both replicas took a share: {one.claimed}, {two.claimed}"
        ids = [m["Message-ID"] for m in smtp.messages()]
        assert len(ids) == 200 and set(ids) == {e["message_id"] for e in queued}, "nothing sent twice"
        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.notifications.v1", min_count=200)
        assert len(records) == 200 and len({json.loads(r.value)["email_id"] for r in records}) == 200
    smtp.stop()

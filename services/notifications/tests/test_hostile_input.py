"""What a member, a client or a careless hand can put into an e-mail, against real Kafka,
PostgreSQL and SMTP: hostile text arrives as text, the confirmation link reaches the client
alone, a bad address fails its own e-mail and no other, refused recipients are recorded,
file names in any script go out as RFC 2231 parameters."""
import hashlib
import uuid

import pytest
import sqlalchemy as sa
from notification_samples import (
    NOW,
    DocumentServer,
    SmtpServer,
    attachment,
    invoice,
    invoice_events,
    order,
    order_events,
)

from kontor.clock import FixedClock, SystemClock
from kontor.db import create_engine, create_session_factory
from kontor.devinfra import local_dir
from kontor.outbox import Outbox
from kontor.testing import eventually, unique
from kontor.testing.kafka import publish_event
from kontor.testing.services import auth, running_service
from kontor.topics import Topics
from kontor_notifications.adapters.documents import DocumentFetcher
from kontor_notifications.adapters.orm import emails, outbox
from kontor_notifications.adapters.smtp import Mailer
from kontor_notifications.service_layer import services
from kontor_notifications.service_layer.delivery import DeliveryLoop
from kontor_notifications.spec import SPEC

pytestmark = pytest.mark.integration
ADVISOR = auth("advisor-1", "advisor")
MEMBER = auth("member-1", "member")
FAST = dict(delivery_interval_s=0.1, retry_base_s=0.2, retry_max_delay_s=0.5)
HOSTILE = "<svg onload=alert(1)>"
ESCAPED = "&lt;svg onload=alert(1)&gt;"
TOKEN = "Zk3p-QW_secret-confirmation-token-0123456789ab"
LINK = f"https://kontor.example/confirm/{TOKEN}"


def smtp_server(**kw) -> SmtpServer:
    return SmtpServer(local_dir("test-mail", unique("notif")), **kw)


def hostile_order(docs: DocumentServer, content: bytes, **kw):
    o = order(attachments=[attachment(docs.url("/orders/a/1"), content, filename=f"{HOSTILE}.pdf")], **kw)
    line = o.lines[0].model_copy(update={"description": f"Workshop {HOSTILE}"})
    return o.model_copy(update={"lines": (line,), "project_name": f"Relaunch {HOSTILE}",
                                "contact_person": o.contact_person.model_copy(update={"name": f"Erika {HOSTILE}"})})


def sent_for_confirmation(o, link: str = LINK):
    return order_events(o)["order_sent_for_confirmation"].model_copy(update={"confirmation_url": link})


async def log_of(svc, headers=ADVISOR, **params) -> list[dict]:
    r = await svc.http.get("/emails", params={"limit": 500, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def settled(svc, count: int) -> list[dict]:
    """The delivery log once `count` e-mails are planned and none is pending any more."""
    async def probe():
        log = await log_of(svc)
        return log if len(log) == count and all(e["status"] != "pending" for e in log) else None
    return await eventually(probe, timeout_s=30, what=f"{count} e-mails sent or failed")


async def test_hostile_text_arrives_as_text_and_the_link_only_in_the_clients_e_mail(infra, topic_prefix):
    content = b"%PDF-1.7 offer"
    smtp = smtp_server()
    smtp.start()
    with DocumentServer({"/orders/a/1": content}) as docs:
        o = hostile_order(docs, content)
        async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                                   smtp_host="127.0.0.1", smtp_port=smtp.port, **FAST) as svc:
            await publish_event(infra.kafka_bootstrap, topic_prefix, sent_for_confirmation(o), time=NOW)
            [entry] = await settled(svc, 1)
            assert entry["status"] == "sent", entry

            # the e-mail the client received: the link works for them, every value is text
            [message] = smtp.messages()
            html = message.get_body(("html",)).get_content()
            text = message.get_body(("plain",)).get_content()
            assert f'href="{LINK}"' in html and f"{LINK}\r\n" in text
            assert "<svg" not in html and html.count(ESCAPED) >= 5  # title, h1, greeting, line, attachment
            assert f"Workshop {HOSTILE}" in text, "the plain-text part shows it as typed"
            assert [p.get_filename() for p in message.iter_attachments()] == [f"{HOSTILE}.pdf"]

            # members (and advisors) read the delivery log and the preview: never the link
            for who in (MEMBER, ADVISOR):
                listed = await svc.http.get("/emails", headers=who)
                detail = await svc.http.get(f"/emails/{entry['email_id']}", headers=who)
                preview = await svc.http.get(f"/emails/{entry['email_id']}/preview", headers=who)
                assert listed.status_code == detail.status_code == preview.status_code == 200
                for answer in (listed, detail, preview):
                    assert TOKEN not in answer.text, answer.request.url
                assert "https://kontor.example/confirm/…" in detail.json()["text_body"]
                page = preview.text
                assert "<svg" not in page and page.count(ESCAPED) >= 6, page  # and the preview's header
                csp = preview.headers["content-security-policy"]
                assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
                assert preview.headers["x-frame-options"] == "DENY"
                assert preview.headers["referrer-policy"] == "no-referrer"
                assert preview.headers["cache-control"] == "no-store"
                assert preview.headers["x-content-type-options"] == "nosniff"
    smtp.stop()


async def test_a_bad_address_fails_its_own_e_mail_and_every_other_goes_out(infra, topic_prefix):
    """Addresses arrive by events (an order's contact, an invoice's addresses): one with a control
    character is no recipient. An e-mail with no valid one fails at once with the reason; one
    with others goes to those and records it."""
    smtp = smtp_server()
    smtp.start()
    poison = "a\u0015b@c.example"
    bad = order(contact_email=poison)
    good = order(contact_email="erika@acme.example")
    half = invoice(bad, invoice_email="rechnung@acme.example")
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               smtp_host="127.0.0.1", smtp_port=smtp.port, **FAST) as svc:
        for event in (sent_for_confirmation(bad), invoice_events(half, half)["invoice_issued"],
                      sent_for_confirmation(good)):
            await publish_event(infra.kafka_bootstrap, topic_prefix, event, time=NOW)
        log = await settled(svc, 3)
        by_key = {(e["template"], e["order_id"]): e for e in log}
        failed = by_key[("order_sent_for_confirmation", str(bad.order_id))]
        assert (failed["status"], failed["attempts"], failed["to"]) == ("failed", 0, [])
        assert failed["last_error"].startswith("a\\x15b@c.example: not a valid e-mail address"), failed
        assert failed["refused"][0]["address"] == "a\\x15b@c.example"
        partly = by_key[("invoice_issued", str(bad.order_id))]
        assert (partly["status"], partly["to"]) == ("sent", ["rechnung@acme.example"]), partly
        assert [r["address"] for r in partly["refused"]] == ["a\\x15b@c.example"]
        assert by_key[("order_sent_for_confirmation", str(good.order_id))]["status"] == "sent"
        assert sorted(m["To"] for m in smtp.messages()) == ["erika@acme.example", "rechnung@acme.example"]
        preview = await svc.http.get(f"/emails/{partly['email_id']}/preview", headers=MEMBER)
        assert "Not reached: a\\x15b@c.example (not a valid e-mail address" in preview.text
    smtp.stop()


async def test_an_e_mail_the_smtp_client_refuses_to_send_fails_alone_at_once(infra, topic_prefix):
    """An e-mail stored before its addresses were checked (or any value the SMTP client raises
    ValueError for): one failed attempt of that e-mail, with the reason; the next goes out."""
    smtp = smtp_server()
    smtp.start()
    first, second = order(), order()
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, smtp_host="127.0.0.1", smtp_port=smtp.port,
                               delivery_enabled=False, **FAST) as svc:
        for o in (first, second):
            await publish_event(infra.kafka_bootstrap, topic_prefix, sent_for_confirmation(o), time=NOW)

        async def queued():
            return len(await log_of(svc, status="pending")) == 2
        await eventually(queued, what="both e-mails queued")
        engine = create_engine(svc.database)
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.update(emails).where(emails.c.order_id == first.order_id)
                                   .values(to=["a\u0015b@c.example"]))
            deps = services.Deps(svc.settings, SystemClock(), Outbox(outbox, Topics(topic_prefix)),
                                 Mailer(svc.settings), DocumentFetcher(svc.settings))
            try:
                assert await DeliveryLoop(create_session_factory(engine), deps).drain() >= 2
            finally:
                await deps.mailer.close()
                await deps.documents.close()
        finally:
            await engine.dispose()
        log = {e["order_id"]: e for e in await log_of(svc)}
        poisoned = log[str(first.order_id)]
        assert (poisoned["status"], poisoned["attempts"]) == ("failed", 1), poisoned
        assert "ValueError" in poisoned["last_error"] and "control character" in poisoned["last_error"]
        assert log[str(second.order_id)]["status"] == "sent"
        assert [m["To"] for m in smtp.messages()] == ["erika@acme.example"]
    smtp.stop()


async def test_an_e_mail_whose_outcome_cannot_be_recorded_is_failed_for_good_not_claimed_for_ever(infra, topic_prefix):
    """A fault of the e-mail's own while recording its outcome (here: its `email.sent` event
    refused) fails it for good, with the reason, in a transaction of its own; left due, the
    loop would claim it again at once, for ever."""
    from kontor.contracts.notifications import EmailSentV1

    class RefusesSentEvents(Outbox):
        async def add(self, session, event, **kw):
            if isinstance(event, EmailSentV1) and event.email.order_id == first.order_id:
                raise ValueError("this event cannot be stored")
            return await super().add(session, event, **kw)

    smtp = smtp_server()
    smtp.start()
    first, second = order(), order()
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, smtp_host="127.0.0.1", smtp_port=smtp.port,
                               delivery_enabled=False, **FAST) as svc:
        for o in (first, second):
            await publish_event(infra.kafka_bootstrap, topic_prefix, sent_for_confirmation(o), time=NOW)

        async def queued():
            return len(await log_of(svc, status="pending")) == 2
        await eventually(queued, what="both e-mails queued")
        engine = create_engine(svc.database)
        deps = services.Deps(svc.settings, SystemClock(), RefusesSentEvents(outbox, Topics(topic_prefix)),
                             Mailer(svc.settings), DocumentFetcher(svc.settings))
        try:
            assert await DeliveryLoop(create_session_factory(engine), deps).drain() == 2, "each claimed once"
        finally:
            await deps.mailer.close()
            await deps.documents.close()
            await engine.dispose()
        log = {e["order_id"]: e for e in await log_of(svc)}
        broken = log[str(first.order_id)]
        assert (broken["status"], broken["attempts"]) == ("failed", 1), broken
        assert broken["last_error"] == "recording its outcome failed: ValueError: this event cannot be stored"
        assert log[str(second.order_id)]["status"] == "sent"
    smtp.stop()


async def test_recipients_refused_while_others_were_accepted_are_recorded(infra, topic_prefix):
    smtp = smtp_server(refuse=frozenset({"rechnung@acme.example"}))
    smtp.start()
    inv = invoice(order(), invoice_email="rechnung@acme.example")
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               smtp_host="127.0.0.1", smtp_port=smtp.port, **FAST) as svc:
        await publish_event(infra.kafka_bootstrap, topic_prefix, invoice_events(inv, inv)["invoice_issued"], time=NOW)
        [entry] = await settled(svc, 1)
        assert entry["status"] == "sent" and entry["to"] == ["erika@acme.example", "rechnung@acme.example"]
        [refused] = entry["refused"]
        assert refused["address"] == "rechnung@acme.example" and refused["reason"].startswith("550"), refused
        [message] = smtp.messages()
        assert message["X-Kontor-Envelope-To"].strip() == "erika@acme.example"
    smtp.stop()


async def test_member_addresses_are_validated_and_unknown_e_mails_are_not_found(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, delivery_enabled=False) as svc:
        for address in ("a\u0015b@c.example", "no-at-sign.example", "a@b", "anna@member.example\r\nBcc: x@y.example",
                        "x" * 250 + "@member.example"):
            r = await svc.http.put("/members/member-1", json={"email": address}, headers=MEMBER)
            assert r.status_code == 422, (address, r.text)
            assert r.json()["detail"][0]["loc"] == ["body", "email"], r.text
        r = await svc.http.put("/members/member-1", json={"email": " Anna@Member.EXAMPLE "}, headers=MEMBER)
        assert r.status_code == 200 and r.json()["email"] == "Anna@member.example", r.text
        unknown = uuid.uuid4()
        for who in (MEMBER, ADVISOR):
            for path in (f"/emails/{unknown}", f"/emails/{unknown}/preview"):
                r = await svc.http.get(path, headers=who)
                assert r.status_code == 404 and str(unknown) in r.json()["detail"], (path, r.text)
        for params in ({"limit": 0}, {"limit": 501}, {"limit": 2 ** 64}, {"recipient": "x" * 255}):
            assert (await svc.http.get("/emails", params=params, headers=ADVISOR)).status_code == 422, params


async def test_attachment_names_in_any_script_go_out_as_rfc_2231_file_names(infra, topic_prefix):
    names = {"Überweisung – Angebot №5 ✓.pdf": "Überweisung – Angebot №5 ✓.pdf",
             'Say "hi"\r\nBcc: x@evil.example.pdf': 'Say "hi" Bcc: x@evil.example.pdf',
             "Plan; name=other.pdf": "Plan; name=other.pdf"}
    contents = {name: f"%PDF-1.7 {i}".encode() for i, name in enumerate(names)}
    smtp = smtp_server()
    smtp.start()
    with DocumentServer({f"/orders/a/{i}": c for i, c in enumerate(contents.values())}) as docs:
        o = order(attachments=[attachment(docs.url(f"/orders/a/{i}"), c, filename=name)
                               for i, (name, c) in enumerate(contents.items())])
        async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                                   smtp_host="127.0.0.1", smtp_port=smtp.port, **FAST) as svc:
            await publish_event(infra.kafka_bootstrap, topic_prefix, sent_for_confirmation(o), time=NOW)
            [entry] = await settled(svc, 1)
            assert entry["status"] == "sent", entry
            assert [a["filename"] for a in entry["attachments"]] == list(names.values())
    [message] = smtp.messages()
    got = {part.get_filename(): hashlib.sha256(part.get_content()).hexdigest() for part in message.iter_attachments()}
    assert got == {names[n]: hashlib.sha256(c).hexdigest() for n, c in contents.items()}
    raw = b"".join(p.read_bytes() for p in smtp.maildir.rglob("*") if p.is_file() and p.parent.name in ("new", "cur"))
    # RFC 2231: percent-encoded UTF-8 (one parameter now that headers fold at 998, not split into *0*, *1*)
    assert b"filename*=utf-8''%C3%9Cberweisung%20%E2%80%93%20Angebot%20%E2%84%96" in raw, "RFC 2231"
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc:" not in raw and b"evil.example" not in headers and b"To: erika@acme.example\r\n" in headers
    smtp.stop()


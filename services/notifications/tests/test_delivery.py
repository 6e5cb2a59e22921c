"""The notifications service against real Kafka, PostgreSQL and SMTP: events in, e-mails out.

Each test publishes the contracts the other services publish, and reads what the SMTP
server stored: recipients, subjects, attachments byte for byte, and the delivery log."""
import asyncio
import hashlib
import json

import pytest
from notification_samples import (
    NOW,
    DocumentServer,
    SmtpServer,
    attachment,
    document,
    invoice,
    invoice_events,
    order,
    order_events,
    standing_changed,
)

from kontor.clock import FixedClock
from kontor.devinfra import local_dir
from kontor.testing import eventually, unique
from kontor.testing.kafka import publish_event, read_topic
from kontor.testing.services import auth, running_service
from kontor_notifications.spec import SPEC

pytestmark = pytest.mark.integration
ADVISOR = auth("advisor-1", "advisor")
MEMBER = auth("member-1", "member")
FAST = dict(delivery_interval_s=0.1, retry_base_s=0.2, retry_max_delay_s=0.5)


def smtp_server(**kw) -> SmtpServer:
    return SmtpServer(local_dir("test-mail", unique("notif")), **kw)


def attachments_of(message) -> dict[str, str]:
    return {part.get_filename(): hashlib.sha256(part.get_content()).hexdigest()
            for part in message.iter_attachments()}


async def register_member(svc, member_id="member-1", email="anna@member.example", language="de"):
    r = await svc.http.put(f"/members/{member_id}", json={"email": email, "name": "Anna Freiberuf",
                                                           "language": language}, headers=auth(member_id, "member"))
    assert r.status_code == 200, r.text


SUBJECTS = {
    "de": {"confirm": "Bitte bestätigen Sie den Auftrag „Relaunch 2027“",
           "issued": "Rechnung 2027-000001 – Relaunch 2027",
           "storno": "Stornorechnung 2027-000002 zu Rechnung 2027-000001",
           "reminder": "1. Zahlungserinnerung: Rechnung 2027-000001", "standing": "nur gegen Vorkasse",
           "renewal": "Auftrag verlängert sich automatisch: Relaunch 2027 – Kündigung bis 28.02.2027",
           "renewal_text": "verlängert sich automatisch um 3 Monate bis 30.06.2027"},
    "en": {"confirm": "Please confirm the order “Relaunch 2027”", "issued": "Invoice 2027-000001 – Relaunch 2027",
           "storno": "Cancellation invoice 2027-000002 for invoice 2027-000001",
           "reminder": "Payment reminder 1: invoice 2027-000001", "standing": "advance payment only",
           "renewal": "Order renews automatically: Relaunch 2027 – cancel by 28 February 2027",
           "renewal_text": "renews automatically by 3 months until 30 June 2027"},
}


@pytest.mark.parametrize("language", ["de", "en"])
async def test_every_e_mail_of_the_journey_with_its_documents(infra, topic_prefix, language):
    """The client and the member both read `language`: every template of that language goes out."""
    subjects = SUBJECTS[language]
    offer, pdf, xml, storno_pdf = b"%PDF offer", b"%PDF-1.7 invoice", b"<Invoice/>", b"%PDF-1.7 storno"
    smtp = smtp_server()
    smtp.start()
    with DocumentServer({"/orders/a/1": offer, "/invoices/1/pdf": pdf, "/invoices/1/xml": xml,
                         "/invoices/2/pdf": storno_pdf}) as docs:
        o = order(language=language, attachments=[attachment(docs.url("/orders/a/1"), offer)])
        inv = invoice(o, documents=[document("pdf", docs.url("/invoices/1/pdf"), pdf, "Rechnung-2027-000001.pdf"),
                                    document("xrechnung", docs.url("/invoices/1/xml"), xml,
                                             "Rechnung-2027-000001.xml")])
        storno = invoice(o, number="2027-000002", kind="cancellation", cancels_number=inv.number,
                         cancels_invoice_id=inv.invoice_id,
                         documents=[document("pdf", docs.url("/invoices/2/pdf"), storno_pdf,
                                             "Stornorechnung-2027-000002.pdf")])
        async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                                   smtp_host="127.0.0.1", smtp_port=smtp.port, **FAST) as svc:
            await register_member(svc, language=language)
            events = {**order_events(o), **invoice_events(inv, storno),
                      "client_standing_changed": standing_changed(language)}
            # the order first: invoice e-mails carry its documents, and the standing change goes to
            # members with open orders, both from the order's read model
            for event in order_events(o).values():
                await publish_event(infra.kafka_bootstrap, topic_prefix, event, time=NOW)

            async def order_mails():
                return len((await svc.http.get("/emails", headers=ADVISOR)).json()) == 7  # one per order event
            await eventually(order_mails, what="the order's e-mails planned")
            for name, event in events.items():
                if not name.startswith("order_"):
                    await publish_event(infra.kafka_bootstrap, topic_prefix, event, time=NOW)

            async def all_sent():
                log = (await svc.http.get("/emails", params={"status": "sent"}, headers=ADVISOR)).json()
                return log if len(log) == len(events) else None
            log = await eventually(all_sent, timeout_s=30, what="every e-mail sent")
            messages = smtp.messages()
            assert len(messages) == len(events), [m["Subject"] for m in messages]
            by_subject = {m["Subject"]: m for m in messages}

            confirm = by_subject[subjects["confirm"]]
            assert confirm["To"] == "erika@acme.example" and confirm["Cc"] is None
            assert "http://127.0.0.1:8101/confirm/tok-123" in confirm.get_body(("plain",)).get_content()
            assert attachments_of(confirm) == {"Angebot.pdf": hashlib.sha256(offer).hexdigest()}

            issued = by_subject[subjects["issued"]]
            assert issued["To"] == "erika@acme.example, rechnung@acme.example"
            assert issued["Cc"] == "anna@member.example"
            assert issued["X-Kontor-Envelope-To"].strip() == \
                "erika@acme.example, rechnung@acme.example, anna@member.example"
            assert attachments_of(issued) == {"Rechnung-2027-000001.pdf": hashlib.sha256(pdf).hexdigest(),
                                              "Rechnung-2027-000001.xml": hashlib.sha256(xml).hexdigest(),
                                              "Angebot.pdf": hashlib.sha256(offer).hexdigest()}
            assert issued.get_body(("html",)) is not None, "an HTML part with the plain-text part"

            storno_mail = by_subject[subjects["storno"]]
            assert attachments_of(storno_mail) == {"Stornorechnung-2027-000002.pdf":
                                                   hashlib.sha256(storno_pdf).hexdigest()}
            reminder = by_subject[subjects["reminder"]]
            assert attachments_of(reminder) == {"Rechnung-2027-000001.pdf": hashlib.sha256(pdf).hexdigest()}
            to_member = [m for m in messages if m["To"] == "anna@member.example"]
            # 6 order e-mails (the renewal notice among them), the invoice draft, the standing
            assert len(to_member) == 8, [m["Subject"] for m in to_member]
            renewal = by_subject[subjects["renewal"]]
            assert renewal["To"] == "anna@member.example"
            assert subjects["renewal_text"] in renewal.get_body(("plain",)).get_content()
            assert any(subjects["standing"] in m["Subject"] for m in to_member)
            assert {m["Content-Language"] for m in messages} == {language}
            assert all(auth_header.startswith("Bearer ") for _, auth_header in docs.requests)

            # the delivery log: by recipient, order, invoice; one message with bodies; the preview page
            by_recipient = (await svc.http.get("/emails", params={"recipient": "Rechnung@ACME.example"},
                                               headers=ADVISOR)).json()
            assert {e["template"] for e in by_recipient} == {"invoice_issued", "invoice_reminder", "invoice_cancelled"}
            by_invoice = (await svc.http.get("/emails", params={"invoice_id": str(inv.invoice_id)},
                                             headers=ADVISOR)).json()
            assert len(by_invoice) == 4  # draft, issued, reminder, cancellation
            by_order = (await svc.http.get("/emails", params={"order_id": str(o.order_id)}, headers=ADVISOR)).json()
            assert len(by_order) == 11  # the 7 order e-mails, the invoice draft, issued, reminder, cancellation
            mine = (await svc.http.get("/emails", headers=MEMBER)).json()
            assert len(mine) == len(events), "a member sees the e-mails of their orders and invoices"
            assert (await svc.http.get("/emails", headers=auth("member-2", "member"))).json() == []
            entry = next(e for e in log if e["template"] == "invoice_issued")
            detail = (await svc.http.get(f"/emails/{entry['email_id']}", headers=MEMBER)).json()
            assert [a["filename"] for a in detail["attachments"]] == ["Rechnung-2027-000001.pdf",
                                                                    "Rechnung-2027-000001.xml", "Angebot.pdf"]
            assert "2027-000001" in detail["text_body"] and detail["message_id"] == issued["Message-ID"]
            preview = await svc.http.get(f"/emails/{entry['email_id']}/preview", headers=ADVISOR)
            assert preview.status_code == 200 and preview.headers["content-type"].startswith("text/html")
            assert "Rechnung-2027-000001.xml" in preview.text and f"<h1>{subjects['issued']}" in preview.text
            assert (await svc.http.get(f"/emails/{entry['email_id']}",
                                       headers=auth("member-2", "member"))).status_code == 404

            sent = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.notifications.v1",
                                    min_count=len(events))
            assert sorted(r.type for r in sent) == ["kontor.email.sent.v1"] * len(events)
            payload = json.loads(next(r.value for r in sent if json.loads(r.value)["email"]["template"]
                                      == "invoice_issued"))
            assert payload["email"]["invoice_id"] == str(inv.invoice_id) and payload["attempts"] == 1
    smtp.stop()


async def test_english_client_same_address_and_duplicate_events_give_one_e_mail(infra, topic_prefix):
    smtp = smtp_server()
    smtp.start()
    with DocumentServer({}) as _:
        o = order(language="en", contact_email="billing@acme.example")
        inv = invoice(o, invoice_email="Billing@acme.example")
        async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                                   smtp_host="127.0.0.1", smtp_port=smtp.port, **FAST) as svc:
            event = invoice_events(inv, inv)["invoice_issued"]
            envelope = await publish_event(infra.kafka_bootstrap, topic_prefix, event, time=NOW)
            await publish_event(infra.kafka_bootstrap, topic_prefix, event, time=NOW, envelope=envelope)
            await publish_event(infra.kafka_bootstrap, topic_prefix, event, time=NOW, envelope=envelope)

            async def sent():
                return list(smtp.messages()) or None
            [message] = await eventually(sent, what="the invoice e-mail")
            await asyncio.sleep(1.0)  # time for a second e-mail, were there one
            assert len(smtp.messages()) == 1
            assert message["Subject"] == "Invoice 2027-000001 – Relaunch 2027"
            assert message["To"] == "billing@acme.example" and message["Cc"] is None  # member-1 has no address
            log = (await svc.http.get("/emails", headers=ADVISOR)).json()
            assert [(e["template"], e["status"], e["language"]) for e in log] == [("invoice_issued", "sent", "en")]
    smtp.stop()


async def test_an_smtp_outage_delays_every_e_mail_and_loses_none(infra, topic_prefix):
    smtp = smtp_server()  # not started: the outage
    o = order()
    events = [invoice_events(invoice(o, number=f"2027-0000{i:02d}"), invoice(o))["invoice_issued"] for i in range(6)]
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=None,
                               smtp_host="127.0.0.1", smtp_port=smtp.port, **FAST) as svc:
        await register_member(svc)
        for event in events[:3]:
            await publish_event(infra.kafka_bootstrap, topic_prefix, event, time=NOW)

        async def retrying():
            log = (await svc.http.get("/emails", params={"status": "pending"}, headers=ADVISOR)).json()
            return log if len(log) == 3 and all(e["attempts"] >= 2 for e in log) else None
        log = await eventually(retrying, timeout_s=30, what="three e-mails retried during the outage")
        assert all("unreachable" in e["last_error"] for e in log)
        smtp.start()  # the server is back; more events arrive meanwhile
        for event in events[3:]:
            await publish_event(infra.kafka_bootstrap, topic_prefix, event, time=NOW)

        async def delivered():
            log = (await svc.http.get("/emails", params={"status": "sent"}, headers=ADVISOR)).json()
            return log if len(log) == 6 else None
        await eventually(delivered, timeout_s=30, what="every e-mail after the outage")
        await asyncio.sleep(0.5)
        subjects = sorted(m["Subject"] for m in smtp.messages())
        assert subjects == sorted(f"Rechnung 2027-0000{i:02d} – Relaunch 2027" for i in range(6)), subjects
        assert len({m["Message-ID"] for m in smtp.messages()}) == 6
    smtp.stop()


async def test_refused_addresses_and_unknown_members_fail_visibly(infra, topic_prefix):
    smtp = smtp_server(refuse=frozenset({"erika@acme.example"}))
    smtp.start()
    o = order()
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               smtp_host="127.0.0.1", smtp_port=smtp.port, **FAST) as svc:
        events = order_events(o)
        await publish_event(infra.kafka_bootstrap, topic_prefix, events["order_sent_for_confirmation"], time=NOW)
        await publish_event(infra.kafka_bootstrap, topic_prefix, events["order_confirmed"], time=NOW)

        async def failed():
            log = (await svc.http.get("/emails", params={"status": "failed"}, headers=ADVISOR)).json()
            return log if len(log) == 2 else None
        log = {e["template"]: e for e in await eventually(failed, what="both e-mails failed")}
        refused = log["order_sent_for_confirmation"]
        assert refused["attempts"] == 1 and "550" in refused["last_error"], "a 5xx answer is not retried"
        assert "no e-mail address on file for member 'member-1'" in log["order_confirmed"]["last_error"]
        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.notifications.v1", min_count=2)
        reasons = sorted(json.loads(r.value)["reason"] for r in records if r.type == "kontor.email.failed.v1")
        assert len(reasons) == 2 and any("550" in r for r in reasons) and any("no e-mail address" in r for r in reasons)
        assert smtp.messages() == []
    smtp.stop()


async def test_a_crash_between_sending_and_recording_resends_the_same_message(infra, topic_prefix):
    """SMTP has no two-phase commit: when the worker dies after the server accepted an e-mail
    and before recording it, the e-mail is still due and goes out again, with the same
    Message-ID, so the receiving mail system can tell it is the same e-mail. The window is
    the time between the server's 250 and the commit."""
    from kontor.clock import SystemClock
    from kontor.db import create_engine, create_session_factory
    from kontor.outbox import Outbox
    from kontor.topics import Topics
    from kontor_notifications.adapters.documents import DocumentFetcher
    from kontor_notifications.adapters.orm import outbox
    from kontor_notifications.adapters.smtp import Mailer
    from kontor_notifications.service_layer import services

    smtp = smtp_server()
    smtp.start()
    o = order()
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, smtp_host="127.0.0.1", smtp_port=smtp.port,
                               delivery_enabled=False, **FAST) as svc:
        await publish_event(infra.kafka_bootstrap, topic_prefix, order_events(o)["order_sent_for_confirmation"],
                            time=NOW)

        async def queued():
            return (await svc.http.get("/emails", params={"status": "pending"}, headers=ADVISOR)).json() or None
        [email] = await eventually(queued, what="the e-mail queued")

        class DiesAfterSending(Mailer):
            async def send(self, message):
                await super().send(message)
                raise SystemExit("killed after the SMTP server accepted the e-mail")

        engine = create_engine(svc.database)
        sessions = create_session_factory(engine)
        deps = services.Deps(svc.settings, SystemClock(), Outbox(outbox, Topics(topic_prefix)),
                             DiesAfterSending(svc.settings), DocumentFetcher(svc.settings))
        try:
            with pytest.raises(SystemExit):
                await services.deliver_one(sessions, deps)
            after_crash = (await svc.http.get(f"/emails/{email['email_id']}", headers=ADVISOR)).json()
            assert (after_crash["status"], after_crash["attempts"]) == ("pending", 0), "nothing was recorded"
            deps.mailer = Mailer(svc.settings)  # the restarted worker
            assert await services.deliver_one(sessions, deps)
            assert not await services.deliver_one(sessions, deps), "nothing left to send"
        finally:
            await deps.documents.close()
            await engine.dispose()
        messages = smtp.messages()
        assert len(messages) == 2 and messages[0]["Message-ID"] == messages[1]["Message-ID"] == email["message_id"]
        final = (await svc.http.get(f"/emails/{email['email_id']}", headers=ADVISOR)).json()
        assert (final["status"], final["attempts"]) == ("sent", 1)
    smtp.stop()

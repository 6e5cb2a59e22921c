"""The client's confirmation link across clients, orders and notifications, over real Kafka,
PostgreSQL, HTTP and SMTP: the member who wrote the order reads every e-mail of it in the
delivery log and its preview and finds no link in them; the client finds it in the e-mail
the SMTP server received, and it opens the page. What the member typed (a line, a file name
in any script) reaches the client as text, the document with its name."""
from __future__ import annotations

import re
import uuid

import httpx
import pytest
from notification_samples import SmtpServer

from kontor.devinfra import local_dir
from kontor.testing import eventually, unique
from kontor.testing.services import auth, ok, running_service
from kontor_clients.spec import SPEC as CLIENTS
from kontor_notifications.spec import SPEC as NOTIFICATIONS
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.integration
MEMBER = auth("member-1", "member")
ADVISOR = auth("advisor-1", "advisor")
HOSTILE = "<svg onload=alert(1)>"
FILENAME = "Überweisung – Angebot №5 ✓.pdf"


async def test_the_confirmation_link_reaches_the_client_alone_and_opens_the_page(infra, topic_prefix):
    smtp = SmtpServer(local_dir("test-mail", unique("link")))
    smtp.start()
    run = uuid.uuid4().hex[:8]
    contact = f"erika.{run}@acme.example"
    pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    common = dict(topic_prefix=topic_prefix)
    try:
        async with running_service(CLIENTS, infra, **common, standing_run_enabled=False) as clients, \
                running_service(ORDERS, infra, **common, serve_http=True, order_runs_enabled=False) as orders, \
                running_service(NOTIFICATIONS, infra, **common, smtp_host="127.0.0.1", smtp_port=smtp.port,
                                delivery_interval_s=0.1, retry_base_s=0.2) as notifications:
            await ok(notifications.http.put("/members/member-1", headers=MEMBER,
                                            json={"email": f"anna.{run}@member.example", "language": "de"}))
            client = await ok(clients.http.post("/clients", headers=MEMBER, json={
                "kind": "company", "name": f"ACME {run} GmbH", "invoice_email": f"rechnung.{run}@acme.example",
                "language": "de",
                "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}}))
            body = {
                "client_id": client["id"], "contact_person": {"name": "Erika Muster", "email": contact},
                "sector": "design", "place_of_service": "DE", "project_name": "Relaunch 2027",
                "description": "Website", "currency": "EUR",
                "lines": [{"description": f"Workshop {HOSTILE}", "quantity": "2", "unit": "day",
                           "unit_price": "640.00"}],
                "service_period": {"start": "2027-01-01", "end": "2027-03-31"},
                "confirmation": {"mode": "send", "offer_valid_until": "2027-12-15"},
                "payment": {"mode": "after_completion", "due_in_days": 14, "invoice_date": "2027-03-31"}}

            async def accepted():
                r = await orders.http.post("/orders", json=body, headers=MEMBER)
                return r.json() if r.status_code == 201 else None
            order = await eventually(accepted, what="orders knowing the new client")
            oid = order["order_id"]
            await ok(orders.http.post(f"/orders/{oid}/attachments", headers=MEMBER,
                                      files={"file": (FILENAME, pdf, "application/pdf")}))
            await ok(orders.http.post(f"/orders/{oid}/submit", headers=MEMBER))
            await ok(orders.http.post(f"/orders/{oid}/approve", headers=ADVISOR))

            async def received():
                return [m for m in smtp.messages() if m["To"] == contact] or None
            [mail] = await eventually(received, timeout_s=30, what="the confirmation e-mail at the contact")
            text = mail.get_body(("plain",)).get_content()
            html = mail.get_body(("html",)).get_content()
            link = re.search(r"https?://\S+/confirm/\S+", text).group(0)
            token = link.rsplit("/", 1)[1]
            assert len(token) >= 32 and f'href="{link}"' in html
            assert "<svg" not in html and "&lt;svg onload=alert(1)&gt;" in html
            [document] = list(mail.iter_attachments())
            assert document.get_filename() == FILENAME and document.get_content() == pdf

            # the member (and the advisor) read the delivery log of the order and its preview; the
            # e-mail is recorded as sent when its delivery commits, just after the SMTP server took it
            async def recorded_sent(who: dict) -> dict | None:
                log = await notifications.http.get("/emails", params={"order_id": oid}, headers=who)
                assert log.status_code == 200 and token not in log.text
                entry = next(e for e in log.json() if e["template"] == "order_sent_for_confirmation")
                assert entry["status"] in ("pending", "sent"), entry  # a failed one will not become sent
                return entry if entry["status"] == "sent" else None
            for who in (MEMBER, ADVISOR):
                entry = await eventually(lambda who=who: recorded_sent(who), what="the e-mail recorded as sent")
                assert entry["to"] == [contact]
                for path in (f"/emails/{entry['email_id']}", f"/emails/{entry['email_id']}/preview"):
                    r = await notifications.http.get(path, headers=who)
                    assert r.status_code == 200 and token not in r.text, path
                history = await orders.http.get(f"/orders/{oid}/history", headers=who)
                assert history.status_code == 200 and token not in history.text
                shown = await orders.http.get(f"/orders/{oid}", headers=who)
                assert shown.status_code == 200 and token not in shown.text

            # the client's link opens the page, which lists the document under its name
            async with httpx.AsyncClient() as browser:
                page = await browser.get(link)
                assert page.status_code == 200 and "Relaunch 2027" in page.text, page.text[:300]
                assert "&lt;svg onload=alert(1)&gt;" in page.text and "<svg" not in page.text
                assert page.headers["referrer-policy"] == "no-referrer"
                doc_link = re.search(r'href="(/confirm/[^"]+/documents/[^"]+)"', page.text).group(1)
                doc = await browser.get(httpx.URL(link).join(doc_link))
                assert doc.status_code == 200 and doc.content == pdf
    finally:
        smtp.stop()

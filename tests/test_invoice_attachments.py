"""Files added to an invoice draft, across clients, orders, invoicing and notifications over real
Kafka, PostgreSQL, HTTP and SMTP: the member adds two files to the draft of their order and
removes one; "save and send" issues it, and the e-mail the SMTP server received carries the
PDF, the X-Rechnung and the file that stayed, byte for byte (SHA-256 as uploaded); the issued
invoice keeps it (its documents, its download). Another member's draft, an issued invoice and a
file that is not an accepted document are refused with their reasons."""
from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pytest

from kontor.clock import FixedClock
from kontor.devinfra.smtp import read_messages
from kontor.testing import eventually
from kontor.testing.services import auth, draft_of_active_order, ok, running_service
from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_notifications.spec import SPEC as NOTIFICATIONS
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.integration
MEMBER = auth("member-1", "member")
OTHER_MEMBER = auth("member-2", "member")
ADVISOR = auth("advisor-1", "advisor")
TODAY = dt.datetime(2027, 3, 1, 9, tzinfo=dt.UTC)  # invoicing's today: the draft's invoice date is near
# a PNG of one pixel, and a PDF; both judged by their bytes
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
SCOPE_PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n% Leistungsnachweis Maerz\n%%EOF\n"
SCOPE_SHA256 = "dbdac7fb10d8e6574d07d50d360db34805fe7cdbda543938acdb9404553d306f"
SCOPE_NAME = "Leistungsnachweis März 2027.pdf"


async def test_a_file_added_to_the_draft_goes_out_with_the_invoice_and_stays_with_it(infra, topic_prefix):
    if infra.maildir is None:
        pytest.skip("the SMTP server's Maildir is not readable here (KONTOR_TEST_MAILDIR unset)")
    run = uuid.uuid4().hex[:8]
    billing = f"rechnung.{run}@acme.example"
    common = {"topic_prefix": topic_prefix}
    async with running_service(CLIENTS, infra, **common, standing_run_enabled=False) as clients, \
            running_service(ORDERS, infra, **common, serve_http=True, order_runs_enabled=False) as orders, \
            running_service(INVOICING, infra, **common, serve_http=True, billing_runs_enabled=False,
                            clock=FixedClock(TODAY)) as invoicing, \
            running_service(NOTIFICATIONS, infra, **common, smtp_host=infra.smtp_host, smtp_port=infra.smtp_port,
                            delivery_interval_s=0.1, retry_base_s=0.2) as notifications:
        await ok(notifications.http.put("/members/member-1", headers=MEMBER,
                                        json={"email": f"anna.{run}@member.example", "language": "de"}))
        client = await ok(clients.http.post("/clients", headers=MEMBER, json={
            "kind": "company", "name": f"ACME {run} GmbH", "invoice_email": billing, "language": "de",
            "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}}))
        body = {
            "client_id": client["id"], "contact_person": {"name": "Erika Muster", "email": billing},
            "sector": "design", "place_of_service": "DE", "project_name": "Relaunch 2027",
            "description": "Website", "currency": "EUR",
            "lines": [{"description": "Workshop", "quantity": "2", "unit": "day", "unit_price": "640.00"}],
            "service_period": {"start": "2027-02-01", "end": "2027-02-28"},
            "confirmation": {"mode": "skip", "skip_reason": "Rahmenvertrag"},
            "payment": {"mode": "after_completion", "due_in_days": 14, "invoice_date": "2027-03-05"}}

        _, draft = await draft_of_active_order(orders.http, invoicing.http, body, member=MEMBER, advisor=ADVISOR,
                                              as_of="2027-03-01")
        assert draft["status"] == "draft" and draft["documents"] == []
        iid = draft["invoice_id"]
        files = f"/invoices/{iid}/attachments"

        # the member adds two files and removes one; the list shows what is left
        kept = await ok(invoicing.http.post(files, headers=MEMBER,
                                            files={"file": (SCOPE_NAME, SCOPE_PDF, "application/pdf")}), 201)
        assert kept["filename"] == SCOPE_NAME and kept["media_type"] == "application/pdf"
        assert kept["size"] == 74 and kept["sha256"] == SCOPE_SHA256
        dropped = await ok(invoicing.http.post(files, headers=MEMBER,
                                               files={"file": ("C:\\Fotos\\Skizze.png", PNG, "image/png")}), 201)
        assert dropped["filename"] == "Skizze.png"
        assert [a["filename"] for a in await ok(invoicing.http.get(files, headers=MEMBER))] == [SCOPE_NAME,
                                                                                                 "Skizze.png"]
        await ok(invoicing.http.delete(f"{files}/{dropped['id']}", headers=MEMBER), 204)
        assert [a["id"] for a in await ok(invoicing.http.get(files, headers=MEMBER))] == [kept["id"]]

        # refused: a file that is not an accepted document, another member's draft
        wrong = await invoicing.http.post(files, headers=MEMBER,
                                          files={"file": ("notes.pdf", b"just some text", "application/pdf")})
        assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "file"], wrong.text
        assert "not an accepted document" in wrong.json()["detail"][0]["msg"]
        renamed = await invoicing.http.post(files, headers=MEMBER, files={"file": ("Skizze.pdf", PNG, "image/png")})
        assert renamed.status_code == 422 and renamed.json()["detail"][0]["loc"] == ["body", "file", "filename"]
        foreign = await invoicing.http.post(files, headers=OTHER_MEMBER,
                                            files={"file": ("a.pdf", SCOPE_PDF, "application/pdf")})
        assert foreign.status_code == 404 and "invoice" in foreign.json()["detail"], foreign.text
        assert (await invoicing.http.get(files, headers=OTHER_MEMBER)).status_code == 404
        assert (await invoicing.http.delete(f"{files}/{kept['id']}", headers=OTHER_MEMBER)).status_code == 404

        # "save and send"
        await ok(invoicing.http.post(f"/invoices/{iid}/issue", headers=MEMBER), 202)

        async def issued():
            inv = await ok(invoicing.http.get(f"/invoices/{iid}", headers=MEMBER))
            return inv if inv["status"] == "invoiced" else None
        invoice = await eventually(issued, timeout_s=60, what="the invoice issued")
        number = invoice["number"]
        [listed] = [d for d in invoice["documents"] if d["kind"] == "attachment"]
        assert listed["filename"] == SCOPE_NAME and listed["sha256"] == kept["sha256"]
        assert listed["attachment_id"] == kept["id"] and listed["size"] == 74
        assert listed["url"].endswith(f"/invoices/{iid}/attachments/{kept['id']}")
        assert {d["kind"] for d in invoice["documents"]} == {"pdf", "xrechnung", "attachment"}

        async def received():
            return [m for m in read_messages(infra.maildir)
                    if billing in m.get("X-Kontor-Envelope-To", "") and number in m["Subject"]] or None
        [mail] = await eventually(received, timeout_s=60, what="the invoice e-mail at the client")
        sent = {part.get_filename(): part.get_content() for part in mail.iter_attachments()}
        assert len(sent) == 3, list(sent)
        assert hashlib.sha256(sent[SCOPE_NAME]).hexdigest() == SCOPE_SHA256, "the file as uploaded"
        assert any(n.endswith(".xml") for n in sent) and any(n.startswith("Rechnung") for n in sent), list(sent)
        assert SCOPE_NAME in mail.get_body(("plain",)).get_content(), "the e-mail names its attachments"

        # kept with the invoice: downloaded as sent; frozen now (409 with the reason), also for an advisor
        download = await invoicing.http.get(f"{files}/{kept['id']}", headers=MEMBER)
        assert download.status_code == 200 and download.content == SCOPE_PDF
        assert download.headers["content-disposition"].startswith("attachment;")
        assert "filename*=UTF-8''Leistungsnachweis%20M%C3%A4rz%202027.pdf" in download.headers["content-disposition"]
        for who in (MEMBER, ADVISOR):
            late = await invoicing.http.post(files, headers=who, files={"file": ("b.png", PNG, "image/png")})
            assert late.status_code == 409 and late.json()["current_status"] == "invoiced", late.text
            assert "the files of an invoice in status invoiced cannot be changed" in late.json()["detail"]
            gone = await invoicing.http.delete(f"{files}/{kept['id']}", headers=who)
            assert gone.status_code == 409, gone.text
        assert [a["sha256"] for a in await ok(invoicing.http.get(files, headers=ADVISOR))] == [kept["sha256"]]

"""The whole order-to-invoice journey across all four services, over real Kafka, PostgreSQL,
HTTP and SMTP: nothing is published by the test, every step is a call a person makes or an
e-mail a person receives.

A client is registered; a member creates and submits an order with client confirmation and
three installments; an advisor approves; the client confirms through the page behind the
link in the e-mail the SMTP server received; billing runs "as of" the invoice dates issue the
three invoices, each e-mailed to the client's invoice address with a PDF and an X-Rechnung
that passes the official rules; one invoice is paid, one is cancelled with a cancellation
invoice, the third stays unpaid and, two months past due, makes the client
`advance_payment_only`, which the member is told by e-mail.

`journey()` is also what `make demo` runs against the platform of `make up`.
"""
from __future__ import annotations

import datetime as dt
import io
import re
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from pypdf import PdfReader

from kontor.clock import FixedClock
from kontor.devinfra.smtp import read_messages
from kontor.testing import eventually
from kontor.testing.services import auth, ok, running_service
from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_notifications.spec import SPEC as NOTIFICATIONS
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "shared" / "xrechnung"
MEMBER = auth("member-1", "member")
ADVISOR = auth("advisor-1", "advisor")


@dataclass
class Platform:
    """Where the four APIs and the mailbox are: in-process for the test, `make up` for the demo."""

    clients: httpx.AsyncClient
    orders: httpx.AsyncClient
    invoicing: httpx.AsyncClient
    notifications: httpx.AsyncClient
    maildir: Path
    say: Callable[[str], None] = print
    validate_xml: Callable[[bytes], list[str]] | None = None
    notes: dict = field(default_factory=dict)
    # the client's browser, which follows the link in the e-mail (compose: its host name mapped to a port)
    browser: Callable[[], httpx.AsyncClient] = httpx.AsyncClient


def official_validator() -> Callable[[bytes], list[str]] | None:
    """KoSIT's rules (../shared/xrechnung), as invoicing checks them: the errors of an X-Rechnung."""
    if not (RULES / "validate.py").exists():
        return None
    from kontor_invoicing.adapters.xrechnung_rules import XRechnungValidator

    validator = XRechnungValidator(RULES)
    return lambda xml: [str(e) for e in validator.validate(xml).errors]


def mailbox(maildir: Path, address: str) -> list:
    return [m for m in read_messages(maildir) if address in m.get("X-Kontor-Envelope-To", "")]


def attachments(message) -> dict[str, bytes]:
    return {part.get_filename(): part.get_content() for part in message.iter_attachments()}


async def billing_run(p: Platform, as_of: str) -> dict:
    """A billing run as an advisor starts one: answered at once (202, or 200 with the run of that
    date already under way), then followed until it ends; its report."""
    started = await ok(p.invoicing.post("/billing-runs", json={"as_of": as_of}, headers=ADVISOR), 200, 202)

    async def ended():
        run = await ok(p.invoicing.get(f"/billing-runs/{started['run_id']}", headers=ADVISOR))
        return run if run["status"] in ("finished", "failed") else None
    report = await eventually(ended, timeout_s=120, interval_s=0.2, what=f"the billing run as of {as_of}")
    assert report["status"] == "finished", report
    return report


async def journey(p: Platform, run: str) -> dict:
    """The journey; `run` makes the addresses unique. Returns what happened, for the caller."""
    contact, billing, member_mail = (f"erika.{run}@acme.example", f"rechnung.{run}@acme.example",
                                     f"anna.{run}@member.example")
    await ok(p.notifications.put("/members/member-1", json={"email": member_mail, "name": "Anna Freiberuf",
                                                            "language": "de"}, headers=MEMBER))
    client = await ok(p.clients.post("/clients", headers=MEMBER, json={
        "kind": "company", "name": f"ACME Werkstatt {run} GmbH", "invoice_email": billing, "language": "de",
        "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}}))
    p.say(f"• client registered: {client['name']} ({client['id']}), standing {client['standing']['status']}")

    body = {
        "client_id": client["id"], "contact_person": {"name": "Erika Muster", "email": contact},
        "sector": "design", "place_of_service": "DE", "project_name": "Relaunch 2027",
        "description": "Redesign and implementation of the company website.",
        "lines": [{"description": "Design workshop", "quantity": "2", "unit": "day", "unit_price": "640.00"},
                  {"description": "Implementation", "quantity": "40", "unit": "hour", "unit_price": "85.00"}],
        "currency": "EUR", "service_period": {"start": "2027-01-01", "end": "2027-03-31"},
        "confirmation": {"mode": "send", "offer_valid_until": "2027-12-15"},
        "payment": {"mode": "installments", "due_in_days": 14, "installments": [
            {"date": "2027-01-15", "percentage": "30"}, {"date": "2027-02-15", "percentage": "30"},
            {"date": "2027-03-31", "percentage": "40"}]}}

    async def order_accepted():
        r = await p.orders.post("/orders", json=body, headers=MEMBER)
        return r.json() if r.status_code == 201 else None
    order = await eventually(order_accepted, what="orders knowing the new client")
    oid = order["order_id"]
    await ok(p.orders.post(f"/orders/{oid}/attachments", headers=MEMBER,
                           files={"file": ("Leistungsbeschreibung.pdf", b"%PDF-1.4 scope\n%%EOF", "application/pdf")}))
    submitted = await ok(p.orders.post(f"/orders/{oid}/submit", headers=MEMBER))
    approved = await ok(p.orders.post(f"/orders/{oid}/approve", headers=ADVISOR))
    p.say(f"• order {oid}: {order['status']} → {submitted['status']} → {approved['status']} "
          f"(net {order['net_total']} EUR, gross {order['gross_total']} EUR, three installments)")

    async def confirmation_mail():
        return mailbox(p.maildir, contact) or None
    [mail] = await eventually(confirmation_mail, timeout_s=30, what="the confirmation e-mail at the contact")
    link = re.search(r"https?://\S+/confirm/\S+", mail.get_body(("plain",)).get_content()).group(0)
    assert set(attachments(mail)) == {"Leistungsbeschreibung.pdf"}
    p.say(f"• e-mail to {contact}: “{mail['Subject']}”, link {link}")
    async with p.browser() as browser:
        page = await browser.get(link)
        assert page.status_code == 200 and "Relaunch 2027" in page.text, page.text[:300]
        action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
        answer = await browser.post(httpx.URL(link).join(action), data={"action": "confirm", "message": ""})
        assert answer.status_code == 200, answer.text[:300]
    active = await ok(p.orders.get(f"/orders/{oid}", headers=MEMBER))
    assert active["status"] == "active"
    p.say(f"• the client confirmed on the page: order {active['status']}, schedule "
          + ", ".join(f"{s['kind']} {s['invoice_date']}" for s in active["schedule"]))

    async def invoices():
        return await ok(p.invoicing.get("/invoices", params={"order_id": oid}, headers=ADVISOR))

    async def planned():
        await billing_run(p, "2027-01-08")
        return len(await invoices()) == 1
    await eventually(planned, what="invoicing knowing the order and drafting the first installment")
    numbers = []
    for as_of in ("2027-01-15", "2027-02-15", "2027-03-31"):
        report = await billing_run(p, as_of)
        issued = [i for i in await invoices() if i["status"] == "invoiced" and i["number"] not in numbers]
        assert len(issued) == 1, (as_of, report, await invoices())
        numbers.append(issued[0]["number"])
        p.say(f"• billing run as of {as_of}: drafted {report['drafted']}, issued {report['issued']} → invoice "
              f"{issued[0]['number']} ({issued[0]['schedule_kind']}, {issued[0]['amount_due']} EUR due "
              f"{issued[0]['due_date']})")
        if as_of == "2027-01-15":  # the first one is paid before the next run
            first = issued[0]
            paid = await ok(p.invoicing.post(f"/invoices/{first['invoice_id']}/payments", headers=ADVISOR,
                                             json={"amount": first["amount_due"], "received_on": "2027-01-25"}))
            assert paid["status"] == "paid"
            p.say(f"• invoice {first['number']} paid in full on 2027-01-25: {paid['status']}")
    by_number = {i["number"]: i for i in await invoices() if i["number"]}
    second = by_number[numbers[1]]
    await ok(p.invoicing.post(f"/invoices/{second['invoice_id']}/cancel", headers=ADVISOR,
                                          json={"reason": "Leistungszeitraum falsch abgerechnet"}), 202)

    async def cancelled_by_storno():
        found = {i["invoice_id"]: i for i in await invoices()}
        storno = next((i for i in found.values() if i["kind"] == "cancellation" and i["status"] == "cancellation"),
                      None)
        return (found[second["invoice_id"]], storno) if storno else None
    cancelled, storno = await eventually(cancelled_by_storno, timeout_s=60, what="the cancellation invoice issued")
    p.say(f"• invoice {second['number']} {cancelled['status']} by cancellation invoice {storno['number']}")

    expected_mails = {*numbers, storno["number"]}

    async def invoice_mails():
        found = {m["Subject"]: m for m in mailbox(p.maildir, billing)}
        have = {n for n in expected_mails if any(n in s for s in found)}
        return found if have == expected_mails else None
    found = await eventually(invoice_mails, timeout_s=60, what="every invoice at the client's invoice address")
    checked = []
    for subject, message in sorted(found.items()):
        files = attachments(message)
        pdfs = [name for name in files if name.endswith(".pdf")
                and name.startswith(("Rechnung", "Abschlagsrechnung", "Schlussrechnung", "Storno"))]
        xmls = [name for name in files if name.endswith(".xml")]
        if not xmls:
            continue  # a reminder carries the PDF only
        assert len(pdfs) == 1 and len(xmls) == 1, (subject, list(files))
        number = re.search(r"\d{4}-\d{6}", pdfs[0]).group(0)
        text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(files[pdfs[0]])).pages)
        assert number in text and "DE02120300000000202051" in text, "the PDF shows its number and the IBAN"
        assert f"<ram:ID>{number}</ram:ID>".encode() in files[xmls[0]]
        if p.validate_xml:
            assert p.validate_xml(files[xmls[0]]) == [], (number, "X-Rechnung fails the official rules")
        assert member_mail in message.get("Cc", ""), "the member is in cc"
        checked.append(number)
    assert sorted(checked) == sorted(expected_mails), (checked, expected_mails)
    p.say(f"• {billing} received {len(found)} e-mails; {len(checked)} invoices with PDF + X-Rechnung"
          + (" (official rules: no error)" if p.validate_xml else ""))

    run_report = await ok(p.clients.post("/standing-runs", json={"as_of": "2027-06-15"}, headers=ADVISOR))
    standing = (await ok(p.clients.get(f"/clients/{client['id']}", headers=ADVISOR)))["standing"]
    assert standing["status"] == "advance_payment_only" and standing["source"] == "debt_rule", standing
    p.say(f"• debt rule as of 2027-06-15 (restricted {run_report['restricted']}): client {standing['status']} "
          f"– {standing['reason']}")

    async def member_told():
        return [m for m in mailbox(p.maildir, member_mail)
                if "Vorkasse" in m["Subject"] and client["name"] in m["Subject"]] or None
    # (against a long-running platform, earlier runs "as of" 2027 may have judged this client before)
    told = (await eventually(member_told, timeout_s=30, what="the member told about the standing"))[-1]
    p.say(f"• e-mail to the member: “{told['Subject']}”")

    async def all_sent() -> list[dict] | None:
        # an e-mail is recorded as sent when its delivery commits, just after the SMTP server took it
        log = await ok(p.notifications.get("/emails", params={"limit": 500}, headers=MEMBER))
        mine = [e for e in log if e["order_id"] == oid or e["client_id"] == client["id"]]
        statuses = [(e["template"], e["status"]) for e in mine]
        assert mine and not any(status == "failed" for _, status in statuses), statuses  # no point waiting
        return mine if all(status == "sent" for _, status in statuses) else None
    mine = await eventually(all_sent, timeout_s=30, what="every e-mail of the journey recorded as sent")
    p.say(f"• delivery log: {len(mine)} e-mails, all sent: "
          + ", ".join(sorted({e['template'] for e in mine})))
    return {"order_id": oid, "client_id": client["id"], "invoices": numbers, "cancellation": storno["number"],
            "emails": len(mine)}


async def test_the_whole_journey_across_all_four_services(infra, topic_prefix):
    if infra.maildir is None:
        pytest.skip("the SMTP server's Maildir is not readable here (KONTOR_TEST_MAILDIR unset)")
    common = dict(topic_prefix=topic_prefix)
    async with running_service(CLIENTS, infra, **common, standing_run_enabled=False,
                               allow_future_as_of=True) as clients, \
            running_service(ORDERS, infra, **common, serve_http=True, order_runs_enabled=False) as orders, \
            running_service(INVOICING, infra, **common, serve_http=True, billing_runs_enabled=False,
                            clock=FixedClock(dt.datetime(2027, 4, 1, 9, tzinfo=dt.UTC)),  # cancel in 2027
                            xrechnung_rules_dir=RULES if RULES.exists() else None) as invoicing, \
            running_service(NOTIFICATIONS, infra, **common, smtp_host=infra.smtp_host, smtp_port=infra.smtp_port,
                            delivery_interval_s=0.1, retry_base_s=0.2) as notifications:
        said: list[str] = []
        outcome = await journey(Platform(clients.http, orders.http, invoicing.http, notifications.http,
                                         infra.maildir, said.append, official_validator()), uuid.uuid4().hex[:8])
        print("\n".join(said), file=sys.stderr)
        assert len(outcome["invoices"]) == 3 and outcome["emails"] >= 12

"""Issue 18, items 1 and 2, against real PostgreSQL and Kafka, the PDFs read back and every
X-Rechnung checked by the official rules: partial invoices "n of N" with the order's total, the
final invoice with every partial invoice it deducts (number, date, net, VAT, gross) and what
remains (§ 14 Abs. 5 UStG), a cancelled partial invoice not deducted, and a cancellation invoice
with negative amounts in its PDF, its own status, never open, never reminded."""
import datetime as dt
import io
import json
import sys
import uuid
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from kontor.clock import FixedClock
from kontor.contracts.clients import ClientRegisteredV1, ClientSnapshotV1, ClientStandingV1
from kontor.contracts.common import Actor, Address
from kontor.contracts.orders import (
    ContactPersonV1,
    OrderActivatedV1,
    OrderClientV1,
    OrderLineV1,
    OrderV1,
    PaymentTermsV1,
    PlannedInvoiceV1,
    VatV1,
)
from kontor.testing import eventually
from kontor.testing.kafka import publish_event, read_topic
from kontor.testing.services import auth, running_service
from kontor_invoicing.spec import SPEC

pytestmark = pytest.mark.integration
D = Decimal
NOW = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
ADVISOR = auth("advisor-1", "advisor")
MEMBER = auth("member-1", "member")
RULES = Path(__file__).resolve().parents[4] / "shared" / "xrechnung"
NS = {"rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
      "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}

LINES = (OrderLineV1(description="Design workshop", quantity=D(2), unit="day", unit_price=D("640.00"),
                     net_amount=D("1280.00")),
         OrderLineV1(description="Implementation", quantity=D(40), unit="hour", unit_price=D("85.00"),
                     net_amount=D("3400.00")))


def official_validator():
    if not (RULES / "validate.py").exists():
        pytest.skip(f"official X-Rechnung rules not found at {RULES}")
    sys.path.insert(0, str(RULES))
    from validate import validate

    return validate


async def register_client(infra, prefix) -> ClientSnapshotV1:
    snapshot = ClientSnapshotV1(
        client_id=uuid.uuid4(), kind="company", name="ACME Werkstatt GmbH", vat_id="DE811569869",
        address=Address(street="Hauptstraße 1", postal_code="10115", city="Berlin", country="DE"),
        invoice_email="rechnung@acme.example", language="de", standing=ClientStandingV1(status="ok"), version=1)
    await publish_event(infra.kafka_bootstrap, prefix, ClientRegisteredV1(
        client_id=snapshot.client_id, client=snapshot, occurred_at=NOW, actor=Actor(kind="member")), time=NOW)
    return snapshot


def installments() -> list[PlannedInvoiceV1]:
    """Three installments of an order of 4,680.00 EUR net (5,569.20 gross): two partial invoices of
    1,404.00 net, the third the final invoice."""
    def partial(n: int, day: dt.date) -> PlannedInvoiceV1:
        return PlannedInvoiceV1(seq=n, kind="installment", invoice_date=day, due_date=day + dt.timedelta(days=14),
                                lines=(OrderLineV1(description=f"Abschlag {n}/3", quantity=D(1), unit="lump_sum",
                                                   unit_price=D("1404.00"), net_amount=D("1404.00")),),
                                net_amount=D("1404.00"), period_start=dt.date(2027, 1, 1),
                                period_end=dt.date(2027, 3, 31))
    return [partial(1, dt.date(2027, 1, 15)), partial(2, dt.date(2027, 2, 15)),
            PlannedInvoiceV1(seq=3, kind="final", invoice_date=dt.date(2027, 3, 31), due_date=dt.date(2027, 4, 14),
                             lines=LINES, net_amount=D("1872.00"), deducted=D("2808.00"),
                             period_start=dt.date(2027, 1, 1), period_end=dt.date(2027, 3, 31))]


def after_completion() -> list[PlannedInvoiceV1]:
    return [PlannedInvoiceV1(seq=1, kind="after_completion", invoice_date=dt.date(2027, 3, 31),
                             due_date=dt.date(2027, 4, 14), lines=LINES, net_amount=D("4680.00"),
                             period_start=dt.date(2027, 1, 1), period_end=dt.date(2027, 3, 31))]


async def activate(infra, prefix, schedule, mode) -> uuid.UUID:
    client = await register_client(infra, prefix)
    order = OrderV1(
        order_id=uuid.uuid4(), member_id="member-1", status="active",
        client=OrderClientV1(client_id=client.client_id, name=client.name, kind="company", vat_id=client.vat_id,
                             country="DE", language="de"),
        contact_person=ContactPersonV1(name="Erika Muster", email="erika@acme.example"), sector="design",
        place_of_service="DE", project_name="Relaunch 2027", currency="EUR", lines=LINES, net_total=D("4680.00"),
        vat=(VatV1(category="S", rate=D(19), taxable_amount=D("4680.00"), tax_amount=D("889.20")),),
        gross_total=D("5569.20"), service_start=dt.date(2027, 1, 1), service_end=dt.date(2027, 3, 31),
        confirmation_mode="send", payment=PaymentTermsV1(mode=mode, due_in_days=14), schedule=tuple(schedule),
        version=5)
    await publish_event(infra.kafka_bootstrap, prefix, OrderActivatedV1(
        order_id=order.order_id, order=order, occurred_at=NOW, actor=Actor(kind="client")), time=NOW)
    return order.order_id


async def run(svc, as_of: str) -> dict:
    """A billing run as of `as_of`, followed to its end: its report."""
    r = await svc.http.post("/billing-runs", json={"as_of": as_of}, headers=ADVISOR)
    assert r.status_code in (200, 202), r.text

    async def report():
        got = (await svc.http.get(f"/billing-runs/{r.json()['run_id']}", headers=ADVISOR)).json()
        return got if got["status"] in ("finished", "failed") else None
    return await eventually(report, timeout_s=90, interval_s=0.1, what=f"billing run as of {as_of} ended")


async def issued_run(svc, as_of: str, issued: int) -> None:
    """Runs as of `as_of` until `issued` invoices were issued (the order's events may still be on their way)."""
    async def done():
        return (await run(svc, as_of))["issued"] == issued or None
    await eventually(done, timeout_s=60, interval_s=0.2, what=f"{issued} invoice(s) issued as of {as_of}")


async def invoices_of(svc, order_id, **params) -> dict[str, dict]:
    r = await svc.http.get("/invoices", params={"order_id": str(order_id), **params}, headers=ADVISOR)
    assert r.status_code == 200, r.text
    return {i["number"]: i for i in r.json()}


async def settled(svc, invoice_id: str, status: str) -> dict:
    async def reached():
        r = (await svc.http.get(f"/invoices/{invoice_id}", headers=ADVISOR)).json()
        return r if r["status"] == status else None
    return await eventually(reached, timeout_s=60, interval_s=0.1, what=f"invoice {invoice_id} {status}")


async def pdf_text(svc, invoice_id: str) -> str:
    r = await svc.http.get(f"/invoices/{invoice_id}/pdf", headers=MEMBER)
    assert r.status_code == 200 and r.content.startswith(b"%PDF"), r.text
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(r.content)).pages)
    return text.replace("\u202f", " ")  # the narrow no-break spaces that keep "2 Tg. × 640,00 EUR" together


async def checked_xml(svc, validate, invoice_id: str) -> ET.Element:
    """The X-Rechnung, which passes the official rules, parsed."""
    r = await svc.http.get(f"/invoices/{invoice_id}/xrechnung.xml", headers=MEMBER)
    assert r.status_code == 200, r.text
    report = validate(r.content)
    assert report.valid, report
    return ET.fromstring(r.content)  # noqa: S314 (the document our own service made)


def xml_text(root: ET.Element, path: str) -> str | None:
    found = root.find(path, NS)
    return None if found is None else found.text


SETTLEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
SUMS = f"{SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
REFERENCE = f"{SETTLEMENT}/ram:InvoiceReferencedDocument"


async def test_three_installments_and_the_final_invoice_that_deducts_them(infra, topic_prefix):
    validate = official_validator()
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               billing_runs_enabled=False, allow_future_as_of=True, xrechnung_rules_dir=RULES) as svc:
        order_id = await activate(infra, topic_prefix, installments(), "installments")
        await issued_run(svc, "2027-01-15", 1)
        await issued_run(svc, "2027-02-15", 1)
        await issued_run(svc, "2027-03-31", 1)
        by_number = await invoices_of(svc, order_id)
        first, second, final = by_number["2027-000001"], by_number["2027-000002"], by_number["2027-000003"]
        assert [(i["schedule_kind"], i["installments"], i["issue_date"]) for i in (first, second, final)] == [
            ("installment", 3, "2027-01-15"), ("installment", 3, "2027-02-15"), ("final", 3, "2027-03-31")]

        # the partial invoices: "Abschlagsrechnung n von 3", what they bill and the order's total
        for n, partial in ((1, first), (2, second)):
            text = await pdf_text(svc, partial["invoice_id"])
            assert f"Abschlagsrechnung {n} von 3 · Relaunch 2027" in text, text
            assert f"Rechnungsnr. {partial['number']}" in text
            assert f"Abschlag {n} von 3 auf den Auftrag über 5.569,20 EUR brutto (4.680,00 EUR netto zzgl. " \
                   f"889,20 EUR USt.)" in text.replace("\n", " "), text
            assert "Summe netto 1.404,00 EUR" in text and "USt. 19 % auf 1.404,00 EUR 266,76 EUR" in text
            assert "Gesamtbetrag 1.670,76 EUR" in text and "die Schlussrechnung rechnet diesen Abschlag an" in \
                text.replace("\n", " ")
            xml = await checked_xml(svc, validate, partial["invoice_id"])
            assert xml_text(xml, f"{SUMS}/ram:DuePayableAmount") == "1670.76"

        # the final invoice: the whole service, every deducted partial invoice, what remains
        assert (final["net_total"], final["tax_total"], final["gross_total"]) == ("4680.00", "889.20", "5569.20")
        assert (final["prepaid_amount"], final["amount_due"], final["open_amount"]) == ("3341.52", "2227.68", "2227.68")
        assert [(d["number"], d["issue_date"], d["net_amount"], d["vat_breakdown"][0]["rate"],
                 d["vat_breakdown"][0]["tax_amount"], d["gross_amount"]) for d in final["deductions"]] == [
            ("2027-000001", "2027-01-15", "1404.00", "19", "266.76", "1670.76"),
            ("2027-000002", "2027-02-15", "1404.00", "19", "266.76", "1670.76")]
        text = await pdf_text(svc, final["invoice_id"])
        assert "Schlussrechnung 2027-000003 · Relaunch 2027" in text, text
        assert "Design workshop 2 Tg. × 640,00 EUR" in text and "Implementation 40 Std. × 85,00 EUR" in text
        assert "Summe netto 4.680,00 EUR" in text and "USt. 19 % auf 4.680,00 EUR 889,20 EUR" in text
        assert "Gesamtbetrag der Leistung 5.569,20 EUR" in text
        assert "Abzüglich Abschlagsrechnungen" in text and "Rechnung Datum Netto USt. Brutto" in text
        assert "2027-000001 15.01.2027 1.404,00 EUR 19 %: 266,76 EUR 1.670,76 EUR" in text
        assert "2027-000002 15.02.2027 1.404,00 EUR 19 %: 266,76 EUR 1.670,76 EUR" in text
        assert "Summe 2.808,00 EUR 533,52 EUR 3.341,52 EUR" in text
        assert "Verbleibend netto 1.872,00 EUR" in text and "USt. 19 % auf 1.872,00 EUR 355,68 EUR" in text
        assert "Zu zahlen 2.227,68 EUR" in text and "Bitte überweisen Sie 2.227,68 EUR" in text

        xml = await checked_xml(svc, validate, final["invoice_id"])
        assert xml_text(xml, "rsm:ExchangedDocument/ram:TypeCode") == "380"
        assert (xml_text(xml, f"{SUMS}/ram:GrandTotalAmount"), xml_text(xml, f"{SUMS}/ram:TotalPrepaidAmount"),
                xml_text(xml, f"{SUMS}/ram:DuePayableAmount")) == ("5569.20", "3341.52", "2227.68")  # BT-112/113/115
        # BG-3: CII has room for one preceding invoice (the latest); the note names every one with its VAT
        assert xml_text(xml, f"{REFERENCE}/ram:IssuerAssignedID") == "2027-000002"
        assert xml_text(xml, f"{REFERENCE}/ram:FormattedIssueDateTime/*") == "20270215"
        notes = [n.text for n in xml.findall("rsm:ExchangedDocument/ram:IncludedNote/ram:Content", NS)]
        assert "Abzüglich Abschlagsrechnungen: 2027-000001 vom 2027-01-15: netto 1404.00 EUR, USt. 19 % 266.76 EUR, " \
               "brutto 1670.76 EUR; 2027-000002 vom 2027-02-15: netto 1404.00 EUR, USt. 19 % 266.76 EUR, brutto " \
               "1670.76 EUR." in notes, notes


async def test_a_final_invoice_after_a_partial_invoice_was_cancelled_deducts_only_the_other(infra, topic_prefix):
    validate = official_validator()
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               billing_runs_enabled=False, allow_future_as_of=True, xrechnung_rules_dir=RULES) as svc:
        order_id = await activate(infra, topic_prefix, installments(), "installments")
        await issued_run(svc, "2027-01-15", 1)
        await issued_run(svc, "2027-02-15", 1)
        second = (await invoices_of(svc, order_id))["2027-000002"]
        r = await svc.http.post(f"/invoices/{second['invoice_id']}/cancel", json={"reason": "milestone dropped"},
                                headers=ADVISOR)
        assert r.status_code == 202, r.text
        await settled(svc, second["invoice_id"], "cancelled")
        await issued_run(svc, "2027-03-31", 1)

        by_number = await invoices_of(svc, order_id)
        assert {n: (i["kind"], i["status"]) for n, i in by_number.items()} == {
            "2027-000001": ("invoice", "invoiced"), "2027-000002": ("invoice", "cancelled"),
            "2027-000003": ("cancellation", "cancellation"), "2027-000004": ("invoice", "invoiced")}
        final = by_number["2027-000004"]
        assert (final["prepaid_amount"], final["amount_due"]) == ("1670.76", "3898.44")
        assert [d["number"] for d in final["deductions"]] == ["2027-000001"]

        text = await pdf_text(svc, final["invoice_id"])
        assert "Schlussrechnung 2027-000004" in text and "Gesamtbetrag der Leistung 5.569,20 EUR" in text
        assert "2027-000001 15.01.2027 1.404,00 EUR 19 %: 266,76 EUR 1.670,76 EUR" in text
        assert "2027-000002" not in text and "2027-000003" not in text, "the cancelled one is not deducted"
        assert "Summe 1.404,00 EUR 266,76 EUR 1.670,76 EUR" in text
        assert "Verbleibend netto 3.276,00 EUR" in text and "USt. 19 % auf 3.276,00 EUR 622,44 EUR" in text
        assert "Zu zahlen 3.898,44 EUR" in text

        xml = await checked_xml(svc, validate, final["invoice_id"])
        assert (xml_text(xml, f"{SUMS}/ram:TotalPrepaidAmount"), xml_text(xml, f"{SUMS}/ram:DuePayableAmount")) == \
            ("1670.76", "3898.44")
        assert xml_text(xml, f"{REFERENCE}/ram:IssuerAssignedID") == "2027-000001"
        await checked_xml(svc, validate, by_number["2027-000003"]["invoice_id"])  # the cancellation invoice too


async def test_a_cancellation_invoice_is_negative_on_paper_its_own_status_never_open_never_reminded(
        infra, topic_prefix):
    validate = official_validator()
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               billing_runs_enabled=False, allow_future_as_of=True, xrechnung_rules_dir=RULES) as svc:
        order_id = await activate(infra, topic_prefix, after_completion(), "after_completion")
        await issued_run(svc, "2027-03-31", 1)
        original = (await invoices_of(svc, order_id))["2027-000001"]
        # cancelled on the clock's day, 1 Dec 2026: the cancellation invoice is dated no earlier than the original
        r = await svc.http.post(f"/invoices/{original['invoice_id']}/cancel", json={"reason": "wrong client"},
                                headers=ADVISOR)
        assert r.status_code == 202, r.text
        cancelled = await settled(svc, original["invoice_id"], "cancelled")
        assert (cancelled["open_amount"], cancelled["refund_due"]) == ("0.00", "0.00")

        storno = (await invoices_of(svc, order_id))["2027-000002"]
        assert storno["invoice_id"] == cancelled["cancelled_by"]
        assert (storno["kind"], storno["status"], storno["schedule_kind"]) == ("cancellation", "cancellation",
                                                                               "cancellation")
        assert (storno["cancels_number"], storno["issue_date"]) == ("2027-000001", "2027-03-31")
        assert (storno["gross_total"], storno["amount_due"], storno["open_amount"]) == ("5569.20", "0.00", "0.00")

        # shown as such in lists: never among the issued (open) invoices, found by its status or its kind
        assert set(await invoices_of(svc, order_id, status="invoiced")) == set()
        assert set(await invoices_of(svc, order_id, status="cancellation")) == {"2027-000002"}
        assert set(await invoices_of(svc, order_id, kind="cancellation")) == {"2027-000002"}
        assert set(await invoices_of(svc, order_id, kind="invoice")) == {"2027-000001"}
        bad = await svc.http.get("/invoices", params={"kind": "credit"}, headers=ADVISOR)
        assert bad.status_code == 422 and "kind" in bad.text

        text = await pdf_text(svc, storno["invoice_id"])
        assert "Stornorechnung 2027-000002 · Relaunch 2027" in text, text
        assert "Storno zur Rechnung 2027-000001 vom 31.03.2027." in text and "Datum 31.03.2027" in text
        assert "Design workshop 2 Tg. × −640,00 EUR  −1.280,00 EUR" in text
        assert "Implementation 40 Std. × −85,00 EUR  −3.400,00 EUR" in text
        assert "Summe netto −4.680,00 EUR" in text and "USt. 19 % auf −4.680,00 EUR −889,20 EUR" in text
        assert "Gesamtbetrag −5.569,20 EUR" in text and "Bitte überweisen" not in text

        xml = await checked_xml(svc, validate, storno["invoice_id"])
        assert xml_text(xml, "rsm:ExchangedDocument/ram:TypeCode") == "381"
        assert (xml_text(xml, f"{SUMS}/ram:GrandTotalAmount"), xml_text(xml, f"{SUMS}/ram:DuePayableAmount")) == \
            ("5569.20", "5569.20"), "type 381 with positive amounts"
        assert xml_text(xml, f"{REFERENCE}/ram:IssuerAssignedID") == "2027-000001"

        # never reminded: runs long after the original's due date (14 Apr) remind nobody
        for as_of in ("2027-04-21", "2027-05-05", "2027-06-30"):
            assert (await run(svc, as_of))["reminded"] == 0
        for invoice_id in (storno["invoice_id"], original["invoice_id"]):
            assert (await svc.http.get(f"/invoices/{invoice_id}", headers=ADVISOR)).json()["reminders_sent"] == 0

        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.invoices.v1", min_count=3)
        events = [(r.type, json.loads(r.value or b"{}")) for r in records]
        mine = [(t, e) for t, e in events if e["order_id"] == str(order_id)]
        assert [t for t, _ in mine] == ["kontor.invoice.draft-created.v1", "kontor.invoice.issued.v1",
                                        "kontor.invoice.cancelled.v1"], "no reminder, and no second issued event"
        published = mine[-1][1]["cancellation"]
        assert (published["status"], published["kind"], published["amount_due"]) == ("cancellation", "cancellation",
                                                                                       "0.00")

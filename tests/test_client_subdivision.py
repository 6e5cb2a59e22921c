"""A client in Texas taught without a certificate, across clients, orders and invoicing over real
Kafka, PostgreSQL and HTTP: the registration needs the state (422 naming address.subdivision without
one or with one of another country), the client's events carry it, the order in the sector
`teaching_uncertified` has 19 % VAT, and the issued invoice prints "Austin, TX 78701" and writes
the state into the X-Rechnung's buyer address (BT-54), which passes the official rules."""
from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from pathlib import Path

import pytest
from pypdf import PdfReader

from kontor.clock import FixedClock
from kontor.testing import eventually
from kontor.testing.kafka import read_topic
from kontor.testing.services import auth, draft_of_active_order, ok, running_service
from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.adapters.xrechnung_rules import XRechnungValidator
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "shared" / "xrechnung"
MEMBER = auth("member-1", "member")
ADVISOR = auth("advisor-1", "advisor")
TODAY = dt.datetime(2027, 3, 1, 9, tzinfo=dt.UTC)


async def test_a_texan_client_taught_without_certificate_gets_19_percent_and_its_state_on_the_invoice(
        infra, topic_prefix):
    if not RULES.exists():
        pytest.skip(f"official rules not found at {RULES}")
    run = uuid.uuid4().hex[:8]
    common = {"topic_prefix": topic_prefix}
    async with running_service(CLIENTS, infra, **common, standing_run_enabled=False) as clients, \
            running_service(ORDERS, infra, **common, serve_http=True, order_runs_enabled=False) as orders, \
            running_service(INVOICING, infra, **common, serve_http=True, billing_runs_enabled=False,
                            clock=FixedClock(TODAY)) as invoicing:
        texan = {"kind": "company", "name": f"Lone Star Learning {run} LLC", "language": "en",
                 "invoice_email": f"billing.{run}@lonestar.example",
                 "address": {"street": "100 Congress Ave", "postal_code": "78701", "city": "Austin",
                             "country": "US"}}
        for subdivision, why in ((None, "is required"), ("ON", "'ON' is not a subdivision of US")):
            refused = await clients.http.post("/clients", headers=MEMBER, json={
                **texan, "address": {**texan["address"], "subdivision": subdivision}})
            assert refused.status_code == 422, refused.text
            [error] = refused.json()["detail"]
            assert error["loc"] == ["body", "address", "subdivision"] and why in error["msg"], error
        client = await ok(clients.http.post("/clients", headers=MEMBER, json={
            **texan, "address": {**texan["address"], "subdivision": "us-tx"}}), 201)
        assert client["address"] == {"street": "100 Congress Ave", "postal_code": "78701", "city": "Austin",
                                     "country": "US", "subdivision": "TX"}
        [registered] = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.clients.v1", min_count=1)
        assert json.loads(registered.value)["client"]["address"]["subdivision"] == "TX"

        body = {
            "client_id": client["id"], "contact_person": {"name": "Dana Reyes", "email": texan["invoice_email"]},
            "sector": "teaching_uncertified", "place_of_service": "DE", "project_name": "Spring Academy",
            "description": "Workshops in Berlin", "currency": "EUR",
            "lines": [{"description": "Workshop", "quantity": "2", "unit": "day", "unit_price": "640.00"}],
            "service_period": {"start": "2027-02-15", "end": "2027-03-04"},
            "confirmation": {"mode": "skip", "skip_reason": "Rahmenvertrag"},
            "payment": {"mode": "after_completion", "due_in_days": 14, "invoice_date": "2027-03-05"}}

        _, draft = await draft_of_active_order(orders.http, invoicing.http, body, member=MEMBER, advisor=ADVISOR,
                                              as_of="2027-03-01")
        iid = draft["invoice_id"]
        await ok(invoicing.http.post(f"/invoices/{iid}/issue", headers=MEMBER), 202)

        async def issued():
            inv = await ok(invoicing.http.get(f"/invoices/{iid}", headers=MEMBER))
            return inv if inv["status"] == "invoiced" and inv["documents"] else None
        invoice = await eventually(issued, timeout_s=60, what="the invoice issued with its documents")
        assert [(v["category"], v["rate"], v["taxable_amount"], v["tax_amount"]) for v in invoice["vat_breakdown"]] \
            == [("S", "19", "1280.00", "243.20")]
        assert (invoice["net_total"], invoice["tax_total"], invoice["gross_total"]) == ("1280.00", "243.20", "1523.20")

        pdf = await invoicing.http.get(f"/invoices/{iid}/pdf", headers=MEMBER)
        assert pdf.status_code == 200, pdf.text
        text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
        assert f"Lone Star Learning {run} LLC\nAttn. Dana Reyes\n100 Congress Ave\nAustin, TX 78701" in text, text
        assert "UNITED STATES" in text
        assert "VAT 19 % on 1,280.00 EUR" in text and "243.20 EUR" in text and "1,523.20 EUR" in text
        assert "exempt" not in text.lower()

        xml = await invoicing.http.get(f"/invoices/{iid}/xrechnung.xml", headers=MEMBER)
        assert xml.status_code == 200, xml.text
        report = XRechnungValidator(RULES).validate(xml.content)
        assert report.valid, [str(e) for e in report.errors]
        buyer = xml.content.split(b"<ram:BuyerTradeParty>")[1].split(b"</ram:BuyerTradeParty>")[0]
        assert b"<ram:CountrySubDivisionName>Texas</ram:CountrySubDivisionName>" in buyer
        assert b"<ram:CityName>Austin</ram:CityName>" in buyer
        assert b"<ram:PostcodeCode>78701</ram:PostcodeCode>" in buyer
        assert b"<ram:CategoryCode>S</ram:CategoryCode>" in xml.content
        assert b"<ram:RateApplicablePercent>19" in xml.content

"""The member's invoice in the portal: an order billed after completion, approved, drafted by a
billing run as of its invoice date, which issues it; the dashboard counts it, its detail page links the PDF
and the X-Rechnung, which the portal passes through from invoicing with the member's token;
another member gets the not-found page for it and for its documents."""
from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager
from portal_support import CSRF

from kontor.testing import eventually
from kontor.testing.services import auth, running_service
from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_orders.spec import SPEC as ORDERS
from kontor_portal.entrypoints.app import create_app
from kontor_portal.settings import PortalSettings

pytestmark = pytest.mark.integration
MEMBER, ADVISOR = auth("member-1", "member"), auth("advisor-1", "advisor")


async def ok(r: httpx.Response, *expected: int) -> dict:
    assert r.status_code in (expected or (200, 201)), (str(r.request.url), r.status_code, r.text)
    return r.json()


async def signed_in(client: httpx.AsyncClient, user: str) -> None:
    page = await client.get("/signin")
    r = await client.post("/signin/dev", data={"csrf": CSRF.search(page.text).group(1), "user_id": user,
                                               "role": "member"})
    assert r.status_code == 303


async def test_invoice_detail_and_its_documents_through_the_portal(infra, topic_prefix):
    common = {"topic_prefix": topic_prefix, "allow_future_as_of": True}
    async with running_service(CLIENTS, infra, **common, serve_http=True, standing_run_enabled=False) as clients, \
            running_service(ORDERS, infra, **common, serve_http=True, order_runs_enabled=False) as orders, \
            running_service(INVOICING, infra, **common, serve_http=True, billing_runs_enabled=False) as invoicing:
        client = await ok(await clients.http.post("/clients", headers=MEMBER, json={
            "kind": "company", "name": "Rechnungsprobe GmbH", "invoice_email": "rechnung@probe.example",
            "language": "de", "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin",
                                          "country": "DE"}}))
        body = {"client_id": client["id"], "contact_person": {"name": "Erika Muster", "email": "erika@probe.example"},
                "sector": "design", "place_of_service": "DE", "project_name": "Rechnungsprojekt",
                "description": "Website", "currency": "EUR",
                "lines": [{"description": "Workshop", "quantity": "2", "unit": "day", "unit_price": "640.00"}],
                "service_period": {"start": "2027-02-01", "end": "2027-02-28"},
                "confirmation": {"mode": "skip", "skip_reason": "Rahmenvertrag"},
                "payment": {"mode": "after_completion", "due_in_days": 14, "invoice_date": "2027-03-05"}}

        async def accepted() -> dict | None:
            r = await orders.http.post("/orders", json=body, headers=MEMBER)
            return r.json() if r.status_code == 201 else None
        oid = (await eventually(accepted, what="orders knowing the client"))["order_id"]
        await ok(await orders.http.post(f"/orders/{oid}/submit", headers=MEMBER))
        assert (await ok(await orders.http.post(f"/orders/{oid}/approve", headers=ADVISOR)))["status"] == "active"

        async def drafted() -> dict | None:
            await ok(await invoicing.http.post("/billing-runs", json={"as_of": "2027-03-05"}, headers=ADVISOR),
                     200, 202)
            found = await ok(await invoicing.http.get("/invoices", params={"order_id": oid}, headers=MEMBER))
            return found[0] if found else None  # type: ignore[index]
        # the run as of the invoice date drafts the invoice and issues it
        iid = (await eventually(drafted, timeout_s=60, interval_s=0.5, what="the invoice"))["invoice_id"]

        async def issued() -> dict | None:
            inv = await ok(await invoicing.http.get(f"/invoices/{iid}", headers=MEMBER))
            return inv if inv["status"] == "invoiced" else None
        number = (await eventually(issued, timeout_s=60, what="the invoice issued"))["number"]

        assert clients.base_url and orders.base_url and invoicing.base_url
        portal = create_app(PortalSettings(environment="development", clients_url=clients.base_url,
                                           orders_url=orders.base_url, invoicing_url=invoicing.base_url))
        async with LifespanManager(portal) as manager:
            def browser() -> httpx.AsyncClient:
                return httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://portal.test")
            async with browser() as member, browser() as other:
                await signed_in(member, "member-1")
                dashboard = await member.get("/dashboard")
                assert dashboard.status_code == 200
                assert f'<a href="/invoices/{iid}">{number}</a>' in dashboard.text
                assert "<tr><td>Gestellt</td><td class=\"num\">1</td></tr>" in dashboard.text
                assert "1.523,20 EUR" in dashboard.text  # 2 × 640 net + 19 % VAT

                detail = await member.get(f"/invoices/{iid}")
                assert detail.status_code == 200 and number in detail.text and "Rechnungsprobe GmbH" in detail.text
                assert f'href="/invoices/{iid}/pdf"' in detail.text
                assert f'href="/invoices/{iid}/xrechnung.xml"' in detail.text
                pdf = await member.get(f"/invoices/{iid}/pdf")
                assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
                assert pdf.content.startswith(b"%PDF") and "content-disposition" in pdf.headers
                assert pdf.headers["x-frame-options"] == "DENY"
                xml = await member.get(f"/invoices/{iid}/xrechnung.xml")
                assert xml.status_code == 200 and number.encode() in xml.content
                assert (await member.get(f"/invoices/{iid}/other")).status_code == 404

                await signed_in(other, "member-2")
                for path in (f"/invoices/{iid}", f"/invoices/{iid}/pdf", f"/invoices/{iid}/xrechnung.xml"):
                    refused = await other.get(path)
                    assert refused.status_code == 404 and "Nicht gefunden" in refused.text, path

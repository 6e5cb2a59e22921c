"""The advisor's pages against the real clients, orders and invoicing services: the review queue
(approve one submitted order, reject another with a reason; a reject without one is refused at the
form), a billing run started as of the invoice date and followed until it has finished, a payment
recorded on the invoice it issued (an amount with a cent's fraction is refused at the form, not a
502); a member gets the not-found page for the advisor's pages; a user with both roles switches."""
from __future__ import annotations

import datetime as dt
import re
from html import unescape
from zoneinfo import ZoneInfo

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
INVOICE_DATE = "2027-03-05"


def berlin_today() -> str:
    return dt.datetime.now(ZoneInfo("Europe/Berlin")).date().isoformat()


async def ok(r: httpx.Response, *expected: int) -> dict:
    assert r.status_code in (expected or (200, 201)), (str(r.request.url), r.status_code, r.text)
    return r.json()


async def sign_in(client: httpx.AsyncClient, user: str, role: str) -> None:
    page = await client.get("/signin")
    r = await client.post("/signin/dev", data={"csrf": CSRF.search(page.text).group(1), "user_id": user,
                                               "name": f"Name of {user}", "role": role})
    assert r.status_code == 303, r.text


async def post(client: httpx.AsyncClient, page_path: str, action: str, **data: str) -> httpx.Response:
    """A form of the page at `page_path` sent as a browser would: with the CSRF token the page carries."""
    page = await client.get(page_path)
    assert page.status_code == 200, page.text
    return await client.post(action, data={"csrf": CSRF.search(page.text).group(1), **data})


async def submitted_order(clients: httpx.AsyncClient, orders: httpx.AsyncClient, project: str) -> str:
    client = await ok(await clients.post("/clients", headers=MEMBER, json={
        "kind": "company", "name": f"{project} GmbH", "invoice_email": "rechnung@probe.example",
        "language": "de", "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin",
                                      "country": "DE"}}))
    body = {"client_id": client["id"], "contact_person": {"name": "Erika Muster", "email": "erika@probe.example"},
            "sector": "design", "place_of_service": "DE", "project_name": project, "description": "Website",
            "currency": "EUR",
            "lines": [{"description": "Workshop", "quantity": "2", "unit": "day", "unit_price": "640.00"}],
            "service_period": {"start": "2027-02-01", "end": "2027-02-28"},
            "confirmation": {"mode": "skip", "skip_reason": "Rahmenvertrag"},
            "payment": {"mode": "after_completion", "due_in_days": 14, "invoice_date": INVOICE_DATE}}

    async def accepted() -> dict | None:
        r = await orders.post("/orders", json=body, headers=MEMBER)
        return r.json() if r.status_code == 201 else None
    oid = (await eventually(accepted, what="orders knowing the client"))["order_id"]
    await ok(await orders.post(f"/orders/{oid}/submit", headers=MEMBER))
    return str(oid)


async def test_advisor_reviews_bills_and_records_a_payment_and_a_member_cannot(infra, topic_prefix):
    common = {"topic_prefix": topic_prefix, "allow_future_as_of": True}
    async with running_service(CLIENTS, infra, **common, serve_http=True, standing_run_enabled=False) as clients, \
            running_service(ORDERS, infra, **common, serve_http=True, order_runs_enabled=False) as orders, \
            running_service(INVOICING, infra, **common, serve_http=True, billing_runs_enabled=False) as invoicing:
        approved = await submitted_order(clients.http, orders.http, "Freigabeprojekt")
        rejected = await submitted_order(clients.http, orders.http, "Ablehnprojekt")
        assert clients.base_url and orders.base_url and invoicing.base_url
        portal = create_app(PortalSettings(environment="development", clients_url=clients.base_url,
                                           orders_url=orders.base_url, invoicing_url=invoicing.base_url))
        async with LifespanManager(portal) as manager:
            def browser() -> httpx.AsyncClient:
                return httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://portal.test",
                                         headers={"Accept-Language": "de"})
            async with browser() as advisor, browser() as member, browser() as both:
                # a member: the advisor's pages are not found, and the navigation has no links to them
                await sign_in(member, "member-1", "member")
                for path in ("/advisor/review", "/advisor/invoices", "/advisor/billing-runs"):
                    refused = await member.get(path)
                    assert refused.status_code == 404 and "Nicht gefunden" in refused.text, path
                assert 'href="/advisor/review"' not in (await member.get("/dashboard")).text

                await sign_in(advisor, "advisor-1", "advisor")
                queue = await advisor.get("/advisor/review")
                assert queue.status_code == 200, queue.text
                assert 'href="/advisor/review"' in queue.text  # the advisor's navigation
                assert "Freigabeprojekt" in queue.text and "Ablehnprojekt" in queue.text
                assert f'action="/advisor/orders/{approved}/approve"' in queue.text
                assert f'<label for="reason-{rejected}">' in queue.text

                r = await post(advisor, "/advisor/review", f"/advisor/orders/{approved}/approve")
                assert r.status_code == 303
                assert (await ok(await orders.http.get(f"/orders/{approved}", headers=ADVISOR)))["status"] == "active"
                # approving it again: the orders API's 409, shown at the queue, not a 502
                again = await post(advisor, "/advisor/review", f"/advisor/orders/{approved}/approve")
                shown = await advisor.get(again.headers["location"])
                assert shown.status_code == 200 and "Nicht möglich" in shown.text

                no_reason = await post(advisor, "/advisor/review", f"/advisor/orders/{rejected}/reject", reason=" ")
                shown = await advisor.get(no_reason.headers["location"])
                assert shown.status_code == 200 and 'role="alert"' in shown.text and "reason" in shown.text
                assert (await ok(await orders.http.get(f"/orders/{rejected}", headers=ADVISOR)))["status"] \
                    == "smart_review"
                await post(advisor, "/advisor/review", f"/advisor/orders/{rejected}/reject",
                           reason="Leistungszeitraum passt nicht zum Angebot")
                order = await ok(await orders.http.get(f"/orders/{rejected}", headers=ADVISOR))
                assert order["status"] == "rejected"
                assert order["rejection"]["reason"] == "Leistungszeitraum passt nicht zum Angebot"
                after = await advisor.get("/advisor/review")
                assert "Freigabeprojekt" not in after.text and "Ablehnprojekt" not in after.text

                # a billing run as of the invoice date, followed on its page until it has finished
                started = await post(advisor, "/advisor/billing-runs", "/advisor/billing-runs", as_of=INVOICE_DATE)
                assert started.status_code == 303, started.text
                run_page = started.headers["location"]
                assert run_page.startswith("/advisor/billing-runs/")
                first = await advisor.get(run_page)
                assert first.status_code == 200 and "05.03.2027" in first.text

                async def finished() -> str | None:
                    page = await advisor.get(run_page)
                    return page.text if 'id="run-status">Beendet<' in page.text else None
                done = await eventually(finished, timeout_s=90, interval_s=0.5, what="the run finished")
                assert 'http-equiv="refresh"' not in done  # no more refreshing once it is done
                assert re.search(r"<dt>Ausgestellt</dt><dd>1</dd>", done), done
                listed = await advisor.get("/advisor/billing-runs")
                assert run_page in listed.text

                async def issued() -> dict | None:
                    found = await ok(await invoicing.http.get("/invoices", params={"order_id": approved},
                                                              headers=ADVISOR))
                    return found[0] if found and found[0]["status"] == "invoiced" else None  # type: ignore[index]
                invoice = await eventually(issued, timeout_s=60, what="the invoice issued")
                iid = invoice["invoice_id"]

                # the member's invoice pages: the list with the reminders, the PDF shown in the detail
                mine = await member.get("/invoices")
                assert mine.status_code == 200 and f'<a href="/invoices/{iid}">{invoice["number"]}</a>' in mine.text
                assert "Mahnungen" in mine.text
                detail = await member.get(f"/invoices/{iid}")
                assert f'<object data="/invoices/{iid}/pdf/inline" type="application/pdf"' in detail.text
                assert "object-src 'self'" in detail.headers["content-security-policy"]
                inline = await member.get(f"/invoices/{iid}/pdf/inline")
                assert inline.status_code == 200 and inline.content.startswith(b"%PDF")
                assert inline.headers["x-frame-options"] == "SAMEORIGIN"
                assert "frame-ancestors 'self'" in inline.headers["content-security-policy"]
                # an issued invoice is no draft: "save and send" refused by invoicing, shown at the invoice
                sent = await post(member, f"/invoices/{iid}", f"/invoices/{iid}/send")
                shown = await member.get(sent.headers["location"])
                assert shown.status_code == 200 and 'role="alert"' in shown.text

                payments = await advisor.get("/advisor/invoices")
                assert payments.status_code == 200 and invoice["number"] in payments.text
                assert f'<label for="amount-{iid}">' in payments.text
                # a cent's fraction: the invoicing API's 422, shown at the form, not a 502
                fraction = await post(advisor, "/advisor/invoices", f"/advisor/invoices/{iid}/payments",
                                      amount="100,001", received_on=berlin_today())
                shown = await advisor.get(fraction.headers["location"])
                assert shown.status_code == 200 and 'role="alert"' in shown.text and "amount" in shown.text
                assert (await ok(await invoicing.http.get(f"/invoices/{iid}", headers=ADVISOR)))["status"] \
                    == "invoiced"
                paid = await post(advisor, "/advisor/invoices", f"/advisor/invoices/{iid}/payments",
                                  amount="1.523,20".replace(".", ""), received_on=berlin_today())
                assert paid.status_code == 303 and "done=1" in paid.headers["location"]
                assert (await ok(await invoicing.http.get(f"/invoices/{iid}", headers=ADVISOR)))["status"] == "paid"

                # the client's standing and receivables (what clients learnt from the invoice events so far)
                found = await advisor.get("/advisor/clients", params={"q": "Freigabe"})
                link = re.search(r'href="(/advisor/clients/[0-9a-f-]+)">Freigabeprojekt GmbH<', found.text)
                assert link, found.text
                client = await advisor.get(link.group(1))
                assert client.status_code == 200 and "Forderungen" in client.text and "Bonität" in client.text
                assert (await member.get(link.group(1))).status_code == 404

                # both roles: member first (their own draft-less view), the switch to advisor and back
                await sign_in(both, "beate", "member+advisor")
                home = await both.get("/dashboard")
                assert 'action="/role"' in home.text and 'href="/advisor/review"' not in home.text
                assert (await both.get("/advisor/review")).status_code == 404
                # one token with both roles: as a member the services show her only her own orders
                assert "Freigabeprojekt" not in (await both.get("/orders")).text
                r = await post(both, "/dashboard", "/role", role="advisor")
                assert r.status_code == 303 and r.headers["location"] == "/dashboard"
                home = await both.get("/dashboard")
                assert 'href="/advisor/review"' in home.text
                assert (await both.get("/advisor/review")).status_code == 200
                assert "Freigabeprojekt" in (await both.get("/orders")).text  # an advisor sees every member's
                settings = await both.get("/settings")
                assert settings.status_code == 200
                assert "Berater*in (Aktive Rolle)" in unescape(settings.text) and "Mitglied" in settings.text
                await post(both, "/settings", "/role", role="member")
                assert (await both.get("/advisor/billing-runs")).status_code == 404
                # a role the user does not have is not taken
                await post(member, "/dashboard", "/role", role="advisor")
                assert (await member.get("/advisor/review")).status_code == 404

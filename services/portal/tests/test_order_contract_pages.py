"""The order form's VAT preview and installments, and a recurring order's contract on its detail page
(issues 21 and 22), against the real clients, orders and invoicing services over Kafka and PostgreSQL:
the VAT shown changes with the place of service (partial and server-rendered form), an installment plan
by line items entered through the form (a line billed twice refused at its installment), a recurring
order paused and resumed, a refusal at its form, the three values on the detail and in the list."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from html import unescape

import httpx
import pytest
from portal_support import CSRF, error_at

from kontor.clock import SystemClock, business_today
from kontor.testing import eventually
from kontor.testing.services import auth

pytestmark = pytest.mark.integration
ORDER_URL = re.compile(r"^/orders/([0-9a-f-]{36})")
MEMBER = auth("member-1", "member")
ADVISOR = auth("advisor-1", "advisor")


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def vat_note(html: str) -> str:
    m = re.search(r'<p class="vat-preview" id="vat-note".*?</p>', html, re.S)
    assert m, html
    return text_of(m.group(0))


def first_of_month(months_ahead: int) -> dt.date:
    today = business_today(SystemClock())
    y, m = divmod(today.month - 1 + months_ahead, 12)
    return dt.date(today.year + y, m + 1, 1)


async def form_start(browser: httpx.AsyncClient) -> tuple[str, str]:
    page = await browser.get("/orders/new")
    found = await browser.get("/orders/new/clients", params={"client_q": "Werkstatt Relaunch"})
    client_id = re.search(r'name="client_id" value="([0-9a-f-]{36})"', found.text).group(1)
    return CSRF.search(page.text).group(1), client_id


def base_order(csrf: str, client_id: str, **more: str) -> dict[str, str]:
    start, end = first_of_month(1), first_of_month(13) - dt.timedelta(days=1)
    return {"csrf": csrf, "client_id": client_id, "contact_name": "Erika Muster",
            "contact_email": "erika@werkstatt.example", "sector": "design", "place_of_service": "DE",
            "currency": "EUR", "project_name": "Wartung", "description": "Monthly maintenance of the website",
            "line-0-description": "Maintenance", "line-0-quantity": "1", "line-0-unit": "month",
            "line-0-unit_price": "450.00", "line-1-description": "Hosting", "line-1-quantity": "1",
            "line-1-unit": "month", "line-1-unit_price": "50.00", "service_start": start.isoformat(),
            "service_end": end.isoformat(), "confirmation_mode": "skip", "skip_reason": "Framework contract",
            "due_in_days": "14"} | more


async def test_the_vat_preview_changes_with_the_place_of_service(browser):
    csrf, client_id = await form_start(browser)
    assert "Choose client, sector and place of service" in vat_note((await browser.get("/orders/new")).text)

    async def preview(place: str) -> str:
        async def attempt() -> str | None:
            r = await browser.get("/orders/new/vat", params={"client_id": client_id, "sector": "design",
                                                             "place_of_service": place})
            assert r.status_code == 200, r.text
            return None if "Choose client" in r.text else vat_note(r.text)
        return await eventually(attempt, what="the orders service knowing the client")
    germany = await preview("DE")
    assert "VAT: 19 %" in germany and "Not subject" not in germany
    abroad = await preview("OTHER")  # a company outside the EU: not subject to German VAT
    assert "0 %" in abroad and "Not subject to German VAT" in abroad
    # the form without JavaScript (any re-render, here "search") shows it as well, in German too
    r = await browser.post("/orders/new", data=base_order(csrf, client_id, place_of_service="OTHER",
                                                          action="search"))
    assert "Not subject to German VAT" in vat_note(r.text)
    browser.cookies.set("kontor_lang", "de")
    r = await browser.get("/orders/new/vat", params={"client_id": client_id, "sector": "design",
                                                     "place_of_service": "OTHER"})
    assert "Nicht im Inland steuerbare Leistung" in vat_note(r.text)
    # the partial is fetched again by htmx when sector, place or client change
    assert 'hx-get="/orders/new/vat"' in r.text and "change from:#f-place_of_service" in r.text


async def test_an_installment_plan_by_line_items_through_the_form(browser, seeded):
    csrf, client_id = await form_start(browser)
    when = (first_of_month(1) + dt.timedelta(days=14)).isoformat(), (first_of_month(2) + dt.timedelta(days=14))
    plan = base_order(csrf, client_id, payment_mode="installments", **{
        "inst-0-date": when[0], "inst-0-l0": "1", "inst-0-l1": "1", "inst-1-date": when[1].isoformat(),
        "inst-1-l1": "1"})
    added = await browser.post("/orders/new", data={**plan, "action": "add_installment"})
    assert 'id="f-inst-2-date"' in added.text and 'name="inst-1-l1" value="1" checked' in added.text
    removed = await browser.post("/orders/new", data={**plan, "inst-2-date": "", "action": "remove-inst-2"})
    assert 'id="f-inst-2-date"' not in removed.text and 'id="f-inst-1-date"' in removed.text

    # the hosting line in both installments: the orders API refuses it at the second installment's lines
    async def refused() -> httpx.Response | None:
        r = await browser.post("/orders/new", data={**plan, "action": "save"})
        return None if error_at(r.text, "client_id") else r
    r = await eventually(refused, what="the orders service knowing the client")
    assert r.status_code == 422, r.text
    assert error_at(r.text, "inst-1-lines") and not error_at(r.text, "inst-0-lines"), r.text
    assert 'name="inst-0-l1" value="1" checked' in r.text  # what was entered is kept

    fixed = {k: v for k, v in plan.items() if k != "inst-0-l1"}
    r = await browser.post("/orders/new", data={**fixed, "action": "save"})
    assert r.status_code == 303, r.text
    order_id = ORDER_URL.match(r.headers["location"]).group(1)
    async with httpx.AsyncClient(base_url=seeded.settings.orders_url) as orders:
        saved = (await orders.get(f"/orders/{order_id}", headers=MEMBER)).json()
    assert [(i["date"], i["lines"]) for i in saved["payment"]["installments"]] == [
        (when[0], [0]), (when[1].isoformat(), [1])]
    # the draft's edit shows the plan as entered
    edit = await browser.get(f"/orders/{order_id}/edit")
    assert 'name="inst-0-l0" value="1" checked' in edit.text and 'name="inst-1-l1" value="1" checked' in edit.text
    assert 'name="inst-0-l1" value="1" checked' not in edit.text


async def test_a_recurring_order_paused_and_resumed_through_the_portal(browser, seeded):
    csrf, client_id = await form_start(browser)
    recurring = base_order(csrf, client_id, payment_mode="recurring", interval="month",
                           first_invoice_date=first_of_month(1).isoformat())

    async def submitted() -> httpx.Response | None:
        r = await browser.post("/orders/new", data={**recurring, "action": "submit"})
        return None if error_at(r.text, "client_id") else r
    r = await eventually(submitted, what="the orders service knowing the client")
    assert r.status_code == 303, r.text
    order_id = ORDER_URL.match(r.headers["location"]).group(1)
    async with httpx.AsyncClient(base_url=seeded.settings.orders_url) as orders:
        approved = await orders.post(f"/orders/{order_id}/approve", headers=ADVISOR)
        assert approved.status_code == 200 and approved.json()["status"] == "active", approved.text
        planned_before = len(approved.json()["schedule"])

        detail = await browser.get(f"/orders/{order_id}")
        page = text_of(detail.text)
        assert "Contract" in page and "One-off term" in page and "Running" in page
        assert "Net value" in page and "500.00" in page and 'id="plan-value"' in detail.text
        assert f'action="/orders/{order_id}/contract"' in detail.text and 'for="pause-from"' in detail.text

        # a one-off contract cannot be cancelled: the API's reason at the contract's form
        r = await browser.post(f"/orders/{order_id}/contract", data={"csrf": csrf, "action": "cancel"})
        assert r.status_code == 303 and r.headers["location"].endswith("#contract")
        shown = await browser.get(r.headers["location"])
        assert 'id="refused-contract"' in shown.text and "one-off contract" in text_of(shown.text)
        assert 'class="card error" role="alert" id="refused"' not in shown.text  # at the form, not on top

        pause_from = first_of_month(3)
        r = await browser.post(f"/orders/{order_id}/contract", data={"csrf": csrf, "action": "pause",
                                                                     "from": pause_from.isoformat()})
        assert r.status_code == 303 and "refused" not in r.headers["location"], r.headers["location"]
        paused = (await orders.get(f"/orders/{order_id}", headers=MEMBER)).json()
        assert paused["contract"]["state"] == "paused" and len(paused["schedule"]) < planned_before
        detail = await browser.get(f"/orders/{order_id}")
        assert 'id="contract-state">Paused<' in detail.text and 'for="resume-from"' in detail.text
        assert "until resumed" in text_of(detail.text)

        r = await browser.post(f"/orders/{order_id}/contract", data={"csrf": csrf, "action": "resume",
                                                                     "from": first_of_month(5).isoformat()})
        assert r.status_code == 303 and "refused" not in r.headers["location"], r.headers["location"]
        resumed = (await orders.get(f"/orders/{order_id}", headers=MEMBER)).json()
        assert resumed["contract"]["state"] == "running"
        assert len(paused["schedule"]) < len(resumed["schedule"]) < planned_before
        assert 'id="contract-state">Running<' in (await browser.get(f"/orders/{order_id}")).text

        # a price change before the order's first period is refused (retroactive) at the price form
        r = await browser.post(f"/orders/{order_id}/price-changes", data={
            "csrf": csrf, "line": "0", "unit_price": "480.00", "effective_from": "2020-01-01"})
        assert r.status_code == 303 and "at=price" in r.headers["location"]
        assert 'id="refused-price"' in (await browser.get(r.headers["location"])).text
        r = await browser.post(f"/orders/{order_id}/price-changes", data={
            "csrf": csrf, "line": "0", "unit_price": "480.00", "effective_from": first_of_month(6).isoformat()})
        assert r.status_code == 303 and "refused" not in r.headers["location"], r.headers["location"]
        changed = (await orders.get(f"/orders/{order_id}", headers=MEMBER)).json()
        prices = {p["invoice_date"]: next(line["unit_price"] for line in p["lines"]
                                          if line["description"] == "Maintenance") for p in changed["schedule"]}
        assert prices and all((price == "480.00") == (day >= first_of_month(6).isoformat())
                              for day, price in prices.items()), prices
        # renewing automatically: the notice deadline the API computed on the page, then the cancellation
        r = await browser.post(f"/orders/{order_id}/contract", data={"csrf": csrf, "action": "auto_renew",
                                                                     "term_months": "12", "notice_months": "3"})
        assert r.status_code == 303 and "refused" not in r.headers["location"], r.headers["location"]
        renewing = (await orders.get(f"/orders/{order_id}", headers=MEMBER)).json()["contract"]
        assert renewing["kind"] == "auto_renew" and renewing["notice_deadline"]
        detail = await browser.get(f"/orders/{order_id}")
        assert "Renews automatically" in text_of(detail.text)
        assert f'id="notice-deadline">{renewing["notice_deadline"]}<' in detail.text
        assert 'value="cancel"' in detail.text and 'value="auto_renew"' not in detail.text
        r = await browser.post(f"/orders/{order_id}/contract", data={"csrf": csrf, "action": "cancel"})
        assert r.status_code == 303 and "refused" not in r.headers["location"], r.headers["location"]
        cancelled = (await orders.get(f"/orders/{order_id}", headers=MEMBER)).json()["contract"]
        assert cancelled["cancelled_on"]
        assert "Cancelled on" in text_of((await browser.get(f"/orders/{order_id}")).text)

        # nothing invoiced yet: tidying up is refused, with the API's reason at the archive section
        r = await browser.post(f"/orders/{order_id}/tidy-up", data={"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"].endswith("#archive"), r.headers["location"]
        shown = await browser.get(r.headers["location"])
        assert 'id="refused-tidy"' in shown.text and "no fully invoiced lines" in text_of(shown.text)
        # no CSRF token: refused
        assert (await browser.post(f"/orders/{order_id}/contract", data={"action": "pause"})).status_code == 403
        assert (await browser.post(f"/orders/{order_id}/tidy-up", data={})).status_code == 403

    listed = await browser.get("/orders", params={"sort": "-net_value"})
    assert "Plan value" in listed.text and "Order value" in listed.text and "Sum of the listed orders" in listed.text
    # the sum row: the member's orders' net values added up (EUR only here), as the orders list gives them
    async with httpx.AsyncClient(base_url=seeded.settings.orders_url) as orders:
        mine = (await orders.get("/orders", params={"limit": 200}, headers=MEMBER)).json()
    net = sum(Decimal(o["net_total"]) for o in mine)
    sum_row = re.search(r'<tr class="sum">(.*?)</tr>', listed.text, re.S)
    assert sum_row and f"{net:,.2f} EUR" in sum_row.group(1), (net, sum_row and sum_row.group(1))
    assert 'aria-sort="descending"' in listed.text

"""The order pages against the real clients and orders services: the new-order form (client search,
a new client, lines added and removed, every 422 of the API at its field with the values kept, saved
and submitted) and the order detail's actions (comment, attachment up and down, duplicate, edit of a
draft, a 409's reason shown)."""
from __future__ import annotations

import re
from html import unescape

import httpx
import pytest
from portal_support import CSRF, error_at

from kontor.testing import eventually

pytestmark = pytest.mark.integration
ORDER_URL = re.compile(r"^/orders/([0-9a-f-]{36})$")


def value_of(html: str, field: str) -> str | None:
    m = re.search(rf'id="f-{re.escape(field)}" name="{re.escape(field)}" type="[a-z]+" value="([^"]*)"', html)
    return unescape(m.group(1)) if m else None


async def test_member_creates_a_client_and_an_order_with_the_form_errors_at_their_fields(browser):
    form_page = await browser.get("/orders/new")
    assert form_page.status_code == 200 and 'for="f-contact_name"' in form_page.text
    csrf = CSRF.search(form_page.text).group(1)
    # the client search: a seeded client by three letters (the partial htmx swaps in)
    found = await browser.get("/orders/new/clients", params={"client_q": "werk"})
    assert "Werkstatt Relaunch Portal GmbH" in found.text
    assert "Geheimprojekt" in found.text or "Werkstatt" in found.text  # the registry is shared by members
    assert "radio" not in (await browser.get("/orders/new/clients", params={"client_q": "we"})).text  # fewer than three

    # a new client without a city: the clients API's 422 at the city field, the rest kept
    base = {"csrf": csrf, "new_kind": "company", "new_name": "Atelier Nord GmbH", "new_street": "Hafenweg 3",
            "new_postal_code": "20457", "new_country": "DE", "new_invoice_email": "buchhaltung@atelier.example",
            "contact_name": "Jana Nord", "line-0-description": "Workshop"}
    refused = await browser.post("/clients/new", data=base)
    assert refused.status_code == 422 and error_at(refused.text, "new_city")
    assert value_of(refused.text, "contact_name") == "Jana Nord"
    created = await browser.post("/clients/new", data={**base, "new_city": "Hamburg"})
    assert created.status_code == 200, created.text
    client_id = re.search(r'name="client_id" value="([0-9a-f-]{36})"', created.text).group(1)
    assert "Atelier Nord GmbH" in created.text and value_of(created.text, "contact_name") == "Jana Nord"

    # add a line and remove one: the form re-renders with what was entered
    order = {"csrf": csrf, "client_id": client_id, "contact_name": "Jana Nord",
             "contact_email": "jana@atelier.example", "sector": "design", "place_of_service": "DE",
             "currency": "EUR", "project_name": "Hafenfest", "line-0-description": "Workshop",
             "line-0-quantity": "2", "line-0-unit": "day", "line-0-unit_price": "abc",
             "confirmation_mode": "skip", "skip_reason": "Signed framework contract",
             "payment_mode": "after_completion", "due_in_days": "14", "comment_for_advisors": "Urgent"}
    added = await browser.post("/orders/new", data={**order, "action": "add_line"})
    assert added.status_code == 200 and 'id="f-line-1-description"' in added.text
    removed = await browser.post("/orders/new",
                                 data={**order, "line-1-description": "Extra", "action": "remove-line-1"})
    assert 'id="f-line-1-description"' not in removed.text
    assert value_of(removed.text, "line-0-description") == "Workshop"

    # a wrong unit price: the orders API's 422 at that line's field, every value kept
    wrong = await browser.post("/orders/new", data={**order, "action": "save"})
    assert wrong.status_code == 422
    assert error_at(wrong.text, "line-0-unit_price"), wrong.text
    assert value_of(wrong.text, "line-0-unit_price") == "abc" and value_of(wrong.text, "project_name") == "Hafenfest"
    assert 'aria-invalid="true" aria-describedby="f-line-0-unit_price-error"' in wrong.text

    # submitted without what submitting needs: saved as a draft, the submit's 422 at its fields
    # (the orders service learns of the new client through Kafka: until then the client field says so)
    async def saved() -> httpx.Response | None:
        r = await browser.post("/orders/new", data={**order, "line-0-unit_price": "640.00", "action": "submit"},
                               files={"attachment": ("brief.pdf", b"%PDF-1.4 brief", "application/pdf")})
        return None if error_at(r.text, "client_id") else r
    incomplete = await eventually(saved, what="the orders service knowing the new client")
    assert incomplete.status_code == 422
    assert error_at(incomplete.text, "description") and error_at(incomplete.text, "service_end")
    draft_action = re.search(r'action="(/orders/[0-9a-f-]{36}/edit)"', incomplete.text).group(1)
    assert value_of(incomplete.text, "line-0-unit_price") == "640.00"
    fixed = await browser.post(draft_action, data={**order, "line-0-unit_price": "640.00", "action": "submit",
                                                   "description": "Two days of workshop for the harbour festival",
                                                   "service_start": "2027-03-01", "service_end": "2027-03-31",
                                                   "invoice_date": "2027-04-01"})
    assert fixed.status_code == 303, fixed.text
    order_id = ORDER_URL.match(fixed.headers["location"]).group(1)
    detail = await browser.get(f"/orders/{order_id}")
    assert "Hafenfest" in detail.text and "Atelier Nord GmbH" in detail.text
    assert "Draft" not in re.search(r'<span class="badge">([^<]*)<', detail.text).group(1)  # submitted
    assert "brief.pdf" in detail.text
    assert f'action="/orders/{order_id}/edit"' not in detail.text and "/edit\"" not in detail.text


async def test_order_detail_actions_with_the_api_s_answers(browser, seeded):
    order_id = seeded.order_of["member-1"]
    detail = await browser.get(f"/orders/{order_id}")
    csrf = CSRF.search(detail.text).group(1)
    assert f'href="/orders/{order_id}/edit"' in detail.text and f"/orders/{order_id}/do/submit" in detail.text
    assert "/do/complete" not in detail.text and "/do/cancellation-request" not in detail.text  # a draft

    r = await browser.post(f"/orders/{order_id}/comments", data={"csrf": csrf, "text": "Please check the rate"})
    assert r.status_code == 303
    r = await browser.post(f"/orders/{order_id}/attachments", data={"csrf": csrf},
                           files={"attachment": ("offer.pdf", b"%PDF-1.4 offer", "application/pdf")})
    assert r.status_code == 303
    detail = await browser.get(f"/orders/{order_id}")
    assert "Please check the rate" in detail.text
    link = re.search(rf'href="(/orders/{order_id}/attachments/[0-9a-f-]{{36}})"', detail.text).group(1)
    download = await browser.get(link)
    assert download.status_code == 200 and download.content == b"%PDF-1.4 offer"

    # a 409 of the API (a draft cannot be completed): its reason on the detail page
    r = await browser.post(f"/orders/{order_id}/do/complete", data={"csrf": csrf})
    assert r.status_code == 303 and "refused=" in r.headers["location"]
    shown = await browser.get(r.headers["location"])
    assert 'id="refused"' in shown.text
    # no CSRF token: refused
    assert (await browser.post(f"/orders/{order_id}/do/duplicate", data={})).status_code == 403

    # edit the draft: the form with its values, saved with PUT
    edit = await browser.get(f"/orders/{order_id}/edit")
    assert value_of(edit.text, "project_name") == "Relaunch Portal"
    form = dict(re.findall(r'name="([\w-]+)" type="[a-z]+" value="([^"]*)"', edit.text))
    form["client_id"] = re.search(r'type="hidden" name="client_id" value="([^"]+)"', edit.text).group(1)
    form.update(csrf=csrf, project_name="Relaunch Portal 2", action="save", currency="EUR",
                **{"line-0-unit": "day", "line-1-unit": "hour"})
    saved = await browser.post(f"/orders/{order_id}/edit", data=form)
    assert saved.status_code == 303, saved.text
    assert "Relaunch Portal 2" in (await browser.get(f"/orders/{order_id}")).text

    dup = await browser.post(f"/orders/{order_id}/do/duplicate", data={"csrf": csrf})
    assert dup.status_code == 303
    new_id = ORDER_URL.match(dup.headers["location"]).group(1)
    assert new_id != order_id

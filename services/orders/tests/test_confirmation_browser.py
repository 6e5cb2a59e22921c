"""The client's confirmation page in a real browser (Debian's Chromium driven by Playwright)
against the real orders service, PostgreSQL and Kafka, in German and in English: the sender
and its imprint, the order's lines, totals and payment plan with each installment's amount
beside its share, written as people write them; the three answers given with the keyboard
by the fields' labels, each checked through the orders API. Screenshots at desktop and phone
width go to .local/screenshots/ (confirmation-*)."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from kontor.clock import FixedClock
from kontor.contracts.clients import ClientRegisteredV1, ClientSnapshotV1, ClientStandingV1
from kontor.contracts.common import Actor, Address
from kontor.testing import eventually
from kontor.testing.browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, VIEWPORTS
from kontor.testing.kafka import publish_event, read_topic
from kontor.testing.services import auth, running_service
from kontor_orders.spec import SPEC

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (deploy/bootstrap.sh installs it)")]
NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)  # offers valid until 15 Dec 2026 are open
MEMBER = auth("member-1", "member")
ADVISOR = auth("advisor-1", "advisor")

# 2,5 days at 1.646,00 EUR: 4.115,00 EUR net, 19 % VAT 781,85 EUR, 4.896,85 EUR in all; installments of
# 30 % (1.234,50 EUR net, 234,56 VAT, 1.469,06 gross), 30 % and the final 40 % (the remainder: 1.646,00 net,
# 781,85 - 2 x 234,56 = 312,73 VAT, 1.958,73 gross)
EXPECTED = {
    "de": ["2,5 Tag(e)", "1.646,00 EUR", "4.115,00 EUR", "19 %", "781,85 EUR", "4.896,85 EUR", "30 %", "40 %",
           "1.234,50 EUR", "234,56 EUR", "1.469,06 EUR", "312,73 EUR", "1.958,73 EUR", "15.01.2027",
           "01.01.2027 – 31.03.2027", "15.12.2026"],
    "en": ["2.5 day(s)", "1,646.00 EUR", "4,115.00 EUR", "19 %", "781.85 EUR", "4,896.85 EUR", "30 %", "40 %",
           "1,234.50 EUR", "234.56 EUR", "1,469.06 EUR", "312.73 EUR", "1,958.73 EUR", "2027-01-15",
           "2027-01-01 – 2027-03-31", "2026-12-15"],
}
TEXTS = {
    "de": {"heading": "Bitte bestätigen Sie Ihren Auftrag", "confirm": "Auftrag bestätigen",
           "changes": "Welche Änderungen wünschen Sie?", "changes_button": "Änderungen anfragen",
           "reject": "Warum lehnen Sie den Auftrag ab?", "reject_button": "Ablehnen",
           "done_confirm": "Der Auftrag ist bestätigt", "done_changes": "Änderungswunsch wurde übermittelt",
           "done_reject": "Der Auftrag wurde abgelehnt", "imprint": "Genossenschaftsregister GnR 999 B",
           "legal": "eingetragene Genossenschaft", "board": "Vorstand: Anna Beispiel, Jonas Muster",
           "asks": "Kontor eG bittet {client} um Bestätigung des Auftrags „{project}“."},
    "en": {"heading": "Please confirm your order", "confirm": "Confirm the order",
           "changes": "Which changes would you like?", "changes_button": "Request changes",
           "reject": "Why do you reject the order?", "reject_button": "Reject",
           "done_confirm": "The order is confirmed", "done_changes": "Your request for changes was sent",
           "done_reject": "The order was rejected", "imprint": "Cooperative register GnR 999 B",
           "legal": "registered cooperative", "board": "Board: Anna Beispiel, Jonas Muster",
           "asks": "Kontor eG asks {client} to confirm the order “{project}”."},
}


async def known_client(infra, prefix, language: str) -> tuple[uuid.UUID, str]:
    client_id = uuid.uuid4()
    name = "Müller Design GmbH" if language == "de" else "Northwind Ltd"
    snapshot = ClientSnapshotV1(client_id=client_id, kind="company", name=name, vat_id="DE136695976",
                                address=Address(street="Hauptstraße 1", postal_code="10115", city="Berlin",
                                                country="DE"),
                                invoice_email="rechnung@acme.example", language=language,
                                standing=ClientStandingV1(status="ok"), version=1)
    await publish_event(infra.kafka_bootstrap, prefix, ClientRegisteredV1(
        client_id=client_id, client=snapshot, occurred_at=NOW, actor=Actor(kind="member", id="member-1")),
        time=NOW)
    return client_id, name


def order_body(client_id: uuid.UUID, project: str) -> dict:
    return {
        "client_id": str(client_id), "contact_person": {"name": "Erika Muster", "email": "erika@acme.example"},
        "sector": "design", "place_of_service": "DE", "project_name": project,
        "description": "Redesign of the company website.",
        "lines": [{"description": "Design sprint", "quantity": "2.5", "unit": "day", "unit_price": "1646.00"}],
        "currency": "EUR", "service_period": {"start": "2027-01-01", "end": "2027-03-31"},
        "confirmation": {"mode": "send", "offer_valid_until": "2026-12-15"},
        "payment": {"mode": "installments", "due_in_days": 14, "installments": [
            {"date": "2027-01-15", "percentage": "30"}, {"date": "2027-02-15", "percentage": "30"},
            {"date": "2027-03-31", "percentage": "40"}]},
    }


async def order_awaiting_confirmation(svc, infra, prefix, client_id: uuid.UUID, project: str) -> tuple[str, str]:
    """An order sent to the client: its id and the path of its confirmation link (from the event)."""
    async def accepted():
        r = await svc.http.post("/orders", json=order_body(client_id, project), headers=MEMBER)
        return r.json() if r.status_code == 201 else None
    order = await eventually(accepted, what="orders knowing the client")
    for action, headers in (("submit", MEMBER), ("approve", ADVISOR)):
        r = await svc.http.post(f"/orders/{order['order_id']}/{action}", headers=headers)
        assert r.status_code == 200, (action, r.text)
    assert r.json()["status"] == "client_confirmation"

    async def link():
        records = await read_topic(infra.kafka_bootstrap, f"{prefix}kontor.orders.v1", min_count=1)
        for record in records:
            event = json.loads(record.value)
            if record.type == "kontor.order.sent-for-confirmation.v1" and event["order_id"] == order["order_id"]:
                return event["confirmation_url"]
        return None
    url = await eventually(link, what="the confirmation link in the event")
    return order["order_id"], url


async def status_of(svc, order_id: str) -> dict:
    r = await svc.http.get(f"/orders/{order_id}", headers=MEMBER)
    assert r.status_code == 200, r.text
    return r.json()


async def test_the_client_confirms_requests_changes_and_rejects_in_chromium_in_german_and_english(
        infra, topic_prefix):
    from playwright.async_api import async_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False, serve_http=True) as svc, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for lang in ("de", "en"):
                t = TEXTS[lang]
                client_id, client_name = await known_client(infra, topic_prefix, lang)
                links = {answer: await order_awaiting_confirmation(svc, infra, topic_prefix, client_id,
                                                                   f"Relaunch {lang} {answer}")
                         for answer in ("confirm", "request_changes", "reject")}

                # the page as the client sees it, at desktop and at phone width
                order_id, url = links["confirm"]
                for device, viewport in VIEWPORTS:
                    context = await browser.new_context(viewport=viewport)
                    page = await context.new_page()
                    response = await page.goto(url)
                    assert response is not None and response.status == 200
                    csp = response.headers["content-security-policy"]
                    assert "default-src 'none'" in csp and "form-action 'self'" in csp and "script-src" not in csp
                    assert await page.get_attribute("html", "lang") == lang
                    assert await page.locator("h1").inner_text() == t["heading"]
                    main = await page.locator("main").inner_text()
                    assert t["asks"].format(client=client_name, project=f"Relaunch {lang} confirm") in main
                    for text in EXPECTED[lang]:
                        assert text in main, (lang, text)
                    assert "E+" not in main
                    sender = await page.locator("#sender").inner_text()
                    assert "Kontor eG" in sender and "Genossenschaftsweg 1" in sender and "+49 30 1234567" in sender
                    footer = await page.locator("footer").inner_text()
                    assert t["imprint"] in footer and t["legal"] in footer and t["board"] in footer
                    assert "DE136695976" in footer
                    rows = page.locator("#installments tbody tr")
                    assert await rows.count() == 3
                    first = await rows.nth(0).inner_text()
                    assert "30 %" in first and ("1.234,50 EUR" if lang == "de" else "1,234.50 EUR") in first
                    # nothing wider than the screen: a phone scrolls down, never sideways
                    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 0, (device, overflow)
                    await page.screenshot(path=SCREENSHOTS / f"confirmation-{device}-{lang}.png", full_page=True)
                    await context.close()

                context = await browser.new_context(viewport=dict(VIEWPORTS[0][1]))
                page = await context.new_page()

                # confirm, with the keyboard
                await page.goto(url)
                await page.get_by_role("button", name=t["confirm"]).focus()
                await page.keyboard.press("Enter")
                await page.wait_for_load_state()
                assert t["done_confirm"] in await page.locator("#notice").inner_text()
                await page.screenshot(path=SCREENSHOTS / f"confirmation-confirmed-desktop-{lang}.png", full_page=True)
                assert (await status_of(svc, order_id))["status"] == "active"

                # request changes: the message by its label, then Tab to the form's button and Enter
                order_id, url = links["request_changes"]
                await page.goto(url)
                await page.get_by_label(t["changes"]).fill("Bitte den Workshop auf drei Tage verlängern.")
                await page.keyboard.press("Tab")
                assert await page.evaluate("document.activeElement.textContent") == t["changes_button"]
                await page.keyboard.press("Enter")
                await page.wait_for_load_state()
                assert t["done_changes"] in await page.locator("#notice").inner_text()
                changed = await status_of(svc, order_id)
                assert changed["status"] == "draft"
                assert changed["changes_requested"] == "Bitte den Workshop auf drei Tage verlängern."

                # reject with a reason
                order_id, url = links["reject"]
                await page.goto(url)
                await page.get_by_label(t["reject"]).fill("Budget was cut.")
                await page.get_by_role("button", name=t["reject_button"], exact=True).click()
                await page.wait_for_load_state()
                assert t["done_reject"] in await page.locator("#notice").inner_text()
                rejected = await status_of(svc, order_id)
                assert rejected["status"] == "rejected"
                assert rejected["rejection"] == {"by": "client", "reason": "Budget was cut."}

                # a used link says so, in the client's language, with the sender to contact
                response = await page.goto(url)
                assert response is not None and response.status == 410
                await page.screenshot(path=SCREENSHOTS / f"confirmation-used-desktop-{lang}.png", full_page=True)
                assert "rechnung@kontor.example" in await page.locator("main").inner_text()
                await context.close()
        finally:
            await browser.close()


async def test_the_client_reads_the_page_in_the_other_language(infra, topic_prefix):
    """A German client's page is a link away in English, and the answer given there is thanked in English."""
    from playwright.async_api import async_playwright

    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False, serve_http=True) as svc, async_playwright() as pw:
        client_id, _ = await known_client(infra, topic_prefix, "de")
        order_id, url = await order_awaiting_confirmation(svc, infra, topic_prefix, client_id, "Relaunch")
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(url)
            assert await page.locator("h1").inner_text() == TEXTS["de"]["heading"]
            await page.get_by_role("link", name="English").click()
            await page.wait_for_load_state()
            assert await page.locator("h1").inner_text() == TEXTS["en"]["heading"]
            assert await page.get_attribute("html", "lang") == "en"
            assert "1,234.50 EUR" in await page.locator("main").inner_text()
            await page.get_by_role("button", name=TEXTS["en"]["confirm"]).click()
            await page.wait_for_load_state()
            assert TEXTS["en"]["done_confirm"] in await page.locator("#notice").inner_text()
            assert (await status_of(svc, order_id))["status"] == "active"
        finally:
            await browser.close()

"""The order form's VAT preview (htmx) and installment rows, and a recurring order's detail with its
contract, in a real browser (Debian's Chromium driven by Playwright) against the real services: German
at desktop width, English at phone width; screenshots in .local/screenshots/."""
from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest
from portal_support import CHROMIUM, CHROMIUM_ARGS, SHOTS, platform, served_portal

from kontor.clock import SystemClock, business_today
from kontor.testing import eventually
from kontor.testing.services import auth
from kontor_portal import i18n

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (deploy/bootstrap.sh installs it)")]
MEMBER = auth("member-1", "member")
ADVISOR = auth("advisor-1", "advisor")


def first_of_month(months_ahead: int) -> dt.date:
    today = business_today(SystemClock())
    y, m = divmod(today.month - 1 + months_ahead, 12)
    return dt.date(today.year + y, m + 1, 1)


async def active_recurring_order(orders_url: str, draft_id: str) -> str:
    async with httpx.AsyncClient(base_url=orders_url) as orders:
        client_id = (await orders.get(f"/orders/{draft_id}", headers=MEMBER)).json()["client"]["client_id"]
        r = await orders.post("/orders", headers=MEMBER, json={
            "client_id": client_id, "contact_person": {"name": "Erika Muster", "email": "erika@werkstatt.example"},
            "sector": "design", "place_of_service": "DE", "project_name": "Wartung 2027", "currency": "EUR",
            "description": "Monthly maintenance and hosting of the website",
            "lines": [{"description": "Maintenance", "quantity": "1", "unit": "month", "unit_price": "450.00"},
                      {"description": "Hosting", "quantity": "1", "unit": "month", "unit_price": "50.00"}],
            "service_period": {"start": first_of_month(1).isoformat(),
                               "end": (first_of_month(13) - dt.timedelta(days=1)).isoformat()},
            "confirmation": {"mode": "skip", "skip_reason": "Framework contract"},
            "payment": {"mode": "recurring", "due_in_days": 14, "interval": "month",
                        "first_invoice_date": first_of_month(1).isoformat()}})
        assert r.status_code == 201, r.text
        order_id = r.json()["order_id"]
        for action, headers in (("submit", MEMBER), ("approve", ADVISOR)):
            r = await orders.post(f"/orders/{order_id}/{action}", headers=headers)
            assert r.status_code == 200, r.text
        assert r.json()["status"] == "active"
        return str(order_id)


async def test_vat_preview_installments_and_a_recurring_order_s_contract_in_chromium(infra, topic_prefix):
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    async with platform(infra, topic_prefix) as seeded, served_portal(seeded.settings) as base, \
            async_playwright() as pw:
        recurring = await active_recurring_order(seeded.settings.orders_url, seeded.order_of["member-1"])
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for width, height, device, lang in ((1280, 900, "desktop", "de"), (390, 844, "phone", "en")):
                def t(key: str, lang: str = lang) -> str:
                    return i18n.text(lang, key)
                context = await browser.new_context(viewport={"width": width, "height": height},
                                                    locale="de-DE" if lang == "de" else "en-GB")
                page = await context.new_page()

                async def slow_vat(route, request) -> None:
                    # every VAT request stays in flight for a while, as on a loaded server: a choice made
                    # meanwhile must replace it, not be dropped (htmx's default) leaving a stale note
                    await asyncio.sleep(0.8)
                    try:
                        await route.continue_()
                    except PlaywrightError as exc:  # htmx aborted it for the newer one: nothing to continue
                        assert "aborted" in str(exc).lower() or "handled" in str(exc).lower(), exc
                await page.route("**/orders/new/vat?*", slow_vat)
                await page.goto(f"{base}/signin")
                await page.get_by_label(t("user_id"), exact=True).fill("member-1")
                await page.get_by_label(t("display_name"), exact=True).press("Enter")
                await page.wait_for_url(f"{base}/dashboard")
                await page.goto(f"{base}/orders/new")
                await page.get_by_label(t("client_search"), exact=True).press_sequentially("Werk", delay=60)
                await page.get_by_text("Werkstatt Relaunch Portal GmbH").click()
                # sector then place at once: the place's request comes while the sector's is in flight
                await page.get_by_label(t("sector"), exact=True).select_option("design")
                place = page.get_by_label(t("place_of_service"), exact=True)
                await place.select_option("DE")
                note = page.locator("#vat-note")

                async def shows(text: str, note=note) -> bool | None:
                    return True if text in await note.inner_text() else None
                await eventually(lambda: shows("19 %"), what="the VAT for Germany")
                await place.select_option("OTHER")  # a company outside the EU: not subject to German VAT
                abroad = "Nicht im Inland" if lang == "de" else "Not subject"
                await eventually(lambda: shows(abroad), what="the VAT outside the EU")  # noqa: B023
                assert page.url == f"{base}/orders/new"  # no reload: htmx swapped the note

                await page.locator("#f-line-0-description").fill("Konzept" if lang == "de" else "Concept")
                await page.locator("#f-line-0-quantity").fill("3")
                await page.locator("#f-line-0-unit").select_option("day")
                await page.locator("#f-line-0-unit_price").fill("640")
                await page.get_by_label(t("payment_mode"), exact=True).select_option("installments")
                await page.get_by_role("button", name=t("add_installment")).click()
                await page.wait_for_load_state()
                await page.get_by_role("button", name=t("add_installment")).click()
                await page.wait_for_load_state()
                assert await page.locator("fieldset.inst").count() == 2
                await page.locator("#f-inst-0-percentage").fill("30")
                first_line = page.locator("fieldset.inst").nth(1).get_by_role("checkbox").first
                await first_line.focus()
                await page.keyboard.press("Space")  # keyboard-usable
                assert await first_line.is_checked()
                await page.screenshot(path=SHOTS / f"portal-order-form-vat-installments-{device}-{lang}.png",
                                      full_page=True)
                await page.get_by_role("button", name=f"{t('remove')} ({t('installment')} 2)").click()
                await page.wait_for_load_state()
                assert await page.locator("fieldset.inst").count() == 1

                await page.goto(f"{base}/orders/{recurring}")
                main = await page.locator("main").inner_text()
                for key in ("contract", "contract_one_off", "contract_state_running", "net_value", "plan_value",
                            "order_value", "do_pause", "price_change"):
                    assert t(key) in main, (key, main)
                await page.screenshot(path=SHOTS / f"portal-order-recurring-{device}-{lang}.png", full_page=True)
                await context.close()
        finally:
            await browser.close()

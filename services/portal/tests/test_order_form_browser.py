"""The new-order form in a real browser (Debian's Chromium driven by Playwright) against the real
clients and orders services: a member finds a client by typing (htmx), registers a new client,
fills in the order with one wrong field, sees the API's error at that field, fixes it and
submits. German at desktop width, English at phone width; screenshots in .local/screenshots/."""
from __future__ import annotations

import pytest
from portal_support import CHROMIUM, CHROMIUM_ARGS, SHOTS, platform, served_portal

from kontor.testing import eventually
from kontor_portal import i18n

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (deploy/bootstrap.sh installs it)")]


async def test_member_creates_a_client_and_an_order_through_the_form_in_chromium(infra, topic_prefix):
    from playwright.async_api import Page, async_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    async with platform(infra, topic_prefix) as seeded, served_portal(seeded.settings) as base, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for width, height, device, lang in ((1280, 900, "desktop", "de"), (390, 844, "phone", "en")):
                def t(key: str, lang: str = lang) -> str:
                    return i18n.text(lang, key)
                context = await browser.new_context(viewport={"width": width, "height": height},
                                                    locale="de-DE" if lang == "de" else "en-GB")
                page = await context.new_page()
                await page.goto(f"{base}/signin")
                await page.get_by_label(t("user_id"), exact=True).fill("member-1")
                await page.get_by_label(t("display_name"), exact=True).press("Enter")
                await page.wait_for_url(f"{base}/dashboard")
                await page.get_by_role("link", name=t("new_order")).click()
                await page.wait_for_url(f"{base}/orders/new")

                # typing three letters: htmx fetches the matching clients (no reload)
                await page.get_by_label(t("client_search"), exact=True).press_sequentially("Werk", delay=60)
                await page.get_by_text("Werkstatt Relaunch Portal GmbH").wait_for()
                assert page.url == f"{base}/orders/new"

                # a new client
                await page.get_by_text(t("new_client")).click()
                name = f"Atelier Nord {device} GmbH"
                await page.get_by_label(t("client_name"), exact=True).fill(name)
                await page.get_by_label(t("street"), exact=True).fill("Hafenweg 3")
                await page.get_by_label(t("postal_code"), exact=True).fill("20457")
                await page.get_by_label(t("city"), exact=True).fill("Hamburg")
                await page.get_by_label(t("invoice_email"), exact=True).fill("buchhaltung@atelier.example")
                await page.get_by_role("button", name=t("register_client")).click()
                await page.wait_for_load_state()
                assert name in await page.locator("#h-client + p").inner_text()

                # the order, with a unit price that is no number
                await page.get_by_label(t("project_name"), exact=True).fill("Hafenfest")
                await page.get_by_label(t("contact_name"), exact=True).fill("Jana Nord")
                await page.get_by_label(t("contact_email"), exact=True).fill("jana@atelier.example")
                await page.get_by_label(t("sector"), exact=True).select_option("design")
                await page.get_by_label(t("place_of_service"), exact=True).select_option("DE")
                await page.locator("#f-description").fill("Two workshop days for the harbour festival")
                await page.locator("#f-line-0-description").fill("Workshop")
                await page.locator("#f-line-0-quantity").fill("2")
                await page.locator("#f-line-0-unit").select_option("day")
                await page.locator("#f-line-0-unit_price").fill("640")
                # the running total while typing (order-form.js), in the page's language
                running = "1.280,00\u00a0€" if lang == "de" else "€1,280.00"
                assert await page.locator("#running-total").inner_text() == running
                await page.locator("#f-line-0-unit_price").fill("sechshundert")
                await page.get_by_label(t("service_start"), exact=True).fill("2027-03-01")
                await page.get_by_label(t("service_end"), exact=True).fill("2027-03-31")
                await page.get_by_label(t("confirm_skip"), exact=True).check()
                await page.get_by_label(t("skip_reason"), exact=True).fill("Signed framework contract")
                await page.get_by_label(t("payment_mode"), exact=True).select_option("after_completion")
                await page.get_by_label(t("invoice_date"), exact=True).fill("2027-04-01")
                await page.get_by_role("button", name=t("submit_order"), exact=True).click()
                await page.wait_for_load_state()
                error = page.locator("#f-line-0-unit_price-error")
                assert await error.is_visible()
                assert await page.locator("#f-line-0-unit_price").get_attribute("aria-invalid") == "true"
                assert await page.locator("#f-line-0-unit_price").input_value() == "sechshundert"
                assert await page.get_by_label(t("project_name"), exact=True).input_value() == "Hafenfest"
                await page.screenshot(path=SHOTS / f"portal-order-form-error-{device}-{lang}.png", full_page=True)

                # fixed and submitted (the orders service learns of the new client through Kafka)
                await page.locator("#f-line-0-unit_price").fill("640.00")

                async def submitted(page: Page = page) -> bool | None:
                    await page.get_by_role("button", name=t("submit_order"), exact=True).click()
                    await page.wait_for_load_state()
                    return True if "/edit" not in page.url and "/new" not in page.url else None
                await eventually(submitted, what="the order submitted")
                main = await page.locator("main").inner_text()
                assert "Hafenfest" in main and name in main and t("smart_review") in main, main
                await page.screenshot(path=SHOTS / f"portal-order-submitted-{device}-{lang}.png", full_page=True)
                await page.goto(f"{base}/orders/new")
                await page.screenshot(path=SHOTS / f"portal-order-form-{device}-{lang}.png", full_page=True)
                await context.close()
        finally:
            await browser.close()

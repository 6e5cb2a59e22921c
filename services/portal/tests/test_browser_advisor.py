"""The advisor's review queue in a real browser (Debian's Chromium driven by Playwright) against the
real clients, orders and invoicing services: two orders submitted; an advisor signs in,
follows the navigation to the review queue, approves one order (German, desktop) and rejects the
other with a reason typed into its labelled field (English, phone width); the orders API has them
approved and rejected. Screenshots of the queue, the billing runs and the settings go to
.local/screenshots/."""
from __future__ import annotations

import httpx
import pytest
from portal_support import CHROMIUM, CHROMIUM_ARGS, SHOTS, platform, served_portal
from test_advisor_pages import submitted_order

from kontor.testing.services import auth

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (deploy/bootstrap.sh installs it)")]
ADVISOR = auth("advisor-1", "advisor")


async def test_advisor_approves_and_rejects_through_the_review_queue_in_chromium(infra, topic_prefix):
    from playwright.async_api import async_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    async with platform(infra, topic_prefix) as seeded, served_portal(seeded.settings) as base, \
            httpx.AsyncClient(base_url=seeded.settings.orders_url) as orders, \
            httpx.AsyncClient(base_url=seeded.settings.clients_url) as clients, async_playwright() as pw:
        first = await submitted_order(clients, orders, "Freigabeprojekt")
        second = await submitted_order(clients, orders, "Ablehnprojekt")
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            plan = ((1280, 900, "desktop", "de-DE", "de"), (390, 844, "phone", "en-GB", "en"))
            for width, height, device, locale, lang in plan:
                context = await browser.new_context(viewport={"width": width, "height": height}, locale=locale)
                page = await context.new_page()
                await page.goto(f"{base}/signin?next=/advisor/review")
                labels = {"de": ("Benutzer-ID", "Rolle", "Prüfung", "Abrechnungsläufe", "Einstellungen", "Übersicht"),
                          "en": ("User id", "Role", "Review", "Billing runs", "Settings", "Dashboard")}[lang]
                await page.get_by_label(labels[0]).fill("advisor-1")
                await page.get_by_label(labels[1], exact=True).select_option("advisor")
                await page.get_by_label(labels[0]).press("Enter")
                await page.wait_for_url(f"{base}/advisor/review")
                await page.get_by_role("link", name=labels[5]).first.click()
                await page.wait_for_url(f"{base}/dashboard")
                await page.screenshot(path=SHOTS / f"portal-advisor-dashboard-{device}-{lang}.png", full_page=True)
                await page.get_by_role("link", name=labels[3]).first.click()
                await page.wait_for_url(f"{base}/advisor/billing-runs")
                await page.screenshot(path=SHOTS / f"portal-advisor-runs-{device}-{lang}.png", full_page=True)
                await page.get_by_role("link", name=labels[4]).click()
                await page.wait_for_url(f"{base}/settings")
                await page.screenshot(path=SHOTS / f"portal-settings-{device}-{lang}.png", full_page=True)
                await page.get_by_role("link", name=labels[2], exact=True).click()
                await page.wait_for_url(f"{base}/advisor/review")
                await page.screenshot(path=SHOTS / f"portal-advisor-review-{device}-{lang}.png", full_page=True)
                if lang == "de":
                    card = page.locator("section", has_text="Freigabeprojekt")
                    await card.get_by_role("button", name="Freigeben").click()
                    await page.wait_for_url(f"{base}/advisor/review?done=1")
                    assert "Freigabeprojekt" not in await page.locator("main").inner_text()
                else:
                    card = page.locator("section", has_text="Ablehnprojekt")
                    await card.get_by_label("Reason for the rejection").fill("Scope unclear: please split it")
                    await card.get_by_role("button", name="Reject").click()
                    await page.wait_for_url(f"{base}/advisor/review?done=1")
                    assert "No orders are waiting for review." in await page.locator("main").inner_text()
                await page.screenshot(path=SHOTS / f"portal-advisor-review-done-{device}-{lang}.png", full_page=True)
                await context.close()
        finally:
            await browser.close()
        approved = (await orders.get(f"/orders/{first}", headers=ADVISOR)).json()
        rejected = (await orders.get(f"/orders/{second}", headers=ADVISOR)).json()
        assert approved["status"] in ("client_confirmation", "active"), approved
        assert rejected["status"] == "rejected" and rejected["rejection"]["reason"] == "Scope unclear: please split it"

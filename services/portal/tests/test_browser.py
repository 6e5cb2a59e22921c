"""The portal in a real browser: Debian's Chromium (/usr/bin/chromium, installed by
deploy/bootstrap.sh) driven by Playwright, against the real clients, orders and invoicing
services. A member signs in with the development sign-in using the keyboard, sees the
dashboard, opens the order, switches to English and types another member's order URL.
Screenshots at desktop and phone width go to .local/screenshots/."""
from __future__ import annotations

import pytest
from portal_support import CHROMIUM, CHROMIUM_ARGS, SHOTS, platform, served_portal

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (deploy/bootstrap.sh installs it)")]


async def test_member_signs_in_and_sees_the_dashboard_in_chromium(infra, topic_prefix):
    from playwright.async_api import async_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    async with platform(infra, topic_prefix) as seeded, served_portal(seeded.settings) as base, \
            async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for width, height, device in ((1280, 900, "desktop"), (390, 844, "phone")):
                context = await browser.new_context(viewport={"width": width, "height": height}, locale="de-DE")
                page = await context.new_page()
                await page.goto(f"{base}/dashboard")
                assert page.url.startswith(f"{base}/signin")
                await page.screenshot(path=SHOTS / f"portal-signin-{device}-de.png", full_page=True)
                # by the fields' labels, with the keyboard only
                await page.get_by_label("Benutzer-ID").fill("member-1")
                await page.get_by_label("Anzeigename").fill("Anna Freiberuf")
                await page.get_by_label("Anzeigename").press("Enter")
                await page.wait_for_url(f"{base}/dashboard")
                body = await page.locator("main").inner_text()
                assert "Relaunch Portal" in body and "Geheimprojekt" not in body
                assert "4.680,00 EUR" in body and "Entwurf" in body
                await page.screenshot(path=SHOTS / f"portal-dashboard-{device}-de.png", full_page=True)

                await page.get_by_role("link", name="Relaunch Portal").click()
                await page.wait_for_url(f"{base}/orders/{seeded.order_of['member-1']}")
                assert "Design workshop" in await page.locator("main").inner_text()
                await page.screenshot(path=SHOTS / f"portal-order-{device}-de.png", full_page=True)

                await page.get_by_label("Sprache").select_option("en")
                await page.get_by_role("button", name="Wechseln").click()
                await page.wait_for_load_state()
                main = await page.locator("main").inner_text()
                assert "Line items" in main and "640.00 EUR" in main
                await page.screenshot(path=SHOTS / f"portal-order-{device}-en.png", full_page=True)

                response = await page.goto(f"{base}/orders/{seeded.order_of['member-2']}")
                assert response is not None and response.status == 404
                assert "Not found" in await page.locator("main").inner_text()
                await page.screenshot(path=SHOTS / f"portal-not-found-{device}-en.png", full_page=True)
                await context.close()
        finally:
            await browser.close()

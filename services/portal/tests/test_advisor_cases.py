"""The advisor's adjustment, dispute and cancellation pages against the real clients, orders and
invoicing services (the portal served on a real port, Chromium for the screenshots): an advisor
corrects an order's texts in the review queue (an empty project name refused at the form) and
approves it, the history keeps the change; the billing run drafts its invoice, the member asks for a
change, the advisor adjusts the waiting invoice (a quantity that is no number refused at the form)
and issues it; records and resolves a dispute; cancels it with a reason (none refused) and sees the
cancellation invoice; refuses and then approves a member's cancellation request, choosing the order's
issued invoice, which invoicing then cancels. Screenshots of the
pages (German desktop, English phone) go to .local/screenshots/portal-advisor-*."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from html import unescape

import httpx
import pytest
from portal_support import CHROMIUM, CHROMIUM_ARGS, SHOTS, platform, served_portal
from test_advisor_pages import ok, post, sign_in, submitted_order

from kontor.testing import eventually
from kontor.testing.services import auth

pytestmark = pytest.mark.integration
MEMBER, ADVISOR = auth("member-1", "member"), auth("advisor-1", "advisor")
DRAFTING_DAY = "2027-03-01"  # within the draft lead days of the orders' invoice date 2027-03-05
DEVICES = (("desktop", 1280, 900, "de-DE", "de"), ("phone", 390, 844, "en-GB", "en"))


@contextlib.asynccontextmanager
async def cameras(base: str) -> AsyncIterator:
    """A `shoot(path, name)` taking full-page screenshots of an advisor's page in German on a desktop
    and in English on a phone (every <details> opened); nothing when Chromium is not installed."""
    if not CHROMIUM.exists():
        async def nothing(path: str, name: str) -> None:
            return None
        yield nothing
        return
    from playwright.async_api import async_playwright
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            pages = []
            for device, width, height, locale, lang in DEVICES:
                context = await browser.new_context(viewport={"width": width, "height": height}, locale=locale)
                page = await context.new_page()
                await page.goto(f"{base}/signin")
                user_label, role_label = {"de": ("Benutzer-ID", "Rolle"), "en": ("User id", "Role")}[lang]
                await page.get_by_label(user_label).fill("advisor-1")
                await page.get_by_label(role_label, exact=True).select_option("advisor")
                await page.get_by_label(user_label).press("Enter")
                await page.wait_for_url(f"{base}/dashboard")
                pages.append((device, lang, page))

            async def shoot(path: str, name: str) -> None:
                for device, lang, page in pages:
                    await page.goto(f"{base}{path}")
                    await page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
                    await page.screenshot(path=SHOTS / f"portal-advisor-{name}-{device}-{lang}.png", full_page=True)
            yield shoot
        finally:
            await browser.close()


async def refused_at(client: httpx.AsyncClient, r: httpx.Response) -> str:
    """The page a refused form led back to: shown (200), with the refusal as an alert."""
    assert r.status_code == 303 and "refused=" in r.headers["location"], (r.status_code, r.headers)
    shown = await client.get(r.headers["location"])
    assert shown.status_code == 200 and 'role="alert"' in shown.text and "Nicht möglich" in shown.text
    return unescape(shown.text)


def done(r: httpx.Response) -> None:
    assert r.status_code == 303 and "done=1" in r.headers["location"], (r.status_code, r.headers)


async def test_advisor_adjusts_issues_disputes_and_cancels_through_the_portal(infra, topic_prefix):
    async with platform(infra, topic_prefix, allow_future_as_of=True) as seeded, \
            served_portal(seeded.settings) as base, \
            httpx.AsyncClient(base_url=seeded.settings.orders_url) as orders, \
            httpx.AsyncClient(base_url=seeded.settings.clients_url) as clients, \
            httpx.AsyncClient(base_url=seeded.settings.invoicing_url) as invoicing, \
            httpx.AsyncClient(base_url=base, headers={"Accept-Language": "de"}) as advisor, cameras(base) as shoot:
        texts = await submitted_order(clients, orders, "Textprojekt")
        leaving = await submitted_order(clients, orders, "Stornoprojekt")
        await sign_in(advisor, "advisor-1", "advisor")

        # 1. the review queue: adjust the texts, then approve
        queue = await advisor.get("/advisor/review")
        assert f'action="/advisor/orders/{texts}/adjust"' in queue.text
        assert f'<label for="ln-{texts}-0">Beschreibung der Position 1</label>' in queue.text
        await shoot("/advisor/review", "review-adjust")
        shown = await refused_at(advisor, await post(advisor, "/advisor/review", f"/advisor/orders/{texts}/adjust",
                                                     project_name=" ", description="Website", **{"line-0": "Workshop"}))
        assert "project_name" in shown
        done(await post(advisor, "/advisor/review", f"/advisor/orders/{texts}/adjust",
                        project_name="Textprojekt Relaunch", description="Website, neu gestaltet",
                        special_agreement="", note="Tippfehler", **{"line-0": "Konzept-Workshop"}))
        order = await ok(await orders.get(f"/orders/{texts}", headers=ADVISOR))
        assert (order["project_name"], order["description"], order["lines"][0]["description"]) == \
            ("Textprojekt Relaunch", "Website, neu gestaltet", "Konzept-Workshop")
        assert order["lines"][0]["quantity"] in ("2", "2.00", "2.000") and order["status"] == "smart_review"
        history = await ok(await orders.get(f"/orders/{texts}/history", headers=ADVISOR))
        adjusted = [h for h in history if "adjust" in str(h)]
        assert adjusted and "Tippfehler" in str(adjusted) and "Konzept-Workshop" in str(adjusted), history
        detail = await advisor.get(f"/orders/{texts}")  # the order's page: its history has the adjustment
        assert detail.status_code == 200 and "Tippfehler" in detail.text and "Textprojekt Relaunch" in detail.text
        done(await post(advisor, "/advisor/review", f"/advisor/orders/{texts}/approve"))
        done(await post(advisor, "/advisor/review", f"/advisor/orders/{leaving}/approve"))
        assert (await ok(await orders.get(f"/orders/{texts}", headers=ADVISOR)))["status"] == "active"

        # 2. drafted by a run, the member asks for a change: waiting for adjustment; adjusted and issued
        await ok(await invoicing.post("/billing-runs", json={"as_of": DRAFTING_DAY}, headers=ADVISOR), 201, 202)

        async def drafted() -> dict | None:
            found = await ok(await invoicing.get("/invoices", params={"order_id": texts}, headers=ADVISOR))
            return found[0] if found and found[0]["status"] == "draft" else None  # type: ignore[index]
        invoice = await eventually(drafted, timeout_s=180, what="the order's invoice drafted")
        iid = invoice["invoice_id"]
        await ok(await invoicing.post(f"/invoices/{iid}/change-request", headers=MEMBER,
                                      json={"message": "Bitte die Bestellnummer 4711 nennen"}))
        listed = await advisor.get("/advisor/invoices")
        assert f'href="/advisor/invoices/{iid}/adjust"' in listed.text
        page = await advisor.get(f"/advisor/invoices/{iid}/adjust")
        assert page.status_code == 200 and "Bitte die Bestellnummer 4711 nennen" in page.text
        assert '<label for="line-0-description">Beschreibung</label>' in page.text
        assert 'value="Konzept-Workshop"' in page.text and 'value="2"' in page.text
        await shoot(f"/advisor/invoices/{iid}/adjust", "invoice-adjust")
        form = {"project_name": "Textprojekt Relaunch", "line-0-description": "Konzept-Workshop, Bestellung 4711",
                "line-0-unit": "day", "line-0-unit_price": "640,00", "due_in_days": "21"}
        shown = await refused_at(advisor, await post(advisor, f"/advisor/invoices/{iid}/adjust",
                                                     f"/advisor/invoices/{iid}/adjust", **form,
                                                     **{"line-0-quantity": "zwei"}))
        assert "quantity" in shown and "Bitte eine Zahl eingeben" in shown  # the 422's message in German
        done(await post(advisor, f"/advisor/invoices/{iid}/adjust", f"/advisor/invoices/{iid}/adjust", **form,
                        **{"line-0-quantity": "2"}))
        held = await ok(await invoicing.get(f"/invoices/{iid}", headers=ADVISOR))
        assert held["lines"][0]["description"] == "Konzept-Workshop, Bestellung 4711" and held["adjustments"]
        assert held["net_total"] == "1280.00"
        done(await post(advisor, f"/advisor/invoices/{iid}/adjust", f"/advisor/invoices/{iid}/issue",
                        **{"from": "adjust"}))
        # issued twice: invoicing's 409, shown at the invoice's adjustment page, not a 502
        again = await post(advisor, "/advisor/invoices", f"/advisor/invoices/{iid}/issue", **{"from": "adjust"})
        assert again.headers["location"].startswith(f"/advisor/invoices/{iid}/adjust?refused=")
        await refused_at(advisor, again)

        async def invoiced() -> dict | None:
            found = await ok(await invoicing.get(f"/invoices/{iid}", headers=ADVISOR))
            return found if found["status"] == "invoiced" and found["number"] else None
        invoice = await eventually(invoiced, timeout_s=180, what="the adjusted invoice issued")
        assert invoice["lines"][0]["description"] == "Konzept-Workshop, Bestellung 4711"
        number = invoice["number"]

        # 3. a member's cancellation request, shown with the reason and the order's issued invoice to choose:
        # refused, asked again, approved with that invoice chosen (invoicing then cancels it)
        async def leaving_drafted() -> dict | None:
            found = await ok(await invoicing.get("/invoices", params={"order_id": leaving}, headers=ADVISOR))
            return found[0] if found and found[0]["status"] == "draft" else None  # type: ignore[index]
        other = (await eventually(leaving_drafted, timeout_s=180, what="the other order's draft"))["invoice_id"]
        await ok(await invoicing.post(f"/invoices/{other}/issue", headers=MEMBER), 202)

        async def known_to_orders() -> str | None:
            found = await ok(await orders.get(f"/orders/{leaving}", headers=ADVISOR))
            return found["issued_invoices"][0]["number"] if found["issued_invoices"] else None
        other_number = await eventually(known_to_orders, timeout_s=180, what="orders knowing the issued invoice")
        await ok(await orders.post(f"/orders/{leaving}/cancellation-request", headers=MEMBER,
                                   json={"reason": "Projekt entfällt"}))
        cases = await advisor.get("/advisor/cases")
        assert cases.status_code == 200 and "Projekt entfällt" in cases.text and number in cases.text
        assert f'name="cancel_invoice" value="{other}"' in cases.text and other_number in cases.text
        assert 'href="/advisor/cases"' in cases.text  # in the advisor's navigation
        await shoot("/advisor/cases", "cases")
        shown = await refused_at(advisor, await post(advisor, "/advisor/cases",
                                                     f"/advisor/cancellation-requests/{leaving}",
                                                     decision="refuse", reason=" "))
        assert "reason" in shown
        done(await post(advisor, "/advisor/cases", f"/advisor/cancellation-requests/{leaving}", decision="refuse",
                        reason="Leistung ist bereits erbracht"))
        assert (await ok(await orders.get(f"/orders/{leaving}", headers=ADVISOR)))["status"] == "active"
        await ok(await orders.post(f"/orders/{leaving}/cancellation-request", headers=MEMBER,
                                   json={"reason": "Projekt entfällt endgültig"}))
        done(await post(advisor, "/advisor/cases", f"/advisor/cancellation-requests/{leaving}", decision="approve",
                        reason="Einvernehmlich storniert", cancel_invoice=other))
        assert (await ok(await orders.get(f"/orders/{leaving}", headers=ADVISOR)))["status"] == "cancelled"
        assert "Projekt entfällt endgültig" not in (await advisor.get("/advisor/cases")).text

        async def other_cancelled() -> dict | None:
            found = await ok(await invoicing.get(f"/invoices/{other}", headers=ADVISOR))
            return found if found["status"] == "cancelled" else None
        await eventually(other_cancelled, timeout_s=180, what="the chosen invoice cancelled by invoicing")

        # 4. a dispute recorded and resolved; then the invoice cancelled with a reason (none refused)
        done(await post(advisor, "/advisor/cases", f"/advisor/invoices/{iid}/dispute",
                        objection="Workshop fand nur einen Tag statt"))
        cases = await advisor.get("/advisor/cases")
        assert f'id="disputed-{iid}"' in cases.text and "Workshop fand nur einen Tag statt" in cases.text
        done(await post(advisor, "/advisor/cases", f"/advisor/invoices/{iid}/resolve-dispute"))
        assert (await ok(await invoicing.get(f"/invoices/{iid}", headers=ADVISOR)))["status"] == "invoiced"
        shown = await refused_at(advisor, await post(advisor, "/advisor/cases", f"/advisor/invoices/{iid}/cancel",
                                                     reason=" "))
        assert "reason" in shown
        done(await post(advisor, "/advisor/cases", f"/advisor/invoices/{iid}/cancel",
                        reason="Doppelt berechnet"))

        async def cancelled() -> dict | None:
            found = await ok(await invoicing.get("/invoices", params={"kind": "cancellation"}, headers=ADVISOR))
            mine = [c for c in found if c.get("cancels_invoice_id") == iid and c["number"]]  # type: ignore[union-attr]
            original = await ok(await invoicing.get(f"/invoices/{iid}", headers=ADVISOR))
            return mine[0] if mine and original["status"] == "cancelled" else None
        cancellation = await eventually(cancelled, timeout_s=180, what="the cancellation invoice issued")
        cases = await advisor.get("/advisor/cases")
        assert f'<a href="/invoices/{cancellation["invoice_id"]}">{cancellation["number"]}</a>' in cases.text
        assert f'<a href="/invoices/{iid}">{number}</a>' in cases.text
        await shoot("/advisor/cases", "cases-cancelled")

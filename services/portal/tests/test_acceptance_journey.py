"""The portal's acceptance journey in a real browser (Debian's Chromium driven by Playwright), against
the real four services with their workers, Keycloak, Kafka, PostgreSQL and SMTP; nothing is
published or posted by the test itself, every step is what a person does in a browser or reads in
an e-mail:

a new member signs up through Keycloak's registration page (privacy policy accepted) and lands on
the portal; registers a client and creates an order through the form, with one wrong field first
that is shown at its field and then fixed; submits it. An advisor (demo user Anton) signs in and
approves it in the review queue. The client confirms through the link in the e-mail the SMTP
server received. The advisor starts a billing run, which issues the invoice. The member sees it
among the invoices and downloads its PDF. Every page is written as a screenshot under
`.local/screenshots/journey-*`.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from portal_support import CHROMIUM, CHROMIUM_ARGS, SHOTS, served_portal
from pypdf import PdfReader

from kontor.clock import BERLIN
from kontor.devinfra.keycloak import LocalKeycloak
from kontor.devinfra.smtp import read_messages
from kontor.testing import TestInfra, eventually, free_port, unique
from kontor.testing.services import running_service
from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_notifications.spec import SPEC as NOTIFICATIONS
from kontor_orders.spec import SPEC as ORDERS
from kontor_portal import i18n
from kontor_portal.settings import PortalSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (deploy/bootstrap.sh installs it)")]
ANTON = ("anton@kontor.example", "anton-kontor-2026")  # the realm's demo advisor
RULES = Path(__file__).resolve().parents[4] / "shared" / "xrechnung"


@pytest.fixture(scope="module")
def keycloak():
    kc = LocalKeycloak(port=free_port(), name="keycloak-journey-test", fresh=True)
    kc.start()
    yield kc
    kc.stop()


@dataclass
class Stack:
    portal: str
    keycloak: LocalKeycloak
    maildir: Path


@contextlib.asynccontextmanager
async def whole_platform(infra: TestInfra, topic_prefix: str, kc: LocalKeycloak) -> AsyncIterator[Stack]:
    """The four services with their workers on free ports, verifying Keycloak's tokens through the
    realm's JWKS, notifications sending through the tests' SMTP server, and the portal signing in
    through Keycloak (its redirect URIs pointed at the portal's free port)."""
    assert infra.maildir is not None
    verify = {"jwks_url": kc.jwks_url, "jwt_issuer": kc.issuer, "jwt_audience": "kontor-api",
              # notifications fetches the documents with its HS256 service token (documents:read)
              "jwt_accept_dev_tokens": True}
    common = {"topic_prefix": topic_prefix, **verify}
    async with running_service(CLIENTS, infra, **common, serve_http=True, standing_run_enabled=False) as clients, \
            running_service(ORDERS, infra, **common, serve_http=True, order_runs_enabled=False) as orders, \
            running_service(INVOICING, infra, **common, serve_http=True, billing_runs_enabled=False,
                            xrechnung_rules_dir=RULES if RULES.exists() else None) as invoicing, \
            running_service(NOTIFICATIONS, infra, **common, serve_http=True, smtp_host=infra.smtp_host,
                            smtp_port=infra.smtp_port, delivery_interval_s=0.1, retry_base_s=0.2) as notifications:
        settings = PortalSettings(environment="development", clients_url=clients.base_url,
                                  orders_url=orders.base_url, invoicing_url=invoicing.base_url,
                                  notifications_url=notifications.base_url, oidc_issuer=kc.issuer)
        async with served_portal(settings) as base:
            [client] = kc.admin("GET", "/clients?clientId=kontor-portal")  # type: ignore[misc]
            client["redirectUris"] = [f"{base}/*"]
            client.setdefault("attributes", {})["post.logout.redirect.uris"] = f"{base}/*"
            kc.admin("PUT", f"/clients/{client['id']}", client)
            yield Stack(base, kc, infra.maildir)


def mails_to(maildir: Path, address: str) -> list[EmailMessage]:
    return [m for m in read_messages(maildir) if address in str(m["To"])]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    return body.get_content() if body is not None else ""


async def test_a_new_member_gets_from_sign_up_to_the_pdf_of_the_first_invoice(keycloak, infra, topic_prefix):
    from playwright.async_api import async_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    run = unique("j")
    email, password = f"{run}@kontor.example", "nora-kontor-2026"
    invoice_email = f"rechnung-{run}@werkstatt.example"
    contact_email = f"erika-{run}@werkstatt.example"

    def t(key: str) -> str:
        return i18n.text("de", key)
    started = time.monotonic()

    async with whole_platform(infra, topic_prefix, keycloak) as stack, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            member_ctx = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE",
                                                   accept_downloads=True)
            page = await member_ctx.new_page()
            step = 0

            async def shot(name: str, p=page) -> None:
                nonlocal step
                step += 1
                await p.screenshot(path=SHOTS / f"journey-{step:02d}-{name}.png", full_page=True)

            # 1. sign up through Keycloak's registration page, accepting the privacy policy
            await page.goto(f"{stack.portal}/dashboard")
            await page.get_by_role("link", name="Mit Kontor-Konto anmelden").click()
            await page.wait_for_url(f"{keycloak.issuer}/protocol/openid-connect/auth*")
            await shot("keycloak-login")
            await page.get_by_role("link", name=re.compile("Registrieren|Register")).click()
            await page.locator("#email").fill(email)
            await page.locator("#firstName").fill("Nora")
            await page.locator("#lastName").fill("Neu")
            await page.locator("#password").fill(password)
            await page.locator("#password-confirm").fill(password)
            await shot("keycloak-register")
            await page.locator("#password-confirm").press("Enter")
            await page.wait_for_url(re.compile(r".*TERMS_AND_CONDITIONS.*"))  # the privacy policy comes first
            assert "Datenschutzerklärung" in await page.locator("body").inner_text()
            await shot("keycloak-privacy")
            await page.get_by_role("button", name="Annehmen").click()
            await page.wait_for_url(f"{stack.portal}/dashboard")
            assert "Nora Neu" in await page.locator("header").inner_text()
            await shot("dashboard-new-member")

            # 2. a new client and an order through the form; a wrong unit price first, shown at its field
            today = dt.datetime.now(BERLIN).date()  # the services' business day
            await page.get_by_role("link", name=t("new_order")).click()
            await page.wait_for_url(f"{stack.portal}/orders/new")
            await page.get_by_text(t("new_client")).click()
            client_name = f"Werkstatt {run} GmbH"
            await page.get_by_label(t("client_name"), exact=True).fill(client_name)
            await page.get_by_label(t("street"), exact=True).fill("Hauptstraße 1")
            await page.get_by_label(t("postal_code"), exact=True).fill("10115")
            await page.get_by_label(t("city"), exact=True).fill("Berlin")
            await page.get_by_label(t("invoice_email"), exact=True).fill(invoice_email)
            await page.get_by_role("button", name=t("register_client")).click()
            await page.wait_for_load_state()
            assert client_name in await page.locator("#h-client + p").inner_text()
            await page.get_by_label(t("project_name"), exact=True).fill("Relaunch Website")
            await page.get_by_label(t("contact_name"), exact=True).fill("Erika Muster")
            await page.get_by_label(t("contact_email"), exact=True).fill(contact_email)
            await page.get_by_label(t("sector"), exact=True).select_option("design")
            await page.get_by_label(t("place_of_service"), exact=True).select_option("DE")
            await page.locator("#f-description").fill("Design workshop and implementation")
            await page.locator("#f-line-0-description").fill("Design workshop")
            await page.locator("#f-line-0-quantity").fill("2")
            await page.locator("#f-line-0-unit").select_option("day")
            await page.locator("#f-line-0-unit_price").fill("640,00 Euro")
            await page.get_by_label(t("service_start"), exact=True).fill((today - dt.timedelta(days=30)).isoformat())
            await page.get_by_label(t("service_end"), exact=True).fill((today - dt.timedelta(days=1)).isoformat())
            await page.get_by_label(t("confirm_send"), exact=True).check()
            valid_until = (today + dt.timedelta(days=14)).isoformat()
            await page.get_by_label(t("offer_valid_until"), exact=True).fill(valid_until)
            await page.get_by_label(t("payment_mode"), exact=True).select_option("after_completion")
            await page.get_by_label(t("invoice_date"), exact=True).fill(today.isoformat())
            await page.get_by_role("button", name=t("submit_order"), exact=True).click()
            await page.wait_for_load_state()
            assert await page.locator("#f-line-0-unit_price-error").is_visible()
            assert await page.locator("#f-line-0-unit_price").get_attribute("aria-invalid") == "true"
            assert await page.get_by_label(t("project_name"), exact=True).input_value() == "Relaunch Website"
            assert await page.locator("#f-line-0-unit_price-error").inner_text() == \
                "Bitte eine Zahl eingeben, z. B. 1.234,50."
            await shot("order-form-error")
            await page.locator("#f-line-0-unit_price").fill("640,00")  # as a German member writes it

            async def submitted() -> bool | None:  # the orders service learns of the new client through Kafka
                await page.get_by_role("button", name=t("submit_order"), exact=True).click()
                await page.wait_for_load_state()
                return True if "/edit" not in page.url and "/new" not in page.url else None
            await eventually(submitted, timeout_s=60, what="the order submitted")
            order_url = page.url
            assert "Relaunch Website" in await page.locator("main").inner_text()
            await shot("order-submitted")

            # 3. the advisor (demo user Anton) signs in through Keycloak and approves it in the review queue
            advisor_ctx = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")
            adv = await advisor_ctx.new_page()
            await adv.goto(f"{stack.portal}/advisor/review")
            await adv.get_by_role("link", name="Mit Kontor-Konto anmelden").click()
            await adv.wait_for_url(f"{keycloak.issuer}/protocol/openid-connect/auth*")
            await adv.locator("#username").fill(ANTON[0])
            await adv.locator("#password").fill(ANTON[1])
            await adv.locator("#password").press("Enter")
            await adv.wait_for_url(f"{stack.portal}/advisor/review")

            async def in_queue() -> bool:  # the review queue is the orders service's (flags computed there)
                await adv.reload()
                return "Relaunch Website" in await adv.locator("main").inner_text()
            await eventually(in_queue, timeout_s=30, what="the order in the review queue")
            await shot("advisor-review", adv)
            card = adv.locator("section", has_text="Relaunch Website")
            await card.get_by_role("button", name="Freigeben").click()
            await adv.wait_for_url(f"{stack.portal}/advisor/review?done=1")

            # 4. the client confirms through the link in the e-mail the SMTP server received
            async def confirmation_mail() -> str | None:
                for m in mails_to(stack.maildir, contact_email):
                    found = re.search(r"https?://\S+/confirm/\S+", text_of(m))
                    if found:
                        return found.group(0)
                return None
            link = await eventually(confirmation_mail, timeout_s=60, what="the confirmation e-mail")
            client_ctx = await browser.new_context(viewport={"width": 390, "height": 844}, locale="de-DE")
            cp = await client_ctx.new_page()
            await cp.goto(link)
            body = await cp.locator("main").inner_text()
            assert "Relaunch Website" in body and "1.280,00 EUR" in body, body
            await shot("client-confirmation", cp)
            await cp.get_by_role("button", name="Auftrag bestätigen").click()
            await cp.wait_for_load_state()
            await shot("client-confirmed", cp)
            await client_ctx.close()

            async def active() -> bool:
                await page.goto(order_url)
                return t("active") in await page.locator("main").inner_text()
            await eventually(active, timeout_s=30, what="the order active after the confirmation")
            await shot("order-active")

            # 5. the advisor starts a billing run, which issues the invoice (the run's page follows it)
            await adv.get_by_role("link", name=t("adv_runs")).click()
            await adv.wait_for_url(f"{stack.portal}/advisor/billing-runs")
            await adv.get_by_label(t("adv_as_of"), exact=True).fill(today.isoformat())
            await adv.get_by_role("button", name=t("adv_start_run")).click()
            await adv.wait_for_url(re.compile(r".*/advisor/billing-runs/[0-9a-f-]{36}$"))

            async def finished() -> bool:
                await adv.reload()
                return t("run_finished") in await adv.locator("main").inner_text()
            await eventually(finished, timeout_s=120, interval_s=1, what="the billing run finished")
            await shot("billing-run-finished", adv)
            await advisor_ctx.close()

            # 6. the member sees the invoice among the invoices and downloads its PDF
            async def invoiced() -> bool:
                await page.goto(f"{stack.portal}/invoices")
                return bool(re.search(rf"{today.year}-\d+", await page.locator("main").inner_text()))
            await eventually(invoiced, timeout_s=60, what="the issued invoice among the member's invoices")
            await shot("invoices")
            await page.locator("main table a").first.click()
            await page.wait_for_url(re.compile(r".*/invoices/[0-9a-f-]{36}$"))
            await shot("invoice")
            # the PDF link, fetched as the signed-in member's browser does (its session cookie)
            href = await page.get_by_role("link", name="PDF").first.get_attribute("href")
            assert href is not None
            response = await member_ctx.request.get(f"{stack.portal}{href}")
            assert response.status == 200 and response.headers["content-type"] == "application/pdf"
            pdf = await response.body()
            assert pdf.startswith(b"%PDF-") and len(pdf) > 10_000
            text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
            assert "Relaunch Website" in text and client_name in text, text[:2000]
            print(f"\n[kontor] the journey took {time.monotonic() - started:.0f}s", file=sys.stderr)
            await member_ctx.close()
        finally:
            await browser.close()

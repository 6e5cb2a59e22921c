"""Sign-in through the identity provider: Keycloak with the `kontor` realm (deploy/keycloak), the
portal as its public client `kontor-portal` (authorization code with PKCE, S256), the services
verifying the realm's RS256 tokens through its JWKS. In Chromium a member opens the portal, is
sent to Keycloak's login page, signs in as the demo member Mia and sees her dashboard; the other
demo user's order is the portal's not-found page; sign-out ends the Keycloak session too."""
from __future__ import annotations

import time

import pytest
from portal_support import CHROMIUM, CHROMIUM_ARGS, SHOTS, platform, served_portal

from kontor.devinfra.keycloak import LocalKeycloak
from kontor.testing import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (deploy/bootstrap.sh installs it)")]
MIA = ("mia@kontor.example", "mia-kontor-2026")
BEATE = ("beate@kontor.example", "beate-kontor-2026")


@pytest.fixture(scope="module")
def keycloak():
    kc = LocalKeycloak(port=free_port(), name="keycloak-portal-test", fresh=True)
    started = time.monotonic()
    kc.start()
    print(f"\n[kontor] Keycloak ready after {time.monotonic() - started:.1f}s on {kc.url}")
    yield kc
    kc.stop()


def allow_redirects_to(kc: LocalKeycloak, base_url: str) -> None:
    """The realm file allows the portal at http://127.0.0.1:8100; the test's portal runs on a free port."""
    [client] = kc.admin("GET", "/clients?clientId=kontor-portal")  # type: ignore[misc]
    client["redirectUris"] = [f"{base_url}/*"]
    client.setdefault("attributes", {})["post.logout.redirect.uris"] = f"{base_url}/*"
    kc.admin("PUT", f"/clients/{client['id']}", client)


def bearer(kc: LocalKeycloak, user: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {kc.password_token(*user)['access_token']}"}


async def test_member_signs_in_through_keycloak_with_pkce(keycloak: LocalKeycloak, infra, topic_prefix):
    from playwright.async_api import async_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    verify = {"jwks_url": keycloak.jwks_url, "jwt_issuer": keycloak.issuer, "jwt_audience": "kontor-api"}
    members = {"mia": bearer(keycloak, MIA), "beate": bearer(keycloak, BEATE)}
    async with platform(infra, topic_prefix, members=members, **verify) as seeded:
        settings = seeded.settings.model_copy(update={"oidc_issuer": keycloak.issuer})
        async with served_portal(settings) as base, async_playwright() as pw:
            allow_redirects_to(keycloak, base)
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")
                page = await context.new_page()
                await page.goto(f"{base}/dashboard")
                await page.get_by_role("link", name="Mit Kontor-Konto anmelden").click()
                await page.wait_for_url(f"{keycloak.issuer}/protocol/openid-connect/auth*")
                assert "code_challenge_method=S256" in page.url and "code_challenge=" in page.url
                await page.screenshot(path=SHOTS / "portal-keycloak-login-desktop.png", full_page=True)
                await page.locator("#username").fill(MIA[0])
                await page.locator("#password").fill(MIA[1])
                await page.locator("#password").press("Enter")
                await page.wait_for_url(f"{base}/dashboard")
                main = await page.locator("main").inner_text()
                assert "Relaunch Portal" in main and "Geheimprojekt" not in main, main
                assert "Mia Mitglied" in await page.locator("header").inner_text()
                await page.screenshot(path=SHOTS / "portal-dashboard-keycloak-desktop-de.png", full_page=True)

                response = await page.goto(f"{base}/orders/{seeded.order_of['beate']}")
                assert response is not None and response.status == 404
                assert "Nicht gefunden" in await page.locator("main").inner_text()

                # sign-out: through Keycloak's end-session endpoint back to the portal's sign-in page
                await page.get_by_role("button", name="Abmelden").click()
                await page.wait_for_url(f"{base}/signin")
                await page.goto(f"{base}/dashboard")
                assert page.url.startswith(f"{base}/signin")
                # the Keycloak session ended too: signing in asks for the password again
                await page.get_by_role("link", name="Mit Kontor-Konto anmelden").click()
                await page.wait_for_url(f"{keycloak.issuer}/**")
                assert await page.locator("#password").count() == 1
                await context.close()
            finally:
                await browser.close()



"""The portal against the real clients, orders and invoicing services: a member signs in
(the development sign-in), sees the seeded order on the dashboard and its detail, gets the
portal's not-found page (404) for another member's order, switches the language; the
security headers, the session cookie's flags and the CSRF check of every form post."""
from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from portal_support import CSRF, Seeded, portal_client

from kontor_portal.entrypoints.app import create_app
from kontor_portal.settings import PortalSettings


@pytest.fixture
async def browser(seeded: Seeded) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of the portal, not signed in."""
    async with portal_client(seeded.settings) as client:
        yield client


async def sign_in(browser: httpx.AsyncClient, user: str, role: str = "member") -> httpx.Response:
    page = await browser.get("/signin", params={"next": "/dashboard"})
    assert page.status_code == 200
    assert '<label for="user_id">' in page.text and 'id="user_id"' in page.text  # labelled fields
    r = await browser.post("/signin/dev", data={"csrf": CSRF.search(page.text).group(1), "user_id": user,
                                                "name": f"Name of {user}", "role": role})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard", r.text
    return r


pytestmark = pytest.mark.integration


async def test_member_sees_the_dashboard_and_the_order_and_not_another_members_order(
        seeded: Seeded, browser: httpx.AsyncClient):
    assert (await browser.get("/dashboard")).headers["location"].startswith("/signin")
    signed_in = await sign_in(browser, "member-1")
    cookie = signed_in.headers["set-cookie"]
    assert "kontor_portal_session=" in cookie and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()

    dashboard = await browser.get("/dashboard", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert dashboard.status_code == 200, dashboard.text
    assert dashboard.headers["x-frame-options"] == "DENY"
    assert dashboard.headers["referrer-policy"] == "no-referrer"
    assert dashboard.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in dashboard.headers["content-security-policy"]
    assert '<html lang="de">' in dashboard.text
    assert "Relaunch Portal" in dashboard.text and "Geheimprojekt" not in dashboard.text
    # one draft of member-1: counted under its status, with the net total as Germans write it
    assert re.search(r'<a href="/orders\?status=draft">Entwurf</a></td><td class="num">1</td>', dashboard.text)
    assert "4.680,00 EUR" in dashboard.text  # 2 × 640 + 40 × 85
    assert "Angemeldet als Name of member-1" in dashboard.text

    mine = seeded.order_of["member-1"]
    detail = await browser.get(f"/orders/{mine}")
    assert detail.status_code == 200, detail.text
    assert "Design workshop" in detail.text and "Implementation" in detail.text
    assert "640,00 EUR" in detail.text and "Entwurf" in detail.text and "Werkstatt Relaunch Portal GmbH" in detail.text
    assert detail.text.count("<tr>") >= 4  # two lines, their header and the history's first entry

    theirs = await browser.get(f"/orders/{seeded.order_of['member-2']}")
    assert theirs.status_code == 404
    assert "Nicht gefunden" in theirs.text and "Geheimprojekt" not in theirs.text
    assert theirs.headers["x-frame-options"] == "DENY"
    garbage = await browser.get("/orders/not-an-id")
    assert garbage.status_code == 404 and "Nicht gefunden" in garbage.text

    # language switch: a form post with the CSRF token; the choice outranks Accept-Language
    csrf = CSRF.search(dashboard.text).group(1)
    assert (await browser.post("/language", data={"lang": "en", "next": "/dashboard"})).status_code == 403
    switched = await browser.post("/language", data={"csrf": csrf, "lang": "en", "next": f"/orders/{mine}"})
    assert switched.status_code == 303 and switched.headers["location"] == f"/orders/{mine}"
    english = await browser.get(f"/orders/{mine}", headers={"Accept-Language": "de"})
    assert '<html lang="en">' in english.text and "Draft" in english.text and "640.00 EUR" in english.text
    assert "Not found" in (await browser.get(f"/orders/{seeded.order_of['member-2']}")).text
    off_site = await browser.post("/language", data={"csrf": csrf, "lang": "de", "next": "//evil.example/x"})
    assert off_site.headers["location"] == "/dashboard"

    # sign-out: without the token refused, with it the session is gone
    assert (await browser.post("/signout", data={})).status_code == 403
    out = await browser.post("/signout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert (await browser.get("/dashboard")).headers["location"].startswith("/signin")

    # member-2 signs in in the same browser: sees their own order, not member-1's
    await sign_in(browser, "member-2")
    assert (await browser.get(f"/orders/{seeded.order_of['member-2']}")).status_code == 200
    assert (await browser.get(f"/orders/{mine}")).status_code == 404


async def test_dev_sign_in_names_the_wrong_field(seeded: Seeded, browser: httpx.AsyncClient):
    page = await browser.get("/signin")
    r = await browser.post("/signin/dev", data={"csrf": CSRF.search(page.text).group(1), "user_id": "a b<script>",
                                                "role": "member"})
    assert r.status_code == 422
    assert 'id="user_id-error"' in r.text and 'aria-invalid="true"' in r.text and "<script>" not in r.text
    assert (await browser.post("/signin/dev", data={"user_id": "member-1", "role": "member"})).status_code == 403


@pytest.mark.unit
def test_production_needs_a_session_secret_and_an_identity_provider():
    """(InsecureConfiguration, a ValueError, reaches the caller inside pydantic's ValidationError)"""
    with pytest.raises(ValueError, match="SESSION_SECRET"):
        PortalSettings(environment="production", oidc_issuer="https://id.example/realms/kontor")
    with pytest.raises(ValueError, match="OIDC_ISSUER"):
        PortalSettings(environment="production", session_secret="x" * 40)


@pytest.mark.unit
async def test_production_offers_only_the_identity_provider():
    settings = PortalSettings(environment="production", session_secret="s" * 40,
                              oidc_issuer="https://id.example/realms/kontor",
                              public_base_url="https://portal.example")
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://portal.example") as c:
        page = await c.get("/signin")
        assert page.status_code == 200
        assert 'href="/signin/oidc"' in page.text and "/signin/dev" not in page.text
        assert "form-action 'self' https://id.example" in page.headers["content-security-policy"]
        assert "secure" in page.headers["set-cookie"].lower()
        r = await c.post("/signin/dev", data={"user_id": "member-1", "role": "member"})
        assert r.status_code == 404

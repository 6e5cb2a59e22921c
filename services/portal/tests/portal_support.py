"""The portal in front of the real clients, orders and invoicing services (each on a real port),
and a seeded order per member: what the portal's service and browser tests share."""
from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from kontor.testing import TestInfra, eventually
from kontor.testing.browser import CHROMIUM as CHROMIUM
from kontor.testing.browser import CHROMIUM_ARGS as CHROMIUM_ARGS
from kontor.testing.browser import SCREENSHOTS
from kontor.testing.services import auth, running_service
from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_orders.spec import SPEC as ORDERS
from kontor_portal.settings import PortalSettings

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# Debian's Chromium launched as every browser test does (kontor.testing.browser); never `playwright install`
SHOTS = SCREENSHOTS


@dataclass
class Seeded:
    settings: PortalSettings
    order_of: dict[str, str]  # member id -> the id of the draft order seeded for that member


async def seed_order(clients: httpx.AsyncClient, orders: httpx.AsyncClient, headers: dict[str, str], member: str,
                     project: str) -> str:
    r = await clients.post("/clients", headers=headers, json={
        "kind": "company", "name": f"Werkstatt {project} GmbH", "invoice_email": "rechnung@werkstatt.example",
        "language": "de", "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin",
                                      "country": "DE"}})
    assert r.status_code == 201, r.text
    body = {"client_id": r.json()["id"], "contact_person": {"name": "Erika Muster", "email": "erika@werkstatt.example"},
            "sector": "design", "place_of_service": "DE", "project_name": project, "currency": "EUR",
            "lines": [{"description": "Design workshop", "quantity": "2", "unit": "day", "unit_price": "640.00"},
                      {"description": "Implementation", "quantity": "40", "unit": "hour", "unit_price": "85.00"}]}

    async def created() -> str | None:
        r = await orders.post("/orders", json=body, headers=headers)
        return r.json()["order_id"] if r.status_code == 201 else None
    return await eventually(created, what=f"orders knowing the client of {member}")


@contextlib.asynccontextmanager
async def platform(infra: TestInfra, topic_prefix: str, *, members: dict[str, dict[str, str]] | None = None,
                   **service_auth: Any) -> AsyncIterator[Seeded]:
    """clients, orders and invoicing served on free ports, one order each for the two `members` (name ->
    their Authorization header; member-1 and member-2 with development tokens unless given), and the
    portal's settings pointing at them (development: the dev sign-in). `service_auth`: how the services
    verify tokens (jwks_url, jwt_issuer, jwt_audience), else the development secret."""
    members = members or {"member-1": auth("member-1", "member"), "member-2": auth("member-2", "member")}
    first, second = members
    common = {"topic_prefix": topic_prefix, **service_auth}
    async with running_service(CLIENTS, infra, **common, serve_http=True, standing_run_enabled=False) as clients, \
            running_service(ORDERS, infra, **common, serve_http=True, order_runs_enabled=False) as orders, \
            running_service(INVOICING, infra, **common, serve_http=True, billing_runs_enabled=False) as invoicing:
        order_of = {first: await seed_order(clients.http, orders.http, members[first], first, "Relaunch Portal"),
                    second: await seed_order(clients.http, orders.http, members[second], second, "Geheimprojekt")}
        assert clients.base_url and orders.base_url and invoicing.base_url
        settings = PortalSettings(environment="development", clients_url=clients.base_url,
                                  orders_url=orders.base_url, invoicing_url=invoicing.base_url,
                                  notifications_url="http://127.0.0.1:9")  # the slice's pages never call it
        yield Seeded(settings, order_of)


@contextlib.asynccontextmanager
async def served_portal(settings: PortalSettings) -> AsyncIterator[str]:
    """The portal on a free port of 127.0.0.1 with uvicorn (for a real browser); its base URL."""
    import asyncio

    import uvicorn

    from kontor.testing import free_port
    from kontor_portal.entrypoints.app import create_app

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    app = create_app(settings.model_copy(update={"public_base_url": base_url}))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
        await asyncio.sleep(0.02)
    try:
        yield base_url
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def portal_client(settings: PortalSettings, **client: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of the portal served in process: cookies kept, redirects followed by hand."""
    from asgi_lifespan import LifespanManager

    from kontor_portal.entrypoints.app import create_app

    app = create_app(settings)
    async with LifespanManager(app) as manager, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://portal.test", **client) as browser:
        yield browser


async def dev_sign_in(browser: httpx.AsyncClient, user: str, role: str = "member",
                      name: str | None = None) -> httpx.Response:
    """Through the development sign-in's form (its CSRF token taken from the page)."""
    page = await browser.get("/signin")
    return await browser.post("/signin/dev", data={"csrf": CSRF.search(page.text).group(1),  # type: ignore[union-attr]
                                                   "user_id": user, "name": name or f"Name of {user}", "role": role})


def error_at(html: str, field: str) -> str | None:
    """The error shown at a form's field (the `f-<field>-error` element), None when there is none."""
    from html import unescape

    m = re.search(rf'id="f-{re.escape(field)}-error" class="error">([^<]*)<', html)
    return unescape(m.group(1)) if m else None

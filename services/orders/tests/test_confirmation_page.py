"""The client's confirmation page against real PostgreSQL and Kafka: what a member typed is
shown as text, and every page (the order, its notices) is sent with headers that keep it
from running script, being framed, cached or leaking its address."""
import json
import re

import pytest
from orders_support import ADVISOR, MEMBER, NOW, known_client

from kontor.clock import FixedClock
from kontor.testing import eventually
from kontor.testing.kafka import read_topic
from kontor.testing.services import running_service
from kontor_orders.spec import SPEC

pytestmark = pytest.mark.integration
HOSTILE = "<svg onload=alert(1)>"
ESCAPED = "&lt;svg onload=alert(1)&gt;"


def order_body(client_id) -> dict:
    return {
        "client_id": str(client_id), "contact_person": {"name": "Erika Muster", "email": "erika@acme.example"},
        "sector": "design", "place_of_service": "DE", "project_name": f"Relaunch {HOSTILE}",
        "description": f"Scope {HOSTILE}",
        "lines": [{"description": f"Workshop {HOSTILE}", "quantity": "2", "unit": "day", "unit_price": "640.00"}],
        "currency": "EUR", "service_period": {"start": "2027-01-01", "end": "2027-03-31"},
        "confirmation": {"mode": "send", "offer_valid_until": "2026-12-15"},
        "payment": {"mode": "after_completion", "due_in_days": 14, "invoice_date": "2027-03-31"},
    }


async def act(svc, order_id: str, action: str, headers: dict) -> dict:
    r = await svc.http.post(f"/orders/{order_id}/{action}", headers=headers)
    assert r.status_code == 200, (action, r.text)
    return r.json()


def assert_strict_headers(response, *, forms: bool) -> None:
    csp = {d.split()[0]: d.split()[1:] for d in response.headers["content-security-policy"].split("; ")}
    assert csp["default-src"] == ["'none'"] and "script-src" not in csp
    assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == (["'self'"] if forms else ["'none'"])
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_confirmation_page_shows_what_members_typed_as_text_with_strict_headers(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False, public_base_url="https://kontor.example") as svc:
        client_id = await known_client(infra, topic_prefix)

        async def accepted():
            r = await svc.http.post("/orders", json=order_body(client_id), headers=MEMBER)
            return r.json() if r.status_code == 201 else None
        order = await eventually(accepted, what="orders knowing the client")
        await act(svc, order["order_id"], "submit", MEMBER)
        await act(svc, order["order_id"], "approve", ADVISOR)
        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.orders.v1", min_count=3)
        [sent] = [json.loads(r.value) for r in records if r.type == "kontor.order.sent-for-confirmation.v1"]
        path = sent["confirmation_url"].removeprefix("https://kontor.example")

        page = await svc.http.get(path)
        assert page.status_code == 200
        # project (in the heading and the order), description, line
        assert "<svg" not in page.text and page.text.count(ESCAPED) == 4, page.text
        assert_strict_headers(page, forms=True)
        action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)

        # an answer the page sends back (an unknown action) echoes the message, as text
        again = await svc.http.post(action, data={"action": "bogus", "message": f"</textarea>{HOSTILE}"})
        assert again.status_code == 422 and "</textarea><svg" not in again.text
        assert f"&lt;/textarea&gt;{ESCAPED}" in again.text
        assert_strict_headers(again, forms=True)

        unknown = await svc.http.get("/confirm/not-a-token")
        assert unknown.status_code == 404
        assert_strict_headers(unknown, forms=False)

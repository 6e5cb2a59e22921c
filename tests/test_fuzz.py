"""Property-based fuzzing of the four APIs: no request, however malformed, gets a 5xx.

Schemathesis generates requests from each service's own OpenAPI schema — valid ones and,
as much, invalid ones (wrong types, missing fields, out-of-range numbers, odd strings) —
and sends them over real HTTP to the four services, which run together with their workers
against real PostgreSQL and Kafka, as a member and as an advisor. Its stateful mode, which
feeds what one call created into the next, stays off; instead the module seeds its own
records (a client, a draft, a submitted and an active order with its draft invoice, a
member's address) in its own fresh
databases, and half of the generated ids and `client_id`s are those, so that requests get
past "not found" into the use cases. Nothing touches another test's records.

`KONTOR_FUZZ_EXAMPLES` (default 50) bounds the examples per operation and role;
`KONTOR_FUZZ_SEED` changes the otherwise fixed seed, to explore further.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
from dataclasses import dataclass, field

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies
from schemathesis.generation import DataGenerationMethod
from schemathesis.runner import events, from_schema

from kontor.clock import SystemClock, business_today
from kontor.testing import eventually
from kontor.testing.services import auth, running_service
from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_notifications.spec import SPEC as NOTIFICATIONS
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("KONTOR_FUZZ_EXAMPLES", "50"))
SEED = int(os.environ.get("KONTOR_FUZZ_SEED", "17"))
MEMBER, ADVISOR = auth("fuzz-member", "member"), auth("fuzz-advisor", "advisor")
ROLES = {"member": MEMBER, "advisor": ADVISOR}
SPECS = [CLIENTS, ORDERS, INVOICING, NOTIFICATIONS]
CLIENT = {"kind": "company", "name": "Fuzz GmbH", "vat_id": "DE136695976", "invoice_email": "rechnung@fuzz.example",
          "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"},
          "language": "de"}


def draft(client_id: str) -> dict:
    """A complete order (it can be submitted), in the weeks ahead of today."""
    today = business_today(SystemClock())
    return {"client_id": client_id, "contact_person": {"name": "Erika Muster", "email": "erika@fuzz.example"},
            "currency": "EUR", "project_name": "Fuzz", "sector": "design", "place_of_service": "DE",
            "description": "Workshop and design.",
            "lines": [{"description": "Workshop", "quantity": "2", "unit": "day", "unit_price": "640.00"}],
            "service_period": {"start": today.isoformat(), "end": (today + dt.timedelta(days=30)).isoformat()},
            "confirmation": {"mode": "send", "offer_valid_until": (today + dt.timedelta(days=14)).isoformat()},
            "payment": {"mode": "after_completion", "due_in_days": 14,
                        "invoice_date": (today + dt.timedelta(days=31)).isoformat()}}


@dataclass
class Report:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the fuzzer's own trouble, e.g. a schema it cannot use

    def summary(self) -> str:
        classes: dict[str, int] = {}
        for status, n in self.by_status.items():
            classes[f"{status // 100}xx"] = classes.get(f"{status // 100}xx", 0) + n
        return f"{self.requests} requests, {dict(sorted(classes.items()))}, {len(self.server_errors)} 5xx"


def fuzz(base_url: str, seeds: dict[str, list[str]]) -> Report:
    """Synchronous (schemathesis sends with `requests`): run in a thread while the services serve.
    `seeds`: parameter name (a path parameter or a body field) -> ids of records that exist."""
    report = Report()

    def no_server_error(_ctx, response, case) -> None:
        report.requests += 1
        report.by_status[response.status_code] = report.by_status.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            report.server_errors.append(f"{response.status_code} {case.operation.verbose_name}: "
                                        f"{case.as_curl_command()}\n    -> {response.text[:300]}")

    schemathesis.experimental.OPEN_API_3_1.enable()  # FastAPI's schemas are OpenAPI 3.1
    # ids are UUIDs: generate real ones, so that requests reach the handlers instead of the 422 of the path
    schemathesis.openapi.format("uuid", strategies.uuids().map(str))
    schema = schemathesis.from_uri(f"{base_url}/openapi.json", base_url=base_url,
                                   data_generation_methods=DataGenerationMethod.all())

    def seeded(values: object) -> strategies.SearchStrategy:
        """`values` as generated, or with one of its ids replaced by a seeded one (as likely)."""
        known = [k for k in values if k in seeds] if isinstance(values, dict) else []
        if not known:
            return strategies.just(values)
        key = known[0]
        generated: dict = values  # type: ignore[assignment]
        return strategies.sampled_from([None, *seeds[key]]).map(
            lambda v: generated if v is None else {**generated, key: v})

    schema.hook("flatmap_path_parameters")(lambda _ctx, params: seeded(params))
    schema.hook("flatmap_body")(lambda _ctx, body: seeded(body))
    for role, headers in ROLES.items():
        runner = from_schema(
            schema, checks=[no_server_error], headers=headers, stateful=None, seed=SEED + len(role),
            request_timeout=30_000,
            hypothesis_settings=hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                                                    suppress_health_check=list(hypothesis.HealthCheck),
                                                    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate]))
        for event in runner.execute():
            if isinstance(event, events.InternalError):
                report.errors.append(f"{role}: {event.exception_type}: {event.message}")
            elif isinstance(event, events.AfterExecution) and event.result.errors:
                for error in event.result.errors:
                    report.errors.append(f"{role} {event.verbose_name}: {error.exception.strip()[:400]}")
    return report


@pytest.fixture(scope="module")
async def platform(infra):
    """The four services with their workers, and the records the fuzzing starts from."""
    from kontor.testing import unique

    prefix = unique("fuzz") + "."
    async with running_service(CLIENTS, infra, topic_prefix=prefix, serve_http=True) as clients, \
            running_service(ORDERS, infra, topic_prefix=prefix, serve_http=True) as orders, \
            running_service(INVOICING, infra, topic_prefix=prefix, serve_http=True) as invoicing, \
            running_service(NOTIFICATIONS, infra, topic_prefix=prefix, serve_http=True) as notifications:
        client = (await clients.http.post("/clients", json=CLIENT, headers=MEMBER)).json()

        async def accepted():
            r = await orders.http.post("/orders", json=draft(client["id"]), headers=MEMBER)
            if r.status_code not in (201, 404, 422) or (r.status_code == 422 and "client_id" not in r.text):
                raise AssertionError(f"the seeded order is refused: {r.status_code} {r.text}")
            return r.json() if r.status_code == 201 else None

        first = await eventually(accepted, what="orders knowing the seeded client")
        submitted = (await orders.http.post("/orders", json=draft(client["id"]), headers=MEMBER)).json()
        r = await orders.http.post(f"/orders/{submitted['order_id']}/submit", headers=MEMBER)
        assert r.status_code == 200, r.text
        # an order without the client's confirmation, invoiced today: its draft invoice for the invoicing API
        billed = {**draft(client["id"]), "confirmation": {"mode": "skip", "skip_reason": "signed on paper",
                                                          "separate_agreement": True}}
        today = business_today(SystemClock())
        billed["service_period"] = {"start": (today - dt.timedelta(days=30)).isoformat(), "end": today.isoformat()}
        billed["payment"] = {"mode": "after_completion", "due_in_days": 14, "invoice_date": today.isoformat()}
        third = (await orders.http.post("/orders", json=billed, headers=MEMBER)).json()
        for action, who in (("submit", MEMBER), ("approve", ADVISOR)):
            r = await orders.http.post(f"/orders/{third['order_id']}/{action}", headers=who)
            assert r.status_code == 200, r.text

        async def drafted():
            r = await invoicing.http.post("/billing-runs", json={"as_of": today.isoformat()}, headers=ADVISOR)
            assert r.status_code in (200, 202), r.text
            found = (await invoicing.http.get("/invoices", params={"order_id": third["order_id"]},
                                              headers=MEMBER)).json()
            return [i["invoice_id"] for i in found]

        invoice_ids = await eventually(drafted, timeout_s=60, interval_s=1, what="the seeded order's draft invoice")
        r = await notifications.http.put("/members/fuzz-member", headers=MEMBER,
                                         json={"email": "fuzz-member@fuzz.example", "language": "de"})
        assert r.status_code == 200, r.text
        seeds = {"client_id": [client["id"]], "order_id": [first["order_id"], submitted["order_id"]],
                 "member_id": ["fuzz-member"], "invoice_id": invoice_ids}
        yield {s.name: svc for s, svc in zip(SPECS, (clients, orders, invoicing, notifications), strict=True)}, seeds


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
async def test_no_request_to_an_api_gets_a_server_error(platform, spec):
    services, seeds = platform
    report = await asyncio.to_thread(fuzz, services[spec.name].base_url, seeds)
    print(f"\n[fuzz] {spec.name}: {report.summary()}")
    assert not report.errors, "\n".join(report.errors)
    assert report.requests >= 50 * len(ROLES), report.summary()  # the fuzzer really sent requests
    assert not report.server_errors, f"{len(report.server_errors)} requests got a 5xx:\n" + \
        "\n".join(report.server_errors[:40])

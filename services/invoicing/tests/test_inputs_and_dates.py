"""What the invoicing API takes, against real PostgreSQL and Kafka: every null, odd or unbounded
value answers 4xx naming its field (never 5xx); runs as of a later date than today are refused
unless the deployment allows them, by the API and by the `billing-run` command alike; a
cancellation invoice is neither cancelled nor paid; an invoice is cancelled once."""
import asyncio
import datetime as dt
import os
import subprocess
import sys
import uuid
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from kontor.clock import FixedClock, SystemClock, business_today
from kontor.db import create_engine, create_session_factory
from kontor.testing.services import auth, running_service
from kontor_invoicing.adapters import repository
from kontor_invoicing.adapters.orm import billing_runs
from kontor_invoicing.domain import model
from kontor_invoicing.spec import SPEC

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)  # "today" of the service: 1 Dec 2026
TODAY = NOW.date()
MEMBER = auth("member-1", "member")
ADVISOR = auth("advisor-1", "advisor")


def draft(currency: str = "EUR", **kw) -> model.Invoice:
    price = D(100000) if currency == "JPY" else D("100.00")
    line = model.Line("Leistung", D(1), "lump_sum", price, price, "S", D(19))
    return model.Invoice(id=uuid.uuid4(), order_id=uuid.uuid4(), member_id="member-1", client_id=uuid.uuid4(),
                         seq=1, kind="invoice", schedule_kind="advance", status="draft", currency=currency,
                         lines=(line,), invoice_date=TODAY, due_in_days=14, created_at=NOW, **kw)


def issued(currency: str = "EUR") -> model.Invoice:
    return model.issue(draft(currency), number=f"2026-{uuid.uuid4().int % 999_999 + 1:06d}", issue_date=TODAY)


async def store(svc, *invoices: model.Invoice) -> None:
    engine = create_engine(svc.database)
    try:
        async with create_session_factory(engine).begin() as session:
            for inv in invoices:
                assert await repository.add(session, inv)
    finally:
        await engine.dispose()


def field_of(r) -> list:
    """The `loc` of each error of a 422 answer."""
    assert r.status_code == 422, (r.status_code, r.text)
    return [e["loc"] for e in r.json()["detail"]]


async def test_adjusting_with_null_or_odd_bodies_answers_422_naming_the_field(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW), start_worker=False,
                               billing_runs_enabled=False) as svc:
        eur, jpy = draft(), draft("JPY")
        await store(svc, eur, jpy)

        async def patch(inv, body):
            return await svc.http.patch(f"/invoices/{inv.id}", json=body, headers=ADVISOR)

        line = {"description": "Workshop", "quantity": "1", "unit": "day", "unit_price": "640.00"}
        for name in ("lines", "invoice_date", "due_in_days"):
            assert field_of(await patch(eur, {name: None})) == [["body", name]], name
        assert field_of(await patch(eur, {"lines": []})) == [["body", "lines"]]
        assert field_of(await patch(eur, {"lines": [line] * (model.MAX_LINES + 1)})) == [["body", "lines"]]
        assert field_of(await patch(eur, {"lines": [None]})) == [["body", "lines", 0]]
        assert field_of(await patch(eur, {"lines": [{**line, "unit_price": "1e30"}]})) == \
            [["body", "lines", 0, "unit_price"]]
        assert field_of(await patch(eur, {"lines": [{**line, "quantity": "1e30"}]})) == \
            [["body", "lines", 0, "quantity"]]
        assert field_of(await patch(eur, {"lines": [{**line, "unit_price": "0.001"}]})) == \
            [["body", "lines", 0, "unit_price"]]
        # within the bounds of one line, but not of one invoice: 1,000,000 × 999,999,999.99
        huge = {**line, "quantity": "1000000", "unit_price": "999999999.99"}
        # (the domain names a line by its index as text, FastAPI as a number)
        assert field_of(await patch(eur, {"lines": [huge]})) == [["body", "lines", "0"]]
        assert field_of(await patch(jpy, {"lines": [{**line, "unit_price": "1500.5"}]})) == \
            [["body", "lines", "0", "unit_price"]], "JPY has no decimals"
        for day in ("9999-12-31", "0001-01-01", "2100-01-01"):
            assert field_of(await patch(eur, {"invoice_date": day})) == [["body", "invoice_date"]], day
        assert field_of(await patch(eur, {"due_in_days": 10**12})) == [["body", "due_in_days"]]
        for body in (None, [], "lines", 1, {"lines": "x"}, {"lines": {"0": line}}, {"number": "2026-1"}):
            r = await patch(eur, body)
            assert r.status_code == 422, (body, r.status_code, r.text)
        assert (await svc.http.get(f"/invoices/{eur.id}", headers=ADVISOR)).json()["lines"][0]["unit_price"] == \
            "100.00", "nothing changed"

        ok = await patch(jpy, {"lines": [{**line, "unit_price": "1500"}], "project_name": None, "description": None})
        assert ok.status_code == 200, ok.text
        assert (ok.json()["lines"][0]["net_amount"], ok.json()["project_name"]) == ("1500", None)


async def test_payments_are_bounded_dated_not_in_the_future_and_never_on_a_cancellation_invoice(infra,
                                                                                                 topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW), start_worker=False,
                               billing_runs_enabled=False) as svc:
        eur, jpy = issued(), issued("JPY")
        original = issued()
        _, storno = model.request_cancellation(original, cancellation_id=uuid.uuid4(), on=TODAY, reason="x", now=NOW)
        storno = model.documents_stored(model.number(storno, sequence=999_000), ())
        await store(svc, eur, jpy, storno)

        async def pay(inv, amount, received_on=None):
            return await svc.http.post(f"/invoices/{inv.id}/payments", headers=ADVISOR,
                                       json={"amount": amount, "received_on": received_on or TODAY.isoformat()})

        for amount in ("1e30", 1e30, "1e-30", "0", "-5", "100.001", "NaN", "Infinity"):
            assert field_of(await pay(eur, amount)) == [["body", "amount"]], amount
        assert field_of(await pay(jpy, "100.5")) == [["body", "amount"]], "JPY has no decimals"
        assert field_of(await pay(eur, "100.000")) == [["body", "amount"]], "three decimals in EUR"
        for day in ("0001-01-01", "9999-12-31", "1999-12-31"):
            assert field_of(await pay(eur, "10.00", day)) == [["body", "received_on"]], day
        tomorrow = await pay(eur, "10.00", (TODAY + dt.timedelta(days=1)).isoformat())
        assert field_of(tomorrow) == [["body", "received_on"]] and "after today" in tomorrow.text
        assert field_of(await svc.http.post(f"/invoices/{eur.id}/payments", headers=ADVISOR,
                                            json={"amount": None, "received_on": None})) == \
            [["body", "amount"], ["body", "received_on"]]

        paid = await pay(jpy, "1.19E+5")  # 100,000 JPY + 19 % VAT
        assert paid.status_code == 200, paid.text
        assert (paid.json()["status"], paid.json()["payments"][0]["amount"]) == ("paid", "119000")
        assert (await pay(eur, "10.00")).status_code == 200, "today is fine"

        refused = await pay(storno, "10.00")
        assert refused.status_code == 409 and "cancellation invoice" in refused.json()["detail"], refused.text


async def test_a_cancellation_invoice_is_not_cancelled_and_an_invoice_is_cancelled_once(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW), start_worker=False,
                               billing_runs_enabled=False) as svc:
        first, second = issued(), issued()
        _, storno = model.request_cancellation(first, cancellation_id=uuid.uuid4(), on=TODAY, reason="x", now=NOW)
        storno = model.documents_stored(model.number(storno, sequence=999_001), ())
        await store(svc, first, second, storno)

        for body in (None, {}, {"reason": None}, {"reason": "x" * 2001}):
            r = await svc.http.post(f"/invoices/{second.id}/cancel", json=body, headers=ADVISOR)
            assert r.status_code == 422, (body, r.text)
        r = await svc.http.post(f"/invoices/{storno.id}/cancel", json={"reason": "again"}, headers=ADVISOR)
        assert r.status_code == 409 and r.json()["detail"].startswith("a cancellation invoice cannot be cancelled"), \
            r.text

        r = await svc.http.post(f"/invoices/{second.id}/cancel", json={"reason": "wrong scope"}, headers=ADVISOR)
        assert r.status_code == 202, r.text
        pending = r.json()["cancelled_by"]
        twice = await svc.http.post(f"/invoices/{second.id}/cancel", json={"reason": "again"}, headers=ADVISOR)
        assert twice.status_code == 409 and "already being cancelled" in twice.json()["detail"], twice.text
        queued = await svc.http.post(f"/invoices/{pending}/cancel", json={"reason": "x"}, headers=ADVISOR)
        assert queued.status_code == 409 and "cancellation invoice cannot be cancelled" in queued.json()["detail"]
        stornos = (await svc.http.get("/invoices", params={"status": "issuing"}, headers=ADVISOR)).json()
        assert [i["invoice_id"] for i in stornos] == [pending], "one cancellation invoice, not two"


async def test_runs_as_of_a_later_date_are_refused_unless_the_deployment_allows_them(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW), start_worker=False,
                               billing_runs_enabled=False) as svc:
        async def start(as_of):
            return await svc.http.post("/billing-runs", json={"as_of": as_of}, headers=ADVISOR)

        tomorrow = await start("2026-12-02")
        assert field_of(tomorrow) == [["body", "as_of"]] and "after today" in tomorrow.text, tomorrow.text
        for as_of in ("2027-12-31", "9999-12-31", "0001-01-01", "1999-12-31", None):
            r = await start(as_of)
            if as_of is None:  # null: today, as when it is left out
                assert r.status_code == 202 and r.json()["as_of"] == "2026-12-01", r.text
            else:
                assert field_of(r) == [["body", "as_of"]], as_of
        assert (await start("2026-11-30")).status_code == 202, "a past date is fine"
        assert field_of(await svc.http.get("/billing-runs", params={"offset": 10**19}, headers=ADVISOR)) == \
            [["query", "offset"]]
        assert field_of(await svc.http.get("/invoices", params={"offset": 10**19}, headers=ADVISOR)) == \
            [["query", "offset"]]
        runs = (await svc.http.get("/billing-runs", headers=ADVISOR)).json()
        # newest first, though both were created at the same (fixed) instant
        assert [r["as_of"] for r in runs] == ["2026-11-30", "2026-12-01"]

    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW), start_worker=False,
                               billing_runs_enabled=False, allow_future_as_of=True) as svc:
        r = await svc.http.post("/billing-runs", json={"as_of": "2027-12-31"}, headers=ADVISOR)
        assert r.status_code == 202 and r.json()["as_of"] == "2027-12-31", r.text
        r = await svc.http.post("/billing-runs", json={"as_of": "9999-12-31"}, headers=ADVISOR)
        assert field_of(r) == [["body", "as_of"]], "allowed in the future, still a business date"


async def test_the_billing_run_command_obeys_the_same_rule(infra, topic_prefix):
    today = business_today(SystemClock())  # the command's clock is the system's
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, start_worker=False,
                               billing_runs_enabled=False) as svc:
        env = {**os.environ, "KONTOR_INVOICING_DATABASE_URL": svc.database, "KONTOR_INVOICING_LOG_LEVEL": "WARNING"}
        env.pop("KONTOR_INVOICING_ALLOW_FUTURE_AS_OF", None)

        def command(as_of: str, **extra: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "kontor_invoicing", "billing-run", "--as-of", as_of,
                                   "--no-wait"], env={**env, **extra}, capture_output=True, text=True, timeout=120,
                                  check=False)

        refused = await asyncio.to_thread(command, tomorrow)
        assert refused.returncode == 2 and "--as-of: must not be after today" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
        far = await asyncio.to_thread(command, "9999-12-31", KONTOR_INVOICING_ALLOW_FUTURE_AS_OF="true")
        assert far.returncode == 2 and "--as-of: must be between" in far.stderr, far.stderr

        engine = create_engine(svc.database)
        try:
            async with engine.connect() as conn:
                assert (await conn.execute(sa.select(sa.func.count()).select_from(billing_runs))).scalar_one() == 0
        finally:
            await engine.dispose()
        allowed = await asyncio.to_thread(command, tomorrow, KONTOR_INVOICING_ALLOW_FUTURE_AS_OF="true")
        assert allowed.returncode == 0 and f"as of {tomorrow}" in allowed.stderr, allowed.stderr

"""Fast unit tests of the shared package's pure parts."""
import datetime as dt
import uuid
from decimal import Decimal

import pytest
from pydantic import ValidationError

from kontor.auth import InvalidToken, TokenVerifier, mint_token
from kontor.clock import FixedClock, business_today, end_of_business_day
from kontor.contracts import all_contracts, contract_for
from kontor.contracts.clients import ClientRegisteredV1
from kontor.envelope import Envelope, EnvelopeError
from kontor.money import format_money, round_money
from kontor.settings import ServiceSettings
from kontor.topics import Topics

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def registered(client_id=None) -> ClientRegisteredV1:
    client_id = client_id or uuid.uuid4()
    return ClientRegisteredV1.model_validate({
        "client_id": str(client_id), "occurred_at": NOW.isoformat(), "actor": {"kind": "member", "id": "m1"},
        "client": {"client_id": str(client_id), "kind": "company", "name": "ACME",
                   "address": {"street": "A 1", "postal_code": "10115", "city": "Berlin", "country": "DE"},
                   "standing": {"status": "ok"}, "version": 1},
    })


def test_envelope_round_trips_through_kafka_headers():
    event = registered()
    env = Envelope.for_event(event, time=NOW)
    back = Envelope.from_headers(env.headers())
    assert back == env
    headers = dict(env.headers())
    assert headers["ce_type"] == b"kontor.client.registered.v1"
    assert headers["ce_subject"] == str(event.client_id).encode()
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_time"] == b"2026-11-22T12:00:00Z"


def test_caused_events_inherit_the_correlation_id():
    first = Envelope.for_event(registered(), time=NOW)
    second = Envelope.for_event(registered(), time=NOW, caused_by=first)
    assert second.correlation_id == first.correlation_id == first.id
    assert second.causation_id == first.id
    assert second.id != first.id


@pytest.mark.parametrize("headers, message", [
    ([], "missing CloudEvents headers"),
    ([("ce_specversion", b"0.3"), ("ce_id", b"x"), ("ce_source", b"s"), ("ce_type", b"t"), ("ce_time", b"t")],
     "unsupported ce_specversion"),
    ([("ce_specversion", b"1.0"), ("ce_id", b"not-a-uuid"), ("ce_source", b"s"), ("ce_type", b"t"),
      ("ce_time", b"2026-01-01T00:00:00Z")], "malformed"),
])
def test_bad_envelopes_are_rejected_with_a_reason(headers, message):
    with pytest.raises(EnvelopeError, match=message):
        Envelope.from_headers(headers)


def test_contracts_are_frozen_registered_and_tolerant_of_added_fields():
    event = registered()
    with pytest.raises(ValidationError, match="frozen"):
        event.client_id = uuid.uuid4()  # type: ignore[misc]
    assert contract_for("kontor.client.registered.v1") is ClientRegisteredV1
    assert all(name.endswith(".v1") for name in all_contracts())
    data = event.model_dump(mode="json") | {"a_field_added_later": 1}
    assert ClientRegisteredV1.model_validate(data) == event


def test_topics_with_prefix_and_dead_letter_names():
    topics = Topics("t1.")
    assert topics.name("kontor.clients.v1") == "t1.kontor.clients.v1"
    assert topics.dlq("kontor.clients.v1", "kontor-orders") == "t1.kontor.clients.v1.dlq.kontor-orders"


@pytest.mark.parametrize("amount, currency, expected", [
    ("2.345", "EUR", "2.35"), ("2.344", "EUR", "2.34"), ("1000.5", "JPY", "1001"), ("-0.005", "EUR", "-0.01"),
])
def test_money_rounds_half_up_to_the_minor_unit(amount, currency, expected):
    assert round_money(Decimal(amount), currency) == Decimal(expected)


def test_business_dates_are_in_berlin():
    late_evening_utc = dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC)  # already 2027 in Berlin
    assert business_today(FixedClock(late_evening_utc)) == dt.date(2027, 1, 1)
    assert end_of_business_day(dt.date(2026, 7, 1)) == dt.datetime(2026, 7, 1, 21, 59, 59, 999999, tzinfo=dt.UTC)


async def test_tokens_verify_and_bad_ones_are_refused():
    settings = ServiceSettings(jwt_secret="s" * 40)
    verifier = TokenVerifier(settings)
    principal = await verifier.verify(mint_token("s" * 40, "m-1", ["member"], name="Mia"))
    assert (principal.sub, principal.is_member, principal.is_advisor, principal.name) == ("m-1", True, False, "Mia")
    with pytest.raises(InvalidToken):
        await verifier.verify(mint_token("x" * 40, "m-1", ["member"]))
    with pytest.raises(InvalidToken, match="expired"):
        await verifier.verify(mint_token("s" * 40, "m-1", ["member"], ttl=dt.timedelta(seconds=-5)))
    with pytest.raises(ValueError):
        mint_token("s" * 40, "m-1", ["admin"])


def test_money_is_formatted_as_people_read_it():
    assert format_money(Decimal("1280.00"), "EUR", "de") == "1.280,00 EUR"
    assert format_money(Decimal("1234567.50"), "USD", "en") == "1,234,567.50 USD"
    assert format_money(Decimal("100000"), "JPY", "de") == "100.000 JPY"


def test_add_months_clamps_to_the_end_of_the_month():
    from kontor.clock import add_months

    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2027, 11, 30), 3) == dt.date(2028, 2, 29)


def test_rates_are_written_as_people_write_them():
    from kontor.money import format_percent

    assert [format_percent(Decimal(v), "de") for v in ("50", "30.00", "33.5", "19", "0")] == \
        ["50 %", "30 %", "33,5 %", "19 %", "0 %"]
    assert format_percent(Decimal("33.50"), "en") == "33.5 %"
    from kontor.money import format_number

    assert [format_number(Decimal(v), "de") for v in ("10", "2.50", "40")] == ["10", "2,5", "40"]

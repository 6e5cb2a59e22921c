"""The registry over HTTP against real PostgreSQL (and Kafka for its events): validation,
duplicates, search, and who sees what."""
import asyncio
import json

import pytest

from kontor.testing.kafka import read_topic
from kontor.testing.services import auth, running_service
from kontor_clients.spec import SPEC

pytestmark = pytest.mark.integration

MEMBER = auth("member-1", "member")
ACME = {"kind": "company", "name": "ACME Werkstatt GmbH", "vat_id": "DE136695976",
        "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"},
        "invoice_email": "rechnung@acme.example", "language": "de"}
CITY = {"kind": "public_body", "name": "Stadt Musterhausen",
        "address": {"street": "Rathausplatz 1", "postal_code": "99999", "city": "Musterhausen", "country": "DE"},
        "leitweg_id": "991-33333TEST-33", "invoice_email": "e-rechnung@musterhausen.example", "language": "de"}
PERSON = {"kind": "person", "name": "Jane Doe",
          "address": {"street": "1 Main St", "postal_code": "10001", "city": "New York", "country": "US",
                      "subdivision": "NY"},
          "language": "en"}


def with_(base: dict, **changes) -> dict:
    body = dict(base)
    for key, value in changes.items():
        if "__" in key:
            outer, inner = key.split("__")
            body[outer] = {**body[outer], inner: value}
        elif value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


GOOD = [
    ACME,
    CITY,
    PERSON,
    with_(ACME, name="Société Générale Paris", vat_id="FR40303265045", address__country="FR",
          address__postal_code="75009"),
    with_(ACME, name="Wien Consult", vat_id="ATU13585627", address__country="AT", address__postal_code="1010"),
    with_(ACME, name="Zürich AG", vat_id="CHE-116.281.710 MWST", address__country="CH", address__postal_code="8001"),
    with_(ACME, name="Athens Media", vat_id="EL094259216", address__country="GR", address__postal_code="10552"),
    with_(PERSON, name="Jean Tremblay", address={"street": "1 Front St W", "postal_code": "M5V 3L9",
                                                 "city": "Toronto", "country": "CA", "subdivision": "ON"}),
    with_(PERSON, name="Kylie Smith", address={"street": "1 George St", "postal_code": "2000", "city": "Sydney",
                                               "country": "AU", "subdivision": "AU-NSW"}),
]

BAD = [  # (body, the field the error names)
    (with_(ACME, address__country="XX"), ["body", "address", "country"]),
    (with_(ACME, address__country="D"), ["body", "address", "country"]),
    (with_(ACME, address__postal_code="1011"), ["body", "address", "postal_code"]),
    (with_(ACME, vat_id="DE136695977"), ["body", "vat_id"]),  # wrong check digit
    (with_(ACME, vat_id="ATU123"), ["body", "vat_id"]),
    (with_(ACME, vat_id="123456789"), ["body", "vat_id"]),  # EU client without a country prefix
    (with_(ACME, invoice_email="rechnung@@acme"), ["body", "invoice_email"]),
    (with_(ACME, kind="alien"), ["body", "kind"]),
    (with_(ACME, name=None), ["body", "name"]),
    (with_(ACME, language="fr"), ["body", "language"]),
    (with_(ACME, leitweg_id="991-33333TEST-33"), ["body", "leitweg_id"]),  # only public bodies
    (with_(CITY, leitweg_id=None), ["body", "leitweg_id"]),
    (with_(CITY, leitweg_id="991-33333TEST-34"), ["body", "leitweg_id"]),
    (with_(CITY, invoice_email=None), ["body", "invoice_email"]),
    (with_(PERSON, vat_id="DE136695976"), ["body", "vat_id"]),
    (with_(ACME, unexpected="x"), ["body", "unexpected"]),
    (with_(PERSON, address__subdivision=None), ["body", "address", "subdivision"]),  # required in the US
    (with_(PERSON, address__subdivision="ZZ"), ["body", "address", "subdivision"]),
    (with_(PERSON, address__subdivision="New York State"), ["body", "address", "subdivision"]),  # too long
    (with_(PERSON, address__country="CA", address__postal_code="M5V 3L9"), ["body", "address", "subdivision"]),
    (with_(PERSON, address__country="AU", address__postal_code="2000", address__subdivision="QC"),
     ["body", "address", "subdivision"]),
]


async def test_validation_table(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, start_worker=False) as svc:
        for body in GOOD:
            r = await svc.http.post("/clients", json=body, headers=MEMBER)
            assert r.status_code == 201, (body["name"], r.text)
        for body, field in BAD:
            r = await svc.http.post("/clients", json=body, headers=MEMBER)
            assert r.status_code == 422, (field, r.text)
            locs = [e["loc"] for e in r.json()["detail"]]
            assert field in locs, (field, locs)
            assert all(e["msg"] for e in r.json()["detail"])
        [acme] = (await svc.http.get("/clients", params={"q": "acme"}, headers=MEMBER)).json()
        bad_patch = await svc.http.patch(f"/clients/{acme['id']}", json={"vat_id": "DE000000001"}, headers=MEMBER)
        assert bad_patch.status_code == 422 and bad_patch.json()["detail"][0]["loc"] == ["body", "vat_id"]
        assert acme["zugferd"] is False, "plain PDF invoices unless the client asks"
        hybrid = await svc.http.patch(f"/clients/{acme['id']}", json={"zugferd": True}, headers=MEMBER)
        assert hybrid.status_code == 200 and hybrid.json()["zugferd"] is True
        assert hybrid.json()["version"] == acme["version"] + 1
        not_a_flag = await svc.http.patch(f"/clients/{acme['id']}", json={"zugferd": "sometimes"}, headers=MEMBER)
        assert not_a_flag.status_code == 422 and not_a_flag.json()["detail"][0]["loc"] == ["body", "zugferd"]


async def test_duplicates_are_answered_with_the_existing_client(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, start_worker=True) as svc:
        first = await svc.http.post("/clients", json=ACME, headers=MEMBER)
        assert first.status_code == 201 and "Kontor-Duplicate" not in first.headers
        client_id = first.json()["id"]

        same_vat = await svc.http.post("/clients", json=with_(ACME, name="ACME (new name)"),
                                       headers=auth("member-2", "member"))
        assert same_vat.status_code == 200 and same_vat.json()["id"] == client_id
        assert same_vat.headers["Kontor-Duplicate"] == "vat_id"

        same_name = await svc.http.post("/clients", json=with_(ACME, name="acme  WERKSTATT gmbh", vat_id=None),
                                        headers=MEMBER)
        assert same_name.status_code == 200 and same_name.json()["id"] == client_id
        assert same_name.headers["Kontor-Duplicate"] == "name_and_postal_code"

        # Registrations racing each other still leave one client.
        racing = with_(ACME, name="Racing GmbH", vat_id="DE811569869")
        answers = await asyncio.gather(*(svc.http.post("/clients", json=racing, headers=MEMBER) for _ in range(6)))
        assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
        assert len({a.json()["id"] for a in answers}) == 1

        # Changing a client into another one's VAT id is refused, naming the other.
        other = await svc.http.post("/clients", json=with_(ACME, name="Other GmbH", vat_id=None,
                                                           address__postal_code="80331"), headers=MEMBER)
        clash = await svc.http.patch(f"/clients/{other.json()['id']}", json={"vat_id": "DE136695976"}, headers=MEMBER)
        assert clash.status_code == 409 and client_id in clash.json()["detail"]

        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.clients.v1", min_count=3)
        registered = [json.loads(r.value)["client"]["name"] for r in records if r.type == "kontor.client.registered.v1"]
        assert sorted(registered) == ["ACME Werkstatt GmbH", "Other GmbH", "Racing GmbH"]


NAMES = ["Müller & Söhne KG", "Mueller Consulting", "Mullholland Drive Studios", "Straßenbau Nord GmbH",
         "ACME Werkstatt GmbH", "Werkraum Berlin", "Das Werk e.V.", "Ölmühle Hamburg", "O'Brien 100% Design",
         "Under_Score Ltd"]


async def test_search_by_prefix_case_and_accent_insensitive(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, start_worker=False) as svc:
        for i, name in enumerate(NAMES):
            body = with_(ACME, name=name, vat_id=None, address__postal_code=f"{10115 + i}")
            assert (await svc.http.post("/clients", json=body, headers=MEMBER)).status_code == 201

        async def names(q, **params):
            r = await svc.http.get("/clients", params={"q": q, **params}, headers=auth("member-9", "member"))
            assert r.status_code == 200, r.text
            return [c["name"] for c in r.json()]

        assert await names("MUL") == ["Müller & Söhne KG", "Mullholland Drive Studios"]
        assert await names("müll") == ["Müller & Söhne KG", "Mullholland Drive Studios"]
        assert await names("mue") == ["Mueller Consulting"]
        assert await names("strasse") == ["Straßenbau Nord GmbH"]
        assert await names("olm") == ["Ölmühle Hamburg"]
        # whole-name matches first, then names with a later word starting so
        assert await names("werk") == ["Werkraum Berlin", "Das Werk e.V.", "ACME Werkstatt GmbH"]
        assert await names("werk", limit=2) == ["Werkraum Berlin", "Das Werk e.V."]
        assert await names("100%") == ["O'Brien 100% Design"]  # a later word
        assert await names("10%") == []  # % is a character, not a wildcard
        assert await names("o'brien 100%") == ["O'Brien 100% Design"]
        assert await names("under_") == ["Under_Score Ltd"]
        assert await names("unde_") == []
        assert await names("xyz") == []

        short = await svc.http.get("/clients", params={"q": " Mü "}, headers=MEMBER)
        assert short.status_code == 422 and short.json()["detail"][0]["loc"] == ["query", "q"]
        missing = await svc.http.get("/clients", headers=MEMBER)
        assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["query", "q"]

        # The registry is shared; who registered a client (and works with it) is not shown.
        found = (await svc.http.get("/clients", params={"q": "acme"}, headers=auth("member-9", "member"))).json()
        assert found and "member-1" not in json.dumps(found)
        assert set(found[0]) == {"id", "kind", "name", "address", "vat_id", "leitweg_id", "invoice_email",
                                 "language", "zugferd", "standing", "version"}

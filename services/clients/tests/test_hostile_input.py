"""Hostile and careless input to the clients API, against real PostgreSQL: every request
answers 4xx naming the field, never 5xx, and stores nothing it should not."""
import asyncio

import pytest

from kontor.testing.services import auth, running_service
from kontor_clients.spec import SPEC

pytestmark = pytest.mark.integration

MEMBER = auth("member-1", "member")
ADVISOR = auth("advisor-1", "advisor")
ACME = {"kind": "company", "name": "ACME Werkstatt GmbH", "vat_id": "DE136695976",
        "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"},
        "invoice_email": "rechnung@acme.example", "language": "de"}
OTHER = {**ACME, "name": "Other GmbH", "vat_id": None}

REGISTRATIONS = [  # (body, the field the error names)
    ({**OTHER, "name": "\u0301\u0301\u0301"}, ["body", "name"]),  # nothing to search it by
    ({**OTHER, "name": "\ufdfa" * 200}, ["body", "name"]),  # 200 characters, 3,600 once spelled out: too long
    ({**OTHER, "name": "ACME\u0015 GmbH"}, ["body", "name"]),  # control characters break the X-Rechnung
    ({**OTHER, "name": "\u202eHbmG EMCA"}, ["body", "name"]),  # a bidi override disguises the name
    ({**OTHER, "address": {**ACME["address"], "street": "Hauptstraße\u0007 1"}}, ["body", "address", "street"]),
    ({**OTHER, "address": {**ACME["address"], "city": "Ber\u009blin"}}, ["body", "address", "city"]),
    ({**OTHER, "vat_id": "DE\u0661\u0663\u0666\u0666\u0669\u0665\u0669\u0667\u0666"}, ["body", "vat_id"]),
    ({**OTHER, "address": {**ACME["address"], "postal_code": "\u0661\u0660\u0661\u0661\u0665"}},
     ["body", "address", "postal_code"]),
    ({**OTHER, "kind": "public_body", "leitweg_id": "\u0669\u0669\u0661-33333TEST-33"}, ["body", "leitweg_id"]),
    ({**OTHER, "name": "x" * 201}, ["body", "name"]),
    ({**OTHER, "address": None}, ["body", "address"]),
]

PATCHES = [
    ({"address": None}, ["body", "address"]),
    ({"name": None}, ["body", "name"]),
    ({"kind": None}, ["body", "kind"]),
    ({"language": None}, ["body", "language"]),
    ({"zugferd": None}, ["body", "zugferd"]),
    ({"name": "\u0301"}, ["body", "name"]),
    ({"name": "\ufdfa" * 200}, ["body", "name"]),
    ({"address": {**ACME["address"], "street": "a\u0000b"}}, ["body", "address", "street"]),
    ({"address": {**ACME["address"], "extra": "x"}}, ["body", "address", "extra"]),
    ({"version": 7}, ["body", "version"]),
]


async def test_hostile_client_records_answer_422_naming_the_field(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, start_worker=False) as svc:
        for body, field in REGISTRATIONS:
            r = await svc.http.post("/clients", json=body, headers=MEMBER)
            assert r.status_code == 422, (field, r.status_code, r.text[:300])
            assert field in [e["loc"] for e in r.json()["detail"]], (field, r.text[:300])

        client = (await svc.http.post("/clients", json=ACME, headers=MEMBER)).json()
        url = f"/clients/{client['id']}"
        for body, field in PATCHES:
            r = await svc.http.patch(url, json=body, headers=MEMBER)
            assert r.status_code == 422, (field, r.status_code, r.text[:300])
            assert field in [e["loc"] for e in r.json()["detail"]], (field, r.text[:300])
        for body in ([], "x", 1, None):
            r = await svc.http.patch(url, json=body, headers=MEMBER)
            assert r.status_code == 422, (body, r.text[:300])
        after = (await svc.http.get(url, headers=MEMBER)).json()
        assert after == client, "nothing of it was stored"
        # A name that folds long but stays within bounds is fine.
        long_fold = await svc.http.post("/clients", json={**OTHER, "name": "Straße " * 28}, headers=MEMBER)
        assert long_fold.status_code == 201, long_fold.text

        bad_reason = await svc.http.put(f"{url}/standing", json={"status": "blocked", "reason": "unpaid\u001b[31m"},
                                        headers=ADVISOR)
        assert bad_reason.status_code == 422 and bad_reason.json()["detail"][0]["loc"] == ["body", "reason"]


async def test_hostile_queries_and_dates_answer_4xx(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, start_worker=False) as svc:
        client = (await svc.http.post("/clients", json=ACME, headers=MEMBER)).json()
        for params, field in [({"q": "acme", "limit": "0"}, "limit"), ({"q": "acme", "limit": "101"}, "limit"),
                              ({"q": "acme", "limit": "9" * 30}, "limit"), ({"q": "acme", "limit": "1e3"}, "limit"),
                              ({"q": "a" * 201}, "q"), ({"q": "\u0301\u0301\u0301"}, "q")]:
            r = await svc.http.get("/clients", params=params, headers=MEMBER)
            assert r.status_code == 422, (params, r.text[:300])
            assert r.json()["detail"][0]["loc"] == ["query", field], (params, r.text[:300])
        folded = await svc.http.get("/clients", params={"q": "\ufdfa" * 200}, headers=MEMBER)
        assert folded.status_code in (200, 422), folded.text[:300]

        receivables = f"/clients/{client['id']}/receivables"
        for as_of in ("0001-01-01", "1999-12-31", "2100-01-01", "9999-12-31", "2026-02-30", "today"):
            r = await svc.http.get(receivables, params={"as_of": as_of}, headers=ADVISOR)
            assert r.status_code == 422, (as_of, r.text[:300])
            assert r.json()["detail"][0]["loc"] == ["query", "as_of"]
        for as_of in ("0001-01-01", "1999-12-31", "9999-12-31", 20270111, None):
            body = {"as_of": as_of} if as_of is not None else {"as_of": None, "extra": 1}
            r = await svc.http.post("/standing-runs", json=body, headers=ADVISOR)
            assert r.status_code == 422, (as_of, r.text[:300])
        assert (await svc.http.get("/standing-runs", headers=ADVISOR)).json() == [], "no run was started"

        assert (await svc.http.get("/clients/not-a-uuid", headers=MEMBER)).status_code == 422
        assert (await svc.http.get("/clients/" + "1" * 5000, headers=MEMBER)).status_code == 422
        assert (await svc.http.get(f"/clients/{client['id']}/history", headers=MEMBER)).status_code == 403


async def test_changes_racing_into_the_same_client_answer_409(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, start_worker=False) as svc:
        ids = [(await svc.http.post("/clients", json={**OTHER, "name": f"Racer {i} GmbH"}, headers=MEMBER)).json()["id"]
               for i in range(6)]
        answers = await asyncio.gather(*(svc.http.patch(f"/clients/{i}", json={"name": "Same Name GmbH"},
                                                        headers=MEMBER) for i in ids))
        assert sorted(a.status_code for a in answers) == [200] + [409] * 5, [a.text[:200] for a in answers]
        assert all("already registered" in a.json()["detail"] for a in answers if a.status_code == 409)

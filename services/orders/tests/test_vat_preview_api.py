"""GET /vat-preview against real PostgreSQL and Kafka: the VAT an order of a known client will have, as
the order form shows it while sector and place of service are chosen; 422 naming a bad parameter."""
import datetime as dt
import uuid

import pytest

from kontor.clock import FixedClock
from kontor.contracts.clients import ClientRegisteredV1, ClientSnapshotV1, ClientStandingV1
from kontor.contracts.common import Actor, Address
from kontor.testing import eventually
from kontor.testing.kafka import publish_event
from kontor.testing.services import auth, running_service
from kontor_orders.spec import SPEC

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
MEMBER = auth("member-1", "member")


async def client(infra, prefix, *, kind: str, vat_id: str | None, language: str) -> uuid.UUID:
    client_id = uuid.uuid4()
    snapshot = ClientSnapshotV1(client_id=client_id, kind=kind, name="Client", vat_id=vat_id,
                                address=Address(street="Rue 1", postal_code="1000", city="Bruxelles", country="BE"),
                                invoice_email="billing@client.example", language=language,
                                standing=ClientStandingV1(status="ok"), version=1)
    await publish_event(infra.kafka_bootstrap, prefix, ClientRegisteredV1(
        client_id=client_id, client=snapshot, occurred_at=NOW, actor=Actor(kind="member", id="member-1")), time=NOW)
    return client_id


async def test_the_vat_preview_follows_client_sector_and_place_of_service(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False) as svc:
        company = await client(infra, topic_prefix, kind="company", vat_id="BE0123456789", language="en")
        person = await client(infra, topic_prefix, kind="person", vat_id=None, language="de")

        async def preview(client_id, sector="design", place="DE", **more):
            async def attempt():
                r = await svc.http.get("/vat-preview", params={"client_id": str(client_id), "sector": sector,
                                                               "place_of_service": place, **more}, headers=MEMBER)
                return r if r.status_code != 422 or "unknown client" not in r.text else None
            return await eventually(attempt, what="orders knowing the client")

        de = await preview(company)
        assert de.status_code == 200, de.text
        assert (de.json()["category"], float(de.json()["rate"]), de.json()["note"]) == ("S", 19.0, None)
        eu = (await preview(company, place="EU")).json()
        assert eu["category"] == "AE" and float(eu["rate"]) == 0
        assert "Reverse charge" in eu["note"] and eu["language"] == "en"  # the client's language by default
        eu_de = (await preview(company, place="EU", language="de")).json()
        assert "Reverse Charge" in eu_de["note"] and "Steuerschuldnerschaft" in eu_de["note"]
        other = (await preview(company, place="OTHER")).json()
        assert other["category"] == "O" and "Not subject" in other["note"]
        # a private person abroad in the EU pays German VAT
        person_eu = (await preview(person, place="EU")).json()
        assert person_eu["category"] == "S" and float(person_eu["rate"]) == 19 and person_eu["note"] is None

        sectors = (await svc.http.get("/sectors", headers=MEMBER)).json()
        exempt = next(s["code"] for s in sectors if s["vat_rule"] == "exempt")
        ex = (await preview(person, sector=exempt, language="de")).json()
        assert ex["category"] == "E" and "§ 4 Nr. 21 UStG" in ex["note"]

        for params, field in (({"sector": "nonsense"}, "sector"), ({"place": "MARS"}, "place_of_service")):
            r = await preview(company, **params)
            assert r.status_code == 422, r.text
            assert any(e["loc"][-1] == field and e["loc"][0] == "query" for e in r.json()["detail"]), r.text
        r = await svc.http.get("/vat-preview", params={"client_id": str(uuid.uuid4()), "sector": "design",
                                                       "place_of_service": "DE"}, headers=MEMBER)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "client_id"], r.text
        r = await svc.http.get("/vat-preview", params={"client_id": "x", "sector": "design",
                                                       "place_of_service": "DE"}, headers=MEMBER)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "client_id", r.text
        r = await svc.http.get("/vat-preview", params={"client_id": str(company), "sector": "design",
                                                       "place_of_service": "DE"})
        assert r.status_code == 401, r.text

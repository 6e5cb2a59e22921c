"""What a careless hand or an attacker can send the orders API, against the real service
(PostgreSQL, Kafka): every bad value answers 422 naming its field, never 5xx; dates near
year 1 or 9999 never reach the schedule; documents are judged by their bytes; names in any
script download as RFC 6266/5987 filenames; no order grows too large for one event."""
import io
import urllib.parse
import uuid
import zipfile

import pytest
from orders_support import ADVISOR, MEMBER, NOW, known_client

from kontor.clock import FixedClock
from kontor.testing import eventually
from kontor.testing.services import running_service
from kontor_orders.spec import SPEC

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


def docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def body(client_id, **changes) -> dict:
    order = {
        "client_id": str(client_id), "contact_person": {"name": "Erika Muster", "email": "erika@acme.example"},
        "sector": "design", "place_of_service": "DE", "project_name": "Relaunch", "description": "Website",
        "lines": [{"description": "Design", "quantity": "2", "unit": "day", "unit_price": "640.00"}],
        "currency": "EUR", "service_period": {"start": "2027-01-01", "end": "2027-03-31"},
        "confirmation": {"mode": "skip", "skip_reason": "framework contract"},
        "payment": {"mode": "after_completion", "invoice_date": "2027-04-01"},
    }
    order.update(changes)
    return order


def line(**changes) -> dict:
    return {"description": "Work", "quantity": "1", "unit": "lump_sum", "unit_price": "100.00", **changes}


async def draft(svc, client_id, **changes) -> dict:
    async def attempt():
        r = await svc.http.post("/orders", json=body(client_id, **changes), headers=MEMBER)
        return r if r.status_code == 201 else None
    return (await eventually(attempt, what="orders knowing the client")).json()


def locs(response) -> list[list]:
    return [[str(part) for part in e["loc"]] for e in response.json()["detail"]]


async def test_every_input_is_bounded_and_refused_naming_its_field(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False) as svc:
        client_id = await known_client(infra, topic_prefix)
        order = await draft(svc, client_id)
        order_id = order["order_id"]
        cases = [
            # amounts and quantities: bounded, at most the currency's decimals (JPY none)
            ({"lines": [line(quantity="1e30")]}, ["body", "lines", "0", "quantity"]),
            ({"lines": [line(unit_price="1e30")]}, ["body", "lines", "0", "unit_price"]),
            ({"lines": [line(unit_price="640.001")]}, ["body", "lines", "0", "unit_price"]),
            ({"currency": "JPY", "lines": [line(unit_price="100.0")]}, ["body", "lines", "0", "unit_price"]),
            # the total: each line is within bounds, their sum or the VAT on it is not
            ({"lines": [line(quantity="1000000", unit_price="999999999.99")]}, ["body", "lines"]),
            ({"lines": [line(unit_price="600000000.00"), line(unit_price="600000000.00")]}, ["body", "lines"]),
            ({"lines": [line(unit_price="900000000.00")]}, ["body", "lines"]),  # 19 % VAT on top
            ({"lines": [line()] * 201}, ["body", "lines"]),
            ({"payment": {"mode": "installments", "installments": [
                {"date": "2027-02-01", "amount": "50.001"}, {"date": "2027-03-01", "amount": "49.999"}]}},
             ["body", "payment", "installments", "0", "amount"]),
            ({"payment": {"mode": "installments", "installments": [{"date": "2027-02-01", "percentage": "1e3"}]}},
             ["body", "payment", "installments", "0", "percentage"]),
            # dates: business dates only (years near 1 or 9999 overflowed the schedule's arithmetic)
            ({"service_period": {"start": "0001-01-01", "end": "2027-03-31"}}, ["body", "service_period", "start"]),
            ({"service_period": {"start": "2027-01-01", "end": "9999-12-31"}}, ["body", "service_period", "end"]),
            ({"confirmation": {"mode": "send", "offer_valid_until": "9999-12-31"}},
             ["body", "confirmation", "offer_valid_until"]),
            ({"payment": {"mode": "after_completion", "invoice_date": "9999-12-31"}},
             ["body", "payment", "invoice_date"]),
            ({"payment": {"mode": "recurring", "interval": "year", "first_invoice_date": "9999-01-01"}},
             ["body", "payment", "first_invoice_date"]),
            ({"payment": {"mode": "installments", "installments": [{"date": "0001-01-01", "percentage": "100"}]}},
             ["body", "payment", "installments", "0", "date"]),
            # the address that stopped all e-mail delivery
            ({"contact_person": {"name": "Erika", "email": "a\u0015b@c.example"}}, ["body", "contact_person", "email"]),
            ({"contact_person": {"name": "Erika", "email": "erika@acme.example\r\nBcc: all@x.example"}},
             ["body", "contact_person", "email"]),
            ({"sector": "x" * 65}, ["body", "sector"]),
            # null where a list or an object is expected
            ({"lines": None}, ["body", "lines"]),
            ({"contact_person": None}, ["body", "contact_person"]),
            ({"payment": {"mode": "installments", "installments": None}}, ["body", "payment", "installments"]),
        ]
        for changes, loc in cases:
            for method, path in (("POST", "/orders"), ("PUT", f"/orders/{order_id}")):
                r = await svc.http.request(method, path, json=body(client_id, **changes), headers=MEMBER)
                assert r.status_code == 422, (method, changes, r.status_code, r.text[:300])
                assert loc in locs(r), (method, loc, r.json())

        big_offset = await svc.http.get("/orders", params={"offset": str(10**20)}, headers=MEMBER)
        assert big_offset.status_code == 422 and ["query", "offset"] in locs(big_offset)
        far_run = await svc.http.post("/order-runs", json={"as_of": "9999-12-31"}, headers=ADVISOR)
        assert far_run.status_code == 422 and ["body", "as_of"] in locs(far_run)

        # the advisor's side: adjustments and cancellation decisions
        submitted = await svc.http.post(f"/orders/{order_id}/submit", headers=MEMBER)
        assert submitted.status_code == 200 and submitted.json()["status"] == "smart_review", submitted.text
        for changes, loc in [
            ({"line_descriptions": {str(10**30): "x"}}, ["body", "line_descriptions"]),
            ({"line_descriptions": {"0": "x" * 1001}}, ["body", "line_descriptions", "0"]),
            ({"line_descriptions": {"5": "no such line"}}, ["body", "line_descriptions", "5"]),
            ({"project_name": "   "}, ["body", "project_name"]),
        ]:
            r = await svc.http.post(f"/orders/{order_id}/adjust", json=changes, headers=ADVISOR)
            assert r.status_code == 422 and any(got[:len(loc)] == loc for got in locs(r)), (changes, r.text[:300])
        unchanged = await svc.http.post(f"/orders/{order_id}/adjust", json={"line_descriptions": None},
                                        headers=ADVISOR)
        assert unchanged.status_code == 200 and unchanged.json()["project_name"] == "Relaunch"
        active = await svc.http.post(f"/orders/{order_id}/approve", headers=ADVISOR)
        assert active.status_code == 200 and active.json()["status"] == "active", active.text
        r = await svc.http.post(f"/orders/{order_id}/cancellation-request", json={"reason": "stopped"}, headers=MEMBER)
        assert r.status_code == 200
        for ids, loc in [(None, ["body", "cancel_invoice_ids"]),
                         ([str(uuid.uuid4()) for _ in range(101)], ["body", "cancel_invoice_ids"])]:
            r = await svc.http.post(f"/orders/{order_id}/cancellation-decision", headers=ADVISOR,
                                    json={"approve": True, "reason": "ok", "cancel_invoice_ids": ids})
            assert r.status_code == 422 and loc in locs(r), r.text[:300]
        unknown = await svc.http.post(f"/orders/{uuid.uuid4()}/cancellation-decision", headers=ADVISOR,
                                      json={"approve": True, "reason": "ok"})
        assert unknown.status_code == 404


async def test_documents_are_judged_by_their_content_and_download_under_any_name(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False) as svc:
        client_id = await known_client(infra, topic_prefix)
        order_id = (await draft(svc, client_id))["order_id"]
        url = f"/orders/{order_id}/attachments"

        async def upload(name, content, media_type):
            return await svc.http.post(url, headers=MEMBER, files={"file": (name, content, media_type)})

        refused = [
            (("offer.pdf", PNG, "application/pdf"), ["body", "file", "content_type"]),
            (("offer.pdf", b"MZ\x90\x00 not a pdf", "application/pdf"), ["body", "file"]),
            (("offer.pdf", b"", "application/pdf"), ["body", "file"]),
            (("offer.png", PDF, "application/pdf"), ["body", "file", "filename"]),
            (("offer", PDF, "application/pdf"), ["body", "file", "filename"]),
            (("page.html", b"<html><script>alert(1)</script>", "text/html"), ["body", "file"]),
            (("\u202e\x00/..", PDF, "application/pdf"), ["body", "file", "filename"]),
        ]
        for (name, content, media_type), loc in refused:
            r = await upload(name, content, media_type)
            assert r.status_code == 422 and loc in locs(r), (name, media_type, r.status_code, r.text[:300])

        word = await upload("Angebot.docx", docx(), "application/octet-stream")
        assert word.status_code == 201, word.text
        assert word.json()["media_type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

        # sent as raw UTF-8, as a client that does not escape would (httpx and browsers escape
        # control characters in multipart names): path, control and bidi characters go, any script stays
        name = "Angebot für Zoë — 見積書; v2.pdf"
        sent = "C:\\Users\\erika\\" + name.replace("Zoë", "Zo\u202eë\x07")
        boundary = "kontor-test-boundary"
        multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{sent}\"\r\n"
                     f"Content-Type: application/pdf\r\n\r\n").encode() + PDF + f"\r\n--{boundary}--\r\n".encode()
        up = await svc.http.post(url, content=multipart,
                                 headers={**MEMBER, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert up.status_code == 201, up.text
        assert up.json()["filename"] == name
        down = await svc.http.get(f"{url}/{up.json()['id']}", headers=MEMBER)
        assert down.status_code == 200 and down.content == PDF
        assert down.headers["content-type"] == "application/pdf"
        disposition = down.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="')
        assert urllib.parse.unquote(disposition.split("filename*=UTF-8''", 1)[1]) == name

        for i in range(18):  # 20 documents at most
            assert (await upload(f"p{i}.pdf", PDF, "application/pdf")).status_code == 201
        too_many = await upload("one-more.pdf", PDF, "application/pdf")
        assert too_many.status_code == 422 and ["body", "file"] in locs(too_many)


async def test_an_order_too_large_for_one_event_is_refused_before_it_is_published(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False) as svc:
        client_id = await known_client(infra, topic_prefix)
        lines = [line(description=f"{i} " + "x" * 990) for i in range(200)]
        # once active, each of 12 monthly invoices repeats the 200 lines: about 2.6 MB in one event
        monthly = await draft(svc, client_id, lines=lines, service_period={"start": "2027-01-01", "end": "2027-12-31"},
                              payment={"mode": "recurring", "interval": "month", "first_invoice_date": "2027-01-01"})
        r = await svc.http.post(f"/orders/{monthly['order_id']}/submit", headers=MEMBER)
        assert r.status_code == 422 and ["body", "lines"] in locs(r), r.text[:300]
        assert (await svc.http.get(f"/orders/{monthly['order_id']}", headers=MEMBER)).json()["status"] == "draft"

        # within bounds on submission, then an advisor's adjustment would make the event too large
        short = await draft(svc, client_id, lines=[line(description=str(i)) for i in range(200)])
        assert (await svc.http.post(f"/orders/{short['order_id']}/submit", headers=MEMBER)).status_code == 200
        longer = {str(i): "€" * 1000 for i in range(200)}
        r = await svc.http.post(f"/orders/{short['order_id']}/adjust", json={"line_descriptions": longer},
                                headers=ADVISOR)
        assert r.status_code == 409 and "too large" in r.json()["detail"], r.text[:300]
        kept = (await svc.http.get(f"/orders/{short['order_id']}", headers=ADVISOR)).json()
        assert kept["lines"][0]["description"] == "0" and kept["version"] == short["version"] + 1

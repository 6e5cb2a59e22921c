"""The rendering processes: what one renders from a stored invoice, another renders byte for
byte (so a worker that takes over a dead worker's numbered invoice stores the same documents);
the check finds what the official rules find; a job that raises is a RenderingFailed."""
import asyncio
import datetime as dt
import uuid
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path

import pytest

from kontor_invoicing.adapters.rendering import RenderingFailed, RenderPool
from kontor_invoicing.domain import model
from kontor_invoicing.settings import Seller

RULES = Path(__file__).resolve().parents[4] / "shared" / "xrechnung"
NOW = dt.datetime(2027, 1, 15, 9, tzinfo=dt.UTC)
BUYER = {"name": "ACME Werkstatt GmbH", "language": "de", "invoice_email": "rechnung@acme.example",
         "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}}


def numbered(n: int, **changes) -> model.Invoice:
    line = model.Line(f"Leistung {n}", D(1 + n % 4), "day", D("640.00"), D(640 * (1 + n % 4)).quantize(D("0.01")),
                      "S", D(19))
    draft = model.Invoice(id=uuid.uuid4(), order_id=uuid.uuid4(), member_id="m", client_id=uuid.uuid4(), seq=1,
                          kind="invoice", schedule_kind="after_completion", status="draft", currency="EUR",
                          lines=(line,), invoice_date=NOW.date(), due_in_days=14, created_at=NOW,
                          project_name=f"Projekt {n}", buyer=BUYER, contact_email="erika@acme.example")
    queued = model.queue_issue(replace(draft, **changes), on=NOW.date())
    return model.number(queued, sequence=n)


async def test_two_rendering_processes_make_the_same_bytes_whatever_they_rendered_before():
    rules = RULES if (RULES / "validate.py").exists() else None
    first, second = RenderPool(Seller(), rules), RenderPool(Seller(), rules)
    await asyncio.gather(first.start(), second.start())
    try:
        target = numbered(7)
        for n in range(1, 4):  # the second has other invoices behind it, as a surviving worker would
            await second.render(numbered(n))
        (a, _), (b, _) = await asyncio.gather(first.render(target), second.render(target))
        assert [(d.kind, d.filename) for d in a] == [("pdf", "Rechnung-2027-000007.pdf"),
                                                      ("xrechnung", "Rechnung-2027-000007.xml")]
        assert [d.sha256 for d in a] == [d.sha256 for d in b], "byte-identical documents"
        if rules:
            errors, seconds = await first.check(model.provisional(target))
            assert errors == () and seconds > 0
            bad, _ = await first.check(numbered(8, buyer={**BUYER, "address": {**BUYER["address"], "country": "XX"}}))
            assert any(e.startswith("BR-CL-14") for e in bad), bad
        with pytest.raises(RenderingFailed):
            await first.render(replace(target, lines=()))  # a bug in a job is reported, not swallowed
        again, _ = await first.render(target)
        assert [d.sha256 for d in again] == [d.sha256 for d in a], "the process survives a failed job"
    finally:
        first.close()
        second.close()

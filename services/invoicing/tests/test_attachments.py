"""Files added to an invoice draft, the domain's rule alone: who may change them in which status,
how many, and how the issued invoice lists them (documents of kind "attachment", each with its
download). The e-mail that carries them is tests/test_invoice_attachments.py."""
import datetime as dt
import uuid
from dataclasses import replace
from decimal import Decimal as D

import pytest

from kontor.errors import Conflict, Forbidden, InvalidInput
from kontor_invoicing.domain import model
from kontor_invoicing.service_layer.services import published

pytestmark = pytest.mark.unit
NOW = dt.datetime(2027, 1, 10, 9, tzinfo=dt.UTC)
FILE_ID = uuid.UUID("5a1e0000-0000-4000-8000-000000000001")
INVOICE_ID = uuid.UUID("1e5e0000-0000-4000-8000-000000000002")


def draft(**kw) -> model.Invoice:
    line = model.Line("Design", D("2"), "day", D("640.00"), D("1280.00"), "S", D("19"))
    return model.Invoice(id=INVOICE_ID, order_id=uuid.uuid4(), member_id="m1", client_id=uuid.uuid4(), seq=1,
                         kind="invoice", schedule_kind="advance", status="draft", currency="EUR", lines=(line,),
                         invoice_date=dt.date(2027, 1, 15), due_in_days=14, created_at=NOW, **kw)


def test_the_member_changes_the_files_of_a_draft_and_an_advisor_also_while_it_waits():
    model.may_change_attachments(draft(), advisor=False, count=0)
    model.may_change_attachments(draft(), advisor=True)
    waiting = model.request_change(draft(), "the hours are wrong")
    model.may_change_attachments(waiting, advisor=True, count=3)
    with pytest.raises(Forbidden) as refused:
        model.may_change_attachments(waiting, advisor=False)
    assert str(refused.value) == "an advisor changes the files of an invoice in status waiting_for_adjustment"


@pytest.mark.parametrize("status", ["issuing", "invoiced", "paid", "disputed", "cancelled", "discarded"])
def test_once_it_is_being_issued_its_files_are_frozen(status):
    for advisor in (False, True):
        with pytest.raises(Conflict) as refused:
            model.may_change_attachments(replace(draft(), status=status), advisor=advisor)
        assert refused.value.current_status == status
        assert str(refused.value) == (f"the files of an invoice in status {status} cannot be changed: they go out "
                                      "and stay as they were when it was issued (allowed from: draft, "
                                      "waiting_for_adjustment)")


def test_a_cancellation_invoice_takes_no_files_and_a_draft_at_most_twenty():
    with pytest.raises(Conflict, match="takes no files"):
        model.may_change_attachments(replace(draft(), kind="cancellation", status="issuing"), advisor=True)
    model.may_change_attachments(draft(), advisor=False, count=19)
    with pytest.raises(InvalidInput) as refused:
        model.may_change_attachments(draft(), advisor=False, count=20)
    assert refused.value.errors == [("file", "an invoice has at most 20 files")]


def test_the_issued_invoice_lists_its_files_with_their_downloads():
    rows = [{"id": FILE_ID, "filename": "Leistungsnachweis.pdf", "media_type": "application/pdf", "size": 74,
             "sha256": "ab" * 32}]
    files = model.attachment_documents(rows)
    pdf = model.Document("pdf", "Rechnung_2027-000001.pdf", "application/pdf", "cd" * 32)
    issuing = replace(model.queue_issue(draft(), on=dt.date(2027, 1, 15)), number="2027-000001",
                      issue_date=dt.date(2027, 1, 15))
    issued = model.documents_stored(issuing, (pdf, *files))
    docs = published(issued, "https://invoicing.example").documents
    assert [(d.kind, d.filename, d.url, d.attachment_id, d.size) for d in docs] == [
        ("pdf", "Rechnung_2027-000001.pdf", f"https://invoicing.example/invoices/{INVOICE_ID}/pdf", None, None),
        ("attachment", "Leistungsnachweis.pdf",
         f"https://invoicing.example/invoices/{INVOICE_ID}/attachments/{FILE_ID}", FILE_ID, 74)]
    assert docs[1].sha256 == "ab" * 32

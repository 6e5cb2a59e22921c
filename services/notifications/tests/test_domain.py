"""Who is told what (pure planning), every template in both languages, and the retry rule."""
import uuid

import pytest

from kontor_notifications.adapters.templates import TEMPLATE_NAMES, render
from kontor_notifications.domain import model

from notification_samples import NOW, invoice, invoice_events, order, order_events, standing_changed

pytestmark = pytest.mark.unit
MEMBER = model.Member("member-1", "anna@member.example", "Anna Freiberuf", "de")


def planned_for_every_template(language: str) -> dict[str, model.Planned]:
    o = order(language=language)
    out = {}
    for template, event in order_events(o).items():
        [p] = model.plan_order_event(event.event_type, event.model_dump(mode="json"),
                                     model.Member("member-1", "anna@member.example", "Anna", language))
        out[template] = p
    inv = invoice(o)
    storno = invoice(o, number="2027-000002", kind="cancellation", cancels_number=inv.number,
                     cancels_invoice_id=inv.invoice_id)
    for template, event in invoice_events(inv, storno).items():
        [p] = model.plan_invoice_event(event.event_type, event.model_dump(mode="json"), inv.model_dump(mode="json"),
                                       model.Member("member-1", "anna@member.example", "Anna", language),
                                       o.model_dump(mode="json"))
        out[template] = p
    event = standing_changed(language)
    [p] = model.plan_standing_changed(event.model_dump(mode="json"), [
        ("member-1", model.Member("member-1", "anna@member.example", "Anna", language), [o.model_dump(mode="json")])])
    out["client_standing_changed"] = p
    return out


EXPECTED = {  # template -> (words in the German subject, words in the English subject, a word of the body)
    "order_sent_for_confirmation": ("Bitte bestätigen", "Please confirm", "confirm/tok-123"),
    "order_offer_expiring": ("läuft in 3 Tagen ab", "expires in 3 days", "Erika Muster"),
    "order_confirmed": ("bestätigt", "confirmed", "ACME Werkstatt GmbH"),
    "order_changes_requested": ("Änderungswunsch", "Changes requested", "auf 3 Tage erweitern"),
    "order_rejected": ("abgelehnt", "rejected", "nicht abrechenbar"),
    "order_approved": ("freigegeben", "approved", "Erika Muster"),
    "invoice_draft_created": ("Rechnungsentwurf", "Invoice draft", "1.523,20 EUR|1,523.20 EUR"),
    "invoice_issued": ("Rechnung 2027-000001", "Invoice 2027-000001", "14.04.2027|14 April 2027"),
    "invoice_reminder": ("Zahlungserinnerung", "Payment reminder", "1.523,20 EUR|1,523.20 EUR"),
    "invoice_cancelled": ("Stornorechnung 2027-000002", "Cancellation invoice 2027-000002", "500,00 EUR|500.00 EUR"),
    "client_standing_changed": ("nur gegen Vorkasse", "advance payment only", "Relaunch 2027"),
}


def test_there_is_a_template_for_every_e_mail_of_the_journey():
    assert set(TEMPLATE_NAMES) == set(EXPECTED)


@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("template", sorted(EXPECTED))
def test_every_template_renders_in_both_languages(template, language):
    p = planned_for_every_template(language)[template]
    assert p.language == language and p.problem is None
    out = render(p.template, p.language, {**p.context, "attachments": ["Rechnung-2027-000001.pdf"],
                                          "member_name": "Anna"})
    subject_word = EXPECTED[template][0 if language == "de" else 1]
    assert subject_word in out.subject, out.subject
    body_words = EXPECTED[template][2].split("|")
    assert any(w in out.text for w in body_words), out.text
    assert any(w in out.html for w in body_words)
    assert f'<html lang="{language}">' in out.html and out.subject in out.html
    assert "{{" not in out.text + out.html and "<" not in out.subject
    assert "member-secret" not in out.text


def test_the_html_part_escapes_what_people_typed():
    o = order()
    event = order_events(o)["order_changes_requested"].model_copy(update={"message": "<script>alert(1)</script>"})
    [p] = model.plan_order_event(event.event_type, event.model_dump(mode="json"), MEMBER)
    out = render(p.template, p.language, {**p.context, "attachments": [], "member_name": "Anna"})
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html
    assert "> <script>alert(1)</script>" in out.text, "the plain-text part shows it as typed"


def test_invoice_recipients_contact_and_invoice_address_member_in_cc():
    o = order()
    inv = invoice(o)
    event = invoice_events(inv, inv)["invoice_issued"]
    [p] = model.plan_invoice_event(event.event_type, event.model_dump(mode="json"), None, MEMBER, None)
    assert p.to == ("erika@acme.example", "rechnung@acme.example") and p.cc == ("anna@member.example",)
    same = invoice(o, invoice_email="Erika@ACME.example")
    event = invoice_events(same, same)["invoice_issued"]
    [p] = model.plan_invoice_event(event.event_type, event.model_dump(mode="json"), None, MEMBER, None)
    assert p.to == ("erika@acme.example",), "the same address gets one e-mail"
    [p] = model.plan_invoice_event(event.event_type, event.model_dump(mode="json"), None, None, None)
    assert p.cc == () and p.problem is None, "an unknown member does not hold up the client's invoice"


def test_member_e_mails_need_an_address_on_file_and_are_keyed_by_member():
    event = order_events(order())["order_confirmed"]
    [p] = model.plan_order_event(event.event_type, event.model_dump(mode="json"), None)
    assert p.to == () and "no e-mail address on file for member 'member-1'" in p.problem
    [q] = model.plan_order_event(event.event_type, event.model_dump(mode="json"), MEMBER)
    assert p.recipients_key == q.recipients_key == "member:member-1"


def test_documents_of_the_invoice_and_of_the_order_travel_with_it():
    from notification_samples import attachment, document
    o = order(attachments=[attachment("http://orders/a/1", b"offer")])
    inv = invoice(o, documents=[document("pdf", "http://inv/1/pdf", b"pdf", "Rechnung-2027-000001.pdf"),
                                document("xrechnung", "http://inv/1/xml", b"xml", "Rechnung-2027-000001.xml")])
    event = invoice_events(inv, inv)["invoice_issued"]
    [p] = model.plan_invoice_event(event.event_type, event.model_dump(mode="json"), None, MEMBER,
                                   o.model_dump(mode="json"))
    assert [a.filename for a in p.attachments] == ["Rechnung-2027-000001.pdf", "Rechnung-2027-000001.xml",
                                                   "Angebot.pdf"]
    reminder = invoice_events(inv, inv)["invoice_reminder"]
    [r] = model.plan_invoice_event(reminder.event_type, reminder.model_dump(mode="json"),
                                   inv.model_dump(mode="json"), MEMBER, None)
    assert [a.filename for a in r.attachments] == ["Rechnung-2027-000001.pdf"]
    with pytest.raises(model.UnknownInvoice):
        model.plan_invoice_event(reminder.event_type, reminder.model_dump(mode="json"), None, MEMBER, None)


def test_retries_back_off_then_give_up():
    d = model.Delivery()
    seen = []
    for _ in range(4):
        d = model.after_attempt(d, now=NOW, error="connection refused", permanent=False, max_attempts=5, base_s=2,
                                max_s=5)
        seen.append((d.status, (d.next_attempt_at - NOW).total_seconds()))
    assert seen == [("pending", 2), ("pending", 4), ("pending", 5), ("pending", 5)]
    d = model.after_attempt(d, now=NOW, error="connection refused", permanent=False, max_attempts=5, base_s=2, max_s=5)
    assert d.status == "failed" and d.last_error == "gave up after 5 attempts: connection refused"
    refused = model.after_attempt(model.Delivery(), now=NOW, error="550 no such user", permanent=True,
                                  max_attempts=5, base_s=2, max_s=5)
    assert (refused.status, refused.attempts) == ("failed", 1)
    sent = model.after_attempt(model.Delivery(attempts=2, last_error="x"), now=NOW, error=None, permanent=False,
                               max_attempts=5, base_s=2, max_s=5)
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 3, None)


def test_standing_change_tells_each_member_with_open_orders_once():
    event = standing_changed().model_dump(mode="json")
    a, b = order(member_id="m-a"), order(member_id="m-b")
    planned = model.plan_standing_changed(event, [
        ("m-a", model.Member("m-a", "a@x.example"), [a.model_dump(mode="json"), a.model_dump(mode="json")]),
        ("m-b", model.Member("m-b", "b@x.example", language="en"), [b.model_dump(mode="json")])])
    assert [(p.to, p.language) for p in planned] == [(("a@x.example",), "de"), (("b@x.example",), "en")]
    assert all(p.client_id == uuid.UUID(event["client_id"]) for p in planned)

"""Who is told what (pure planning), every template in both languages, and the retry rule."""
import re
import uuid

import pytest
from notification_samples import NOW, invoice, invoice_events, order, order_events, standing_changed

from kontor_notifications.adapters.templates import TEMPLATE_NAMES, render
from kontor_notifications.domain import model

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
    "order_sent_for_confirmation": ("Bitte bestätigen", "Please confirm", "/confirm/…"),
    "order_offer_expiring": ("läuft in 3 Tagen ab", "expires in 3 days", "Erika Muster"),
    "order_confirmed": ("bestätigt", "confirmed", "ACME Werkstatt GmbH"),
    "order_changes_requested": ("Änderungswunsch", "Changes requested", "auf 3 Tage erweitern"),
    "order_rejected": ("abgelehnt", "rejected", "nicht abrechenbar"),
    "order_approved": ("freigegeben", "approved", "Erika Muster"),
    "order_renewal_notice_due": ("Kündigung bis 28.02.2027", "cancel by 28 February 2027", "30.06.2027|30 June 2027"),
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


HOSTILE = "<svg onload=alert(1)>"


def _with_hostile_text(value, key=None):
    """Every text of an event made hostile; identifiers, numbers, dates and codes left as they are."""
    if isinstance(value, dict):
        return {k: _with_hostile_text(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_hostile_text(v, key) for v in value]
    if not isinstance(value, str) or re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[-+]?\d+(\.\d+)?|\d{4}-\d\d-\d\d.*"
            r"|[a-z_]+|[A-Z]{1,3}", value):
        return value
    return value + HOSTILE


@pytest.mark.parametrize("language", ["de", "en"])
def test_every_template_escapes_every_text_in_its_html_part(language):
    for template, p in planned_for_every_template(language).items():
        out = render(p.template, p.language, {**_with_hostile_text(p.context), "attachments": [f"{HOSTILE}.pdf"],
                                              "member_name": HOSTILE})
        assert "<svg" not in out.html, (template, out.html)
        # the line descriptions, the attachment's name and at least the subject (<title>, <h1>) as text
        assert out.html.count("&lt;svg onload=alert(1)&gt;") >= 4, (template, out.html)
        assert HOSTILE in out.text, "the plain-text part shows it as typed"


def test_the_stored_bodies_carry_the_confirmation_link_redacted_and_the_e_mail_sent_the_link():
    event = order_events(order())["order_sent_for_confirmation"]
    link = "https://kontor.example/confirm/" + "s3cr3t-Tok_en" * 3
    [p] = model.plan_order_event(event.event_type, {**event.model_dump(mode="json"), "confirmation_url": link},
                                 MEMBER)
    assert p.secret_link == link and p.problem is None
    out = render(p.template, p.language, {**p.context, "attachments": [], "member_name": "Anna"})
    assert "s3cr3t" not in out.text + out.html + out.subject
    assert "https://kontor.example/confirm/…" in out.text
    assert f"{link}\n" in model.with_link(out.text, p.secret_link)
    from markupsafe import escape
    assert f'href="{link}"' in model.with_link(out.html, p.secret_link, lambda v: str(escape(v)))


def test_a_confirmation_link_that_is_not_http_is_not_sent():
    event = order_events(order())["order_sent_for_confirmation"]
    [p] = model.plan_order_event(event.event_type, {**event.model_dump(mode="json"),
                                                    "confirmation_url": "javascript:alert(1)//x"}, MEMBER)
    assert p.problem == "the confirmation link is not an http(s) URL"


def test_invalid_addresses_are_left_out_and_recorded_and_without_a_valid_one_there_is_no_e_mail():
    o = order(contact_email="a\u0015b@c.example")
    inv = invoice(o, invoice_email="rechnung@acme.example")
    event = invoice_events(inv, inv)["invoice_issued"]
    [p] = model.plan_invoice_event(event.event_type, event.model_dump(mode="json"), None,
                                   model.Member("member-1", "not an address", "Anna"), o.model_dump(mode="json"))
    checked = model.without_invalid_addresses(p)
    assert (checked.to, checked.cc, checked.problem) == (("rechnung@acme.example",), (), None)
    assert [r.address for r in checked.refused] == ["a\u0015b@c.example", "not an address"]
    assert all(r.reason.startswith("not a valid e-mail address") for r in checked.refused)
    assert checked.recipients_key == p.recipients_key, "the same e-mail as planned (no second one on redelivery)"

    confirm = order_events(o)["order_sent_for_confirmation"]
    [only] = model.plan_order_event(confirm.event_type, confirm.model_dump(mode="json"), MEMBER)
    checked = model.without_invalid_addresses(only)
    assert checked.to == () and checked.problem.startswith("a\\x15b@c.example: not a valid e-mail address")


def test_attachment_file_names_lose_control_characters_and_paths_and_keep_their_letters():
    assert model.attachment_filename("Überweisung – Angebot №5 ✓.pdf") == "Überweisung – Angebot №5 ✓.pdf"
    assert model.attachment_filename('Say "hi"\r\nBcc: x@evil.example.pdf') == 'Say "hi" Bcc: x@evil.example.pdf'
    assert model.attachment_filename("../../etc/passwd") == ".._.._etc_passwd"
    assert model.attachment_filename("\x00\x01") == "attachment"


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

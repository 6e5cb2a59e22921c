"""The advisor's adjustment forms translated into the orders and invoicing APIs' bodies, and the
adjustment page's reasons why an invoice waits (no services needed)."""
from __future__ import annotations

import httpx

from kontor_portal import i18n
from kontor_portal.entrypoints.advisor_pages import invoice_adjust_body, order_texts_body, refusal
from kontor_portal.entrypoints.web import environment


def test_order_texts_by_line_index_and_the_note_only_when_typed():
    body = order_texts_body({"csrf": "x", "project_name": " Relaunch ", "description": "Website",
                             "special_agreement": "", "line-1": " Konzept ", "line-0": "Workshop", "note": " ",
                             "line-x": "ignored"})
    assert body == {"project_name": "Relaunch", "description": "Website", "special_agreement": "",
                    "line_descriptions": {"1": "Konzept", "0": "Workshop"}}
    assert order_texts_body({"note": "Tippfehler"}) == {"note": "Tippfehler"}


def test_invoice_lines_in_their_order_with_numbers_as_the_advisor_writes_them():
    form = {"line-1-description": "B", "line-1-quantity": "1,5", "line-1-unit": "hour",
            "line-1-unit_price": "1.234,50", "line-0-description": " A ", "line-0-quantity": "2",
            "line-0-unit": "day", "line-0-unit_price": "640", "project_name": "", "description": "",
            "invoice_date": "2027-03-06", "due_in_days": " "}
    assert invoice_adjust_body(form, "de") == {
        "lines": [{"description": "A", "quantity": "2", "unit": "day", "unit_price": "640"},
                  {"description": "B", "quantity": "1.5", "unit": "hour", "unit_price": "1234.50"}],
        "project_name": None, "invoice_date": "2027-03-06"}
    assert invoice_adjust_body({"due_in_days": "30", "description": "Neu"}, "en") == \
        {"due_in_days": "30", "description": "Neu"}


def test_a_refusal_names_the_field_with_the_message_in_the_advisor_s_language():
    r = httpx.Response(422, json={"detail": [{"loc": ["body", "lines", 0, "quantity"], "msg": "Input should be a "
                                               "valid decimal", "type": "decimal_parsing"}]})
    assert refusal(r, "de") == "lines.0.quantity: " + i18n.api_error("de", "decimal_parsing", "")
    assert refusal(r, "de") != refusal(r, "en")
    assert refusal(httpx.Response(409, json={"detail": "not allowed in status invoiced"})) == \
        "not allowed in status invoiced"


def test_the_adjustment_page_shows_why_an_invoice_was_held():
    invoice = {"invoice_id": "5b0e0c36-4a55-4f0e-9d4c-7d1f6a9a2b11", "project_name": "Relaunch",
               "client_name": "Probe GmbH", "status": "waiting_for_adjustment", "amount_due": "100.00",
               "currency": "EUR", "invoice_date": "2027-03-05", "change_request": None, "adjustments": [],
               "validation_errors": ["due_in_days: the due date would be after 9999-12-31",
                                     "BR-DE-15: Leitweg-ID (BT-10) missing"],
               "lines": [{"description": "Workshop", "quantity": "2", "unit": "day", "unit_price": "50.00"}]}
    html = environment().get_template("advisor_invoice_adjust.html").render(
        lang="en", t=lambda key: i18n.text("en", key), user={"sub": "advisor-1"}, roles=["advisor"],
        role="advisor", csrf="c", path="/", invoice=invoice, units=("day", "hour"), refused=None, done=None)
    assert "<li>BR-DE-15: Leitweg-ID (BT-10) missing</li>" in html
    assert "<li>due_in_days: the due date would be after 9999-12-31</li>" in html
    assert '<label for="line-0-unit_price">' in html and 'value="50"' in html
    assert 'action="/advisor/invoices/5b0e0c36-4a55-4f0e-9d4c-7d1f6a9a2b11/adjust"' in html

"""The order form's translation between the form's fields and the orders API (no services needed)."""
from __future__ import annotations

from kontor_portal.entrypoints.order_pages import field_errors, order_body


def test_api_error_locations_become_the_form_s_field_names():
    detail = [{"loc": ["body", "lines", 2, "unit_price"], "msg": "not a number"},
              {"loc": ["body", "contact_person", "email"], "msg": "bad address"},
              {"loc": ["body", "payment", "installments", 0, "date"], "msg": "in the past"},
              {"loc": ["body", "service_period"], "msg": "required"},
              {"loc": ["body", "client_id"], "msg": "unknown client"}]
    assert field_errors(detail) == {"line-2-unit_price": "not a number", "contact_email": "bad address",
                                    "inst-0-date": "in the past", "service_end": "required",
                                    "client_id": "unknown client"}
    assert field_errors("cannot submit") == {"form": "cannot submit"}


def test_the_body_leaves_out_what_is_empty_and_keeps_the_rows_in_their_order():
    body = order_body({"client_id": "c1", "contact_name": " Jana ", "contact_email": "j@x.example",
                       "line-1-description": "B", "line-1-quantity": "1", "line-1-unit": "day",
                       "line-1-unit_price": "2", "line-0-description": "A", "line-0-quantity": "3",
                       "line-0-unit": "hour", "line-0-unit_price": "4", "line-5-unit": "hour",
                       "sector": "", "payment_mode": "installments", "inst-0-date": "2027-01-01",
                       "inst-0-amount": "5"})
    assert [line["description"] for line in body["lines"]] == ["A", "B"]  # the empty row 5 is dropped
    assert body["contact_person"] == {"name": "Jana", "email": "j@x.example"}
    assert "sector" not in body and "service_period" not in body and "confirmation" not in body
    assert body["payment"] == {"mode": "installments", "installments": [{"date": "2027-01-01", "amount": "5"}]}


def test_numbers_are_read_as_the_member_writes_them_in_their_language():
    from kontor_portal.i18n import decimal_input

    assert [decimal_input(v, "de") for v in ("640,00", "1.234,50", "12.500", "2,5", " 40 ", "640.00")] == \
        ["640.00", "1234.50", "12500", "2.5", "40", "640.00"]
    assert [decimal_input(v, "en") for v in ("640.00", "1,234.50", "12,500", "2.5")] == \
        ["640.00", "1234.50", "12500", "2.5"]
    # what is no number in that language goes to the API as typed, which names it at its field
    assert [decimal_input(v, "de") for v in ("640,00 Euro", "1,234.50", "1.23,4")] == \
        ["640,00 Euro", "1,234.50", "1.23,4"]
    assert decimal_input("1.234,50", "en") == "1.234,50"
    body = order_body({"line-0-description": "A", "line-0-quantity": "2,5", "line-0-unit": "hour",
                       "line-0-unit_price": "1.280,00", "payment_mode": "installments",
                       "inst-0-date": "2027-01-01", "inst-0-amount": "1.600,00"}, "de")
    assert (body["lines"][0]["quantity"], body["lines"][0]["unit_price"]) == ("2.5", "1280.00")
    assert body["payment"]["installments"][0]["amount"] == "1600.00"


def test_the_api_s_errors_are_shown_in_the_member_s_language():
    detail = [{"loc": ["body", "lines", 0, "unit_price"], "msg": "Input should be a valid decimal",
               "type": "decimal_parsing"},
              {"loc": ["body", "project_name"], "msg": "Field required", "type": "missing"},
              {"loc": ["body", "service_period"], "msg": "the service ends before it starts", "type": "value_error"}]
    assert field_errors(detail, "de") == {"line-0-unit_price": "Bitte eine Zahl eingeben, z. B. 1.234,50.",
                                          "project_name": "Bitte ausfüllen.",
                                          "service_end": "the service ends before it starts"}
    assert field_errors(detail, "en")["line-0-unit_price"] == "Enter a number, e.g. 1,234.50."


def test_installments_by_amount_percentage_or_ticked_lines_map_to_the_api_s_indexes():
    # line row 1 was removed: rows 0 and 2 are the order's lines 0 and 1; the ticks name rows
    form = {"line-0-description": "A", "line-0-quantity": "1", "line-0-unit": "day", "line-0-unit_price": "10",
            "line-2-description": "C", "line-2-quantity": "1", "line-2-unit": "day", "line-2-unit_price": "30",
            "line-3-unit": "hour", "payment_mode": "installments",
            "inst-0-date": "2027-01-01", "inst-0-percentage": "30 %",
            "inst-1-date": "2027-02-01", "inst-1-amount": "1.000,00",
            "inst-2-date": "2027-03-01", "inst-2-l2": "1", "inst-2-l3": "1",
            "inst-3-date": "2027-04-01"}
    assert order_body(form, "de")["payment"]["installments"] == [
        {"date": "2027-01-01", "percentage": "30"}, {"date": "2027-02-01", "amount": "1000.00"},
        {"date": "2027-03-01", "lines": [1]},  # the empty row 3 is no line
        {"date": "2027-04-01", "amount": None}]  # nothing given: the API names the amount
    detail = [{"loc": ["body", "payment", "installments", 2, "lines", 0], "msg": "billed twice"},
              {"loc": ["body", "payment", "installments", 1], "msg": "give either an amount, a percentage or lines"},
              {"loc": ["body", "payment", "installments", 0, "percentage"], "msg": "between 0 and 100"}]
    assert field_errors(detail) == {"inst-2-lines": "billed twice", "inst-1-amount": "give either an amount, a "
                                    "percentage or lines", "inst-0-percentage": "between 0 and 100"}

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

"""The member's order pages: the new-order form (also the edit of a draft), the client search and a
new client, and the actions of an order's detail (submit, comments, attachments, duplicate,
cancellation request, complete).

The form works without JavaScript: "add line", "remove" and "search" are submit buttons that
re-render it with what was entered. Every change goes to the orders (or clients) API with the
user's token; a 422 comes back with its fields' locations and is shown at those fields, a 409's
reason as a message. The portal checks no business rule itself.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from kontor.logging import get_logger
from kontor_portal import i18n
from kontor_portal.adapters.apis import ApiError, ApiNotFound
from kontor_portal.entrypoints.web import Web, as_uuid

log = get_logger(__name__)
UNITS = ("hour", "day", "week", "month", "lump_sum", "other")
CURRENCIES = ("EUR", "USD", "GBP", "CHF")
PLACES = ("DE", "EU", "OTHER")
PAYMENT_MODES = ("after_completion", "installments", "recurring", "advance")
INTERVALS = ("month", "quarter", "year")
MAX_ROWS = 50
CONTRACT_ACTIONS = ("auto_renew", "pause", "resume", "cancel")
ORDER_FORM_JS = Path(__file__).resolve().parents[1] / "static" / "order-form.js"
ROW = re.compile(r"^(line|inst)-(\d{1,2})-(\w+)$")
PICK = re.compile(r"^l(\d{1,2})$")  # an installment's checkbox of a line (by the line's row number): inst-0-l2
INST_FIELDS = ("date", "amount", "percentage")
# order actions of the detail page: name -> (statuses that allow it, needs a reason)
ACTIONS: dict[str, tuple[tuple[str, ...], bool]] = {
    "submit": (("draft",), False),
    "duplicate": (("draft", "smart_review", "client_confirmation", "active", "cancellation_requested", "completed",
                   "cancelled", "rejected"), False),
    "cancellation-request": (("active",), True),
    "complete": (("active",), False),
}
# API field paths (after "body") -> the form's field names
_NAMES = {"contact_person.name": "contact_name", "contact_person.email": "contact_email",
          "contact_person": "contact_name", "service_period.start": "service_start",
          "service_period.end": "service_end", "service_period": "service_end",
          "confirmation.mode": "confirmation_mode", "confirmation": "confirmation_mode",
          "confirmation.offer_valid_until": "offer_valid_until", "confirmation.skip_reason": "skip_reason",
          "payment.mode": "payment_mode", "payment": "payment_mode", "payment.due_in_days": "due_in_days",
          "payment.interval": "interval", "payment.invoice_date": "invoice_date",
          "payment.first_invoice_date": "first_invoice_date",
          "payment.installments": "payment_mode", "lines": "lines"}

i18n.add_texts(
    de={"new_order": "+ Neuer Auftrag", "new_order_title": "Neuer Auftrag", "edit_order": "Entwurf bearbeiten",
        "client_search": "Kunde suchen (ab drei Buchstaben)", "search": "Suchen", "choose_client": "Kunde wählen",
        "no_clients": "Kein Kunde gefunden.", "new_client": "Neuen Kunden anlegen", "client_name": "Name",
        "client_kind": "Art", "kind_company": "Unternehmen", "kind_person": "Person",
        "kind_public_body": "Öffentliche Stelle", "street": "Straße und Hausnummer", "postal_code": "PLZ",
        "city": "Ort", "country": "Land (ISO, z. B. DE)", "vat_id": "USt-IdNr.", "invoice_email": "Rechnungs-E-Mail",
        "client_language": "Sprache des Kunden", "register_client": "Kunden anlegen",
        "contact_name": "Name der Ansprechperson", "contact_email": "E-Mail der Ansprechperson",
        "sector": "Branche", "place_of_service": "Leistungsort", "place_DE": "Deutschland",
        "place_EU": "EU-Ausland", "place_OTHER": "Drittland", "vat_note": "Umsatzsteuer laut Auftragsdienst",
        "vat_after_save": "Die Umsatzsteuer berechnet der Auftragsdienst beim Speichern.",
        "currency": "Währung", "add_line": "Position hinzufügen", "remove": "Entfernen", "line": "Position",
        "unit_hour": "Stunde", "unit_day": "Tag", "unit_week": "Woche", "unit_month": "Monat",
        "unit_lump_sum": "Pauschal", "unit_other": "Sonstige", "running_total": "Summe netto (vorläufig)",
        "service_start": "Leistung von", "service_end": "Leistung bis", "confirmation": "Kundenbestätigung",
        "confirm_send": "Zur Bestätigung an den Kunden senden", "confirm_skip": "Bestätigung überspringen",
        "offer_valid_until": "Angebot gültig bis", "skip_reason": "Grund für das Überspringen",
        "payment": "Zahlung", "payment_mode": "Zahlungsart", "pay_after_completion": "Nach Abschluss",
        "pay_installments": "In Raten", "pay_recurring": "Wiederkehrend", "pay_advance": "Vorkasse",
        "due_in_days": "Zahlungsziel (Tage)", "interval": "Intervall", "interval_month": "monatlich",
        "interval_quarter": "vierteljährlich", "interval_year": "jährlich",
        "first_invoice_date": "Erste Rechnung am",
        "invoice_date": "Rechnungsdatum (nach Abschluss, Vorkasse)", "installment": "Rate", "inst_date": "Datum",
        "inst_amount": "Betrag", "add_installment": "Rate hinzufügen",
        "comment_for_advisors": "Kommentar für die Berater*innen", "project_name": "Projektname",
        "save_draft": "Als Entwurf speichern", "submit_order": "Einreichen", "errors_title": "Bitte prüfen Sie:",
        "actions": "Aktionen", "do_submit": "Zur Prüfung einreichen", "do_duplicate": "Duplizieren",
        "do_cancellation-request": "Stornierung beantragen", "do_complete": "Abschließen", "edit": "Bearbeiten",
        "comments": "Kommentare", "add_comment": "Kommentar hinzufügen", "comment": "Kommentar",
        "attachments": "Anhänge", "upload": "Hochladen", "file": "Datei", "no_attachments": "Keine Anhänge.",
        "no_comments": "Noch keine Kommentare.", "refused": "Nicht möglich", "saved": "Gespeichert.",
        "optional": "optional", "none_choice": "– keine Angabe –",
        "vat_applies": "Umsatzsteuer", "vat_choose": "Wählen Sie Kunde, Branche und Leistungsort: dann steht hier "
        "die Umsatzsteuer, die gilt.", "inst_percentage": "oder Prozent", "inst_lines": "oder Positionen",
        "inst_hint": "Je Rate ein Datum und ein Betrag, ein Prozentsatz oder Positionen; die Schlussrechnung zieht "
        "ab, was die Raten abgerechnet haben.", "inst_no_lines": "Noch keine Positionen.",
        "vat": "USt", "clients_api": "Kunde"},
    en={"new_order": "+ New order", "new_order_title": "New order", "edit_order": "Edit draft",
        "client_search": "Search a client (three letters or more)", "search": "Search", "choose_client": "Client",
        "no_clients": "No client found.", "new_client": "Register a new client", "client_name": "Name",
        "client_kind": "Kind", "kind_company": "Company", "kind_person": "Person", "kind_public_body": "Public body",
        "street": "Street and number", "postal_code": "Postal code", "city": "City",
        "country": "Country (ISO, e.g. DE)", "vat_id": "VAT id", "invoice_email": "Invoice e-mail",
        "client_language": "Client's language", "register_client": "Register client",
        "contact_name": "Contact person's name", "contact_email": "Contact person's e-mail", "sector": "Sector",
        "place_of_service": "Place of service", "place_DE": "Germany", "place_EU": "Other EU country",
        "place_OTHER": "Outside the EU", "vat_note": "VAT as the orders service applies it",
        "vat_after_save": "The orders service computes the VAT when the order is saved.",
        "currency": "Currency", "add_line": "Add line", "remove": "Remove", "line": "Line",
        "unit_hour": "Hour", "unit_day": "Day", "unit_week": "Week", "unit_month": "Month",
        "unit_lump_sum": "Lump sum", "unit_other": "Other", "running_total": "Net total (preliminary)",
        "service_start": "Service from", "service_end": "Service until", "confirmation": "Client confirmation",
        "confirm_send": "Send to the client for confirmation", "confirm_skip": "Skip the confirmation",
        "offer_valid_until": "Offer valid until", "skip_reason": "Reason for skipping", "payment": "Payment",
        "payment_mode": "Payment mode", "pay_after_completion": "After completion", "pay_installments": "Installments",
        "pay_recurring": "Recurring", "pay_advance": "In advance", "due_in_days": "Payment due (days)",
        "interval": "Interval", "interval_month": "monthly", "interval_quarter": "quarterly",
        "interval_year": "yearly", "first_invoice_date": "First invoice on",
        "invoice_date": "Invoice date (after completion, in advance)", "installment": "Installment",
        "inst_date": "Date", "inst_amount": "Amount", "add_installment": "Add installment",
        "comment_for_advisors": "Comment for the advisors", "project_name": "Project name",
        "save_draft": "Save as draft", "submit_order": "Submit", "errors_title": "Please check:",
        "actions": "Actions", "do_submit": "Submit for review", "do_duplicate": "Duplicate",
        "do_cancellation-request": "Request cancellation", "do_complete": "Complete", "edit": "Edit",
        "comments": "Comments", "add_comment": "Add comment", "comment": "Comment", "attachments": "Attachments",
        "upload": "Upload", "file": "File", "no_attachments": "No attachments.", "no_comments": "No comments yet.",
        "refused": "Not possible", "saved": "Saved.", "optional": "optional", "none_choice": "– not given –",
        "vat_applies": "VAT", "vat_choose": "Choose client, sector and place of service: the VAT that applies is "
        "shown here.", "inst_percentage": "or percentage", "inst_lines": "or line items",
        "inst_hint": "Each installment has a date and an amount, a percentage or line items; the final invoice "
        "deducts what the installments billed.", "inst_no_lines": "No lines yet.",
        "vat": "VAT", "clients_api": "Client"})

# the order detail's contract, price change, archive and the three values (issue 22)
i18n.add_texts(
    de={"contract": "Vertrag", "contract_kind": "Vertragsart", "contract_one_off": "Einmalige Laufzeit",
        "contract_auto_renew": "Verlängert sich automatisch", "contract_state": "Vertragsstand",
        "contract_state_running": "Läuft", "contract_state_paused": "Pausiert",
        "contract_state_finished": "Beendet", "contract_state_cancelled": "Gekündigt",
        "term_months": "Laufzeit (Monate)", "notice_months": "Kündigungsfrist (Monate)", "months": "Monate",
        "notice_deadline": "Kündigen bis", "renews_until": "Verlängert bis", "renewals": "Verlängerungen",
        "cancelled_on": "Gekündigt am", "pauses": "Pausen", "until_resumed": "bis zur Fortsetzung",
        "do_pause": "Pausieren", "pause_from": "Pause ab", "pause_until": "Pause bis einschließlich",
        "do_resume": "Fortsetzen", "resume_from": "Fortsetzen ab", "do_auto_renew": "Automatisch verlängern",
        "do_cancel_contract": "Vertrag kündigen",
        "cancel_contract_hint": "Keine weitere Verlängerung; möglich bis zur Kündigungsfrist am",
        "price_change": "Preis ändern", "price_change_hint": "Der neue Preis gilt ab dem Beginn eines noch nicht "
        "abgerechneten Zeitraums, nie rückwirkend.", "new_unit_price": "Neuer Einzelpreis (netto)",
        "effective_from": "Gültig ab", "do_price_change": "Preis ändern", "archive": "Archiv",
        "archived_lines": "Archivierte Positionen", "archive_empty": "Noch keine archivierten Positionen.",
        "tidy_up_hint": "Vollständig abgerechnete Positionen wandern ins Archiv; sie bleiben Teil des Auftrags "
        "und seiner Werte.", "do_tidy_up": "Aufräumen", "net_value": "Nettowert", "plan_value": "Planwert",
        "order_value": "Auftragswert (abgerechnet)", "as_of": "Stand",
        "sum_listed": "Summe der gezeigten Aufträge"},
    en={"contract": "Contract", "contract_kind": "Kind of contract", "contract_one_off": "One-off term",
        "contract_auto_renew": "Renews automatically", "contract_state": "Contract state",
        "contract_state_running": "Running", "contract_state_paused": "Paused",
        "contract_state_finished": "Finished", "contract_state_cancelled": "Cancelled",
        "term_months": "Term (months)", "notice_months": "Notice period (months)", "months": "months",
        "notice_deadline": "Cancel by", "renews_until": "Renews until", "renewals": "Renewals",
        "cancelled_on": "Cancelled on", "pauses": "Pauses", "until_resumed": "until resumed",
        "do_pause": "Pause", "pause_from": "Pause from", "pause_until": "Pause until (inclusive)",
        "do_resume": "Resume", "resume_from": "Resume from", "do_auto_renew": "Renew automatically",
        "do_cancel_contract": "Cancel the contract",
        "cancel_contract_hint": "No further renewal; possible until the notice deadline on",
        "price_change": "Change a price", "price_change_hint": "The new price applies from the start of a period "
        "not invoiced yet, never retroactively.", "new_unit_price": "New unit price (net)",
        "effective_from": "Effective from", "do_price_change": "Change price", "archive": "Archive",
        "archived_lines": "Archived lines", "archive_empty": "No archived lines yet.",
        "tidy_up_hint": "Fully invoiced lines move to the archive; they stay part of the order and its values.",
        "do_tidy_up": "Tidy up", "net_value": "Net value", "plan_value": "Plan value",
        "order_value": "Order value (invoiced)", "as_of": "as of",
        "sum_listed": "Sum of the listed orders"})


def _rows(form: dict[str, str], kind: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
    """The numbered rows (line-0-description, ...) of the form, in their order, without entirely empty ones."""
    found: dict[int, dict[str, str]] = {}
    for name, value in form.items():
        m = ROW.match(name)
        if m and m.group(1) == kind and _wanted(kind, m.group(3), fields) and int(m.group(2)) < MAX_ROWS:
            found.setdefault(int(m.group(2)), {})[m.group(3)] = value.strip()
    return [found[i] for i in sorted(found) if any(v for k, v in found[i].items() if k != "unit")]


def _wanted(kind: str, field: str, fields: tuple[str, ...]) -> bool:
    return field in fields or (kind == "inst" and PICK.match(field) is not None)


def _line_indexes(form: dict[str, str]) -> dict[int, int]:
    """The form's line row numbers -> the indexes (0-based) of the order's lines the API gets: the
    non-empty rows in their order (an installment by line items names lines by these)."""
    found: dict[int, bool] = {}
    for name, value in form.items():
        m = ROW.match(name)
        if m and m.group(1) == "line" and int(m.group(2)) < MAX_ROWS and m.group(3) != "unit":
            found[int(m.group(2))] = found.get(int(m.group(2)), False) or bool(value.strip())
    return {row: index for index, row in enumerate(r for r in sorted(found) if found[r])}


def _opt(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def order_body(form: dict[str, str], lang: str = "en") -> dict[str, Any]:
    """The orders API's body of the entered form (numbers as written in `lang`); what is left empty is
    not sent, so the API names it."""
    def num(value: str | None) -> str:
        return i18n.decimal_input(value or "", lang)
    lines = [{"description": r.get("description", ""), "quantity": num(r.get("quantity")),
              "unit": r.get("unit") or "hour", "unit_price": num(r.get("unit_price"))}
             for r in _rows(form, "line", ("description", "quantity", "unit", "unit_price"))]
    body: dict[str, Any] = {
        "client_id": form.get("client_id") or None,
        "contact_person": {"name": form.get("contact_name", "").strip(),
                           "email": form.get("contact_email", "").strip()},
        "currency": form.get("currency") or "EUR", "lines": lines,
        "sector": _opt(form.get("sector")), "place_of_service": _opt(form.get("place_of_service")),
        "project_name": _opt(form.get("project_name")), "description": _opt(form.get("description")),
        "comment_for_advisors": _opt(form.get("comment_for_advisors")),
    }
    start, end = _opt(form.get("service_start")), _opt(form.get("service_end"))
    if start or end:
        body["service_period"] = {"start": start, "end": end}
    mode = _opt(form.get("confirmation_mode"))
    if mode:
        body["confirmation"] = {"mode": mode, "offer_valid_until": _opt(form.get("offer_valid_until")),
                                "skip_reason": _opt(form.get("skip_reason"))}
    pay = _opt(form.get("payment_mode"))
    if pay:
        payment: dict[str, Any] = {"mode": pay}
        if _opt(form.get("due_in_days")):
            payment["due_in_days"] = form["due_in_days"].strip()
        if pay in ("after_completion", "advance"):
            payment["invoice_date"] = _opt(form.get("invoice_date"))
        if pay == "recurring":
            payment["interval"] = _opt(form.get("interval"))
            payment["first_invoice_date"] = _opt(form.get("first_invoice_date"))
        if pay == "installments":
            indexes = _line_indexes(form)
            payment["installments"] = [_installment(r, indexes, num) for r in _rows(form, "inst", INST_FIELDS)]
        body["payment"] = payment
    return {k: v for k, v in body.items() if v is not None}


def _installment(row: dict[str, str], indexes: dict[int, int], num: Any) -> dict[str, Any]:
    """One installment row: a date and what it bills, as entered (an amount, a percentage or ticked lines);
    when more than one is given all are sent and the API says which one to keep."""
    entry: dict[str, Any] = {"date": row.get("date") or None}
    if row.get("amount"):
        entry["amount"] = num(row["amount"])
    if row.get("percentage"):
        entry["percentage"] = num(row["percentage"].removesuffix("%").strip())
    picked = sorted(indexes[int(m.group(1))] for k, v in row.items()
                    if v and (m := PICK.match(k)) and int(m.group(1)) in indexes)
    if picked:
        entry["lines"] = picked
    if len(entry) == 1:
        entry["amount"] = None  # nothing given: the API names the installment's amount
    return entry


def field_errors(detail: Any, lang: str = "en") -> dict[str, str]:
    """A 422's detail (a list of {loc, msg, type}) as {form field: message in `lang`}; a plain text
    under "form"."""
    if not isinstance(detail, list):
        return {"form": str(detail)}
    errors: dict[str, str] = {}
    for e in detail:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query")]
        path = ".".join(loc)
        if len(loc) >= 3 and loc[0] == "lines" and loc[1].isdigit():
            name = f"line-{loc[1]}-{loc[2]}"
        elif len(loc) >= 3 and loc[:2] == ["payment", "installments"] and loc[2].isdigit():
            name = f"inst-{loc[2]}-{loc[3] if len(loc) >= 4 else 'amount'}"
        else:
            name = _NAMES.get(path, path or "form")
        errors.setdefault(name, i18n.api_error(lang, e.get("type"), str(e.get("msg", "invalid"))))
    return errors


def form_of_order(order: dict[str, Any]) -> dict[str, str]:
    """An order of the API as the form's fields (the edit of a draft)."""
    form = {"client_id": str(order["client"].get("client_id") or order["client"].get("id") or ""),
            "client_name": order["client"].get("name") or "",
            "contact_name": order["contact_person"]["name"], "contact_email": order["contact_person"]["email"],
            "currency": order["currency"]}
    for key in ("sector", "place_of_service", "project_name", "description", "comment_for_advisors",
                "service_start", "service_end", "offer_valid_until"):
        if order.get(key) is not None:
            form[key] = str(order[key])
    if order.get("confirmation_mode"):
        form["confirmation_mode"] = order["confirmation_mode"]
    for i, line in enumerate(order["lines"]):
        for key in ("description", "quantity", "unit", "unit_price"):
            form[f"line-{i}-{key}"] = str(line[key])
    payment = order.get("payment") or {}
    if payment:
        form["payment_mode"] = payment.get("mode", "")
        form["due_in_days"] = str(payment.get("due_in_days", ""))
        for key in ("interval", "first_invoice_date", "invoice_date"):
            if payment.get(key):
                form[key] = str(payment[key])
        for i, inst in enumerate(payment.get("installments") or ()):
            form[f"inst-{i}-date"] = str(inst.get("date") or "")
            form[f"inst-{i}-amount"] = str(inst.get("amount") or "")
            form[f"inst-{i}-percentage"] = str(inst.get("percentage") or "")
            for index in inst.get("lines") or ():  # the form's line rows are numbered by the order's indexes
                form[f"inst-{i}-l{index}"] = "1"
    return form


def _detail(r: httpx.Response) -> Any:
    try:
        return r.json().get("detail")
    except (json.JSONDecodeError, AttributeError):
        return r.text[:500]


def register(app: FastAPI, web: Web) -> None:
    apis = web.apis

    async def options(request: Request, token: str) -> dict[str, list[tuple[str, str]]]:
        """The choices of the form's selects, (value, label) in the user's language; the sectors are the API's."""
        lang = web.lang_of(request)
        sectors = await apis.orders.get_json("/sectors", token)

        def labelled(values: tuple[str, ...], prefix: str) -> list[tuple[str, str]]:
            return [(v, i18n.text(lang, prefix + v)) for v in values]
        return {"sector": [(s["code"], s[f"name_{lang}"]) for s in sectors], "place": labelled(PLACES, "place_"),
                "currency": [(c, c) for c in CURRENCIES], "unit": labelled(UNITS, "unit_"),
                "payment_mode": labelled(PAYMENT_MODES, "pay_"), "interval": labelled(INTERVALS, "interval_")}

    async def clients_found(token: str, q: str) -> list[dict[str, Any]]:
        q = q.strip()
        if len(q) < 3:
            return []
        found: list[dict[str, Any]] = await apis.clients.get_json("/clients", token, q=q[:200], limit=20)
        return found

    async def vat_preview(request: Request, token: str, form: dict[str, str]) -> dict[str, Any] | None:
        """The VAT that will apply (the orders API's /vat-preview) once client, sector and place are chosen."""
        query = {k: (form.get(k) or "").strip() for k in ("client_id", "sector", "place_of_service")}
        if not all(query.values()):
            return None
        try:
            found: dict[str, Any] = await apis.orders.get_json("/vat-preview", token, language=web.lang_of(request),
                                                               **query)
        except ApiError as exc:  # e.g. a client the orders service does not know yet: the hint stays
            if exc.status_code != 422:
                raise
            log.info("no vat preview", reason=exc.detail[:200])
            return None
        return found

    async def form_page(request: Request, token: str, form: dict[str, str], *, errors: dict[str, str] | None = None,
                        status_code: int = 200, order: dict[str, Any] | None = None,
                        client_errors: dict[str, str] | None = None, extra_line: bool = False,
                        extra_inst: bool = False) -> Response:
        # the rows keep their numbers from the form so errors (lines.N) stay at their row
        numbered = _numbered(form, "line", ("description", "quantity", "unit", "unit_price"))
        if extra_line or not numbered:
            numbered.append((_next(numbered), {"unit": "hour"}))
        insts = _numbered(form, "inst", INST_FIELDS)
        if extra_inst or (form.get("payment_mode") == "installments" and not insts):
            insts.append((_next(insts), {}))
        lang = web.lang_of(request)
        return web.page(request, "order_form.html", status_code=status_code, form=form, errors=errors or {},
                        error_labels={k: _label(lang, k) for k in errors or {}},
                        client_errors=client_errors or {}, lines=numbered, installments=insts, order=order,
                        opts=await options(request, token),
                        clients=await clients_found(token, form.get("client_q", "")),
                        total=_running_total(numbered, lang), vat=await vat_preview(request, token, form))

    @app.get("/static/htmx.min.js", include_in_schema=False)
    async def htmx() -> Response:
        path = web.settings.static_dir / "htmx.min.js"
        if not path.is_file():
            log.warning("htmx missing: run deploy/bootstrap.sh", path=str(path))
            raise ApiNotFound("htmx.min.js")
        return Response(path.read_bytes(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/static/order-form.js", include_in_schema=False)
    async def order_form_js() -> Response:
        return Response(ORDER_FORM_JS.read_bytes(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/orders/new")
    async def new_order(request: Request, q: str = "") -> Response:
        token = web.require(request, "member")
        return await form_page(request, token, {"client_q": q, "currency": "EUR", "due_in_days": "14"})

    @app.get("/orders/new/vat")
    async def vat_note(request: Request, client_id: str = "", sector: str = "", place_of_service: str = "") -> Response:
        """The partial of the VAT that will apply (htmx swaps it in when client, sector or place change)."""
        token = web.require(request, "member")
        form = {"client_id": client_id[:40], "sector": sector[:40], "place_of_service": place_of_service[:10]}
        return web.page(request, "_vat_preview.html", vat=await vat_preview(request, token, form), order=None)

    @app.get("/orders/new/clients")
    async def client_options(request: Request, client_q: str = "") -> Response:
        """The partial of the client search (htmx swaps it in while typing: the search field's client_q)."""
        token = web.require(request, "member")
        return web.page(request, "_client_options.html", clients=await clients_found(token, client_q),
                        form={"client_q": client_q}, searched=len(client_q.strip()) >= 3)

    async def save(request: Request, token: str, form: dict[str, str], order_id: str | None) -> Response:
        action = form.get("action", "save")
        if action in ("add_line", "add_installment", "search") or action.startswith("remove-"):
            if action.startswith("remove-"):
                form = {k: v for k, v in form.items() if not k.startswith(action.removeprefix("remove-") + "-")}
            return await form_page(request, token, form, extra_line=action == "add_line",
                                   extra_inst=action == "add_installment",
                                   order={"order_id": order_id} if order_id else None)
        body = order_body(form, web.lang_of(request))
        if order_id:
            r = await apis.orders.change("PUT", f"/orders/{order_id}", token, json=body)
        else:
            r = await apis.orders.change("POST", "/orders", token, json=body)
        if r.status_code in (409, 422):
            errors = field_errors(_detail(r), web.lang_of(request)) if r.status_code == 422 \
                else {"form": str(_detail(r))}
            return await form_page(request, token, form, errors=errors, status_code=r.status_code,
                                   order={"order_id": order_id} if order_id else None)
        saved = r.json()
        oid = saved["order_id"]
        upload = await _upload(request, token, oid)
        if upload is not None:
            return upload
        if action == "submit":
            s = await apis.orders.change("POST", f"/orders/{oid}/submit", token)
            if s.status_code == 422:  # saved as a draft; what submitting needs is shown at its fields
                return await form_page(request, token, form, status_code=422,
                                       errors=field_errors(_detail(s), web.lang_of(request)),
                                       order=saved)
            if s.status_code == 409:
                return _back(oid, str(_detail(s)))
        log.info("order saved from the form", order_id=oid, submitted=action == "submit")
        return RedirectResponse(f"/orders/{oid}", status_code=303)

    async def _upload(request: Request, token: str, oid: str) -> Response | None:
        """The file chosen in the form's or the detail's upload field, sent to the orders API."""
        form = await request.form()
        file = form.get("attachment")
        if file is None or isinstance(file, str) or not file.filename:
            return None
        content = await file.read()
        r = await apis.orders.change("POST", f"/orders/{oid}/attachments", token,
                                     files={"file": (file.filename, content,
                                                     file.content_type or "application/octet-stream")})
        if r.status_code in (409, 422):
            return _back(oid, str(_detail(r) if not isinstance(_detail(r), list) else _detail(r)[0].get("msg")))
        return None

    @app.post("/orders/new")
    async def create_order(request: Request) -> Response:
        token = web.require(request, "member")
        form = await web.check_csrf(request)
        return await save(request, token, form, None)

    @app.get("/orders/{order_id}/edit")
    async def edit_order(request: Request, order_id: str) -> Response:
        token = web.require(request, "member")
        order = await apis.orders.get_json(f"/orders/{as_uuid(order_id)}", token)
        if order["status"] != "draft":
            return _back(order["order_id"], None)
        return await form_page(request, token, form_of_order(order), order=order)

    @app.post("/orders/{order_id}/edit")
    async def update_order(request: Request, order_id: str) -> Response:
        token = web.require(request, "member")
        form = await web.check_csrf(request)
        return await save(request, token, form, str(as_uuid(order_id)))

    @app.post("/clients/new")
    async def register_client(request: Request) -> Response:
        """A new client from the form's section: the clients API registers it; the form comes back with it chosen."""
        token = web.require(request, "member")
        form = await web.check_csrf(request)
        body = {"kind": form.get("new_kind") or "company", "name": form.get("new_name", "").strip(),
                "address": {"street": form.get("new_street", "").strip(),
                            "postal_code": form.get("new_postal_code", "").strip(),
                            "city": form.get("new_city", "").strip(), "country": form.get("new_country", "").strip()},
                "vat_id": _opt(form.get("new_vat_id")), "invoice_email": _opt(form.get("new_invoice_email")),
                "language": form.get("new_language") or "de"}
        r = await apis.clients.change("POST", "/clients", token, json={k: v for k, v in body.items() if v is not None})
        if r.status_code in (409, 422):
            errs = field_errors(_detail(r), web.lang_of(request))
            client_errors = {"new_" + k.split(".")[-1]: v for k, v in errs.items()}
            return await form_page(request, token, form, client_errors=client_errors, status_code=r.status_code)
        created = r.json()
        form.update(client_id=created["id"], client_q=created["name"], client_name=created["name"])
        return await form_page(request, token, form)

    @app.post("/orders/{order_id}/do/{action}")
    async def order_action(request: Request, order_id: str, action: str) -> Response:
        token = web.require(request, "member")
        form = await web.check_csrf(request)
        oid = as_uuid(order_id)
        if action not in ACTIONS:
            raise ApiNotFound(action)
        body = {"reason": form.get("reason", "").strip()} if ACTIONS[action][1] else None
        r = await apis.orders.change("POST", f"/orders/{oid}/{action}", token, json=body)
        if r.status_code in (409, 422):
            detail = _detail(r)
            return _back(str(oid), detail[0].get("msg") if isinstance(detail, list) else str(detail))
        target = r.json()["order_id"] if action == "duplicate" else str(oid)
        return RedirectResponse(f"/orders/{target}", status_code=303)

    @app.post("/orders/{order_id}/contract")
    async def contract_action(request: Request, order_id: str) -> Response:
        """A recurring order's contract (issue 22): automatic renewal, pause, resume, cancel; the API decides
        whether the order allows it now (409 with the reason, 422 at the field: both shown at the form)."""
        token = web.require(request, "member")
        form = await web.check_csrf(request)
        oid = str(as_uuid(order_id))
        action = form.get("action", "")
        if action not in CONTRACT_ACTIONS:
            raise ApiNotFound(action)
        body: dict[str, Any] = {"action": action}
        for name, key in (("from", "from"), ("until", "until"), ("term_months", "term_months"),
                          ("notice_months", "notice_months")):
            if _opt(form.get(name)):
                body[key] = form[name].strip()
        r = await apis.orders.change("POST", f"/orders/{oid}/contract", token, json=body)
        if r.status_code in (409, 422):
            return _back(oid, _refusal(r, web.lang_of(request)), at="contract")
        log.info("contract changed from the portal", order_id=oid, action=action)
        return RedirectResponse(f"/orders/{oid}?done=contract#contract", status_code=303)

    @app.post("/orders/{order_id}/price-changes")
    async def price_change(request: Request, order_id: str) -> Response:
        """A new unit price of a recurring line from a billing period on (never retroactive: the API refuses)."""
        token = web.require(request, "member")
        form = await web.check_csrf(request)
        oid = str(as_uuid(order_id))
        lang = web.lang_of(request)
        body = {"line": form.get("line", "").strip(),
                "unit_price": i18n.decimal_input(form.get("unit_price", ""), lang),
                "effective_from": form.get("effective_from", "").strip()}
        r = await apis.orders.change("POST", f"/orders/{oid}/price-changes", token, json=body)
        if r.status_code in (409, 422):
            return _back(oid, _refusal(r, lang), at="price")
        return RedirectResponse(f"/orders/{oid}?done=price#price", status_code=303)

    @app.post("/orders/{order_id}/tidy-up")
    async def tidy_up(request: Request, order_id: str) -> Response:
        """The fully invoiced lines to the order's archive (409 when there are none)."""
        token = web.require(request, "member")
        await web.check_csrf(request)
        oid = str(as_uuid(order_id))
        r = await apis.orders.change("POST", f"/orders/{oid}/tidy-up", token)
        if r.status_code in (409, 422):
            return _back(oid, _refusal(r, web.lang_of(request)), at="tidy")
        return RedirectResponse(f"/orders/{oid}?done=tidy#archive", status_code=303)

    @app.post("/orders/{order_id}/comments")
    async def add_comment(request: Request, order_id: str) -> Response:
        token = web.require(request, "member")
        form = await web.check_csrf(request)
        oid = as_uuid(order_id)
        r = await apis.orders.change("POST", f"/orders/{oid}/comments", token, json={"text": form.get("text", "")})
        if r.status_code in (409, 422):
            detail = _detail(r)
            return _back(str(oid), detail[0].get("msg") if isinstance(detail, list) else str(detail))
        return RedirectResponse(f"/orders/{oid}#comments", status_code=303)

    @app.post("/orders/{order_id}/attachments")
    async def add_attachment(request: Request, order_id: str) -> Response:
        token = web.require(request, "member")
        await web.check_csrf(request)
        oid = str(as_uuid(order_id))
        refused = await _upload(request, token, oid)
        return refused or RedirectResponse(f"/orders/{oid}#attachments", status_code=303)

    @app.get("/orders/{order_id}/attachments/{attachment_id}")
    async def download_attachment(request: Request, order_id: str, attachment_id: str) -> Response:
        token = web.token_of(request)
        upstream = await apis.orders.get_raw(f"/orders/{as_uuid(order_id)}/attachments/{as_uuid(attachment_id)}",
                                             token)
        passed = {k: v for k, v in upstream.headers.items() if k.lower() in ("content-disposition", "etag")}
        return Response(upstream.content, media_type=upstream.headers.get("content-type"), headers=passed)


def _label(lang: str, name: str) -> str:
    """The label of a form field an error names (the error summary): "Line 2: Unit price"."""
    m = ROW.match(name)
    if m:
        kind, index, field = m.groups()
        key = {"line": "line", "inst": "installment"}[kind]
        label = i18n.text(lang, "inst_" + field if kind == "inst" else field)
        return f"{i18n.text(lang, key)} {int(index) + 1}: {label}"
    return i18n.text(lang, name)


def _back(order_id: str, message: str | None, *, at: str | None = None) -> Response:
    """To the order's detail, with the refusal's reason shown there (at the form `at` names, if any)."""
    from urllib.parse import urlencode

    query = "?" + urlencode({"refused": message[:300], **({"at": at} if at else {})}) if message else ""
    anchor = "#" + ("archive" if at == "tidy" else at) if at else ""
    return RedirectResponse(f"/orders/{order_id}{query}{anchor}", status_code=303)


def _refusal(r: httpx.Response, lang: str) -> str:
    """A 409's reason, or a 422's errors as "field: message" in `lang`."""
    detail = _detail(r)
    if not isinstance(detail, list):
        return str(detail)
    return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: "
                     f"{i18n.api_error(lang, e.get('type'), str(e.get('msg', 'invalid')))}" for e in detail)


def _numbered(form: dict[str, str], kind: str, fields: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    found: dict[int, dict[str, str]] = {}
    for name, value in form.items():
        m = ROW.match(name)
        if m and m.group(1) == kind and _wanted(kind, m.group(3), fields) and int(m.group(2)) < MAX_ROWS:
            found.setdefault(int(m.group(2)), {})[m.group(3)] = value
    return sorted(found.items())


def _next(rows: list[tuple[int, dict[str, str]]]) -> int:
    return max((i for i, _ in rows), default=-1) + 1


def _running_total(rows: list[tuple[int, dict[str, str]]], lang: str) -> str | None:
    """The preliminary net of the entered lines (quantity × unit price), shown while typing; the order's
    figures are the API's."""
    from decimal import Decimal, InvalidOperation

    total = Decimal(0)
    try:
        for _, r in rows:
            if r.get("quantity") or r.get("unit_price"):
                total += Decimal(i18n.decimal_input(r.get("quantity", ""), lang)) * Decimal(
                    i18n.decimal_input(r.get("unit_price", ""), lang))
    except InvalidOperation:
        return None
    return str(total.quantize(Decimal("0.01")))

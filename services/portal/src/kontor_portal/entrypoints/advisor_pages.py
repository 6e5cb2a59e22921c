"""The advisor's pages: the review queue (approve, reject with a reason), invoices to record payments
on, and billing runs (start as of a date, follow their progress). Every page requires the advisor
role (the role switch chooses it); the APIs decide what an advisor may do, and their 409/422
answers are shown at the form that was sent."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from kontor_portal import i18n
from kontor_portal.entrypoints.web import Web, as_uuid

ADVISOR = "advisor"
OPEN_INVOICES = ("invoiced", "disputed")
RUN_DONE = ("finished", "failed")

i18n.add_texts(
    de={"adv_review": "Prüfung", "adv_review_title": "Aufträge in Prüfung", "adv_flags": "Hinweise",
        "adv_no_flags": "Keine Hinweise", "adv_approve": "Freigeben", "adv_reject": "Ablehnen",
        "adv_reject_reason": "Grund der Ablehnung", "adv_queue_empty": "Keine Aufträge warten auf Prüfung.",
        "adv_done": "Erledigt.", "adv_refused": "Nicht möglich", "adv_invoices": "Zahlungen",
        "adv_invoices_title": "Offene Rechnungen", "adv_open": "Offen", "adv_record_payment": "Zahlung erfassen",
        "adv_received_on": "Eingegangen am", "adv_payment_amount": "Betrag der Zahlung",
        "adv_waiting": "Warten auf Anpassung", "adv_issue": "Ausstellen",
        "adv_runs": "Abrechnungsläufe", "adv_start_run": "Abrechnungslauf starten", "adv_as_of": "Stichtag",
        "adv_run": "Abrechnungslauf", "adv_phase": "Phase", "adv_drafted": "Entwürfe erstellt",
        "adv_queued": "Zum Ausstellen eingereiht", "adv_refreshes": "Diese Seite aktualisiert sich alle 3 Sekunden.",
        "adv_requested_by": "Gestartet von", "run_queued": "Eingereiht", "run_running": "Läuft",
        "run_finished": "Beendet", "run_failed": "Fehlgeschlagen", "run_drafting": "Entwürfe",
        "run_issuing": "Ausstellen", "run_reminding": "Mahnungen", "run_done": "Fertig", "adv_issued": "Ausgestellt",
        "adv_reminded": "Gemahnt", "adv_held": "Zur Anpassung angehalten",
        "adv_no_runs": "Noch keine Abrechnungsläufe.", "adv_clients": "Kunden", "adv_search": "Suchen",
        "adv_client_search": "Name (mindestens 3 Zeichen)", "adv_standing": "Bonität", "adv_receivables": "Forderungen",
        "adv_overdue": "Überfällig", "adv_open_invoices": "Offene Rechnungen", "adv_since": "Seit",
        "adv_adjust_texts": "Texte anpassen", "adv_adjust_hint": "Nur Texte: Umfang und Beträge bleiben, "
        "die Änderung steht im Verlauf des Auftrags.", "adv_project_name": "Projektname",
        "adv_description": "Beschreibung", "adv_special_agreement": "Sondervereinbarung",
        "adv_line_description": "Beschreibung der Position {n}", "adv_note": "Anmerkung (im Verlauf)",
        "adv_save_adjustment": "Anpassung speichern", "adv_adjust": "Anpassen",
        "adv_adjust_invoice": "Rechnung anpassen", "adv_why_held": "Warum sie wartet",
        "adv_validation_errors": "Prüfung der X-Rechnung", "adv_change_request": "Änderungswunsch des Mitglieds",
        "adv_no_reason_known": "Kein Grund angegeben.", "adv_invoice_date": "Rechnungsdatum",
        "adv_due_in_days": "Zahlungsziel (Tage)", "adv_description_keep": "Beschreibung (leer lassen: unverändert)",
        "adv_quantity": "Menge", "adv_unit": "Einheit", "adv_line": "Position {n}",
        "adv_issue_after": "Nach dem Speichern ausstellen: Nummer und Dokumente folgen in Sekunden.",
        "adv_adjustments": "Bisherige Anpassungen", "adv_cases": "Beanstandungen & Stornos",
        "adv_cases_title": "Beanstandungen und Stornierungen", "adv_disputed": "Beanstandete Rechnungen",
        "adv_dispute_reason": "Einwand", "adv_resolve": "Beanstandung erledigt",
        "adv_issued_invoices": "Gestellte Rechnungen", "adv_record_dispute": "Beanstandung erfassen",
        "adv_objection": "Einwand des Kunden", "adv_cancel_invoice": "Rechnung stornieren",
        "adv_cancel_reason": "Grund der Stornierung",
        "adv_cancel_hint": "Erzeugt eine Stornorechnung mit eigener Nummer, die auf die Rechnung verweist.",
        "adv_cancellations": "Stornorechnungen", "adv_cancellation_invoice": "Stornorechnung",
        "adv_cancellation_pending": "Stornorechnung wird ausgestellt",
        "adv_cancel_requests": "Stornierungsanträge", "adv_requested_reason": "Begründung des Mitglieds",
        "adv_decision_reason": "Begründung der Entscheidung", "adv_approve_cancellation": "Stornierung genehmigen",
        "adv_refuse_cancellation": "Stornierung ablehnen", "adv_cancel_which": "Diese Rechnungen mitstornieren",
        "adv_no_invoices_of_order": "Zu diesem Auftrag gibt es keine gestellten Rechnungen.",
        "adv_open_invoice": "Rechnung öffnen", "adv_unchanged": "unverändert",
        "adv_cancels": "Storniert Rechnung", "adv_issued_on": "Ausgestellt am"},
    en={"adv_review": "Review", "adv_review_title": "Orders in review", "adv_flags": "Flags",
        "adv_no_flags": "No flags", "adv_approve": "Approve", "adv_reject": "Reject",
        "adv_reject_reason": "Reason for the rejection", "adv_queue_empty": "No orders are waiting for review.",
        "adv_done": "Done.", "adv_refused": "Not possible", "adv_invoices": "Payments",
        "adv_invoices_title": "Open invoices", "adv_open": "Open", "adv_record_payment": "Record payment",
        "adv_received_on": "Received on", "adv_payment_amount": "Amount paid",
        "adv_waiting": "Waiting for adjustment", "adv_issue": "Issue",
        "adv_runs": "Billing runs", "adv_start_run": "Start billing run", "adv_as_of": "As of",
        "adv_run": "Billing run", "adv_phase": "Phase", "adv_drafted": "Drafts created",
        "adv_queued": "Queued for issuing", "adv_refreshes": "This page refreshes every 3 seconds.",
        "adv_requested_by": "Started by", "run_queued": "Queued", "run_running": "Running",
        "run_finished": "Finished", "run_failed": "Failed", "run_drafting": "Drafting",
        "run_issuing": "Issuing", "run_reminding": "Reminding", "run_done": "Done", "adv_issued": "Issued",
        "adv_reminded": "Reminded", "adv_held": "Held for adjustment",
        "adv_no_runs": "No billing runs yet.", "adv_clients": "Clients", "adv_search": "Search",
        "adv_client_search": "Name (at least 3 characters)", "adv_standing": "Standing",
        "adv_receivables": "Receivables",
        "adv_overdue": "Overdue", "adv_open_invoices": "Open invoices", "adv_since": "Since",
        "adv_adjust_texts": "Adjust texts", "adv_adjust_hint": "Texts only: scope and amounts stay; the change "
        "is kept in the order's history.", "adv_project_name": "Project name",
        "adv_description": "Description", "adv_special_agreement": "Special agreement",
        "adv_line_description": "Description of line {n}", "adv_note": "Note (kept in the history)",
        "adv_save_adjustment": "Save adjustment", "adv_adjust": "Adjust",
        "adv_adjust_invoice": "Adjust invoice", "adv_why_held": "Why it is waiting",
        "adv_validation_errors": "X-Rechnung check", "adv_change_request": "The member's change request",
        "adv_no_reason_known": "No reason given.", "adv_invoice_date": "Invoice date",
        "adv_due_in_days": "Payment terms (days)", "adv_description_keep": "Description (leave empty to keep it)",
        "adv_quantity": "Quantity", "adv_unit": "Unit", "adv_line": "Line {n}",
        "adv_issue_after": "Issue once saved: its number and documents follow within seconds.",
        "adv_adjustments": "Adjustments so far", "adv_cases": "Disputes & cancellations",
        "adv_cases_title": "Disputes and cancellations", "adv_disputed": "Disputed invoices",
        "adv_dispute_reason": "Objection", "adv_resolve": "Dispute resolved",
        "adv_issued_invoices": "Issued invoices", "adv_record_dispute": "Record dispute",
        "adv_objection": "The client's objection", "adv_cancel_invoice": "Cancel invoice",
        "adv_cancel_reason": "Reason for the cancellation",
        "adv_cancel_hint": "Creates a cancellation invoice with its own number, referring to the invoice.",
        "adv_cancellations": "Cancellation invoices", "adv_cancellation_invoice": "Cancellation invoice",
        "adv_cancellation_pending": "Cancellation invoice being issued",
        "adv_cancel_requests": "Cancellation requests", "adv_requested_reason": "The member's reason",
        "adv_decision_reason": "Reason for the decision", "adv_approve_cancellation": "Approve cancellation",
        "adv_refuse_cancellation": "Refuse cancellation", "adv_cancel_which": "Cancel these invoices as well",
        "adv_no_invoices_of_order": "This order has no issued invoices.",
        "adv_open_invoice": "Open invoice", "adv_unchanged": "unchanged",
        "adv_cancels": "Cancels invoice", "adv_issued_on": "Issued on"})


def refusal(r: httpx.Response, lang: str | None = None) -> str:
    """The reason of a 409, or the first field and message of a 422, as one line for the page (the message
    in `lang` where the portal knows the kind of error)."""
    try:
        detail: Any = r.json().get("detail")
    except (json.JSONDecodeError, AttributeError):
        return r.text[:300]
    if isinstance(detail, list) and detail:
        first = detail[0]
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = str(first.get("msg", ""))
        if lang:
            message = i18n.api_error(lang, first.get("type"), message)
        return f"{field}: {message}" if field else message
    return str(detail)[:300]


def _back(target: str, r: httpx.Response | None, anchor: str = "", lang: str | None = None) -> Response:
    """Back to the page of the form: with the refusal shown there, or that it was done."""
    query = {"refused": refusal(r, lang)} if r is not None and r.status_code >= 400 else {"done": "1"}
    return RedirectResponse(f"{target}?{urlencode(query)}{anchor}", status_code=303)


INVOICE_UNITS = ("hour", "day", "week", "month", "lump_sum", "other")
ORDER_TEXTS = ("project_name", "description", "special_agreement")


def order_texts_body(form: dict[str, str]) -> dict[str, Any]:
    """The review queue's "adjust texts" form as the orders API's adjust body: the texts as typed (the API
    keeps what did not change and refuses what may not be empty), line descriptions by their index."""
    body: dict[str, Any] = {k: form[k].strip() for k in ORDER_TEXTS if k in form}
    lines = {key.removeprefix("line-"): text.strip() for key, text in form.items()
             if key.startswith("line-") and key.removeprefix("line-").isdigit()}
    if lines:
        body["line_descriptions"] = lines
    if form.get("note", "").strip():
        body["note"] = form["note"].strip()
    return body


def invoice_adjust_body(form: dict[str, str], lang: str) -> dict[str, Any]:
    """The invoice adjustment form as the invoicing API's PATCH body: every line (rows line-N-*), the
    project name, the invoice date and the payment terms as shown; the description only when typed."""
    rows = sorted({int(k.split("-")[1]) for k in form if k.startswith("line-") and k.split("-")[1].isdigit()})
    body: dict[str, Any] = {"lines": [
        {"description": form.get(f"line-{n}-description", "").strip(),
         "quantity": i18n.decimal_input(form.get(f"line-{n}-quantity", ""), lang),
         "unit": form.get(f"line-{n}-unit", ""),
         "unit_price": i18n.decimal_input(form.get(f"line-{n}-unit_price", ""), lang)} for n in rows]}
    if not body["lines"]:
        del body["lines"]
    if "project_name" in form:
        body["project_name"] = form["project_name"].strip() or None
    if form.get("description", "").strip():
        body["description"] = form["description"].strip()
    for key in ("invoice_date", "due_in_days"):
        if form.get(key, "").strip():
            body[key] = form[key].strip()
    return body


def register(app: FastAPI, web: Web) -> None:
    apis = web.apis

    def messages(request: Request) -> dict[str, Any]:
        return {"refused": request.query_params.get("refused"), "done": request.query_params.get("done")}

    # --- the review queue ---------------------------------------------------------------------------
    @app.get("/advisor/review")
    async def review(request: Request) -> Response:
        token = web.require(request, ADVISOR)
        queue = await apis.orders.get_json("/orders", token, status="smart_review", limit=200)
        return web.page(request, "advisor_review.html", orders=sorted(queue, key=lambda o: o["created_at"]),
                        **messages(request))

    @app.post("/advisor/orders/{order_id}/{decision}")
    async def decide(request: Request, order_id: str, decision: str) -> Response:
        token = web.require(request, ADVISOR)
        form = await web.check_csrf(request)
        oid = as_uuid(order_id)
        if decision == "approve":
            r = await apis.orders.change("POST", f"/orders/{oid}/approve", token)
        elif decision == "adjust":
            r = await apis.orders.change("POST", f"/orders/{oid}/adjust", token, json=order_texts_body(form))
        elif decision == "reject":
            r = await apis.orders.change("POST", f"/orders/{oid}/reject", token,
                                         json={"reason": form.get("reason", "").strip()})
        else:
            return web.page(request, "not_found.html", status_code=404)
        return _back("/advisor/review", r, lang=web.lang_of(request))

    # --- invoices: payments, issuing after adjustment -------------------------------------------------
    @app.get("/advisor/invoices")
    async def invoices(request: Request) -> Response:
        token = web.require(request, ADVISOR)
        found = await asyncio.gather(*(apis.invoicing.get_json("/invoices", token, status=s, limit=200)
                                       for s in ("waiting_for_adjustment", *OPEN_INVOICES)))
        return web.page(request, "advisor_invoices.html", waiting=found[0],
                        open_invoices=[i for group in found[1:] for i in group],
                        today=dt.datetime.now(i18n.ZONE).date().isoformat(), **messages(request))

    @app.post("/advisor/invoices/{invoice_id}/payments")
    async def record_payment(request: Request, invoice_id: str) -> Response:
        token = web.require(request, ADVISOR)
        form = await web.check_csrf(request)
        amount = i18n.decimal_input(form.get("amount", ""), web.lang_of(request))
        r = await apis.invoicing.change("POST", f"/invoices/{as_uuid(invoice_id)}/payments", token,
                                        json={"amount": amount,
                                              "received_on": form.get("received_on", "")})
        return _back("/advisor/invoices", r, lang=web.lang_of(request))

    @app.post("/advisor/invoices/{invoice_id}/issue")
    async def issue(request: Request, invoice_id: str) -> Response:
        token = web.require(request, ADVISOR)
        form = await web.check_csrf(request)
        iid = as_uuid(invoice_id)
        r = await apis.invoicing.change("POST", f"/invoices/{iid}/issue", token)
        # sent from the adjustment page: a refusal is shown there, at the invoice
        refused_at_form = form.get("from") == "adjust" and r.status_code >= 400
        return _back(f"/advisor/invoices/{iid}/adjust" if refused_at_form else "/advisor/invoices", r,
                     lang=web.lang_of(request))

    @app.get("/advisor/invoices/{invoice_id}/adjust")
    async def adjust_invoice_page(request: Request, invoice_id: str) -> Response:
        token = web.require(request, ADVISOR)
        invoice = await apis.invoicing.get_json(f"/invoices/{as_uuid(invoice_id)}", token)
        return web.page(request, "advisor_invoice_adjust.html", invoice=invoice, units=INVOICE_UNITS,
                        **messages(request))

    @app.post("/advisor/invoices/{invoice_id}/adjust")
    async def adjust_invoice(request: Request, invoice_id: str) -> Response:
        token = web.require(request, ADVISOR)
        form = await web.check_csrf(request)
        iid = as_uuid(invoice_id)
        r = await apis.invoicing.change("PATCH", f"/invoices/{iid}", token,
                                        json=invoice_adjust_body(form, web.lang_of(request)))
        return _back(f"/advisor/invoices/{iid}/adjust", r, lang=web.lang_of(request))

    # --- disputes and cancellations -------------------------------------------------------------------
    @app.get("/advisor/cases")
    async def cases(request: Request) -> Response:
        token = web.require(request, ADVISOR)
        disputed, invoiced, cancellations, requests = await asyncio.gather(
            apis.invoicing.get_json("/invoices", token, status="disputed", limit=200),
            apis.invoicing.get_json("/invoices", token, status="invoiced", limit=200),
            apis.invoicing.get_json("/invoices", token, kind="cancellation", limit=50),
            apis.orders.get_json("/orders", token, status="cancellation_requested", limit=200))
        return web.page(request, "advisor_cases.html", disputed=disputed, invoiced=invoiced,
                        cancellations=cancellations, requests=requests, **messages(request))

    @app.post("/advisor/invoices/{invoice_id}/{step}")
    async def invoice_case(request: Request, invoice_id: str, step: str) -> Response:
        token = web.require(request, ADVISOR)
        form = await web.check_csrf(request)
        iid = as_uuid(invoice_id)
        if step == "dispute":
            body: dict[str, Any] | None = {"objection": form.get("objection", "").strip()}
        elif step == "cancel":
            body = {"reason": form.get("reason", "").strip()}
        elif step == "resolve-dispute":
            body = None
        else:
            return web.page(request, "not_found.html", status_code=404)
        r = await apis.invoicing.change("POST", f"/invoices/{iid}/{step}", token, json=body)
        return _back("/advisor/cases", r, lang=web.lang_of(request))

    @app.post("/advisor/cancellation-requests/{order_id}")
    async def decide_cancellation(request: Request, order_id: str) -> Response:
        token = web.require(request, ADVISOR)
        form = await web.check_csrf(request)
        chosen = [str(as_uuid(str(v))) for v in (await request.form()).getlist("cancel_invoice")]
        r = await apis.orders.change("POST", f"/orders/{as_uuid(order_id)}/cancellation-decision", token, json={
            "approve": form.get("decision") == "approve", "reason": form.get("reason", "").strip(),
            "cancel_invoice_ids": chosen})
        return _back("/advisor/cases", r, lang=web.lang_of(request))

    # --- clients: standing and receivables -----------------------------------------------------------
    @app.get("/advisor/clients")
    async def clients(request: Request, q: str = "") -> Response:
        token = web.require(request, ADVISOR)
        q = q.strip()[:200]
        found = await apis.clients.get_json("/clients", token, q=q, limit=50) if len(q) >= 3 else []
        return web.page(request, "advisor_clients.html", q=q, clients=found)

    @app.get("/advisor/clients/{client_id}")
    async def client_detail(request: Request, client_id: str) -> Response:
        token = web.require(request, ADVISOR)
        cid = as_uuid(client_id)
        client, position = await asyncio.gather(apis.clients.get_json(f"/clients/{cid}", token),
                                                apis.clients.get_json(f"/clients/{cid}/receivables", token))
        return web.page(request, "advisor_client.html", client=client, position=position)

    # --- billing runs ---------------------------------------------------------------------------------
    @app.get("/advisor/billing-runs")
    async def runs(request: Request) -> Response:
        token = web.require(request, ADVISOR)
        found = await apis.invoicing.get_json("/billing-runs", token, limit=20)
        return web.page(request, "advisor_runs.html", runs=found, **messages(request))

    @app.post("/advisor/billing-runs")
    async def start_run(request: Request) -> Response:
        token = web.require(request, ADVISOR)
        form = await web.check_csrf(request)
        as_of = form.get("as_of", "").strip()
        r = await apis.invoicing.change("POST", "/billing-runs", token, json={"as_of": as_of} if as_of else {})
        if r.status_code >= 400:
            return _back("/advisor/billing-runs", r)
        return RedirectResponse(f"/advisor/billing-runs/{r.json()['run_id']}", status_code=303)

    @app.get("/advisor/billing-runs/{run_id}")
    async def run_detail(request: Request, run_id: str) -> Response:
        token = web.require(request, ADVISOR)
        run = await apis.invoicing.get_json(f"/billing-runs/{as_uuid(run_id)}", token)
        return web.page(request, "advisor_run.html", run=run, refresh=run["status"] not in RUN_DONE)

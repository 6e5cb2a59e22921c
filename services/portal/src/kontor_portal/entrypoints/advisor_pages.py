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
        "adv_overdue": "Überfällig", "adv_open_invoices": "Offene Rechnungen", "adv_since": "Seit"},
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
        "adv_overdue": "Overdue", "adv_open_invoices": "Open invoices", "adv_since": "Since"})


def refusal(r: httpx.Response) -> str:
    """The reason of a 409, or the first field and message of a 422, as one line for the page."""
    try:
        detail: Any = r.json().get("detail")
    except (json.JSONDecodeError, AttributeError):
        return r.text[:300]
    if isinstance(detail, list) and detail:
        first = detail[0]
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return f"{field}: {first.get('msg', '')}" if field else str(first.get("msg", ""))
    return str(detail)[:300]


def _back(target: str, r: httpx.Response | None, anchor: str = "") -> Response:
    """Back to the page of the form: with the refusal shown there, or that it was done."""
    query = {"refused": refusal(r)} if r is not None and r.status_code >= 400 else {"done": "1"}
    return RedirectResponse(f"{target}?{urlencode(query)}{anchor}", status_code=303)


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
        elif decision == "reject":
            r = await apis.orders.change("POST", f"/orders/{oid}/reject", token,
                                         json={"reason": form.get("reason", "").strip()})
        else:
            return web.page(request, "not_found.html", status_code=404)
        return _back("/advisor/review", r)

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
        return _back("/advisor/invoices", r)

    @app.post("/advisor/invoices/{invoice_id}/issue")
    async def issue(request: Request, invoice_id: str) -> Response:
        token = web.require(request, ADVISOR)
        await web.check_csrf(request)
        r = await apis.invoicing.change("POST", f"/invoices/{as_uuid(invoice_id)}/issue", token)
        return _back("/advisor/invoices", r)

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

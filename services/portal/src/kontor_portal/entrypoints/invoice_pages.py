"""The member's invoices: the list by status with the reminders sent, the PDF shown inline in the
invoice's detail (a passthrough the portal's own pages may frame), and a draft's two actions:
request a change (a message to the cooperative) and "save and send" (issue it now). The invoicing
API decides what is allowed; its 409/422 answers are shown at the form."""
from __future__ import annotations

from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from kontor_portal import i18n
from kontor_portal.entrypoints.advisor_pages import refusal
from kontor_portal.entrypoints.member_pages import INVOICE_STATUSES
from kontor_portal.entrypoints.web import Web, as_uuid

i18n.add_texts(
    de={"inv_reminders": "Mahnungen", "inv_request_change": "Änderung anfragen",
        "inv_change_message": "Was soll geändert werden?", "inv_send": "Speichern und senden",
        "inv_send_note": "Der Entwurf wird jetzt nummeriert und an den Kunden versandt.",
        "inv_document": "Rechnung (PDF)", "inv_no_pdf": "Ihr Browser zeigt das PDF hier nicht an.",
        "inv_change_requested": "Angefragte Änderung", "inv_open": "Offen"},
    en={"inv_reminders": "Reminders", "inv_request_change": "Request a change",
        "inv_change_message": "What should be changed?", "inv_send": "Save and send",
        "inv_send_note": "The draft is numbered now and sent to the client.",
        "inv_document": "Invoice (PDF)", "inv_no_pdf": "Your browser does not show the PDF here.",
        "inv_change_requested": "Change requested", "inv_open": "Open"})


def register(app: FastAPI, web: Web) -> None:
    apis = web.apis

    @app.get("/invoices")
    async def invoices_list(request: Request, status: str | None = None) -> Response:
        token = web.token_of(request)
        chosen = status if status in INVOICE_STATUSES else None
        found = await apis.invoicing.get_json("/invoices", token, limit=500, **({"status": chosen} if chosen else {}))
        found.sort(key=lambda i: str(i.get("invoice_date") or ""), reverse=True)
        return web.page(request, "invoices.html", statuses=INVOICE_STATUSES, chosen=chosen, invoices=found)

    @app.get("/invoices/{invoice_id}/pdf/inline")
    async def pdf_inline(request: Request, invoice_id: str) -> Response:
        """The PDF to show within the invoice's page: framed by the portal's own pages only."""
        token = web.token_of(request)
        upstream = await apis.invoicing.get_raw(f"/invoices/{as_uuid(invoice_id)}/pdf", token)
        return Response(upstream.content, media_type="application/pdf", headers={
            "Content-Disposition": "inline", "X-Frame-Options": "SAMEORIGIN",
            "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'"})

    @app.post("/invoices/{invoice_id}/change-request")
    async def change_request(request: Request, invoice_id: str) -> Response:
        token = web.token_of(request)
        form = await web.check_csrf(request)
        iid = as_uuid(invoice_id)
        r = await apis.invoicing.change("POST", f"/invoices/{iid}/change-request", token,
                                        json={"message": form.get("message", "").strip()})
        return _back(str(iid), refusal(r) if r.status_code >= 400 else None)

    @app.post("/invoices/{invoice_id}/send")
    async def save_and_send(request: Request, invoice_id: str) -> Response:
        token = web.token_of(request)
        await web.check_csrf(request)
        iid = as_uuid(invoice_id)
        r = await apis.invoicing.change("POST", f"/invoices/{iid}/issue", token)
        return _back(str(iid), refusal(r) if r.status_code >= 400 else None)


def _back(invoice_id: str, refused: str | None) -> Response:
    query = "?" + urlencode({"refused": refused}) if refused else "?done=1"
    return RedirectResponse(f"/invoices/{invoice_id}{query}", status_code=303)

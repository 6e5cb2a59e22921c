"""The client's confirmation page: `GET /confirm/{token}` shows the order as the client
will be invoiced, `POST /confirm/{token}` takes the answer (a browser form). German or
English by the client's language. Unknown, used, expired or closed links get a clear page
with a fitting status code, never an error trace. Every value is escaped (Jinja2 autoescape),
and every page is sent with a strict Content-Security-Policy (`kontor.html`): no script, no
frame, forms only to this origin, not cached, no referrer (the link is the client's secret)."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from kontor.api import Ctx, ServiceContext, file_response
from kontor.html import html_page
from kontor.money import format_money, format_number, format_percent
from kontor_orders.adapters import repository
from kontor_orders.domain import model
from kontor_orders.domain.catalogue import SECTORS
from kontor_orders.service_layer import services
from kontor_orders.settings import OrdersSettings

TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).resolve().parents[1] / "templates"),
                        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
                        trim_blocks=True, lstrip_blocks=True)
TEMPLATES.globals["format_money"] = format_money
TEMPLATES.globals["format_percent"] = format_percent
TEMPLATES.globals["format_number"] = format_number

TEXT: dict[str, dict[str, Any]] = {
    "de": {
        "title": "Auftragsbestätigung", "intro": "Bitte prüfen Sie den folgenden Auftrag. So wird er Ihnen in "
        "Rechnung gestellt.", "project": "Projekt", "description": "Beschreibung",
        "agreement": "Besondere Vereinbarung",
        "period": "Leistungszeitraum", "item": "Position", "quantity": "Menge", "unit_price": "Einzelpreis",
        "amount": "Betrag", "net": "Netto", "vat": "USt.", "gross": "Gesamt", "payment": "Zahlung",
        "due": "Zahlbar innerhalb von {days} Tagen nach Rechnungsdatum", "schedule": "Geplante Rechnungen",
        "documents": "Dokumente", "valid_until": "Angebot gültig bis", "message": "Nachricht (bei Ablehnung oder "
        "Änderungswunsch erforderlich)", "confirm": "Auftrag bestätigen", "reject": "Ablehnen",
        "request_changes": "Änderungen anfragen", "not_an_invoice": "Dies ist keine Rechnung.",
        "unknown": "Dieser Link ist ungültig.", "used": "Dieser Link wurde bereits verwendet.",
        "expired": "Dieser Link ist abgelaufen: das Angebot war bis zum {date} gültig.",
        "closed": "Dieser Auftrag wartet nicht mehr auf Ihre Bestätigung.",
        "done_confirm": "Vielen Dank! Der Auftrag ist bestätigt.", "done_reject": "Der Auftrag wurde abgelehnt.",
        "done_request_changes": "Ihr Änderungswunsch wurde übermittelt.", "need_message": "Bitte geben Sie eine "
        "Nachricht an.", "units": {"day": "Tag(e)", "hour": "Std.", "lump_sum": "pauschal", "week": "Woche(n)",
                                   "month": "Monat(e)", "other": ""},
        "kinds": {"optional": "optional, nicht im Auftragswert", "alternative": "Alternative, nicht im Auftragswert"},
        "modes": {"after_completion": "Nach Abschluss", "installments": "In Raten", "recurring": "Wiederkehrend",
                  "advance": "Vorkasse"}, "sector": "Tätigkeit",
    },
    "en": {
        "title": "Order confirmation", "intro": "Please review the following order. This is how it will be invoiced.",
        "project": "Project", "description": "Description", "agreement": "Special agreement",
        "period": "Service period", "item": "Item", "quantity": "Quantity", "unit_price": "Unit price",
        "amount": "Amount", "net": "Net", "vat": "VAT", "gross": "Total", "payment": "Payment",
        "due": "Payable within {days} days of the invoice date", "schedule": "Planned invoices",
        "documents": "Documents", "valid_until": "Offer valid until", "message": "Message (required to reject or to "
        "request changes)", "confirm": "Confirm the order", "reject": "Reject", "request_changes": "Request changes",
        "not_an_invoice": "This is not an invoice.", "unknown": "This link is not valid.",
        "used": "This link has already been used.",
        "expired": "This link has expired: the offer was valid until {date}.",
        "closed": "This order no longer awaits your confirmation.",
        "done_confirm": "Thank you! The order is confirmed.",
        "done_reject": "The order was rejected.", "done_request_changes": "Your request for changes was sent.",
        "need_message": "Please write a message.", "units": {"day": "day(s)", "hour": "hour(s)", "lump_sum": "lump sum",
                                                             "week": "week(s)", "month": "month(s)", "other": ""},
        "kinds": {"optional": "optional, not in the order's value",
                  "alternative": "alternative, not in the order's value"},
        "modes": {"after_completion": "After completion", "installments": "Installments", "recurring": "Recurring",
                  "advance": "Advance payment"}, "sector": "Activity",
    },
}
STATUS = {"unknown": 404, "used": 410, "expired": 410, "closed": 409}

router = APIRouter(prefix="/confirm", tags=["client confirmation"])


def _deps(ctx: ServiceContext) -> services.Deps:
    if not isinstance(ctx.settings, OrdersSettings):
        raise TypeError("the orders API runs with OrdersSettings")
    return services.Deps(ctx.outbox, ctx.clock, ctx.settings)


def _order_of(link: services.LinkState) -> model.Order:
    if link.order is None:  # only an unknown link has no order
        raise ValueError(f"a {link.state} link without its order")
    return link.order


def _language_of(link: services.LinkState) -> str:
    return link.order.client.language if link.order else "de"


def _page(name: str, language: str, status_code: int = 200, **context) -> HTMLResponse:
    language = language if language in TEXT else "de"
    html = TEMPLATES.get_template(name).render(t=TEXT[language], lang=language, **context)
    return html_page(html, status_code=status_code, forms=name == "confirm.html")


def _notice(link: services.LinkState, language: str) -> HTMLResponse:
    t = TEXT[language if language in TEXT else "de"]
    valid = link.order.confirmation.offer_valid_until.strftime("%d.%m.%Y") if link.order and link.order.confirmation \
        and link.order.confirmation.offer_valid_until else ""
    return _page("notice.html", language, STATUS[link.state], message=t[link.state].format(date=valid))


async def _order_page(ctx, session, token: str, link: services.LinkState, *, error: str | None = None,
                      message: str = "") -> HTMLResponse:
    order = _order_of(link)
    language = order.client.language
    documents = await repository.attachments_of(session, order.id)
    sector = SECTORS.get(order.sector) if order.sector else None
    return _page("confirm.html", language, 422 if error else 200, order=order, token=token, vat=order.vat,
                 documents=documents, sector=sector.name(language) if sector else None, error=error, message=message)


@router.get("/{token}", response_class=HTMLResponse, summary="The confirmation page for the client")
async def confirmation_page(token: str, ctx: Ctx) -> HTMLResponse:
    deps = _deps(ctx)
    async with ctx.session_factory() as session:
        link = await services.open_link(session, deps, token)
        if link.state != "open":
            return _notice(link, _language_of(link))
        return await _order_page(ctx, session, token, link)


@router.post("/{token}", response_class=HTMLResponse, summary="The client's answer (form post)")
async def answer(token: str, ctx: Ctx, action: Annotated[str, Form()],
                 message: Annotated[str, Form(max_length=5000)] = "") -> HTMLResponse:
    deps = _deps(ctx)
    async with ctx.session_factory() as session:
        link = await services.open_link(session, deps, token)
    if link.state != "open":
        return _notice(link, _language_of(link))
    language = _order_of(link).client.language
    if action not in ("confirm", "reject", "request_changes"):
        async with ctx.session_factory() as session:
            return await _order_page(ctx, session, token, link, error="?", message=message)
    if action != "confirm" and not message.strip():
        async with ctx.session_factory() as session:
            return await _order_page(ctx, session, token, link, error=TEXT[language]["need_message"], message=message)
    async with ctx.begin() as session:
        result = await services.answer_link(session, deps, token, action, message.strip() or None)
    if result.state != "answered":
        return _notice(result, language)
    return _page("notice.html", language, 200, message=TEXT[language][f"done_{action}"])


@router.get("/{token}/documents/{attachment_id}", summary="A document of the order, for the client")
async def document(token: str, attachment_id: uuid.UUID, ctx: Ctx) -> Response:
    deps = _deps(ctx)
    async with ctx.session_factory() as session:
        link = await services.open_link(session, deps, token)
        if link.state != "open":
            return _notice(link, _language_of(link))
        row = await repository.get_attachment(session, _order_of(link).id, attachment_id)
    return file_response(row.content, media_type=row.media_type, filename=row.filename, sha256=row.sha256)

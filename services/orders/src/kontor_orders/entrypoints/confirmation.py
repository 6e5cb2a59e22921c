"""The client's confirmation page: `GET /confirm/{token}` shows the order as the client
will be invoiced, `POST /confirm/{token}` takes the answer (a browser form: confirm, request
changes with a message, reject with a reason). It names the sender, the cooperative with its
contact and imprint (`seller`, the same `kontor.cooperative` model the invoices print), and
looks like the portal (`kontor.html.design_css`). German or English by the client's language,
the other one a link away (`?lang=`). Unknown, used, expired or closed links get a clear page
with a fitting status code, never an error trace. Every value is escaped (Jinja2 autoescape),
and every page is sent with a strict Content-Security-Policy (`kontor.html`): no script, no
frame, forms only to this origin, not cached, no referrer (the link is the client's secret)."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from kontor.api import Ctx, ServiceContext, file_response
from kontor.cooperative import imprint
from kontor.html import design_css, html_page
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
TEMPLATES.globals["design_css"] = design_css
LANGUAGES = (("de", "Deutsch"), ("en", "English"))

TEXT: dict[str, dict[str, Any]] = {
    "de": {
        "title": "Auftragsbestätigung", "heading": "Bitte bestätigen Sie Ihren Auftrag",
        "asks": "{seller} bittet {client} um Bestätigung des Auftrags „{project}“.",
        "attention": "z. Hd. {name}",
        "intro": "Bitte prüfen Sie den folgenden Auftrag. So wird er Ihnen in "
        "Rechnung gestellt.", "project": "Projekt", "order": "Auftrag", "sender": "Absender",
        "contact": "Ansprechpartner", "phone": "Telefon", "email": "E-Mail", "lines": "Positionen",
        "date": "Datum", "share": "Anteil", "answer": "Ihre Antwort", "language": "Sprache",
        "confirm_hint": "Mit der Bestätigung nehmen Sie das Angebot verbindlich an.",
        "changes_label": "Welche Änderungen wünschen Sie?", "reject_label": "Warum lehnen Sie den Auftrag ab?",
        "imprint": "Impressum", "skip": "Zum Inhalt springen", "rest": "Rest",
        "pick_answer": "Bitte wählen Sie eine Antwort: bestätigen, Änderungen anfragen oder ablehnen.",
        "description": "Beschreibung",
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
        "title": "Order confirmation", "heading": "Please confirm your order",
        "asks": "{seller} asks {client} to confirm the order “{project}”.", "attention": "attn. {name}",
        "intro": "Please review the following order. This is how it will be invoiced.",
        "project": "Project", "order": "Order", "sender": "Sender", "contact": "Contact", "phone": "Phone",
        "email": "E-mail", "lines": "Line items", "date": "Date", "share": "Share", "answer": "Your answer",
        "language": "Language", "confirm_hint": "By confirming you accept the offer as binding.",
        "changes_label": "Which changes would you like?", "reject_label": "Why do you reject the order?",
        "imprint": "Imprint", "skip": "Skip to content", "rest": "remainder",
        "pick_answer": "Please choose an answer: confirm, request changes or reject.",
        "description": "Description", "agreement": "Special agreement",
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


def _language_of(link: services.LinkState, chosen: str | None = None) -> str:
    """The language the client chose on the page (`?lang=`), else the client's own (German if neither is one the
    page speaks)."""
    if chosen in TEXT:
        return chosen
    language = link.order.client.language if link.order else "de"
    return language if language in TEXT else "de"


def _page(ctx: ServiceContext, name: str, language: str, status_code: int = 200, **context) -> HTMLResponse:
    language = language if language in TEXT else "de"
    seller = _deps(ctx).settings.seller
    html = TEMPLATES.get_template(name).render(t=TEXT[language], lang=language, seller=seller,
                                               imprint=imprint(seller, language), **context)
    return html_page(html, status_code=status_code, forms=name == "confirm.html")


def _notice(ctx: ServiceContext, link: services.LinkState, language: str) -> HTMLResponse:
    t = TEXT[language if language in TEXT else "de"]
    valid = link.order.confirmation.offer_valid_until.strftime("%d.%m.%Y") if link.order and link.order.confirmation \
        and link.order.confirmation.offer_valid_until else ""
    return _page(ctx, "notice.html", language, STATUS[link.state], message=t[link.state].format(date=valid))


async def _order_page(ctx: ServiceContext, session, token: str, link: services.LinkState, language: str, *,
                      chosen: bool, error: str | None = None, error_action: str | None = None,
                      message: str = "") -> HTMLResponse:
    order = _order_of(link)
    documents = await repository.attachments_of(session, order.id)
    sector = SECTORS.get(order.sector) if order.sector else None
    return _page(ctx, "confirm.html", language, 422 if error else 200, order=order, token=token, vat=order.vat,
                 plan=order.installment_plan(), documents=documents, sector=sector.name(language) if sector else None,
                 error=error, error_action=error_action, message=message, languages=LANGUAGES, lang_chosen=chosen)


Lang = Annotated[str | None, Query(max_length=8, description="de or en: the page's language, instead of the "
                                                            "client's")]


@router.get("/{token}", response_class=HTMLResponse, summary="The confirmation page for the client")
async def confirmation_page(token: str, ctx: Ctx, lang: Lang = None) -> HTMLResponse:
    deps = _deps(ctx)
    async with ctx.read() as session:
        link = await services.open_link(session, deps, token)
        language = _language_of(link, lang)
        if link.state != "open":
            return _notice(ctx, link, language)
        return await _order_page(ctx, session, token, link, language, chosen=lang in TEXT)


@router.post("/{token}", response_class=HTMLResponse, summary="The client's answer (form post)")
async def answer(token: str, ctx: Ctx, action: Annotated[str, Form()],
                 message: Annotated[str, Form(max_length=5000)] = "", lang: Lang = None) -> HTMLResponse:
    deps = _deps(ctx)
    async with ctx.read() as session:
        link = await services.open_link(session, deps, token)
    language = _language_of(link, lang)
    if link.state != "open":
        return _notice(ctx, link, language)
    if action not in ("confirm", "reject", "request_changes"):
        async with ctx.read() as session:
            # the message kept (in the request for changes) so that the client need not type it again
            return await _order_page(ctx, session, token, link, language, chosen=lang in TEXT,
                                     error=TEXT[language]["pick_answer"], message=message)
    if action != "confirm" and not message.strip():
        async with ctx.read() as session:
            return await _order_page(ctx, session, token, link, language, chosen=lang in TEXT,
                                     error=TEXT[language]["need_message"], error_action=action, message=message)
    async with ctx.begin() as session:
        result = await services.answer_link(session, deps, token, action, message.strip() or None)
    if result.state != "answered":
        return _notice(ctx, result, language)
    return _page(ctx, "notice.html", language, 200, message=TEXT[language][f"done_{action}"])


@router.get("/{token}/documents/{attachment_id}", summary="A document of the order, for the client")
async def document(token: str, attachment_id: uuid.UUID, ctx: Ctx) -> Response:
    deps = _deps(ctx)
    async with ctx.read() as session:
        link = await services.open_link(session, deps, token)
        if link.state != "open":
            return _notice(ctx, link, _language_of(link))
        row = await repository.get_attachment(session, _order_of(link).id, attachment_id)
    return file_response(row.content, media_type=row.media_type, filename=row.filename, sha256=row.sha256)

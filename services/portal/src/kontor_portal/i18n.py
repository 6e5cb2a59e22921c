"""German and English texts of the portal, and the user's language: the `lang` cookie
(set by the language switch), else the browser's Accept-Language, else German."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

LANGUAGES = ("de", "en")
COOKIE = "kontor_lang"
ZONE = ZoneInfo("Europe/Berlin")  # times as the cooperative's members read them

TEXTS: dict[str, dict[str, str]] = {
    "de": {
        "skip": "Zum Inhalt springen", "dashboard": "Übersicht", "sign_in": "Anmelden", "sign_out": "Abmelden",
        "language": "Sprache", "switch": "Wechseln", "signed_in_as": "Angemeldet als",
        "sign_in_title": "Im Portal anmelden", "sign_in_oidc": "Mit Kontor-Konto anmelden",
        "dev_sign_in": "Entwicklungs-Anmeldung", "dev_note": "Nur in der Entwicklung: Anmeldung ohne Passwort.",
        "user_id": "Benutzer-ID", "display_name": "Anzeigename", "role": "Rolle",
        "role_member": "Mitglied", "role_advisor": "Berater*in", "role_system": "System", "role_client": "Kunde",
        "you": "Sie",
        "no_sign_in": "Die Anmeldung ist nicht eingerichtet.",
        "orders": "Aufträge", "invoices": "Rechnungen", "latest_orders": "Neueste Aufträge",
        "latest_invoices": "Neueste Rechnungen", "none_yet": "Noch keine.", "status": "Status", "count": "Anzahl",
        "client": "Kunde", "project": "Projekt", "net": "Netto", "gross": "Brutto", "created": "Angelegt",
        "number": "Nummer", "due": "Fällig", "amount_due": "Betrag", "order": "Auftrag", "lines": "Positionen",
        "history": "Verlauf", "description": "Beschreibung", "quantity": "Menge", "unit": "Einheit",
        "unit_price": "Einzelpreis", "amount": "Betrag", "when": "Wann", "who": "Wer", "action": "Aktion",
        "reason": "Grund", "service_period": "Leistungszeitraum", "contact_person": "Ansprechpartner*in",
        "back": "Zurück zur Übersicht", "not_found_title": "Nicht gefunden",
        "not_found": "Diese Seite gibt es nicht, oder sie gehört nicht zu Ihrem Konto.",
        "error_title": "Das hat nicht geklappt", "error": "Ein Dienst hat die Anfrage abgelehnt. Bitte später erneut.",
        "unavailable": "Ein Dienst ist gerade nicht erreichbar. Bitte in einem Moment erneut versuchen.",
        "csrf": "Das Formular war abgelaufen. Bitte erneut versuchen.", "all": "Alle",
        "draft": "Entwurf", "smart_review": "In Prüfung", "client_confirmation": "Kundenbestätigung",
        "active": "Aktiv", "cancellation_requested": "Stornierung beantragt", "cancelled": "Storniert",
        "completed": "Abgeschlossen", "rejected": "Abgelehnt", "waiting_for_adjustment": "Wartet auf Anpassung",
        "issuing": "Wird ausgestellt", "invoiced": "Gestellt", "disputed": "Beanstandet", "paid": "Bezahlt",
        "discarded": "Verworfen", "cancellation": "Stornorechnung",
    },
    "en": {
        "skip": "Skip to content", "dashboard": "Dashboard", "sign_in": "Sign in", "sign_out": "Sign out",
        "language": "Language", "switch": "Switch", "signed_in_as": "Signed in as",
        "sign_in_title": "Sign in to the portal", "sign_in_oidc": "Sign in with your Kontor account",
        "dev_sign_in": "Development sign-in", "dev_note": "Development only: sign in without a password.",
        "user_id": "User id", "display_name": "Display name", "role": "Role",
        "role_member": "Member", "role_advisor": "Advisor", "role_system": "System", "role_client": "Client",
        "you": "You",
        "no_sign_in": "Sign-in is not configured.",
        "orders": "Orders", "invoices": "Invoices", "latest_orders": "Latest orders",
        "latest_invoices": "Latest invoices", "none_yet": "None yet.", "status": "Status", "count": "Count",
        "client": "Client", "project": "Project", "net": "Net", "gross": "Gross", "created": "Created",
        "number": "Number", "due": "Due", "amount_due": "Amount", "order": "Order", "lines": "Line items",
        "history": "History", "description": "Description", "quantity": "Quantity", "unit": "Unit",
        "unit_price": "Unit price", "amount": "Amount", "when": "When", "who": "Who", "action": "Action",
        "reason": "Reason", "service_period": "Service period", "contact_person": "Contact person",
        "back": "Back to the dashboard", "not_found_title": "Not found",
        "not_found": "This page does not exist, or it does not belong to your account.",
        "error_title": "That did not work", "error": "A service refused the request. Please try again later.",
        "unavailable": "A service cannot be reached just now. Please try again in a moment.",
        "csrf": "The form had expired. Please try again.", "all": "All",
        "draft": "Draft", "smart_review": "In review", "client_confirmation": "Client confirmation",
        "active": "Active", "cancellation_requested": "Cancellation requested", "cancelled": "Cancelled",
        "completed": "Completed", "rejected": "Rejected", "waiting_for_adjustment": "Waiting for adjustment",
        "issuing": "Being issued", "invoiced": "Invoiced", "disputed": "Disputed", "paid": "Paid",
        "discarded": "Discarded", "cancellation": "Cancellation invoice",
    },
}


def add_texts(de: dict[str, str], en: dict[str, str]) -> None:
    """A page module's own texts, in both languages (the same keys, none taken already)."""
    if de.keys() != en.keys():
        raise ValueError(f"texts only in one language: {sorted(de.keys() ^ en.keys())}")
    taken = de.keys() & TEXTS["de"].keys()
    if taken:
        raise ValueError(f"texts defined twice: {sorted(taken)}")
    TEXTS["de"].update(de)
    TEXTS["en"].update(en)


def choose(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES:
            ranked.append((-q, i, primary))
    return sorted(ranked)[0][2] if ranked else "de"


def text(lang: str, key: str) -> str:
    """The text of `key`; an unknown key (a status the portal does not know yet) as it is."""
    return TEXTS.get(lang, TEXTS["de"]).get(key, key)


def money(value: object, currency: str | None, lang: str) -> str:
    """1234.5 EUR → „1.234,50 EUR“ (de) / “1,234.50 EUR” (en)."""
    if value is None or value == "":
        return "–"
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return str(value)
    s = f"{amount:,.2f}"
    if lang == "de":
        s = s.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return f"{s} {currency}" if currency else s


_DE_NUMBER = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$")
_EN_NUMBER = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")


def decimal_input(value: str, lang: str) -> str:
    """A number as the user typed it in their language, as the APIs read it: „1.234,50“ (de) and
    “1,234.50” (en) → "1234.50"; anything else unchanged, so the API names it at its field."""
    v = value.strip().replace("\u00a0", "").replace(" ", "")
    if lang == "de" and _DE_NUMBER.match(v):
        return v.replace(".", "").replace(",", ".")
    if lang == "en" and _EN_NUMBER.match(v):
        return v.replace(",", "")
    return value.strip()


# the APIs' 422 messages (pydantic's, by their type) as the user reads them; others as the API wrote them
_API_ERRORS: dict[str, dict[str, str]] = {
    "de": {"missing": "Bitte ausfüllen.", "decimal_parsing": "Bitte eine Zahl eingeben, z. B. 1.234,50.",
           "decimal_type": "Bitte eine Zahl eingeben, z. B. 1.234,50.", "float_parsing": "Bitte eine Zahl eingeben.",
           "int_parsing": "Bitte eine ganze Zahl eingeben.", "date_parsing": "Bitte ein Datum wählen.",
           "date_from_datetime_parsing": "Bitte ein Datum wählen.", "uuid_parsing": "Bitte aus der Liste wählen.",
           "string_too_long": "Zu lang.", "string_too_short": "Bitte ausfüllen.",
           "decimal_max_places": "Zu viele Nachkommastellen.", "greater_than": "Muss größer sein.",
           "greater_than_equal": "Zu klein.", "less_than_equal": "Zu groß.", "literal_error":
           "Bitte einen der angebotenen Werte wählen.", "enum": "Bitte einen der angebotenen Werte wählen.",
           "too_long": "Zu viele Einträge.", "too_short": "Bitte mindestens einen Eintrag angeben."},
    "en": {"missing": "Please fill this in.", "decimal_parsing": "Enter a number, e.g. 1,234.50.",
           "decimal_type": "Enter a number, e.g. 1,234.50.", "float_parsing": "Enter a number.",
           "int_parsing": "Enter a whole number.", "date_parsing": "Choose a date.",
           "date_from_datetime_parsing": "Choose a date.", "uuid_parsing": "Choose one from the list.",
           "string_too_long": "Too long.", "string_too_short": "Please fill this in.",
           "decimal_max_places": "Too many decimal places.", "greater_than": "Must be larger.",
           "greater_than_equal": "Too small.", "less_than_equal": "Too large.", "literal_error":
           "Choose one of the offered values.", "enum": "Choose one of the offered values.",
           "too_long": "Too many entries.", "too_short": "Give at least one entry."},
}


def api_error(lang: str, kind: str | None, message: str) -> str:
    """The text of one error of an API's 422 answer in the user's language."""
    return _API_ERRORS.get(lang, _API_ERRORS["de"]).get(kind or "", message)


def number(value: object, lang: str) -> str:
    """A quantity as people write it: 2 → „2“, 1.5 → „1,5“ (de)."""
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    s = format(d.normalize(), "f")  # 40 stays 40 (not 4E+1), 1.50 becomes 1.5
    return s.replace(".", ",") if lang == "de" else s


def date(value: object, lang: str) -> str:
    if not value:
        return "–"
    try:
        d = dt.datetime.fromisoformat(str(value)) if "T" in str(value) else dt.date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if isinstance(d, dt.datetime):
        d = d.astimezone(ZONE) if d.tzinfo else d
        return d.strftime("%d.%m.%Y %H:%M") if lang == "de" else d.strftime("%Y-%m-%d %H:%M")
    return d.strftime("%d.%m.%Y") if lang == "de" else d.isoformat()

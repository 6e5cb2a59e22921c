"""The client registry's domain: what a client record is and when it is valid. No I/O."""
from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from kontor.errors import Forbidden, InvalidInput
from kontor.inputs import EmailAddress
from kontor.subdivisions import normalise_subdivision, subdivision_error
from kontor_clients.domain.identifiers import (
    leitweg_id_error,
    normalise_vat_id,
    postal_code_error,
    search_key,
    vat_id_error,
)

ClientKind = Literal["company", "person", "public_body"]
StandingSource = Literal["initial", "advisor", "debt_rule"]
KINDS = ("company", "person", "public_body")
LANGUAGES = ("de", "en")
STANDINGS = ("ok", "advance_payment_only", "blocked")

# ISO 3166-1 alpha-2 codes (officially assigned).
COUNTRIES = frozenset([
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ", "BA", "BB",
    "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY",
    "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX",
    "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK",
    "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS",
    "GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR",
    "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA",
    "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE",
    "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM",
    "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG",
    "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF",
    "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY",
    "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW"
])

# E-mail addresses are checked (and normalised) by the one validator of every Kontor service.
_EMAIL = TypeAdapter(EmailAddress)

# The name's search key is indexed (btree rows hold at most 2704 bytes); folding spells ligatures
# and compatibility characters out ("\ufdfa" is 18 letters), so its length is bounded on its own.
MAX_NAME_KEY_BYTES = 1000

# Characters no printed name or address has, and that break what shows or carries them (XML 1.0
# of the X-Rechnung refuses control characters; bidi overrides disguise a name in e-mails and PDFs).
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class Address:
    street: str
    postal_code: str
    city: str
    country: str
    subdivision: str | None = None  # ISO 3166-2 code part ("TX"); required for US, CA, AU (kontor.subdivisions)


@dataclass(frozen=True)
class Standing:
    """Whether the cooperative takes orders for the client, why, and who decided it."""

    status: str = "ok"
    reason: str | None = None
    source: StandingSource = "initial"
    since: dt.datetime | None = None
    set_by: str | None = None  # the advisor's id; None for the debt rule


@dataclass(frozen=True)
class Client:
    id: uuid.UUID
    kind: str
    name: str
    address: Address
    vat_id: str | None
    leitweg_id: str | None
    invoice_email: str | None
    language: str
    zugferd: bool = False  # invoices as ZUGFeRD hybrid PDFs (PDF/A-3 with the X-Rechnung inside)
    standing: Standing = field(default_factory=Standing)
    version: int = 1
    created_by: str | None = None

    @property
    def name_key(self) -> str:
        return search_key(self.name)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    return value or None


def text_error(value: str | None) -> str | None:
    """Why a (cleaned) text cannot be a name, an address line or a reason, or None."""
    if not value:
        return None
    for c in value:
        if unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI_CONTROLS:
            return f"must not contain control characters (found U+{ord(c):04X})"
    return None


def email_error(value: str) -> str | None:
    try:
        _EMAIL.validate_python(value)
    except ValidationError as exc:
        return f"{value!r} is {exc.errors()[0]['msg'].removeprefix('Value error, ')}"
    return None


def normalise_email(value: str) -> str:
    """The address as the validator normalises it (domain in lower case), or unchanged if invalid
    (the validation then says why)."""
    try:
        return _EMAIL.validate_python(value)
    except ValidationError:
        return value


def validate_details(*, kind: str, name: str | None, address: Address, vat_id: str | None, leitweg_id: str | None,
                     invoice_email: str | None, language: str,
                     require_subdivision: bool = True) -> list[tuple[str, str]]:
    """Every problem of a client record, each with its field (dotted path). `require_subdivision`
    False keeps a record from before subdivisions valid without one while its address is unchanged."""
    errors: list[tuple[str, str]] = []
    if kind not in KINDS:
        errors.append(("kind", f"must be one of {', '.join(KINDS)}"))
    if not name:
        errors.append(("name", "is required"))
    elif problem := text_error(name):
        errors.append(("name", problem))
    elif not search_key(name):
        errors.append(("name", "must contain letters or digits"))
    elif len(search_key(name).encode()) > MAX_NAME_KEY_BYTES:
        errors.append(("name", "is too long once its ligatures and compatibility characters are spelled out"))
    for part in ("street", "postal_code", "city"):
        if not getattr(address, part):
            errors.append((f"address.{part}", "is required"))
        elif problem := text_error(getattr(address, part)):
            errors.append((f"address.{part}", problem))
    if address.country not in COUNTRIES:
        errors.append(("address.country", f"{address.country!r} is not an ISO 3166-1 alpha-2 country code"))
    else:
        if address.postal_code and (problem := postal_code_error(address.postal_code, address.country)):
            errors.append(("address.postal_code", problem))
        if (address.subdivision is not None or require_subdivision) \
                and (problem := subdivision_error(address.subdivision, address.country)):
            errors.append(("address.subdivision", problem))
    if invoice_email is not None and (problem := email_error(invoice_email)):
        errors.append(("invoice_email", problem))
    if language not in LANGUAGES:
        errors.append(("language", f"must be one of {', '.join(LANGUAGES)}"))
    if vat_id is not None:
        if kind == "person":
            errors.append(("vat_id", "a private person has no VAT id; register a business as a company"))
        elif problem := vat_id_error(vat_id, address.country):
            errors.append(("vat_id", problem))
    if leitweg_id is not None:
        if kind != "public_body":
            errors.append(("leitweg_id", "only public bodies have a Leitweg-ID"))
        elif problem := leitweg_id_error(leitweg_id):
            errors.append(("leitweg_id", problem))
    if kind == "public_body":
        # German public bodies must be invoiced electronically, routed by their Leitweg-ID
        # (XRechnung BT-10) to their electronic address (BT-49).
        if leitweg_id is None and address.country == "DE":
            errors.append(("leitweg_id", "is required for a German public body"))
        if invoice_email is None:
            errors.append(("invoice_email", "is required for a public body (it receives the e-invoices)"))
    return errors


def register(*, client_id: uuid.UUID, kind: str, name: str | None, address: Address, vat_id: str | None = None,
             leitweg_id: str | None = None, invoice_email: str | None = None, language: str = "de",
             zugferd: bool = False, created_by: str | None = None, now: dt.datetime,
             require_subdivision: bool = True) -> Client:
    country = (address.country or "").strip().upper()
    address = Address(street=_clean(address.street) or "", postal_code=(_clean(address.postal_code) or "").upper(),
                      city=_clean(address.city) or "", country=country,
                      subdivision=normalise_subdivision(address.subdivision, country))
    name, vat_id, leitweg_id = _clean(name), _clean(vat_id), _clean(leitweg_id)
    invoice_email = _clean(invoice_email)
    if vat_id:
        vat_id = normalise_vat_id(vat_id)
    if leitweg_id:
        leitweg_id = leitweg_id.upper()
    if invoice_email:
        invoice_email = normalise_email(invoice_email)
    errors = validate_details(kind=kind, name=name, address=address, vat_id=vat_id, leitweg_id=leitweg_id,
                              invoice_email=invoice_email, language=language, require_subdivision=require_subdivision)
    if errors:
        raise InvalidInput(errors)
    return Client(id=client_id, kind=kind, name=name or "", address=address, vat_id=vat_id, leitweg_id=leitweg_id,
                  invoice_email=invoice_email, language=language, zugferd=bool(zugferd), standing=Standing(since=now),
                  created_by=created_by)


UPDATABLE = ("kind", "name", "address", "vat_id", "leitweg_id", "invoice_email", "language", "zugferd")
# What a client is invoiced as and where its invoices go; language and the PDF flavour are not.
BILLING_FIELDS = ("kind", "name", "address", "vat_id", "leitweg_id", "invoice_email")
# Fields that can be removed (set to null); the others always have a value.
REMOVABLE = ("vat_id", "leitweg_id", "invoice_email")


def update(client: Client, changes: dict, *, now: dt.datetime) -> tuple[Client, tuple[str, ...]]:
    """Apply field changes; returns the new client (version + 1) and the fields that changed."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise InvalidInput([(f, "cannot be changed") for f in sorted(unknown)])
    nulls = [f for f in UPDATABLE if f in changes and changes[f] is None and f not in REMOVABLE]
    if nulls:
        raise InvalidInput([(f, "cannot be removed (null); leave it out to keep it") for f in nulls])
    merged = {f: getattr(client, f) for f in UPDATABLE} | changes
    # A client registered before addresses had subdivisions keeps its address until it is changed;
    # a new address (or one that has a subdivision) must have a valid one.
    legacy = "address" not in changes and client.address.subdivision is None
    candidate = register(client_id=client.id, now=now, created_by=client.created_by,
                         require_subdivision=not legacy, **merged)
    changed = tuple(f for f in UPDATABLE if getattr(candidate, f) != getattr(client, f))
    if not changed:
        return client, ()
    return replace(candidate, standing=client.standing, version=client.version + 1), changed


def audit_value(client: Client, field_name: str) -> Any:
    """A field's value as the change history records it (JSON)."""
    value = getattr(client, field_name)
    if isinstance(value, Address):  # without a subdivision it has none, as addresses before subdivisions
        return {k: v for k, v in vars(value).items() if k != "subdivision" or v is not None}
    return value


def differences(before: Client | None, after: Client, fields: Iterable[str]) -> dict[str, dict[str, Any]]:
    """What changed, field by field: {field: {"before": ..., "after": ...}}; before a registration, nothing."""
    return {f: {"before": audit_value(before, f) if before else None, "after": audit_value(after, f)}
            for f in fields}


# -- who may change a client ----------------------------------------------------------------

# Orders that will never be invoiced; an order in any other state (a draft sent back for changes
# included) relies on the client's billing data.
ORDERS_WITHOUT_EFFECT = ("rejected", "cancelled")


@dataclass(frozen=True)
class Ties:
    """Who relies on a client's billing data besides the member who changes it: the invoices
    already issued to it and the members with orders for it."""

    issued_invoices: int = 0
    members_with_orders: frozenset[str] = frozenset()


def authorize_change(changed: Iterable[str], ties: Ties, *, actor_id: str, is_advisor: bool) -> None:
    """Raise Forbidden, saying why, unless the actor may make these changes: a member changes the
    billing data of a client only while no invoice has been issued to it and no other member has
    an order for it (or the member's own invoices could go elsewhere, or another's); advisors may
    always. Language and the PDF flavour anyone may change."""
    billing = [f for f in changed if f in BILLING_FIELDS]
    if is_advisor or not billing:
        return
    reasons = []
    if ties.issued_invoices:
        reasons.append("invoices have already been issued to it")
    if ties.members_with_orders - {actor_id}:
        reasons.append("other members have orders for it")
    if reasons:
        raise Forbidden(f"only advisors change the billing data ({', '.join(billing)}) of this client: "
                        f"{' and '.join(reasons)}; ask an advisor to make the change")


def duplicate_reason(new: Client, existing: Client) -> str | None:
    """Why `existing` is the same client as `new`: the same VAT id, or the same name at
    the same postal code (in the same country)."""
    if new.vat_id and new.vat_id == existing.vat_id:
        return "vat_id"
    if (new.name_key, new.address.postal_code, new.address.country) == \
            (existing.name_key, existing.address.postal_code, existing.address.country):
        return "name_and_postal_code"
    return None


def set_standing(client: Client, *, status: str, reason: str | None, advisor_id: str,
                 now: dt.datetime) -> Client | None:
    """An advisor sets or lifts the standing; the reason is required either way.
    Returns the changed client, or None when the standing is already exactly that."""
    errors = []
    if status not in STANDINGS:
        errors.append(("status", f"must be one of {', '.join(STANDINGS)}"))
    reason = _clean(reason)
    if not reason or len(reason) < 3:
        errors.append(("reason", "is required (at least 3 characters): say why"))
    elif problem := text_error(reason):
        errors.append(("reason", problem))
    if errors:
        raise InvalidInput(errors)
    current = client.standing
    if (current.status, current.reason, current.source) == (status, reason, "advisor"):
        return None
    return replace(client, standing=Standing(status=status, reason=reason, source="advisor", since=now,
                                             set_by=advisor_id), version=client.version + 1)

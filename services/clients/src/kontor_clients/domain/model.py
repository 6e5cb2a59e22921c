"""The client registry's domain: what a client record is and when it is valid. No I/O."""
from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Literal

from kontor.errors import InvalidInput

ClientKind = Literal["company", "person", "public_body"]
KINDS = ("company", "person", "public_body")
LANGUAGES = ("de", "en")
STANDINGS = ("ok", "advance_payment_only", "blocked")

# ISO 3166-1 alpha-2 codes (officially assigned).
COUNTRIES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO
JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR
MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO
RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV
TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())

EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


@dataclass(frozen=True)
class Address:
    street: str
    postal_code: str
    city: str
    country: str


@dataclass(frozen=True)
class Standing:
    status: str = "ok"
    reason: str | None = None
    source: str = "initial"
    since: dt.datetime | None = None


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
    standing: Standing = field(default_factory=Standing)
    version: int = 1
    created_by: str | None = None


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    return value or None


def validate_details(*, kind: str, name: str | None, address: Address, leitweg_id: str | None, invoice_email: str | None, language: str) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    if kind not in KINDS:
        errors.append(("kind", f"must be one of {', '.join(KINDS)}"))
    if not name:
        errors.append(("name", "is required"))
    for part in ("street", "postal_code", "city"):
        if not getattr(address, part):
            errors.append((f"address.{part}", "is required"))
    if address.country not in COUNTRIES:
        errors.append(("address.country", f"{address.country!r} is not an ISO 3166-1 alpha-2 country code"))
    if invoice_email is not None and not EMAIL_RE.match(invoice_email):
        errors.append(("invoice_email", f"{invoice_email!r} is not a valid e-mail address"))
    if language not in LANGUAGES:
        errors.append(("language", f"must be one of {', '.join(LANGUAGES)}"))
    if leitweg_id is not None and kind != "public_body":
        errors.append(("leitweg_id", "only public bodies have a Leitweg-ID"))
    return errors


def register(*, client_id: uuid.UUID, kind: str, name: str | None, address: Address, vat_id: str | None = None,
             leitweg_id: str | None = None, invoice_email: str | None = None, language: str = "de",
             created_by: str | None = None, now: dt.datetime) -> Client:
    address = Address(street=_clean(address.street) or "", postal_code=_clean(address.postal_code) or "",
                      city=_clean(address.city) or "", country=(address.country or "").strip().upper())
    name, vat_id, leitweg_id = _clean(name), _clean(vat_id), _clean(leitweg_id)
    invoice_email = _clean(invoice_email)
    if vat_id:
        vat_id = vat_id.replace(" ", "").upper()
    errors = validate_details(kind=kind, name=name, address=address, leitweg_id=leitweg_id,
                              invoice_email=invoice_email, language=language)
    if errors:
        raise InvalidInput(errors)
    return Client(id=client_id, kind=kind, name=name or "", address=address, vat_id=vat_id, leitweg_id=leitweg_id,
                  invoice_email=invoice_email, language=language, standing=Standing(since=now),
                  created_by=created_by)


UPDATABLE = ("kind", "name", "address", "vat_id", "leitweg_id", "invoice_email", "language")


def update(client: Client, changes: dict, *, now: dt.datetime) -> tuple[Client, tuple[str, ...]]:
    """Apply field changes; returns the new client (version + 1) and the fields that changed."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise InvalidInput([(f, "cannot be changed") for f in sorted(unknown)])
    merged = {f: getattr(client, f) for f in UPDATABLE} | changes
    candidate = register(client_id=client.id, now=now, created_by=client.created_by, **merged)
    changed = tuple(f for f in UPDATABLE if getattr(candidate, f) != getattr(client, f))
    if not changed:
        return client, ()
    return replace(candidate, standing=client.standing, version=client.version + 1), changed

"""VAT determination (DESIGN.md §3): rate and EN 16931 category from sector, place of
service and client. Pure; the defaults follow the general rules of the UStG.

| place | client                                   | category | rate            |
|-------|------------------------------------------|----------|-----------------|
| DE    | any                                      | S        | 19, reduced 7   |
| DE    | any, sector exempt                       | E        | 0               |
| EU    | company / public body with an EU VAT id  | AE       | 0 reverse charge|
|       | outside DE                               |          |                 |
| EU    | person (or no foreign EU VAT id)         | as DE    |                 |
| OTHER | company / public body                    | O        | 0 not subject   |
| OTHER | person                                   | as DE    |                 |

"As DE" includes the sector's reduced rate or exemption: where German VAT applies, it
applies with its own rate.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kontor_orders.domain.catalogue import Sector

PLACES = ("DE", "EU", "OTHER")
EU_VAT_PREFIXES = frozenset(["AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU",
                             "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "XI"])


@dataclass(frozen=True)
class VatTreatment:
    category: str  # S | AE | E | O
    rate: Decimal
    note_en: str | None = None
    note_de: str | None = None

    def note(self, language: str) -> str | None:
        return self.note_de if language == "de" else self.note_en


STANDARD = VatTreatment("S", Decimal("19"))
REDUCED = VatTreatment("S", Decimal("7"))
EXEMPT = VatTreatment("E", Decimal("0"), "VAT exempt under § 4 No. 21 UStG (certified teaching)",
                      "Steuerfrei nach § 4 Nr. 21 UStG (bescheinigte Unterrichtsleistung)")
REVERSE_CHARGE = VatTreatment("AE", Decimal("0"), "Reverse charge: VAT is owed by the recipient of the service",
                              "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge)")
NOT_SUBJECT = VatTreatment("O", Decimal("0"), "Not subject to German VAT (service rendered abroad)",
                           "Nicht im Inland steuerbare Leistung")


def _german(sector: Sector) -> VatTreatment:
    return {"exempt": EXEMPT, "reduced": REDUCED}.get(sector.vat_rule, STANDARD)


def determine_vat(*, sector: Sector, place_of_service: str, client_kind: str,
                  client_vat_id: str | None) -> VatTreatment:
    if place_of_service not in PLACES:
        raise ValueError(f"unknown place of service {place_of_service!r}")
    business = client_kind in ("company", "public_body")
    if place_of_service == "EU" and business and client_vat_id \
            and client_vat_id[:2] in EU_VAT_PREFIXES and client_vat_id[:2] != "DE":
        return REVERSE_CHARGE
    if place_of_service == "OTHER" and business:
        return NOT_SUBJECT
    return _german(sector)

"""The cooperative itself: who sends the invoices (X-Rechnung seller, PDF letterhead) and asks
clients to confirm orders (the confirmation page). One model for every service that names it
(`seller` in the invoicing and orders settings), and one imprint: what § 25a GenG asks of a
cooperative's business letters (legal form, seat, register court and number, board, chair of the
supervisory board), with its tax numbers and how to reach and pay it, in German or English."""
from __future__ import annotations

from pydantic import BaseModel, Field


class Cooperative(BaseModel):
    """The cooperative as it appears on every invoice and every page it sends to a client."""

    name: str = "Kontor eG"
    street: str = "Genossenschaftsweg 1"
    postal_code: str = "10117"
    city: str = "Berlin"
    country: str = "DE"
    vat_id: str = "DE136695976"
    tax_number: str = "27/123/45678"
    iban: str = "DE02120300000000202051"
    bic: str = "BYLADEM1001"
    bank: str = "Deutsche Kreditbank"
    contact_name: str = "Mitgliederservice"
    phone: str = "+49 30 1234567"
    email: str = "rechnung@kontor.example"
    electronic_address: str = "rechnung@kontor.example"
    # what § 25a GenG asks of a cooperative's business letters (footer), and the same registration in the
    # X-Rechnung: BT-30 is the register number, BT-33 the rest
    legal_form: str = Field(default="eingetragene Genossenschaft", description="as the letter states it, German")
    legal_form_en: str = "registered cooperative"
    seat: str = Field(default="Berlin", description="Sitz der Genossenschaft")
    register_court: str = "Amtsgericht Berlin-Charlottenburg"
    register_number: str = Field(default="GnR 999 B", description="Genossenschaftsregister (BT-30)")
    board: tuple[str, ...] = Field(default=("Anna Beispiel", "Jonas Muster"), description="Vorstand, every member "
                                   "by name (JSON list in KONTOR_INVOICING_SELLER__BOARD, KONTOR_ORDERS_SELLER__BOARD)")
    supervisory_board_chair: str | None = Field(default="Petra Probe", description="Vorsitz des Aufsichtsrats")

    @property
    def registration(self) -> str:
        """The register entry as the letter and the X-Rechnung (BT-33) print it."""
        return f"{self.register_court}, {self.register_number}"


IMPRINT_LABELS = {
    "de": {"board": "Vorstand", "chair": "Aufsichtsratsvorsitz", "seat": "Sitz", "register": "Genossenschaftsregister",
           "vat_id": "USt-IdNr.", "tax_number": "St.-Nr.", "phone": "Tel."},
    "en": {"board": "Board", "chair": "Chair of supervisory board", "seat": "Registered office",
           "register": "Cooperative register", "vat_id": "VAT ID", "tax_number": "Tax no.", "phone": "Phone"},
}


def imprint(cooperative: Cooperative, language: str) -> tuple[list[str], list[str], list[str]]:
    """The imprint in `language` (English for any but German), as three groups of lines: who the
    cooperative is (legal form, seat, register), its board, chair and tax numbers, how to reach and pay it."""
    c = cooperative
    labels = IMPRINT_LABELS.get(language, IMPRINT_LABELS["en"])
    legal_form = c.legal_form if language == "de" else c.legal_form_en
    who = [f"{c.name}, {legal_form}", f"{c.street} · {c.postal_code} {c.city}",
           f"{labels['seat']} {c.seat}", c.register_court, f"{labels['register']} {c.register_number}"]
    people = [f"{labels['board']}: {', '.join(c.board)}"] if c.board else []
    if c.supervisory_board_chair:
        people.append(f"{labels['chair']}: {c.supervisory_board_chair}")
    people += [f"{labels['vat_id']} {c.vat_id}", f"{labels['tax_number']} {c.tax_number}"]
    reach = [f"{labels['phone']} {c.phone}", c.email, c.bank, f"IBAN {c.iban}", f"BIC {c.bic}"]
    return who, people, reach

"""Money: Decimal amounts rounded half up to the currency's minor unit (JPY has none). Never float."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units of the currencies the cooperative invoices in.
MINOR_UNITS: dict[str, int] = {
    "EUR": 2, "USD": 2, "CAD": 2, "PLN": 2, "GBP": 2, "CZK": 2, "CHF": 2, "AUD": 2, "DKK": 2, "JPY": 0, "SEK": 2,
}
CURRENCIES = tuple(MINOR_UNITS)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-MINOR_UNITS[currency])


def round_money(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def format_number(value: Decimal, language: str) -> str:
    """A quantity as people write it: 10, 2,5 (de), 2.5 (en); never 1E+1 (what Decimal.normalize gives)."""
    text = f"{value.normalize():f}"
    return text.replace(".", ",") if language == "de" else text


def format_percent(value: Decimal, language: str) -> str:
    """As people write a rate: 50 %, 33,5 % (de), 33.5 % (en)."""
    return f"{format_number(value, language)} %"


def format_money(amount: Decimal, currency: str, language: str) -> str:
    """As people read it: 1.280,00 EUR (de), 1,280.00 EUR (en); the amount keeps its scale."""
    text = f"{amount:,}"
    if language == "de":
        text = text.translate(str.maketrans(",.", ".,"))
    return f"{text} {currency}"

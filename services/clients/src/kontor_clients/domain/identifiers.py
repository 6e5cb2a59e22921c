"""Formats and check digits of the identifiers a client record holds, and the search key
of a name. Pure functions; each check returns an error message or None.

- VAT identification numbers of the EU member states (the VIES formats), with the
  German check digit (ISO 7064 MOD 11,10). Greece uses the prefix EL, Northern
  Ireland XI. Outside the EU a tax number is only checked for plausible characters.
- Leitweg-ID (German public bodies' routing id, "Formatspezifikation Leitweg-ID"):
  coarse address of 2 to 12 digits, an optional fine address of up to 30 letters and
  digits, and two check digits by ISO 7064 MOD 97-10 over the whole id.
- Postal codes for the countries whose format is fixed and common among clients.

Digits are ASCII digits (re.ASCII): otherwise a pattern would take any script's digits ("١٢٣٤٥"), which no
tax office or post office writes and no X-Rechnung validator accepts.
"""
from __future__ import annotations

import re
import unicodedata

# VAT prefix → (ISO 3166-1 country, pattern of the part after the prefix)
EU_VAT_FORMATS: dict[str, tuple[str, re.Pattern[str]]] = {
    prefix: (country, re.compile(pattern, re.ASCII))
    for prefix, country, pattern in [
        ("AT", "AT", r"U\d{8}"),
        ("BE", "BE", r"[01]\d{9}"),
        ("BG", "BG", r"\d{9,10}"),
        ("CY", "CY", r"\d{8}[A-Z]"),
        ("CZ", "CZ", r"\d{8,10}"),
        ("DE", "DE", r"\d{9}"),
        ("DK", "DK", r"\d{8}"),
        ("EE", "EE", r"\d{9}"),
        ("EL", "GR", r"\d{9}"),
        ("ES", "ES", r"[A-Z0-9]\d{7}[A-Z0-9]"),
        ("FI", "FI", r"\d{8}"),
        ("FR", "FR", r"[A-HJ-NP-Z0-9]{2}\d{9}"),
        ("HR", "HR", r"\d{11}"),
        ("HU", "HU", r"\d{8}"),
        ("IE", "IE", r"\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W]"),
        ("IT", "IT", r"\d{11}"),
        ("LT", "LT", r"\d{9}|\d{12}"),
        ("LU", "LU", r"\d{8}"),
        ("LV", "LV", r"\d{11}"),
        ("MT", "MT", r"\d{8}"),
        ("NL", "NL", r"\d{9}B\d{2}"),
        ("PL", "PL", r"\d{10}"),
        ("PT", "PT", r"\d{9}"),
        ("RO", "RO", r"[1-9]\d{1,9}"),
        ("SE", "SE", r"\d{10}01"),
        ("SI", "SI", r"\d{8}"),
        ("SK", "SK", r"\d{10}"),
        ("XI", "GB", r"\d{9}|\d{12}|GD\d{3}|HA\d{3}"),
    ]
}
EU_COUNTRIES = frozenset(country for country, _ in EU_VAT_FORMATS.values()) - {"GB"}
_VAT_PREFIX_OF = {"GR": "EL"}

_OTHER_TAX_ID = re.compile(r"[A-Z0-9][A-Z0-9 .\-/]{1,28}[A-Z0-9]", re.ASCII)


def normalise_vat_id(vat_id: str) -> str:
    """Upper case without the spaces, dots and hyphens people write into EU VAT ids."""
    compact = re.sub(r"[\s.\-]", "", vat_id).upper()
    if compact[:2] in EU_VAT_FORMATS:
        return compact
    return " ".join(vat_id.split()).upper()


def german_vat_check_digit_ok(digits: str) -> bool:
    """ISO 7064 MOD 11,10 over the first eight digits gives the ninth."""
    product = 10
    for d in digits[:8]:
        total = (int(d) + product) % 10 or 10
        product = (2 * total) % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(digits[8])


def vat_id_error(vat_id: str, country: str) -> str | None:
    """Why `vat_id` (normalised) is not a valid VAT id for a client in `country`, or None."""
    prefix, rest = vat_id[:2], vat_id[2:]
    if prefix in EU_VAT_FORMATS:
        _, pattern = EU_VAT_FORMATS[prefix]
        if not pattern.fullmatch(rest):
            return f"{vat_id!r} does not match the format of {prefix} VAT ids"
        if prefix == "DE" and not german_vat_check_digit_ok(rest):
            return f"{vat_id!r} has a wrong check digit"
        return None
    if country in EU_COUNTRIES:
        expected = _VAT_PREFIX_OF.get(country, country)
        return f"{vat_id!r}: an EU VAT id starts with its country prefix, e.g. {expected}"
    if not _OTHER_TAX_ID.fullmatch(vat_id):
        return f"{vat_id!r} is not a plausible tax id (letters, digits, spaces, . - /)"
    return None


_LEITWEG = re.compile(r"(?P<coarse>\d{2,12})(?:-(?P<fine>[A-Z0-9]{1,30}))?-(?P<check>\d{2})", re.ASCII)


def leitweg_check_ok(leitweg_id: str) -> bool:
    """ISO 7064 MOD 97-10: letters count as 10..35; the whole number mod 97 is 1."""
    digits = "".join(str(int(c, 36)) for c in leitweg_id.replace("-", ""))
    return int(digits) % 97 == 1


def leitweg_id_error(leitweg_id: str) -> str | None:
    if not _LEITWEG.fullmatch(leitweg_id):
        return (f"{leitweg_id!r} is not a Leitweg-ID: 2 to 12 digits, optionally '-' and up to 30 letters "
                "or digits, then '-' and 2 check digits (e.g. 04011000-1234512345-06)")
    if not leitweg_check_ok(leitweg_id):
        return f"{leitweg_id!r} has wrong check digits"
    return None


POSTAL_CODES: dict[str, tuple[re.Pattern[str], str]] = {
    country: (re.compile(pattern, re.ASCII), example)
    for country, pattern, example in [
        ("DE", r"\d{5}", "10115"),
        ("AT", r"\d{4}", "1010"),
        ("CH", r"\d{4}", "8001"),
        ("LI", r"\d{4}", "9490"),
        ("BE", r"\d{4}", "1000"),
        ("DK", r"\d{4}", "1050"),
        ("LU", r"(?:L-)?\d{4}", "1111"),
        ("NL", r"\d{4} ?[A-Z]{2}", "1011 AB"),
        ("FR", r"\d{5}", "75001"),
        ("IT", r"\d{5}", "00118"),
        ("ES", r"\d{5}", "28001"),
        ("PL", r"\d{2}-\d{3}", "00-001"),
        ("CZ", r"\d{3} ?\d{2}", "110 00"),
        ("SE", r"\d{3} ?\d{2}", "111 22"),
        ("US", r"\d{5}(?:-\d{4})?", "10001"),
        ("CA", r"[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d", "K1A 0B1"),
        ("AU", r"\d{4}", "2000"),
    ]
}


def postal_code_error(postal_code: str, country: str) -> str | None:
    rule = POSTAL_CODES.get(country)
    if rule and not rule[0].fullmatch(postal_code.upper()):
        return f"{postal_code!r} is not a postal code of {country} (e.g. {rule[1]})"
    return None


_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "ø": "o", "đ": "d", "ł": "l", "œ": "oe", "þ": "th", "ı": "i"})


def search_key(text: str) -> str:
    """Case- and accent-insensitive form of a name: 'Müller & Söhne' → 'muller & sohne'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.split())


def search_terms(name: str) -> list[str]:
    """What a name can be found by: the whole name and the rest of it from every word on,
    so that 'Werk' finds 'ACME Werkstatt GmbH' as well as 'ACME' does."""
    words = search_key(name).split(" ")
    return [" ".join(words[i:]) for i in range(len(words)) if words[i]]

"""Country subdivisions (states, provinces, territories) of addresses: ISO 3166-2, as the
clients service checks them and invoicing prints them and writes them into the X-Rechnung
(BT-54, CountrySubDivisionName). Pure data and functions.

An address holds the subdivision code without the country prefix, as the post writes it
("TX" for US-TX, "ON" for CA-ON, "NSW" for AU-NSW); "US-TX" and "tx" are taken as "TX".
Where a country's post needs the subdivision (the countries of `SUBDIVISIONS`) it is required
and must be one of the ISO 3166-2 codes listed here; elsewhere it is optional and only its form
(1 to 3 letters or digits, as ISO 3166-2 codes are) is checked. A country joins the list with
its whole ISO 3166-2 table.
"""
from __future__ import annotations

import re

SUBDIVISIONS: dict[str, dict[str, str]] = {
    # ISO 3166-2:US: the 50 states, the District of Columbia and the outlying areas.
    "US": {
        "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
        "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
        "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
        "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts",
        "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
        "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico",
        "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
        "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
        "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
        "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
        "DC": "District of Columbia",
        "AS": "American Samoa", "GU": "Guam", "MP": "Northern Mariana Islands", "PR": "Puerto Rico",
        "UM": "United States Minor Outlying Islands", "VI": "Virgin Islands, U.S.",
    },
    # ISO 3166-2:CA: 10 provinces and 3 territories.
    "CA": {
        "AB": "Alberta", "BC": "British Columbia", "MB": "Manitoba", "NB": "New Brunswick",
        "NL": "Newfoundland and Labrador", "NS": "Nova Scotia", "ON": "Ontario", "PE": "Prince Edward Island",
        "QC": "Quebec", "SK": "Saskatchewan", "NT": "Northwest Territories", "NU": "Nunavut", "YT": "Yukon",
    },
    # ISO 3166-2:AU: 6 states and 2 territories.
    "AU": {
        "NSW": "New South Wales", "QLD": "Queensland", "SA": "South Australia", "TAS": "Tasmania",
        "VIC": "Victoria", "WA": "Western Australia", "ACT": "Australian Capital Territory",
        "NT": "Northern Territory",
    },
}

_CODE = re.compile(r"[A-Z0-9]{1,3}", re.ASCII)


def normalise_subdivision(value: str | None, country: str) -> str | None:
    """The code part in upper case ("us-tx" → "TX" for US); None for nothing given."""
    if value is None:
        return None
    code = "".join(value.split()).upper()
    if code.startswith(f"{country.upper()}-"):
        code = code[len(country) + 1:]
    return code or None


def subdivision_error(code: str | None, country: str) -> str | None:
    """Why `code` (normalised) cannot be the subdivision of an address in `country`, or None."""
    table = SUBDIVISIONS.get(country)
    if code is None:
        if table:
            return (f"is required for an address in {country}: the ISO 3166-2 code of the state, province "
                    f"or territory (e.g. {next(iter(table))})")
        return None
    if table is not None:
        if code not in table:
            return f"{code!r} is not a subdivision of {country} (ISO 3166-2: {', '.join(sorted(table))})"
        return None
    if not _CODE.fullmatch(code):
        return f"{code!r} is not an ISO 3166-2 subdivision code (1 to 3 letters or digits, e.g. BY for DE-BY)"
    return None


def subdivision_name(code: str | None, country: str) -> str | None:
    """The subdivision's name where it is known ("Texas"), else its code; None for none."""
    if not code:
        return None
    return SUBDIVISIONS.get(country, {}).get(code, code)


def city_line(*, postal_code: str, city: str, country: str, subdivision: str | None = None) -> str:
    """The line of an address that names the place, as the country's post writes it: "Austin, TX 78701"
    (US), "Toronto ON M5V 3L9" (CA), "Sydney NSW 2000" (AU),
    otherwise "10115 Berlin" with a subdivision after the city."""
    if country == "US":
        return f"{city}, {subdivision} {postal_code}" if subdivision else f"{city} {postal_code}"
    if country in ("CA", "AU"):
        return f"{city} {subdivision} {postal_code}" if subdivision else f"{city} {postal_code}"
    return f"{postal_code} {city} {subdivision}" if subdivision else f"{postal_code} {city}"

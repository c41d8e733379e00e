"""Pure normalisation of what channels send: e-mail, phone (E.164), country, postal code, addresses.

No database access here; services decide what to do with the problems found.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import phonenumbers
import pycountry

# Postal code shapes for the markets we ship to most; other countries are accepted as sent, tidied.
_POSTAL_PATTERNS: dict[str, re.Pattern[str]] = {
    "US": re.compile(r"^\d{5}(-\d{4})?$"),
    "CA": re.compile(r"^[A-Z]\d[A-Z] \d[A-Z]\d$"),
    "GB": re.compile(r"^[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}$"),
    "DE": re.compile(r"^\d{5}$"),
    "FR": re.compile(r"^\d{5}$"),
    "IT": re.compile(r"^\d{5}$"),
    "ES": re.compile(r"^\d{5}$"),
    "NL": re.compile(r"^\d{4} [A-Z]{2}$"),
    "BE": re.compile(r"^\d{4}$"),
    "AT": re.compile(r"^\d{4}$"),
    "CH": re.compile(r"^\d{4}$"),
    "CZ": re.compile(r"^\d{3} \d{2}$"),
    "SK": re.compile(r"^\d{3} \d{2}$"),
    "PL": re.compile(r"^\d{2}-\d{3}$"),
    "HU": re.compile(r"^\d{4}$"),
    "RO": re.compile(r"^\d{6}$"),
    "SE": re.compile(r"^\d{3} \d{2}$"),
    "DK": re.compile(r"^\d{4}$"),
    "AU": re.compile(r"^\d{4}$"),
    "JP": re.compile(r"^\d{3}-\d{4}$"),
}
# Countries without postal codes: an empty one is fine there.
_NO_POSTAL_CODE = {"IE", "HK", "AE", "QA", "PA", "JM", "BS", "FJ"}


def normalize_email(value: str | None) -> str:
    """Lower-cased; "" when it cannot be an address (no @, or longer than RFC 5321's 254 characters)."""
    value = (value or "").strip().lower()
    return value if "@" in value and len(value) <= 254 else ""


def normalize_phone(value: str | None, country: str = "") -> str:
    """E.164 if the number parses and is possible; "" otherwise."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        parsed = phonenumbers.parse(value, (country or "US").upper())
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_possible_number(parsed):
        return ""
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_country(value: str | None) -> str:
    """ISO 3166-1 alpha-2 from an alpha-2, alpha-3 or English name; "" if unknown."""
    value = (value or "").strip()
    if not value:
        return ""
    if len(value) == 2:
        found = pycountry.countries.get(alpha_2=value.upper())
    elif len(value) == 3:
        found = pycountry.countries.get(alpha_3=value.upper())
    else:
        try:
            found = pycountry.countries.lookup(value)
        except LookupError:
            found = None
    return found.alpha_2 if found else ""


def normalize_postal_code(value: str | None, country: str) -> str:
    code = re.sub(r"\s+", " ", (value or "").strip().upper())
    compact = code.replace(" ", "")
    if country == "GB" and len(compact) >= 5:
        return f"{compact[:-3]} {compact[-3:]}"
    if country == "CA" and len(compact) == 6:
        return f"{compact[:3]} {compact[3:]}"
    if country == "NL" and len(compact) == 6:
        return f"{compact[:4]} {compact[4:]}"
    if country in {"CZ", "SK", "SE"} and len(compact) == 5 and compact.isdigit():
        return f"{compact[:3]} {compact[3:]}"
    if country == "PL" and len(compact) == 5 and compact.isdigit():
        return f"{compact[:2]}-{compact[2:]}"
    if country == "JP" and len(compact) == 7 and compact.isdigit():
        return f"{compact[:3]}-{compact[3:]}"
    if country == "US" and len(compact) == 9 and compact.isdigit():
        return f"{compact[:5]}-{compact[5:]}"
    return code


@dataclass
class NormalizedAddress:
    name: str = ""
    company: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""
    phone: str = ""
    problems: list[str] = field(default_factory=list)

    def fingerprint(self) -> str:
        parts = (
            self.name,
            self.company,
            self.line1,
            self.line2,
            self.city,
            self.region,
            self.postal_code,
            self.country,
            self.phone,
        )
        return hashlib.sha256("\x1f".join(p.casefold() for p in parts).encode()).hexdigest()


def normalize_address(
    *,
    name: str,
    company: str,
    line1: str,
    line2: str,
    city: str,
    region: str,
    postal_code: str,
    country_code: str,
    phone: str,
) -> NormalizedAddress:
    """Tidy an address and list what would stop a carrier from delivering to it."""
    tidy = lambda s: re.sub(r"\s+", " ", (s or "").strip())  # noqa: E731
    country = normalize_country(country_code)
    address = NormalizedAddress(
        name=tidy(name),
        company=tidy(company),
        line1=tidy(line1),
        line2=tidy(line2),
        city=tidy(city),
        region=tidy(region).upper() if len(tidy(region)) <= 3 else tidy(region),
        postal_code=normalize_postal_code(postal_code, country),
        country=country,
        phone=normalize_phone(phone, country),
    )
    if not country:
        address.problems.append(f"unknown country {country_code!r}" if country_code else "country missing")
    if not address.line1:
        address.problems.append("street address missing")
    if not address.city:
        address.problems.append("city missing")
    if not address.name and not address.company:
        address.problems.append("recipient name missing")
    if country and country not in _NO_POSTAL_CODE:
        pattern = _POSTAL_PATTERNS.get(country)
        if not address.postal_code:
            address.problems.append("postal code missing")
        elif pattern and not pattern.match(address.postal_code):
            address.problems.append(f"postal code {address.postal_code!r} is not valid for {country}")
    return address

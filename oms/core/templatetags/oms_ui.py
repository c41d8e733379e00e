"""Small presentation helpers for the staff screens: money in a currency's own minor units, state badges."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils.html import format_html

register = template.Library()

# ISO 4217 minor units where they are not 2.
_MINOR_UNITS = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
}


@register.filter
def money(value: Any, currency: str = "") -> str:
    """12345.5 with "EUR" → "12,345.50 EUR"; the amount alone when no currency is given."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return str(value)
    places = _MINOR_UNITS.get((currency or "").upper(), 2)
    quantum = Decimal(1).scaleb(-places)
    text = f"{amount.quantize(quantum, rounding=ROUND_HALF_UP):,.{places}f}"
    return f"{text} {currency}" if currency else text


@register.simple_tag
def badge(value: str, label: str = "", kind: str = "status") -> str:
    """A coloured pill for a state; the CSS class carries the value, so colours live in app.css."""
    return format_html('<span class="badge {}-{}">{}</span>', kind, value or "none", label or value or "—")

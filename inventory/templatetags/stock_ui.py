"""Presentation helpers of the stock screens: signed deltas and links from ledger references to their orders."""

from __future__ import annotations

import re
from typing import Any

from django import template

register = template.Library()

_ORDER_REFERENCE = re.compile(r"^order:(\d{1,18})$")


@register.filter
def order_pk(reference: Any) -> int | None:
    """ "order:123" → 123, so that a template can link the order; anything else → None."""
    match = _ORDER_REFERENCE.match(str(reference or ""))
    return int(match.group(1)) if match else None


@register.filter
def signed(value: Any) -> str:
    """3 → "+3"; -2 → "2" after a true minus sign (U+2212, it lines up in tabular figures); 0 → "0"."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return "" if value is None else str(value)
    if number > 0:
        return f"+{number}"
    if number < 0:
        return f"\u2212{-number}"
    return "0"

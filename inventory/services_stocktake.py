"""Posting a stock-take: every counted SKU of one location through inventory.services.stock_count, all or nothing.

The count in progress is kept by the screen (the user's session); only posting it writes, and only here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db import transaction

from inventory.models import Location, StockMovement, Variant
from inventory.services import StockError, stock_count
from oms.core.services import Actor


class StocktakeError(StockError):
    """One SKU of a stock-take could not be posted; nothing of the stock-take was."""

    def __init__(self, message: str, *, sku: str) -> None:
        super().__init__(message)
        self.sku = sku


@dataclass
class StocktakeResult:
    movements: list[StockMovement] = field(default_factory=list)  # one ledger row per SKU that differed
    matched: list[str] = field(default_factory=list)  # SKUs whose count equalled the books

    @property
    def counted(self) -> int:
        return len(self.movements) + len(self.matched)


@transaction.atomic
def stocktake_post(
    *, location: Location, counted: Mapping[int, int], actor: Actor, system: str = "system"
) -> StocktakeResult:
    """Post the counts (variant id -> units on the shelf) of one location as "count" ledger rows.

    SKUs are posted in primary-key order, so two stock-takes lock levels in the same order. The first SKU
    that cannot be posted raises StocktakeError naming it, and the whole stock-take is rolled back.
    """
    variants = Variant.objects.in_bulk(list(counted))
    missing = sorted(set(counted) - set(variants))
    if missing:
        raise StocktakeError(f"SKU #{missing[0]} is no longer in the catalog", sku=f"#{missing[0]}")
    result = StocktakeResult()
    for pk in sorted(counted):
        variant = variants[pk]
        try:
            movement = stock_count(
                variant=variant,
                location=location,
                counted=counted[pk],
                actor=actor,
                note=f"stock-take at {location.code}: counted {counted[pk]}",
                system=system,
            )
        except StockError as exc:
            raise StocktakeError(str(exc), sku=variant.sku) from exc
        if movement is None:
            result.matched.append(variant.sku)
        else:
            result.movements.append(movement)
    return result

"""Reads of stock: what is available, per variant and for bundles, and what each listing may show."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Protocol

from django.db.models import F, Sum

from inventory.models import BundleComponent, ChannelListing, Location, StockLevel, Variant


def kits_available(components: list[tuple[int, int]], free: Mapping[int, int | None]) -> int:
    """Whole kits of a bundle that the free units of its (component id, units per kit) parts make."""
    return min((free.get(c, 0) or 0) // q for c, q in components)


def available_for(variant_ids: Iterable[int]) -> dict[int, int]:
    """Free units (on hand minus allocated, over active locations) per variant; a bundle: whole kits."""
    ids = set(variant_ids)
    if not ids:
        return {}
    parts: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for bundle_id, component_id, quantity in (
        BundleComponent.objects.filter(bundle_id__in=ids)
        .order_by()
        .values_list("bundle_id", "component_id", "quantity")
    ):
        parts[bundle_id].append((component_id, quantity))
    stocked = ids | {c for components in parts.values() for c, _ in components}
    # Active locations by id rather than a join: one table, so MariaDB cannot pick a join order from statistics
    # that a large import in the same transaction has made stale (that plan scans a whole location's levels).
    active = list(Location.objects.filter(active=True).values_list("pk", flat=True))
    free = dict(
        StockLevel.objects.filter(variant_id__in=stocked, location_id__in=active)
        .order_by()
        .values("variant_id")
        .annotate(free=Sum(F("on_hand") - F("allocated")))
        .values_list("variant_id", "free")
    )
    result = {}
    for v in ids:
        if v in parts:
            result[v] = kits_available(parts[v], free)
        else:
            result[v] = free.get(v, 0) or 0
    return result


class ListingRules(Protocol):
    """What a listing's quantity depends on: a ChannelListing, or a light row of its values (thousands at once)."""

    @property
    def pk(self) -> int: ...
    @property
    def channel_id(self) -> int: ...
    @property
    def variant_id(self) -> int: ...
    @property
    def buffer(self) -> int: ...
    @property
    def percentage(self) -> int: ...
    @property
    def maximum(self) -> int | None: ...


def listing_quantity(listing: ListingRules, *, available: int, exclusive_elsewhere: bool) -> int:
    """What one listing may show: rules applied to the master's free units, never below 0."""
    if exclusive_elsewhere:
        return 0
    shown = available - listing.buffer
    shown = shown * listing.percentage // 100
    if listing.maximum is not None:
        shown = min(shown, listing.maximum)
    return max(shown, 0)


def listing_quantities(listings: Iterable[ListingRules]) -> dict[int, int]:
    """listing id -> quantity to show, for many listings at once (bundles computed from their components)."""
    listings = list(listings)
    variant_ids = {listing.variant_id for listing in listings}
    available = available_for(variant_ids)
    exclusive = defaultdict(set)
    for variant_id, channel_id in ChannelListing.objects.filter(variant_id__in=variant_ids, exclusive=True).values_list(
        "variant_id", "channel_id"
    ):
        exclusive[variant_id].add(channel_id)
    return {
        listing.pk: listing_quantity(
            listing,
            available=available.get(listing.variant_id, 0),
            exclusive_elsewhere=bool(exclusive[listing.variant_id] - {listing.channel_id}),
        )
        for listing in listings
    }


def variant_by_sku(sku: str) -> Variant | None:
    return Variant.objects.filter(sku=sku).select_related("product").first()

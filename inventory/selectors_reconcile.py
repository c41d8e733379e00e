"""Reads for reconciliation: what a whole channel's listings may show, and the channels' stock status (the last
reconciliation, open mismatches by kind, pending and failing pushes). Writes live in inventory.services_reconcile."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, F, Min, Sum

from inventory.models import (
    BundleComponent,
    ChannelListing,
    Location,
    MismatchKind,
    ReconcileRun,
    StockLevel,
    StockMismatch,
)
from inventory.selectors import ListingRules, kits_available, listing_quantity
from oms.core.models import SalesChannel


def channel_listing_quantities(listings: Sequence[ListingRules]) -> dict[int, int]:
    """selectors.listing_quantities for a whole channel's listings: the same rules (listing_quantity) on the same
    free units as selectors.available_for, but read for every variant in one pass over the levels instead of by
    id: for tens of thousands of listings that costs a fraction of the IN lists. (A test checks they agree.)"""
    active = list(Location.objects.filter(active=True).values_list("pk", flat=True))
    free: dict[int, int] = dict(
        StockLevel.objects.filter(location_id__in=active)
        .order_by()
        .values("variant_id")
        .annotate(free=Sum(F("on_hand") - F("allocated")))
        .values_list("variant_id", "free")
    )
    parts: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for bundle_id, component_id, quantity in BundleComponent.objects.order_by().values_list(
        "bundle_id", "component_id", "quantity"
    ):
        parts[bundle_id].append((component_id, quantity))
    exclusive: dict[int, set[int]] = defaultdict(set)
    for variant_id, channel_id in (
        ChannelListing.objects.filter(exclusive=True).order_by().values_list("variant_id", "channel_id")
    ):
        exclusive[variant_id].add(channel_id)

    def available(variant_id: int) -> int:
        if variant_id in parts:
            return kits_available(parts[variant_id], free)
        return free.get(variant_id, 0) or 0

    return {
        listing.pk: listing_quantity(
            listing,
            available=available(listing.variant_id),
            exclusive_elsewhere=bool(exclusive.get(listing.variant_id, set()) - {listing.channel_id}),
        )
        for listing in listings
    }


@dataclass(frozen=True, slots=True)
class KindCount:
    kind: str
    label: str
    count: int


@dataclass(slots=True)
class ChannelStockStatus:
    channel: SalesChannel
    last_run: ReconcileRun | None = None
    open_total: int = 0
    open_by_kind: list[KindCount] = field(default_factory=list)
    pending: int = 0
    oldest_pending: datetime | None = None
    failing: int = 0
    failing_listings: list[ChannelListing] = field(default_factory=list)  # the latest errors, worst first

    @property
    def running(self) -> bool:
        return self.last_run is not None and self.last_run.status == ReconcileRun.Status.RUNNING


def channel_stock_status(*, channel: SalesChannel, failing_shown: int = 10) -> ChannelStockStatus:
    """One channel's stock sync at a glance, in five small queries."""
    status = ChannelStockStatus(channel=channel)
    status.last_run = ReconcileRun.objects.filter(channel=channel).order_by("-started_at", "-id").first()
    labels = dict(MismatchKind.choices)
    counts = (
        StockMismatch.objects.filter(channel=channel, resolution=StockMismatch.Resolution.OPEN)
        .values("kind")
        .annotate(n=Count("id"))
        .order_by("kind")
    )
    status.open_by_kind = [KindCount(row["kind"], labels.get(row["kind"], row["kind"]), row["n"]) for row in counts]
    status.open_total = sum(k.count for k in status.open_by_kind)
    pending = ChannelListing.objects.filter(channel=channel, push_pending=True, paused=False).aggregate(
        n=Count("id"), oldest=Min("pending_since")
    )
    status.pending = pending["n"] or 0
    status.oldest_pending = pending["oldest"]
    failing = ChannelListing.objects.filter(channel=channel, push_failures__gt=0)
    status.failing = failing.count()
    if status.failing:
        status.failing_listings = list(
            failing.select_related("variant").order_by("-push_failures", "-updated_at", "pk")[:failing_shown]
        )
    return status

"""Reads for the channels' stock status: the last reconciliation, open mismatches by kind, pending and failing
pushes. Writes live in inventory.services_reconcile."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Min

from inventory.models import ChannelListing, MismatchKind, ReconcileRun, StockMismatch
from oms.core.models import SalesChannel


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

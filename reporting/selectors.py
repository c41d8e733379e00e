"""Read-only figures for the operations dashboard, scoped to the channels the user may see.

Each figure is one grouped query whatever the number of orders; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Min, OuterRef, Prefetch, Q, Subquery

from oms.core.models import InboundEvent, SalesChannel
from oms.orders.models import Order, OrderHold, OrderStatus, SyncRun
from oms.orders.selectors import channel_scope

User = AbstractBaseUser | AnonymousUser
STATES: list[tuple[str, str]] = list(OrderStatus.choices)


@dataclass
class ChannelRow:
    channel: SalesChannel
    counts: list[int]  # one per state, in STATES order
    total: int
    last_sync: SyncRun | None = None
    pending_events: int = 0
    failed_events: int = 0
    oldest_pending_at: datetime | None = None

    @property
    def cells(self) -> list[tuple[str, int]]:
        """(state, count) pairs in STATES order, for the grid."""
        return [(value, count) for (value, _), count in zip(STATES, self.counts, strict=True)]


@dataclass
class Dashboard:
    states: list[tuple[str, str]]
    rows: list[ChannelRow]
    state_totals: list[int]
    grand_total: int
    on_hold: Sequence[Order]
    headline: dict[str, int] = field(default_factory=dict)


def dashboard(*, user: User, on_hold_limit: int = 50) -> Dashboard:
    scope = channel_scope(user)
    channels, ids = scope.channels, scope.ids
    index = {value: i for i, (value, _) in enumerate(STATES)}
    rows = {c.pk: ChannelRow(channel=c, counts=[0] * len(STATES), total=0) for c in channels}

    grouped = scope.restrict(Order.objects.all()).values("channel_id", "status").annotate(n=Count("id"))
    for item in grouped.order_by():
        row = rows[item["channel_id"]]
        if item["status"] in index:
            row.counts[index[item["status"]]] = item["n"]
        row.total += item["n"]

    latest_run = SyncRun.objects.filter(channel_id=OuterRef("pk")).order_by("-started_at", "-id").values("pk")[:1]
    run_ids = [
        pk
        for pk in SalesChannel.objects.filter(pk__in=ids)
        .annotate(run=Subquery(latest_run))
        .values_list("run", flat=True)
        if pk is not None
    ]
    for run in SyncRun.objects.filter(pk__in=run_ids):
        rows[run.channel_id].last_sync = run

    backlog = (
        InboundEvent.objects.filter(
            channel_id__in=ids, status__in=[InboundEvent.Status.PENDING, InboundEvent.Status.FAILED]
        )
        .values("channel_id")
        .annotate(
            pending=Count("id", filter=Q(status=InboundEvent.Status.PENDING)),
            failed=Count("id", filter=Q(status=InboundEvent.Status.FAILED)),
            oldest=Min("received_at", filter=Q(status=InboundEvent.Status.PENDING)),
        )
        .order_by()
    )
    for item in backlog:
        row = rows[item["channel_id"]]
        row.pending_events, row.failed_events, row.oldest_pending_at = item["pending"], item["failed"], item["oldest"]

    on_hold = list(
        scope.restrict(Order.objects.filter(status=OrderStatus.ON_HOLD))
        .select_related("channel", "customer")
        .prefetch_related(
            Prefetch(
                "holds",
                queryset=OrderHold.objects.filter(released_at__isnull=True).order_by("created_at"),
                to_attr="open_holds",
            )
        )
        .order_by("-placed_at", "-id")[:on_hold_limit]
    )

    state_totals = [sum(r.counts[i] for r in rows.values()) for i in range(len(STATES))]
    by_state = dict(zip((s for s, _ in STATES), state_totals, strict=True))
    headline = {
        "ready": by_state[OrderStatus.READY],
        "on_hold": by_state[OrderStatus.ON_HOLD],
        "pending_payment": by_state[OrderStatus.PENDING_PAYMENT],
        "in_progress": by_state[OrderStatus.PICKING] + by_state[OrderStatus.PACKED],
        "inbox_failed": sum(r.failed_events for r in rows.values()),
        "inbox_pending": sum(r.pending_events for r in rows.values()),
    }
    return Dashboard(
        states=STATES,
        rows=list(rows.values()),
        state_totals=state_totals,
        grand_total=sum(state_totals),
        on_hold=on_hold,
        headline=headline,
    )

"""Scheduled checks for stuck orders: late to ship, shipped without tracking movement, on hold too long.

`needs_attention` reads the rows (for the checks and for the "needs attention" page); `stuck_orders_check`
raises one alert per order and kind, and resolves it once the condition has cleared. Nothing here changes orders.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db.models import Min, Q
from django.db.models.functions import Coalesce
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from dispatch.models import Shipment, ShipmentStatus
from oms.core.models import Alert
from oms.core.services import alert_raise, alert_raise_many, alert_resolve_many
from oms.orders.models import Order, OrderStatus

logger = logging.getLogger(__name__)

NOT_SHIPPED = (OrderStatus.READY, OrderStatus.PICKING, OrderStatus.PACKED)  # paid (or COD), not yet shipped


class StuckKind(enum.StrEnum):
    LATE = "late"
    NO_MOVEMENT = "no_movement"
    ON_HOLD = "on_hold"

    @property
    def label(self) -> str:
        return STUCK_LABELS[self]

    @property
    def alert_kind(self) -> str:
        return f"stuck.{self.value}"


STUCK_LABELS = {
    StuckKind.LATE: "Not shipped by its ship-by date",
    StuckKind.NO_MOVEMENT: "Shipped, no tracking movement",
    StuckKind.ON_HOLD: "On hold too long",
}


@dataclass(frozen=True, slots=True)
class AttentionRow:
    """One stuck order: what is wrong, since when, in words staff can act on."""

    kind: StuckKind
    order_id: int
    order_number: str
    channel_id: int
    channel_name: str
    order_status: str
    since: datetime  # the ship-by day (its start), the last tracking movement, the oldest open hold
    detail: str
    shipment_id: int | None = None

    @property
    def label(self) -> str:
        return self.kind.label

    @property
    def dedupe_key(self) -> str:
        return stuck_key(self.kind, self.order_id)

    def days(self, now: datetime) -> int:
        return max((now - self.since).days, 0)


def stuck_key(kind: StuckKind, order_id: int) -> str:
    return f"stuck:{kind.value}:{order_id}"


def _scope(channel_ids: Collection[int] | None) -> Q:
    return Q() if channel_ids is None else Q(channel_id__in=list(channel_ids))


def _late(now: datetime, channel_ids: Collection[int] | None, limit: int | None) -> list[AttentionRow]:
    today = timezone.localdate(now)
    rows = []
    for order in (
        Order.objects.filter(_scope(channel_ids), status__in=NOT_SHIPPED, ship_by__lt=today)
        .select_related("channel")
        .order_by("ship_by", "pk")[:limit]
    ):
        assert order.ship_by is not None  # noqa: S101 - the filter says so; for mypy
        ship_day = timezone.make_aware(datetime.combine(order.ship_by, time.min))
        late = (today - order.ship_by).days
        rows.append(
            AttentionRow(
                kind=StuckKind.LATE,
                order_id=order.pk,
                order_number=order.number,
                channel_id=order.channel_id,
                channel_name=order.channel.name,
                order_status=order.get_status_display(),
                since=ship_day,
                detail=f"ship by {order.ship_by.isoformat()}: {late} day{'s' if late != 1 else ''} late, "
                f"still {order.get_status_display().lower()}",
            )
        )
    return rows


def _no_movement(now: datetime, channel_ids: Collection[int] | None, limit: int | None) -> list[AttentionRow]:
    cutoff = now - timedelta(days=settings.STUCK_NO_MOVEMENT_DAYS)
    scope = Q() if channel_ids is None else Q(order__channel_id__in=list(channel_ids))
    rows = []
    for shipment in (
        Shipment.objects.filter(
            scope,
            status=ShipmentStatus.BOUGHT,
            delivered_at__isnull=True,
            order__status=OrderStatus.SHIPPED,
        )
        .alias(moved_at=Coalesce("last_event_at", "bought_at"))
        .filter(moved_at__lt=cutoff)
        .select_related("order__channel", "carrier_account")
        .order_by("moved_at", "pk")[:limit]
    ):
        order = shipment.order
        since = shipment.last_event_at or shipment.bought_at
        assert since is not None  # noqa: S101 - bought_at is set on every bought shipment
        what = "last tracking event" if shipment.last_event_at else "label bought, no tracking event since"
        rows.append(
            AttentionRow(
                kind=StuckKind.NO_MOVEMENT,
                order_id=order.pk,
                order_number=order.number,
                channel_id=order.channel_id,
                channel_name=order.channel.name,
                order_status=order.get_status_display(),
                since=since,
                detail=f"{shipment.carrier_account.name}: {what} {timezone.localtime(since):%Y-%m-%d %H:%M}"
                + (f" ({shipment.tracking_status.replace('_', ' ')})" if shipment.tracking_status else ""),
                shipment_id=shipment.pk,
            )
        )
    return rows


def _on_hold(now: datetime, channel_ids: Collection[int] | None, limit: int | None) -> list[AttentionRow]:
    cutoff = now - timedelta(days=settings.STUCK_ON_HOLD_DAYS)
    rows = []
    for order in (
        Order.objects.filter(_scope(channel_ids), status=OrderStatus.ON_HOLD)
        .annotate(held_since=Min("holds__created_at", filter=Q(holds__released_at__isnull=True)))
        .filter(held_since__lt=cutoff)
        .select_related("channel")
        .prefetch_related("holds")
        .order_by("held_since", "pk")[:limit]
    ):
        reasons = sorted(
            {hold.get_reason_display() for hold in order.holds.all() if hold.released_at is None}  # prefetched
        )
        rows.append(
            AttentionRow(
                kind=StuckKind.ON_HOLD,
                order_id=order.pk,
                order_number=order.number,
                channel_id=order.channel_id,
                channel_name=order.channel.name,
                order_status=order.get_status_display(),
                since=order.held_since,
                detail=f"on hold since {timezone.localtime(order.held_since):%Y-%m-%d}: {', '.join(reasons)}",
            )
        )
    return rows


CHECKS = {StuckKind.LATE: _late, StuckKind.NO_MOVEMENT: _no_movement, StuckKind.ON_HOLD: _on_hold}


def needs_attention(
    *,
    now: datetime | None = None,
    channel_ids: Collection[int] | None = None,
    kinds: Iterable[str] | None = None,
    limit: int | None = 500,
) -> list[AttentionRow]:
    """Every stuck order, longest stuck first; `channel_ids` None means every channel."""
    now = now or timezone.now()
    wanted = [StuckKind(k) for k in kinds] if kinds is not None else list(StuckKind)
    # Each check reads at most `limit` rows, oldest first: the longest stuck overall are among them.
    rows = [row for kind in wanted for row in CHECKS[kind](now, channel_ids, limit)]
    rows.sort(key=lambda row: (row.since, row.order_id))
    return rows[:limit] if limit is not None else rows


@dataclass(frozen=True, slots=True)
class StuckCheckResult:
    stuck: int  # orders (and kinds) stuck now
    raised: int  # new alerts
    resolved: int  # alerts whose condition cleared


def _attention_link() -> str:
    try:
        return reverse("dispatch:needs-attention")
    except NoReverseMatch:  # the page is not mounted (yet): the alerts still link to each order
        return ""


def stuck_orders_check(*, now: datetime | None = None, kinds: Iterable[str] | None = None) -> StuckCheckResult:
    """Raise an alert for each order newly stuck (one per order and kind), resolve those that cleared.

    Alerts already open are left as they are (not bumped every run, which would mark them unread again). The
    new ones are not e-mailed one by one: one summary alert is, when there are any.
    """
    now = now or timezone.now()
    wanted = [StuckKind(k) for k in kinds] if kinds is not None else list(StuckKind)
    rows = needs_attention(now=now, kinds=wanted, limit=None)
    current = {row.dedupe_key: row for row in rows}
    open_keys = set(
        Alert.objects.filter(kind__in=[k.alert_kind for k in wanted], resolved_at__isnull=True).values_list(
            "dedupe_key", flat=True
        )
    )
    fresh = [
        Alert(
            kind=row.kind.alert_kind,
            severity=Alert.Severity.WARNING,
            title=f"Order {row.order_number}: {row.label.lower()}",
            message=row.detail,
            link=reverse("orders:order-detail", args=[row.order_id]),
            channel_id=row.channel_id,
            dedupe_key=key,
        )
        for key, row in current.items()
        if key not in open_keys
    ]
    raised = alert_raise_many(alerts=fresh, email=False)
    resolved = alert_resolve_many(dedupe_keys=open_keys - set(current))
    if raised:
        alert_raise(
            kind="stuck.summary",
            title=f"{raised} order{'s' if raised != 1 else ''} newly stuck",
            # No order numbers here: this alert belongs to no channel, and managers see only their own channels'.
            message="; ".join(
                f"{sum(1 for a in fresh if a.kind == k.alert_kind)} {k.label.lower()}"
                for k in wanted
                if any(a.kind == k.alert_kind for a in fresh)
            ),
            link=_attention_link(),
            dedupe_key=f"stuck-summary:{timezone.localdate(now).isoformat()}",
        )
        logger.warning("stuck orders: %d new, %d cleared, %d in all", raised, resolved, len(current))
    return StuckCheckResult(stuck=len(current), raised=raised, resolved=resolved)

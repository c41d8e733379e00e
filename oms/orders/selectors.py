"""Reads of the order domain for the staff screens: lists, details, exports, channel and packing overviews.

Every read is scoped to the channels the user may see (oms.core.selectors.channels_visible_to); nothing here writes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Exists, F, Max, Model, OuterRef, Prefetch, Q, QuerySet, Sum, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from oms.core.models import AuditEntry, InboundEvent, SalesChannel
from oms.core.paging import Page, paginate
from oms.core.selectors import CHANNEL_ACCESS_PERM, channels_visible_to
from oms.orders.models import (
    Address,
    Customer,
    CustomerIdentity,
    CustomerNote,
    Order,
    OrderEvent,
    OrderHold,
    OrderLine,
    OrderStatus,
    SyncRun,
)

User = AbstractBaseUser | AnonymousUser
T = TypeVar("T")
M = TypeVar("M", bound=Model)

ORDER_SORTS: dict[str, tuple[str, ...]] = {
    "-placed": ("-placed_at", "-id"),
    "placed": ("placed_at", "id"),
    "-number": ("-number", "-id"),
    "number": ("number", "id"),
    "-total": ("-total", "-id"),
    "total": ("total", "id"),
}
CUSTOMER_SORTS: dict[str, tuple[str, ...]] = {
    "-created": ("-id",),  # ids grow with creation time, and the primary key needs no extra index
    "name": ("last_name", "first_name", "id"),
    "email": ("email", "id"),
}


# ---------------------------------------------------------------------------------------------------------
# Channel scope


def visible_channels(user: User) -> list[SalesChannel]:
    """The channels the user may see, in name order, evaluated once (a handful of rows)."""
    return list(channels_visible_to(user).order_by("name", "pk"))


def sees_every_channel(user: User) -> bool:
    """Holders of the global channel permission; others are limited to the channels granted to them."""
    return isinstance(user, PermissionsMixin) and user.is_active and user.has_perm(CHANNEL_ACCESS_PERM)


@dataclass(frozen=True)
class ChannelScope:
    """The channels one user may see, read once per request, and how to restrict a query to them.

    For holders of every channel the restriction is no condition at all, so that the database picks the index
    the rest of the query needs (placed date, state, customer) instead of walking the channel index.
    """

    channels: list[SalesChannel]
    every: bool

    @property
    def ids(self) -> list[int]:
        return [c.pk for c in self.channels]

    def restrict(self, qs: QuerySet[M], *, by_customer: bool = False) -> QuerySet[M]:
        """`qs` limited to the scope's channels.

        by_customer: the query is already narrowed to one or a few customers; compare an expression rather than
        the column, so the planner uses the customer index (a handful of rows) and not the channel index (all of
        the channel's orders, which SQLite prefers without statistics).
        """
        if self.every:
            return qs
        restricted: QuerySet[M]
        if by_customer:
            restricted = qs.alias(scope_channel=F("channel_id") + 0).filter(scope_channel__in=self.ids)
        else:
            restricted = qs.filter(channel_id__in=self.ids)
        return restricted


def channel_scope(user: User) -> ChannelScope:
    return ChannelScope(channels=visible_channels(user), every=sees_every_channel(user))


# ---------------------------------------------------------------------------------------------------------
# Pages without counting the table


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


# ---------------------------------------------------------------------------------------------------------
# Orders


@dataclass(frozen=True)
class OrderFilters:
    channel_id: int | None = None
    status: str = ""
    placed_from: date | None = None
    placed_to: date | None = None
    q: str = ""
    sort: str = "-placed"


# A search term is looked up where an index can answer it: the start of the order number, e-mail, customer name
# or SKU (all numbers ending in a term of digits, too: "2108" finds EU-2108). A "contains" search would read
# every order for every keystroke-sized term; on 200,000 orders that is a second instead of milliseconds.
SEARCH_CANDIDATES = 5000


def _customers_matching(term: str) -> Q:
    """Customers whose e-mail starts with the term, or whose first or last name starts with each of its words."""
    words = term.split()
    name = Q()
    for word in words:
        name &= Q(first_name__istartswith=word) | Q(last_name__istartswith=word)
    return Q(email__istartswith=term.lower()) | (name if words else Q(pk__in=[]))


def _search_parts(term: str) -> tuple[QuerySet[Any], QuerySet[Any], QuerySet[Any]]:
    """Order ids matching the term by number or e-mail, by customer, and by a line's SKU: one index each."""
    bare = term.lstrip("#").strip() or term
    number = Q(number__istartswith=term) | Q(number__istartswith=f"#{bare}")
    if bare.isdigit():
        number |= Q(number__iendswith=bare)
    by_order = Order.objects.filter(number | Q(email__istartswith=term.lower())).order_by().values_list("pk")
    customers = Customer.objects.filter(_customers_matching(term)).order_by().values("pk")
    by_customer = Order.objects.filter(customer_id__in=customers).order_by().values_list("pk")
    by_sku = OrderLine.objects.filter(sku__istartswith=term).order_by().values_list("order_id")
    return by_order, by_customer, by_sku


def _order_search(term: str) -> Q:
    """The search as one condition (for exports, which read everything anyway)."""
    by_order, by_customer, by_sku = _search_parts(term)
    return Q(pk__in=by_order) | Q(pk__in=by_customer) | Q(pk__in=by_sku)


def search_candidates(term: str) -> tuple[list[int], bool]:
    """Ids of the orders the term matches, in one UNION of index lookups; (ids, True) when capped."""
    by_order, by_customer, by_sku = _search_parts(term)
    found = [row[0] for row in by_order.union(by_customer, by_sku)[: SEARCH_CANDIDATES + 1]]
    return found[:SEARCH_CANDIDATES], len(found) > SEARCH_CANDIDATES


def order_list(
    *,
    user: User,
    filters: OrderFilters,
    scope: ChannelScope | None = None,
    search_ids: list[int] | None = None,
) -> QuerySet[Order]:
    """Orders of the user's channels matching `filters`, sorted.

    scope: the user's channel scope when the caller already has it. search_ids: the ids `search_candidates`
    found for `filters.q`, so that the list filters on a short id list rather than searching row by row.
    """
    qs = (scope or channel_scope(user)).restrict(Order.objects.all())
    if filters.channel_id is not None:
        qs = qs.filter(channel_id=filters.channel_id)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.placed_from is not None:
        qs = qs.filter(placed_at__gte=_day_start(filters.placed_from))
    if filters.placed_to is not None:
        qs = qs.filter(placed_at__lt=_day_start(filters.placed_to + timedelta(days=1)))
    if filters.q:
        qs = qs.filter(pk__in=search_ids) if search_ids is not None else qs.filter(_order_search(filters.q))
    # No select_related("channel"): joining the three-row channel table makes MariaDB drive the query from it
    # and sort every order of the channels; the channels come from the scope instead (_with_channels).
    return qs.select_related("customer").order_by(*ORDER_SORTS.get(filters.sort, ORDER_SORTS["-placed"]))


def _with_channels(orders: Iterable[Order], scope: ChannelScope) -> Iterator[Order]:
    """Attach each order's channel from the scope already read, instead of joining or querying for it."""
    channels = {c.pk: c for c in scope.channels}
    for order in orders:
        if order.channel_id in channels:
            order.channel = channels[order.channel_id]
        yield order


def _open_holds() -> Prefetch[Any]:
    return Prefetch(
        "holds",
        queryset=OrderHold.objects.filter(released_at__isnull=True).order_by("created_at"),
        to_attr="open_holds",
    )


def order_page(
    *, user: User, filters: OrderFilters, page: int, per_page: int, scope: ChannelScope | None = None
) -> Page[Order]:
    """One page of the order list with each order's lines and open holds (two queries, whatever the size)."""
    scope = scope or channel_scope(user)
    search_ids, truncated = search_candidates(filters.q) if filters.q else (None, False)
    qs = order_list(user=user, filters=filters, scope=scope, search_ids=search_ids).prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("id")), _open_holds()
    )
    found = paginate(qs, page=page, per_page=per_page)
    return dataclasses.replace(found, items=list(_with_channels(found.items, scope)), truncated=truncated)


def order_export_rows(*, user: User, filters: OrderFilters, chunk_size: int = 1000) -> Iterator[Order]:
    """Every order of the filtered list, streamed in chunks with their lines."""
    scope = channel_scope(user)
    qs = order_list(user=user, filters=filters, scope=scope).prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("id").only("order_id", "sku", "quantity", "title"))
    )
    return _with_channels(qs.iterator(chunk_size=chunk_size), scope)


def order_get(*, user: User, pk: int) -> Order:
    """One order of the user's channels; Order.DoesNotExist (a 404) for another channel's order."""
    return Order.objects.select_related("channel").get(pk=pk, channel__in=channels_visible_to(user))


def order_detail(*, user: User, pk: int) -> Order:
    """The order with everything its page shows; Order.DoesNotExist for another channel's order."""
    return (
        Order.objects.select_related("channel", "customer", "shipping_address", "billing_address")
        .prefetch_related(
            Prefetch("lines", queryset=OrderLine.objects.order_by("id")),
            Prefetch(
                "holds",
                queryset=OrderHold.objects.select_related("created_by", "released_by").order_by("-created_at", "-id"),
            ),
            Prefetch("events", queryset=OrderEvent.objects.order_by("-created_at", "-id")),
        )
        .get(pk=pk, channel__in=channels_visible_to(user))
    )


def audit_trail(*, obj: Any, limit: int = 200) -> list[AuditEntry]:
    """The newest audit entries about one object (by content type and id)."""
    content_type = ContentType.objects.get_for_model(type(obj))
    return list(
        AuditEntry.objects.filter(content_type=content_type, object_id=str(obj.pk))
        .select_related("actor")
        .order_by("-created_at", "-id")[:limit]
    )


# ---------------------------------------------------------------------------------------------------------
# Customers


@dataclass(frozen=True)
class CustomerFilters:
    q: str = ""
    sort: str = "-created"


@dataclass(frozen=True)
class CustomerRow:
    customer: Customer
    order_count: int
    last_order_at: datetime | None


def _customers_visible(scope: ChannelScope) -> QuerySet[Customer]:
    """Every customer for holders of every channel; others see customers with an order or id on their channels."""
    if scope.every:
        return Customer.objects.all()
    orders = scope.restrict(Order.objects.filter(customer_id=OuterRef("pk")), by_customer=True)
    identities = scope.restrict(CustomerIdentity.objects.filter(customer_id=OuterRef("pk")), by_customer=True)
    return Customer.objects.filter(Exists(orders) | Exists(identities))


def _customer_search(q: str) -> Q:
    """E-mail or name (every word) by prefix, as the order search does; phone by any run of 4+ digits."""
    digits = "".join(ch for ch in q if ch.isdigit())
    phone = Q(phone__contains=digits) if len(digits) >= 4 else Q(pk__in=[])
    return _customers_matching(q) | phone


def customer_list(*, user: User, filters: CustomerFilters, scope: ChannelScope | None = None) -> QuerySet[Customer]:
    qs = _customers_visible(scope or channel_scope(user))
    if filters.q:
        qs = qs.filter(_customer_search(filters.q))
    return qs.order_by(*CUSTOMER_SORTS.get(filters.sort, CUSTOMER_SORTS["-created"]))


def customer_page(*, user: User, filters: CustomerFilters, page: int, per_page: int) -> Page[CustomerRow]:
    """One page of customers with their order count and last order on the user's channels (one more query)."""
    scope = channel_scope(user)
    found = paginate(customer_list(user=user, filters=filters, scope=scope), page=page, per_page=per_page)
    orders = Order.objects.filter(customer_id__in=[c.pk for c in found.items])
    stats = {
        row["customer_id"]: row
        for row in scope.restrict(orders, by_customer=True)
        .values("customer_id")
        .annotate(n=Count("id"), last=Max("placed_at"))
        .order_by()
    }
    rows = [
        CustomerRow(
            customer=c, order_count=stats.get(c.pk, {}).get("n", 0), last_order_at=stats.get(c.pk, {}).get("last")
        )
        for c in found.items
    ]
    return Page(items=rows, number=found.number, per_page=found.per_page, has_next=found.has_next)


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    total: Decimal
    orders: int


@dataclass
class CustomerDetail:
    customer: Customer
    orders: list[Order]
    orders_truncated: bool
    lifetime_value: list[CurrencyTotal]
    identities: list[CustomerIdentity]
    addresses: list[Address]
    notes: list[CustomerNote] = field(default_factory=list)


CUSTOMER_ORDERS_SHOWN = 200


def customer_get(*, user: User, pk: int) -> Customer:
    """A customer the user may see; Customer.DoesNotExist otherwise (a 404)."""
    return _customers_visible(channel_scope(user)).get(pk=pk)


def customer_notes(*, customer: Customer) -> list[CustomerNote]:
    return list(customer.notes.select_related("author").order_by("-created_at", "-id"))


def customer_detail(*, user: User, pk: int) -> CustomerDetail:
    """The customer, their orders and lifetime value on the user's channels, identities, addresses and notes."""
    scope = channel_scope(user)
    customer = _customers_visible(scope).get(pk=pk)
    orders_qs = scope.restrict(Order.objects.filter(customer=customer), by_customer=True)
    orders = list(orders_qs.select_related("channel").order_by("-placed_at", "-id")[: CUSTOMER_ORDERS_SHOWN + 1])
    value = [
        CurrencyTotal(currency=row["currency"], total=row["total"] or Decimal("0"), orders=row["n"])
        for row in orders_qs.exclude(status=OrderStatus.CANCELLED)
        .values("currency")
        .annotate(total=Sum("total"), n=Count("id"))
        .order_by("currency")
    ]
    identities = list(
        scope.restrict(CustomerIdentity.objects.filter(customer=customer), by_customer=True)
        .select_related("channel")
        .order_by("channel__name", "external_id")
    )
    return CustomerDetail(
        customer=customer,
        orders=orders[:CUSTOMER_ORDERS_SHOWN],
        orders_truncated=len(orders) > CUSTOMER_ORDERS_SHOWN,
        lifetime_value=value,
        identities=identities,
        addresses=list(customer.addresses.order_by("-created_at", "-id")),
        notes=customer_notes(customer=customer),
    )


# ---------------------------------------------------------------------------------------------------------
# Channels and their syncs


@dataclass
class ChannelOverview:
    channel: SalesChannel
    runs: list[SyncRun]
    failed_events: list[InboundEvent]
    pending_count: int
    failed_count: int
    webhook_url: str = ""  # absolute, so the view fills it in from the request


def _newest_per_channel(qs: QuerySet[M], *, order: tuple[str, ...], limit: int) -> QuerySet[M]:
    """The `limit` newest rows of each channel in one query (a window function)."""
    ranked = qs.annotate(
        rank=Window(
            expression=RowNumber(),
            partition_by=[F("channel_id")],
            order_by=[F(o.lstrip("-")).desc() if o.startswith("-") else F(o).asc() for o in order],
        )
    )
    newest: QuerySet[M] = ranked.filter(rank__lte=limit).order_by("channel_id", *order)
    return newest


def channel_overview(*, user: User, runs: int = 10, failed: int = 20) -> list[ChannelOverview]:
    """Each visible channel with its last sync runs, its failed inbox events and its inbox backlog."""
    channels = visible_channels(user)
    ids = [c.pk for c in channels]
    by_channel: dict[int, ChannelOverview] = {
        c.pk: ChannelOverview(channel=c, runs=[], failed_events=[], pending_count=0, failed_count=0) for c in channels
    }
    for run in _newest_per_channel(
        SyncRun.objects.filter(channel_id__in=ids), order=("-started_at", "-id"), limit=runs
    ):
        by_channel[run.channel_id].runs.append(run)
    failed_qs = InboundEvent.objects.filter(channel_id__in=ids, status=InboundEvent.Status.FAILED).defer("body")
    for event in _newest_per_channel(failed_qs, order=("-received_at", "-id"), limit=failed):
        by_channel[event.channel_id].failed_events.append(event)
    backlog = (
        InboundEvent.objects.filter(
            channel_id__in=ids, status__in=[InboundEvent.Status.PENDING, InboundEvent.Status.FAILED]
        )
        .values("channel_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in backlog:
        overview = by_channel[row["channel_id"]]
        if row["status"] == InboundEvent.Status.PENDING:
            overview.pending_count = row["n"]
        else:
            overview.failed_count = row["n"]
    return list(by_channel.values())


def channel_get(*, user: User, pk: int) -> SalesChannel:
    return channels_visible_to(user).get(pk=pk)


def inbound_event_get(*, user: User, pk: int) -> InboundEvent:
    return InboundEvent.objects.select_related("channel").get(pk=pk, channel__in=channels_visible_to(user))


# ---------------------------------------------------------------------------------------------------------
# Packing (the first release shows what is ready; the real queue comes with dispatch)


@dataclass(frozen=True)
class PackingOverview:
    ready_count: int
    overdue_count: int
    oldest: Sequence[Order]


def packing_overview(*, user: User, limit: int = 25) -> PackingOverview:
    """How many orders wait to be packed, how many are past their ship-by date, and the most urgent ones."""
    ready = channel_scope(user).restrict(Order.objects.filter(status=OrderStatus.READY))
    today = timezone.localdate()
    counts = ready.aggregate(n=Count("id"), overdue=Count("id", filter=Q(ship_by__lt=today)))
    oldest = list(
        ready.select_related("channel").order_by(F("ship_by").asc(nulls_last=True), "placed_at", "id")[:limit]
    )
    # Counted for the rows shown only: a COUNT joined to every ready order would group the whole backlog.
    line_counts = dict(
        OrderLine.objects.filter(order_id__in=[o.pk for o in oldest])
        .values("order_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("order_id", "n")
    )
    for order in oldest:
        order.line_count = line_counts.get(order.pk, 0)  # type: ignore[attr-defined]
    return PackingOverview(ready_count=counts["n"], overdue_count=counts["overdue"], oldest=oldest)

"""Dispatch reads for the staff screens: the packer's order with bins, shipment status, the live queue, batches
and pick lists. Nothing here writes; every list is limited or paged, and its queries are decided here, once.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from dispatch.documents import PickListData, PickRow
from dispatch.models import (
    Batch,
    BatchOrder,
    CarrierAccount,
    Document,
    Manifest,
    PackingStation,
    PackSession,
    Printer,
    PrintJob,
    Shipment,
    ShipmentEvent,
    ShipmentParcel,
    ShipmentStatus,
    TrackingEvent,
)
from dispatch.services import ExpectedItem, ParcelInput
from dispatch.services import order_weight_grams as order_weight_grams  # the views read it from here
from inventory.models import Allocation, BundleComponent, StockLevel, Variant
from oms.core.paging import Page, paginate
from oms.orders.models import Order, OrderLine, OrderStatus
from oms.orders.selectors import ChannelScope, channel_scope
from oms.orders.services import stock_reference

User = AbstractBaseUser | AnonymousUser

# A shipment in these states is still with the carrier job: the packer's status panel keeps polling.
SHIPMENT_PENDING = (ShipmentStatus.DRAFT, ShipmentStatus.BUYING)
PRINT_PENDING = (PrintJob.State.QUEUED, PrintJob.State.SENT)
PRINT_POLL_MINUTES = 3
OPEN_SESSIONS_SHOWN = 100
OPEN_BATCHES_DAYS = 14  # batches are worked within days; older open ones are not offered to packers
OPEN_BATCHES_SHOWN = 50
BATCH_CANDIDATES_SHOWN = 100
BATCH_ORDERS_SHOWN = 500


# ---------------------------------------------------------------------------------------------------------
# Stations, printers, carriers


def stations_active() -> list[PackingStation]:
    return list(PackingStation.objects.filter(active=True).select_related("label_printer", "document_printer"))


def station_get(pk: int | None) -> PackingStation | None:
    if not pk:
        return None
    return PackingStation.objects.filter(pk=pk, active=True).select_related("label_printer").first()


def printers_active() -> QuerySet[Printer]:
    return Printer.objects.filter(active=True).order_by("name")


def carrier_accounts_active() -> QuerySet[CarrierAccount]:
    return CarrierAccount.objects.filter(active=True).order_by("name")


# ---------------------------------------------------------------------------------------------------------
# The packer's order


def open_session_of(user: User) -> PackSession | None:
    """The packer's open, unexpired session, if any (what pack_next would give back)."""
    if not user.is_authenticated:
        return None
    return (
        PackSession.objects.filter(packer_id=user.pk, outcome=PackSession.Outcome.OPEN, expires_at__gt=timezone.now())
        .order_by("-started_at")
        .first()
    )


def session_get(pk: int) -> PackSession:
    """One session with what the packing screen shows of its order; raises PackSession.DoesNotExist."""
    return PackSession.objects.select_related(
        "order", "order__channel", "order__shipping_address", "packer", "station", "override_by"
    ).get(pk=pk)


@dataclass(frozen=True, slots=True)
class PackRow:
    """One line the packer sees: where to find it, what it is, how many are scanned of how many."""

    item: ExpectedItem
    bin_code: str

    @property
    def done(self) -> bool:
        return self.item.done


def _bin_label(level: StockLevel) -> str:
    return level.bin.code if level.bin_id and level.bin else ""


def bins_for(orders: Sequence[Order], items: Iterable[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """The bin of each (order line, variant): where its units were allocated, else where the variant is kept.

    Four queries whatever the number of orders: allocations, their stock levels, and fallback levels.
    """
    wanted = {(line_id, variant_id) for line_id, variant_id in items}
    if not wanted:
        return {}
    variant_ids = {v for _, v in wanted}
    allocated: dict[tuple[int, int], tuple[int, int]] = {}  # (line, variant) -> (location, quantity), largest
    for a in Allocation.objects.filter(
        reference__in=[stock_reference(o) for o in orders], variant_id__in=variant_ids
    ).only("line", "variant_id", "location_id", "quantity"):
        if not a.line.isdigit():
            continue
        key = (int(a.line), a.variant_id)
        if key in wanted and (key not in allocated or a.quantity > allocated[key][1]):
            allocated[key] = (a.location_id, a.quantity)
    levels: dict[tuple[int, int], str] = {}
    fallback: dict[int, str] = {}
    for level in (
        StockLevel.objects.filter(variant_id__in=variant_ids, location__active=True)
        .select_related("bin")
        .order_by("location__priority", "location_id")
    ):
        label = _bin_label(level)
        levels[(level.variant_id, level.location_id)] = label
        if label and level.variant_id not in fallback and level.on_hand > 0:
            fallback[level.variant_id] = label
    out = {}
    for line_id, variant_id in wanted:
        where = allocated.get((line_id, variant_id))
        label = levels.get((variant_id, where[0]), "") if where else ""
        out[(line_id, variant_id)] = label or fallback.get(variant_id, "")
    return out


def pack_rows(order: Order, items: Sequence[ExpectedItem]) -> list[PackRow]:
    """The expected items with their bins, in walking order (by bin, then as the order lists them)."""
    bins = bins_for([order], [(i.line_id, i.variant_id) for i in items if i.variant_id is not None])
    rows = [
        PackRow(item=i, bin_code=bins.get((i.line_id, i.variant_id), "") if i.variant_id is not None else "")
        for i in items
    ]
    return sorted(rows, key=lambda r: (not r.bin_code, bin_sort_key(r.bin_code)))


def open_batches() -> list[Batch]:
    """Batches a packer can work inside: open, newest first, with how many of their orders are still ready."""
    since = timezone.now() - timedelta(days=OPEN_BATCHES_DAYS)
    return list(
        Batch.objects.filter(closed_at__isnull=True, created_at__gte=since)
        .annotate(ready=Count("members", filter=Q(members__order__status=OrderStatus.READY)))
        .filter(ready__gt=0)
        .order_by("-created_at")[:OPEN_BATCHES_SHOWN]
    )


def batch_open_get(pk: int | None) -> Batch | None:
    if not pk:
        return None
    return Batch.objects.filter(pk=pk, closed_at__isnull=True).first()


# ---------------------------------------------------------------------------------------------------------
# Shipments


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """A carrier's refusal of one field, in words: "Ship-to postal code: not a valid ZIP code"."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


_FIELD_WORDS = {
    "to": "Ship-to",
    "ship_to": "Ship-to",
    "from": "Sender",
    "ship_from": "Sender",
    "postal_code": "postal code",
    "country_code": "country",
    "line1": "street",
    "line2": "street (2nd line)",
    "weight_grams": "weight",
    "length_cm": "length",
    "width_cm": "width",
    "height_cm": "height",
}


def field_in_words(name: str) -> str:
    """The carrier adapter's field path ("to.postal_code", "parcels.1.weight_grams") as a packer reads it."""
    words: list[str] = []
    parts = [p for p in re.split(r"[.\[\]]+", name) if p]
    i = 0
    while i < len(parts):
        part = parts[i]
        if part in ("parcels", "parcel") and i + 1 < len(parts) and parts[i + 1].isdigit():
            words.append(f"parcel {int(parts[i + 1]) + 1}")
            i += 2
            continue
        words.append(_FIELD_WORDS.get(part, part.replace("_", " ")))
        i += 1
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def shipment_problems(shipment: Shipment) -> list[FieldProblem]:
    problems = []
    for error in shipment.errors or []:
        if isinstance(error, dict):
            where = field_in_words(str(error.get("field") or ""))
            problems.append(FieldProblem(where=where, message=str(error.get("message") or "")))
        else:
            problems.append(FieldProblem(where="", message=str(error)))
    return problems


@dataclass
class ShipmentPanel:
    """What the packer's status panel and the shipment page show of one shipment."""

    shipment: Shipment
    parcels: list[ShipmentParcel]
    documents: list[Document]
    print_jobs: list[PrintJob]
    problems: list[FieldProblem]
    label_printer: Printer | None
    newer_id: int | None = None  # a later shipment of the same order (booked again)

    @property
    def pending(self) -> bool:
        """Still worth polling: the label is being bought, or a fresh print job has not finished (a printer that
        stays down for minutes is shown as down; the packer downloads the label and moves on)."""
        if self.shipment.status in SHIPMENT_PENDING:
            return True
        recent = timezone.now() - timedelta(minutes=PRINT_POLL_MINUTES)
        return any(j.state in PRINT_PENDING and j.created_at > recent for j in self.print_jobs)

    @property
    def printer_down(self) -> bool:
        """A label will not come out of a printer by itself: no printer at the station, or it is switched off, or
        a label's newest print job failed or has hung for minutes."""
        if self.shipment.status != ShipmentStatus.BOUGHT:
            return False
        if self.label_printer is None or not self.label_printer.active:
            return True
        labels = {d.pk for d in self.documents if d.kind == Document.Kind.LABEL}
        newest: dict[int, PrintJob] = {}
        for job in self.print_jobs:  # newest first
            newest.setdefault(job.document_id, job)
        if not labels or labels - set(newest):
            return True
        stale = timezone.now() - timedelta(minutes=PRINT_POLL_MINUTES)
        return any(
            job.state == PrintJob.State.FAILED or (job.state in PRINT_PENDING and job.created_at <= stale)
            for doc_id, job in newest.items()
            if doc_id in labels
        )

    @property
    def tracking_numbers(self) -> list[str]:
        return [p.tracking_number for p in self.parcels if p.tracking_number]


def shipment_get(*, pk: int, user: User, scope: ChannelScope | None = None) -> Shipment:
    """One shipment of the user's channels; raises Shipment.DoesNotExist."""
    scope = scope or channel_scope(user)
    qs = Shipment.objects.select_related(
        "order", "order__channel", "order__shipping_address", "carrier_account", "station", "station__label_printer"
    )
    if not scope.every:
        qs = qs.filter(order__channel_id__in=scope.ids)
    return qs.get(pk=pk)


def shipment_panel(shipment: Shipment, *, events: bool = False) -> ShipmentPanel:
    parcels = list(shipment.parcels.order_by("position"))
    documents = list(shipment.documents.order_by("kind", "pk"))
    jobs = list(
        PrintJob.objects.filter(document__shipment=shipment)
        .select_related("printer", "document", "created_by")
        .order_by("-created_at", "-pk")[:50]
    )
    station = shipment.station
    newer = (
        Shipment.objects.filter(order_id=shipment.order_id, pk__gt=shipment.pk)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    return ShipmentPanel(
        shipment=shipment,
        parcels=parcels,
        documents=documents,
        print_jobs=jobs,
        problems=shipment_problems(shipment),
        label_printer=station.label_printer if station is not None else None,
        newer_id=newer,
    )


def parcel_inputs_of(shipment: Shipment) -> list[ParcelInput]:
    """The shipment's parcels as the services take them (what booking it again keeps when no new ones are given)."""
    return [
        ParcelInput(p.weight_grams, p.length_cm, p.width_cm, p.height_cm) for p in shipment.parcels.order_by("position")
    ]


def latest_shipment_of(order: Order) -> Shipment | None:
    return (
        Shipment.objects.select_related("order", "carrier_account", "station", "station__label_printer")
        .filter(order=order)
        .order_by("-pk")
        .first()
    )


def parcel_get(*, pk: int, user: User) -> ShipmentParcel:
    scope = channel_scope(user)
    qs = ShipmentParcel.objects.select_related("shipment", "shipment__order")
    if not scope.every:
        qs = qs.filter(shipment__order__channel_id__in=scope.ids)
    return qs.get(pk=pk)


def document_get(*, pk: int, user: User) -> Document:
    """A stored document the user may download: of their channels' orders, or of no order (a pick list)."""
    scope = channel_scope(user)
    qs = Document.objects.select_related("order")
    if not scope.every:
        qs = qs.filter(Q(order__isnull=True) | Q(order__channel_id__in=scope.ids))
    return qs.get(pk=pk)


@dataclass
class ShipmentDetail:
    panel: ShipmentPanel
    events: list[ShipmentEvent] = field(default_factory=list)
    tracking_events: list[TrackingEvent] = field(default_factory=list)
    siblings: list[Shipment] = field(default_factory=list)


def shipment_detail(*, pk: int, user: User) -> ShipmentDetail:
    shipment = shipment_get(pk=pk, user=user)
    return ShipmentDetail(
        panel=shipment_panel(shipment),
        events=list(shipment.events.order_by("-pk")[:200]),
        tracking_events=list(shipment.tracking_events.order_by("-occurred_at", "-pk")[:200]),
        siblings=list(Shipment.objects.filter(order_id=shipment.order_id).exclude(pk=shipment.pk).order_by("-pk")[:20]),
    )


# ---------------------------------------------------------------------------------------------------------
# The manager's live queue


@dataclass(frozen=True, slots=True)
class DispatchRow:
    """One of today's shipments and how far its order got: label, print, channel, e-mail."""

    shipment: Shipment
    printed: bool
    print_failed: bool
    last_error: str

    @property
    def label_bought(self) -> bool:
        return self.shipment.status == ShipmentStatus.BOUGHT or self.shipment.bought_at is not None

    @property
    def written_back(self) -> bool:
        return self.shipment.channel_synced_at is not None

    @property
    def emailed(self) -> bool:
        return self.shipment.shipped_email_at is not None


@dataclass
class QueueOverview:
    ready_count: int
    overdue_count: int
    picking_count: int
    sessions: list[PackSession]
    sessions_truncated: bool
    today: Page[DispatchRow]


def _today_bounds() -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    return start, start + timedelta(days=1)


def _last_error(shipment: Shipment, job_error: str) -> str:
    if shipment.status in (ShipmentStatus.FAILED, ShipmentStatus.UNKNOWN):
        problems = shipment_problems(shipment)
        if problems:
            return "; ".join(str(p) for p in problems)
    if shipment.channel_sync_error:
        return f"Channel: {shipment.channel_sync_error}"
    return f"Printer: {job_error}" if job_error else ""


def queue_overview(*, user: User, page: int = 1, per_page: int = 25) -> QueueOverview:
    """The packing floor right now, in a fixed number of queries whatever the backlog: counts, who packs what,
    and a page of today's shipments with how far each got."""
    scope = channel_scope(user)
    today = timezone.localdate()
    orders = scope.restrict(Order.objects.all())
    counts = orders.filter(status__in=[OrderStatus.READY, OrderStatus.PICKING]).aggregate(
        ready=Count("id", filter=Q(status=OrderStatus.READY)),
        overdue=Count("id", filter=Q(status=OrderStatus.READY, ship_by__lt=today)),
        picking=Count("id", filter=Q(status=OrderStatus.PICKING)),
    )
    sessions_qs = PackSession.objects.filter(outcome=PackSession.Outcome.OPEN).select_related(
        "order", "packer", "station"
    )
    if not scope.every:
        sessions_qs = sessions_qs.filter(order__channel_id__in=scope.ids)
    sessions = list(sessions_qs.order_by("started_at", "pk")[: OPEN_SESSIONS_SHOWN + 1])
    start, end = _today_bounds()
    shipments = Shipment.objects.filter(created_at__gte=start, created_at__lt=end).select_related(
        "order", "order__channel", "carrier_account"
    )
    if not scope.every:
        shipments = shipments.filter(order__channel_id__in=scope.ids)
    shipment_page = paginate(shipments.order_by("-created_at", "-pk"), page=page, per_page=per_page)
    jobs: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for shipment_id, state, error in PrintJob.objects.filter(
        document__shipment_id__in=[s.pk for s in shipment_page.items]
    ).values_list("document__shipment_id", "state", "error"):
        jobs[shipment_id].append((state, error))
    rows = []
    for s in shipment_page.items:
        states = jobs.get(s.pk, [])
        failed = [error for state, error in states if state == PrintJob.State.FAILED]
        rows.append(
            DispatchRow(
                shipment=s,
                printed=any(state == PrintJob.State.DONE for state, _ in states),
                print_failed=bool(failed),
                last_error=_last_error(s, failed[-1] if failed else ""),
            )
        )
    return QueueOverview(
        ready_count=counts["ready"],
        overdue_count=counts["overdue"],
        picking_count=counts["picking"],
        sessions=sessions[:OPEN_SESSIONS_SHOWN],
        sessions_truncated=len(sessions) > OPEN_SESSIONS_SHOWN,
        today=Page(
            items=rows,
            number=shipment_page.number,
            per_page=shipment_page.per_page,
            has_next=shipment_page.has_next,
        ),
    )


# ---------------------------------------------------------------------------------------------------------
# Batches and pick lists


def batch_page(*, page: int, per_page: int = 25) -> Page[Batch]:
    return paginate(
        Batch.objects.select_related("carrier_account", "created_by")
        .annotate(order_count=Count("members"))
        .order_by("-created_at", "-pk"),
        page=page,
        per_page=per_page,
    )


def batch_candidates(*, user: User, limit: int = BATCH_CANDIDATES_SHOWN) -> list[Order]:
    """Ready orders nobody batched yet, most urgent first: what a manual batch can be made of."""
    taken = BatchOrder.objects.filter(batch__closed_at__isnull=True).values("order_id")
    qs = (
        channel_scope(user)
        .restrict(Order.objects.filter(status=OrderStatus.READY))
        .exclude(pk__in=taken)
        .select_related("channel", "shipping_address")
        .order_by(F("ship_by").asc(nulls_last=True), "service_level", "placed_at", "id")
    )
    return list(qs[:limit])


def batch_get(pk: int) -> Batch:
    return Batch.objects.select_related("carrier_account", "created_by").get(pk=pk)


def batch_orders(*, batch: Batch, user: User, limit: int = BATCH_ORDERS_SHOWN) -> list[Order]:
    qs = channel_scope(user).restrict(
        Order.objects.filter(pk__in=BatchOrder.objects.filter(batch=batch).values("order_id"))
    )
    return list(qs.select_related("channel", "shipping_address").order_by("ship_by", "placed_at", "id")[:limit])


def bin_sort_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Bins as a picker walks them: A-2 before A-10."""
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in re.split(r"(\d+)", text) if p)


def pick_list_rows(orders: Sequence[Order]) -> list[PickRow]:
    """What to pick for these orders: one row per bin and SKU with the units summed over the orders, in bin
    order (rows without a bin last). Bundles are picked as their components. Six queries for any batch size."""
    if not orders:
        return []
    numbers = {o.pk: o.number for o in orders}
    lines = list(
        OrderLine.objects.filter(order_id__in=list(numbers), requires_shipping=True)
        .order_by("order_id", "pk")
        .values_list("pk", "order_id", "sku", "title", "quantity")
    )
    variants = {v.sku: v for v in Variant.objects.filter(sku__in={sku for _, _, sku, _, _ in lines if sku})}
    parts: dict[int, list[tuple[Variant, int]]] = defaultdict(list)
    for bc in BundleComponent.objects.filter(
        bundle_id__in=[v.pk for v in variants.values() if v.is_bundle]
    ).select_related("component"):
        parts[bc.bundle_id].append((bc.component, bc.quantity))
    picks: list[tuple[int, int, Variant | None, str, str, int]] = []  # line, order, variant, sku, title, qty
    for line_id, order_id, sku, title, quantity in lines:
        variant = variants.get(sku)
        if variant is None:
            picks.append((line_id, order_id, None, sku or "(no SKU)", title, quantity))
            continue
        for part, per in parts.get(variant.pk) or [(variant, 1)]:
            picks.append((line_id, order_id, part, part.sku, part.title or title, per * quantity))
    bins = bins_for(list(orders), [(line_id, v.pk) for line_id, _, v, _, _, _ in picks if v is not None])
    summed: dict[tuple[str, str], int] = defaultdict(int)
    titles: dict[str, str] = {}
    order_numbers: dict[tuple[str, str], list[str]] = defaultdict(list)
    for line_id, order_id, v, sku, title, quantity in picks:
        key = (bins.get((line_id, v.pk), "") if v is not None else "", sku)
        summed[key] += quantity
        titles.setdefault(sku, title)
        if numbers[order_id] not in order_numbers[key]:
            order_numbers[key].append(numbers[order_id])
    rows = [
        PickRow(bin_code=b, sku=sku, title=titles[sku], total_qty=qty, order_numbers=tuple(order_numbers[(b, sku)]))
        for (b, sku), qty in summed.items()
    ]
    return sorted(rows, key=lambda r: (not r.bin_code, bin_sort_key(r.bin_code), r.sku))


def pick_list_data(batch: Batch, orders: Sequence[Order]) -> PickListData:
    return PickListData(
        batch_name=batch.name,
        created=timezone.localtime(batch.created_at),
        carrier=batch.carrier_account.name if batch.carrier_account else batch.get_kind_display(),
        rows=pick_list_rows(orders),
    )


# ---------------------------------------------------------------------------------------------------------
# End-of-day manifests


def manifest_page(*, page: int, per_page: int = 25) -> Page[Manifest]:
    """The manifests made so far, the latest day first, with their account, document and author (one query)."""
    return paginate(
        Manifest.objects.select_related("carrier_account", "document", "created_by").order_by(
            "-day", "-created_at", "-pk"
        ),
        page=page,
        per_page=per_page,
    )

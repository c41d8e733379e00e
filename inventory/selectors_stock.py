"""Reads of the stock screens: the SKU list and detail, the ledger, allocations, mismatches and stock-take sheets.

Nothing here writes. Stock itself is not channel-bound, but listings and mismatches are: those reads take the
channels the user may see (oms.core.selectors.channels_visible_to) and never show another channel's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import (
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import Combinable
from django.db.models.functions import Cast, Coalesce, Floor

from inventory.models import (
    Allocation,
    BundleComponent,
    ChannelListing,
    Location,
    StockLevel,
    StockMismatch,
    StockMovement,
    Variant,
)
from inventory.selectors import available_for, listing_quantities
from oms.core.models import SalesChannel
from oms.core.paging import Page, paginate
from oms.core.selectors import channels_visible_to

User = AbstractBaseUser | AnonymousUser

OPEN = StockMismatch.Resolution.OPEN


def visible_channels(user: User) -> list[SalesChannel]:
    """The channels the user may see, in name order, read once per request (a handful of rows)."""
    return list(channels_visible_to(user).order_by("name", "pk"))


# ---------------------------------------------------------------------------------------------------------
# The SKU list

SKU_SORTS: dict[str, tuple[str, ...]] = {
    "sku": ("sku", "id"),
    "-sku": ("-sku", "-id"),
    "title": ("product__title", "title", "sku"),
    "available": ("available", "sku"),
    "-available": ("-available", "sku"),
    "on_hand": ("on_hand_total", "sku"),
    "-on_hand": ("-on_hand_total", "sku"),
}
STOCK_STATES = ("low", "out", "mismatched")
SKU_KINDS = ("", "bundles", "inactive", "all")


@dataclass(frozen=True)
class SkuFilters:
    q: str = ""
    stock: str = ""  # "", "low", "out" or "mismatched"
    kind: str = ""  # "" (active SKUs), "bundles", "inactive" or "all"
    sort: str = "sku"


def _level_total(expression: Combinable | str, *, variant: str = "pk") -> Coalesce:
    """The sum of `expression` over a variant's levels at active locations (0 without any), as a subquery."""
    totals = (
        StockLevel.objects.filter(variant_id=OuterRef(variant), location__active=True)
        .order_by()
        .values("variant_id")
        .annotate(total=Sum(expression))
        .values("total")[:1]
    )
    return Coalesce(Subquery(totals, output_field=IntegerField()), Value(0))


def _kits() -> Coalesce:
    """Whole kits a bundle's components make: the smallest (free units // units per kit) over its components."""
    per_component = (
        BundleComponent.objects.filter(bundle_id=OuterRef("pk"))
        .order_by()
        .annotate(
            kits=Cast(
                Floor(
                    ExpressionWrapper(
                        _level_total(F("on_hand") - F("allocated"), variant="component_id") / F("quantity"),
                        output_field=IntegerField(),
                    )
                ),
                IntegerField(),
            )
        )
        .order_by("kits")
        .values("kits")[:1]
    )
    return Coalesce(Subquery(per_component, output_field=IntegerField()), Value(0))


def _open_mismatches(channel_ids: list[int]) -> QuerySet[StockMismatch]:
    return StockMismatch.objects.filter(variant_id=OuterRef("pk"), resolution=OPEN, channel_id__in=channel_ids)


def sku_list(*, filters: SkuFilters, channels: list[SalesChannel]) -> QuerySet[Variant]:
    """Variants with their stock totals at active locations (`on_hand_total`, `allocated_total`, `available`: for a
    bundle the kits its components make) and `open_mismatches` on the given channels, filtered and sorted."""
    channel_ids = [c.pk for c in channels]
    mismatches = _open_mismatches(channel_ids).order_by().values("variant_id").annotate(n=Count("pk")).values("n")[:1]
    qs = Variant.objects.select_related("product").annotate(
        on_hand_total=_level_total("on_hand"),
        allocated_total=_level_total("allocated"),
        available=Case(
            When(is_bundle=True, then=_kits()),
            default=F("on_hand_total") - F("allocated_total"),
            output_field=IntegerField(),
        ),
        open_mismatches=Coalesce(Subquery(mismatches, output_field=IntegerField()), Value(0)),
    )
    if filters.kind == "bundles":
        qs = qs.filter(is_bundle=True)
    elif filters.kind == "inactive":
        qs = qs.filter(active=False)
    elif filters.kind != "all":
        qs = qs.filter(active=True)
    if filters.stock == "low":
        qs = qs.filter(available__gt=0, available__lte=F("low_stock_threshold"))
    elif filters.stock == "out":
        qs = qs.filter(available__lte=0)
    elif filters.stock == "mismatched":
        qs = qs.filter(Exists(_open_mismatches(channel_ids)))
    term = filters.q.strip()
    if term:
        qs = qs.filter(
            Q(sku__istartswith=term) | Q(barcode=term) | Q(product__title__icontains=term) | Q(title__icontains=term)
        )
    return qs.order_by(*SKU_SORTS.get(filters.sort, SKU_SORTS["sku"]))


def sku_page(*, filters: SkuFilters, channels: list[SalesChannel], page: int, per_page: int) -> Page[Variant]:
    """One page of the SKU list; each variant carries `listed_on`, the visible channels that list it.

    Two queries whatever the page size: the page itself, and the listings of its variants.
    """
    channel_ids = [c.pk for c in channels]
    listings = ChannelListing.objects.filter(channel_id__in=channel_ids).only(
        "id", "variant_id", "channel_id", "paused"
    )
    qs = sku_list(filters=filters, channels=channels).prefetch_related(
        Prefetch("listings", queryset=listings, to_attr="visible_listings")
    )
    result = cast("Page[Variant]", paginate(qs, page=page, per_page=per_page))
    by_id = {c.pk: c for c in channels}
    for v in result.items:
        rows: list[ChannelListing] = getattr(v, "visible_listings", [])
        seen = sorted({row.channel_id for row in rows}, key=lambda pk: by_id[pk].name)
        v.listed_on = [by_id[pk] for pk in seen]  # type: ignore[attr-defined]
    return result


# ---------------------------------------------------------------------------------------------------------
# One SKU


@dataclass(frozen=True)
class ComponentRow:
    component: Variant
    quantity: int  # per kit
    available: int  # free units of the component
    kits: int  # whole kits those make


@dataclass(frozen=True)
class ListingRow:
    listing: ChannelListing
    would_show: int  # what the fan-out would push now


@dataclass
class SkuDetail:
    variant: Variant
    levels: list[StockLevel]
    on_hand: int
    allocated: int
    available: int  # bundles: whole kits from the components
    components: list[ComponentRow] = field(default_factory=list)
    part_of: list[BundleComponent] = field(default_factory=list)
    listings: list[ListingRow] = field(default_factory=list)
    mismatches: list[StockMismatch] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)

    @property
    def is_low(self) -> bool:
        return 0 < self.available <= self.variant.low_stock_threshold

    @property
    def is_out(self) -> bool:
        return self.available <= 0


def sku_get(*, pk: int) -> Variant:
    """The variant with its product; raises Variant.DoesNotExist."""
    return Variant.objects.select_related("product").get(pk=pk)


def sku_levels(*, variant: Variant) -> list[StockLevel]:
    """The variant's levels per location (active locations first, by allocation priority), with their bins."""
    return list(
        StockLevel.objects.filter(variant=variant)
        .select_related("location", "bin")
        .order_by("-location__active", "location__priority", "location__code")
    )


def sku_stock(*, variant: Variant) -> tuple[list[StockLevel], int, int, int]:
    """(levels, on hand, allocated, available) where the totals count active locations only, as allocation does."""
    levels = sku_levels(variant=variant)
    live = [lv for lv in levels if lv.location.active]
    on_hand = sum(lv.on_hand for lv in live)
    allocated = sum(lv.allocated for lv in live)
    available = available_for([variant.pk]).get(variant.pk, 0) if variant.is_bundle else on_hand - allocated
    return levels, on_hand, allocated, available


def sku_detail(*, pk: int, channels: list[SalesChannel]) -> SkuDetail:
    """Everything the SKU screen shows but the ledger (paged separately); raises Variant.DoesNotExist."""
    variant = sku_get(pk=pk)
    levels, on_hand, allocated, available = sku_stock(variant=variant)
    detail = SkuDetail(variant=variant, levels=levels, on_hand=on_hand, allocated=allocated, available=available)
    if variant.is_bundle:
        parts = list(BundleComponent.objects.filter(bundle=variant).select_related("component__product"))
        free = available_for(p.component_id for p in parts)
        detail.components = [
            ComponentRow(
                component=p.component,
                quantity=p.quantity,
                available=free.get(p.component_id, 0),
                kits=free.get(p.component_id, 0) // p.quantity,
            )
            for p in parts
        ]
    else:
        detail.part_of = list(
            BundleComponent.objects.filter(component=variant).select_related("bundle__product").order_by("bundle__sku")
        )
    by_id = {c.pk: c for c in channels}
    listings = list(ChannelListing.objects.filter(variant=variant, channel_id__in=list(by_id)))
    for listing in listings:
        listing.channel = by_id[listing.channel_id]
    shows = listing_quantities(listings) if listings else {}
    listings.sort(key=lambda row: (row.channel.name, row.pk))
    detail.listings = [ListingRow(listing=row, would_show=shows.get(row.pk, 0)) for row in listings]
    detail.mismatches = list(
        StockMismatch.objects.filter(variant=variant, resolution=OPEN, channel_id__in=list(by_id)).select_related(
            "channel"
        )
    )
    detail.allocations = sku_allocations(variant=variant)
    return detail


def sku_allocations(*, variant: Variant) -> list[Allocation]:
    """Units of the variant promised to open references (orders), oldest first."""
    return list(Allocation.objects.filter(variant=variant).select_related("location").order_by("created_at", "pk"))


def movement_page(*, variant: Variant, page: int, per_page: int) -> Page[StockMovement]:
    """The variant's ledger, newest first (the actor's label is stored on the row: no user join)."""
    qs = StockMovement.objects.filter(variant=variant).select_related("location").order_by("-created_at", "-id")
    return paginate(qs, page=page, per_page=per_page)


def active_locations() -> list[Location]:
    return list(Location.objects.filter(active=True).order_by("priority", "code"))


# ---------------------------------------------------------------------------------------------------------
# Stock-take


class ScanError(ValueError):
    """A scanned code that names no countable SKU; the message is for the person holding the scanner."""


def variant_for_scan(code: str) -> Variant:
    """The variant a scanned barcode or typed SKU names: an exact SKU first, then the barcode."""
    code = code.strip()
    if not code:
        raise ScanError("Nothing was scanned.")
    found = list(
        Variant.objects.filter(Q(sku__iexact=code) | Q(barcode=code)).select_related("product").order_by("pk")[:5]
    )
    by_sku = [v for v in found if v.sku.lower() == code.lower()]
    if by_sku:
        found = by_sku[:1]
    if not found:
        raise ScanError(f"Unknown barcode or SKU “{code}”: it is not in the catalog. Nothing was counted.")
    if len(found) > 1:
        skus = ", ".join(v.sku for v in found)
        raise ScanError(f"Barcode “{code}” is on several SKUs ({skus}): scan or type the SKU instead.")
    variant = found[0]
    if variant.is_bundle:
        raise ScanError(f"{variant.sku} is a bundle: it holds no stock of its own. Count its components instead.")
    return variant


@dataclass(frozen=True)
class CountRow:
    variant: Variant
    expected: int  # on hand at the location now
    counted: int

    @property
    def difference(self) -> int:
        return self.counted - self.expected


def count_sheet(*, location: Location, counted: Mapping[int, int]) -> list[CountRow]:
    """The counted SKUs of a stock-take with what the location holds of them now, in the order given."""
    ids = list(counted)
    if not ids:
        return []
    variants = {v.pk: v for v in Variant.objects.filter(pk__in=ids).select_related("product")}
    on_hand = dict(
        StockLevel.objects.filter(location=location, variant_id__in=ids).values_list("variant_id", "on_hand")
    )
    return [
        CountRow(variant=variants[pk], expected=on_hand.get(pk, 0), counted=counted[pk]) for pk in ids if pk in variants
    ]


# ---------------------------------------------------------------------------------------------------------
# Mismatches


@dataclass(frozen=True)
class MismatchFilters:
    channel_id: int | None = None
    kind: str = ""


def mismatch_list(*, channels: list[SalesChannel], filters: MismatchFilters) -> QuerySet[StockMismatch]:
    """Open mismatches on the given channels (the user's), newest first."""
    ids = [c.pk for c in channels]
    if filters.channel_id is not None:
        ids = [pk for pk in ids if pk == filters.channel_id]
    qs = StockMismatch.objects.filter(resolution=OPEN, channel_id__in=ids).select_related("variant__product", "listing")
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    return qs.order_by("-detected_at", "-id")


def mismatch_page(
    *, channels: list[SalesChannel], filters: MismatchFilters, page: int, per_page: int
) -> Page[StockMismatch]:
    result = paginate(mismatch_list(channels=channels, filters=filters), page=page, per_page=per_page)
    by_id = {c.pk: c for c in channels}
    for row in result.items:
        row.channel = by_id[row.channel_id]
    return result


def mismatch_get(*, pk: int, channels: Iterable[SalesChannel]) -> StockMismatch:
    """One mismatch of the user's channels, open or not; raises StockMismatch.DoesNotExist."""
    return StockMismatch.objects.select_related("channel", "variant").get(
        pk=pk, channel_id__in=[c.pk for c in channels]
    )

"""The catalog, stock levels per location, the movement ledger, allocations, channel listings and the outbox.

Levels change only through inventory.services, which writes a StockMovement and a StockChange (the fan-out
outbox) in the same transaction: the levels always equal the ledger's sum.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from oms.core.fields import money_field
from oms.core.models import SalesChannel


class Product(models.Model):
    title = models.CharField(max_length=255)
    vendor = models.CharField(max_length=120, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "id"]
        permissions = [
            ("import_catalog", "Can import and export the catalog"),
            ("view_stock", "Can see stock levels and movements"),
        ]

    def __str__(self) -> str:
        return self.title


class Variant(models.Model):
    """One sellable SKU. A bundle (kit) is a variant made of component variants; it holds no stock itself."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="variants")
    sku = models.CharField(max_length=100, unique=True)
    barcode = models.CharField(max_length=64, blank=True, db_index=True)
    title = models.CharField(max_length=255, blank=True, help_text="The variant's own title, e.g. 'Large / Red'")
    weight_grams = models.PositiveIntegerField(null=True, blank=True)
    hs_code = models.CharField("HS code", max_length=16, blank=True)
    cost_price = money_field(null=True, blank=True, default=None)
    sale_price = money_field(null=True, blank=True, default=None)
    low_stock_threshold = models.PositiveIntegerField(
        default=0, help_text="At or under this many available, a change jumps the fan-out queue and shows as low"
    )
    is_bundle = models.BooleanField(default=False, editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]
        permissions = [
            ("receive_stock", "Can receive stock"),
            ("adjust_stock", "Can adjust, transfer and count stock"),
        ]

    def __str__(self) -> str:
        return self.sku

    @property
    def display_title(self) -> str:
        own = self.title
        return f"{self.product.title} — {own}" if own else self.product.title


class BundleComponent(models.Model):
    bundle = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="components")
    component = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="used_in")
    quantity = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["bundle", "component"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "component"], name="bundle_component_once"),
            models.CheckConstraint(condition=~Q(bundle=F("component")), name="bundle_not_its_own_component"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="bundle_component_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.bundle_id}: {self.quantity} x {self.component_id}"


class Location(models.Model):
    """A warehouse or store room that holds stock. Allocation takes from lower `priority` first."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=120)
    priority = models.PositiveIntegerField(default=100)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["priority", "code"]

    def __str__(self) -> str:
        return self.name


class Bin(models.Model):
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="bins")
    code = models.CharField(max_length=32)

    class Meta:
        ordering = ["location", "code"]
        constraints = [models.UniqueConstraint(fields=["location", "code"], name="bin_once_per_location")]

    def __str__(self) -> str:
        return f"{self.location.code}/{self.code}"


class StockLevel(models.Model):
    """What a location holds of a variant: `on_hand` physically there, `allocated` promised to open orders."""

    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="levels")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="levels")
    bin = models.ForeignKey(Bin, null=True, blank=True, on_delete=models.SET_NULL, related_name="levels")
    on_hand = models.IntegerField(default=0)
    allocated = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["variant", "location"]
        constraints = [
            models.UniqueConstraint(fields=["variant", "location"], name="stock_level_once"),
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(allocated__gte=0), name="stock_allocated_not_negative"),
            models.CheckConstraint(condition=Q(allocated__lte=F("on_hand")), name="stock_allocated_within_on_hand"),
        ]

    def __str__(self) -> str:
        return f"{self.variant_id}@{self.location_id}: {self.on_hand} on hand, {self.allocated} allocated"

    @property
    def available(self) -> int:
        return self.on_hand - self.allocated


class MovementReason(models.TextChoices):
    SALE = "sale", "Sale (allocated)"
    CANCEL = "cancel", "Cancelled (released)"
    SHIP = "ship", "Shipped"
    RETURN = "return", "Returned"
    RECEIVE = "receive", "Received"
    ADJUST = "adjust", "Adjusted"
    TRANSFER = "transfer", "Transferred"
    COUNT = "count", "Stock-take"
    CORRECTION = "correction", "Correction"


class StockMovementQuerySet(models.QuerySet["StockMovement"]):
    def update(self, **kwargs: Any) -> int:
        raise TypeError("the stock ledger is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("the stock ledger is append-only")


class StockMovement(models.Model):
    """One change of one level, for ever: the sum of a level's movements is the level."""

    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="movements")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="movements")
    delta_on_hand = models.IntegerField(default=0)
    delta_allocated = models.IntegerField(default=0)
    reason = models.CharField(max_length=16, choices=MovementReason.choices)
    reference = models.CharField(max_length=100, blank=True, db_index=True, help_text="e.g. order:123")
    note = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = StockMovementQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["variant", "created_at"], name="stock_movement_variant_time")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(delta_on_hand=0, delta_allocated=0), name="stock_movement_changes_something"
            )
        ]

    def __str__(self) -> str:
        return f"{self.reason} {self.variant_id}@{self.location_id} {self.delta_on_hand:+}/{self.delta_allocated:+}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("the stock ledger is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("the stock ledger is append-only")


class Allocation(models.Model):
    """Units of a level promised to one line of a reference (an order); removed when released or shipped."""

    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="allocations")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="allocations")
    reference = models.CharField(max_length=100, help_text="e.g. order:123")
    line = models.CharField(max_length=64, help_text="The reference's line, e.g. an order line id")
    quantity = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["reference", "line", "variant", "location"], name="allocation_once"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="allocation_quantity_positive"),
        ]
        indexes = [models.Index(fields=["reference", "line"], name="allocation_reference")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.variant_id}@{self.location_id} for {self.reference}/{self.line}"


class StockChange(models.Model):
    """The fan-out outbox: a variant's availability changed. Written with the change, consumed by the relay."""

    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="+")
    urgent = models.BooleanField(default=False, help_text="Down to zero or under the low-stock line")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.variant_id}{' (urgent)' if self.urgent else ''}"


class ChannelListing(models.Model):
    """A variant as one channel lists it: the channel's ids, what it may show, and what we last pushed and saw."""

    channel = models.ForeignKey(SalesChannel, on_delete=models.CASCADE, related_name="listings")
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="listings")
    external_id = models.CharField(
        max_length=191, help_text="The channel's id of the stocked thing (Shopify inventory item)"
    )
    external_ids = models.JSONField(default=dict, blank=True, help_text="Every id the adapter needs")
    channel_sku = models.CharField(max_length=100, blank=True, help_text="The SKU as the channel shows it")
    # Rules for what the channel may show.
    buffer = models.PositiveIntegerField(default=0, help_text="Units held back from this channel")
    maximum = models.PositiveIntegerField(null=True, blank=True, help_text="Never show more than this")
    percentage = models.PositiveSmallIntegerField(default=100, help_text="Share of available to show (0-100)")
    exclusive = models.BooleanField(default=False, help_text="Only this channel sells it; others show 0")
    paused = models.BooleanField(default=False, help_text="Do not push stock to this listing")
    # The fan-out's state.
    push_pending = models.BooleanField(default=False)
    push_urgent = models.BooleanField(default=False)
    push_seq = models.PositiveBigIntegerField(default=0, help_text="Bumped on every change; a push clears its own")
    pending_since = models.DateTimeField(null=True, blank=True)
    last_pushed_quantity = models.IntegerField(null=True, blank=True)
    last_pushed_at = models.DateTimeField(null=True, blank=True)
    last_seen_quantity = models.IntegerField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    push_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["channel", "variant"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="listing_once_per_channel"),
            models.CheckConstraint(condition=Q(percentage__lte=100), name="listing_percentage_at_most_100"),
        ]
        indexes = [
            models.Index(fields=["channel", "push_pending", "push_urgent"], name="listing_push_queue"),
            models.Index(fields=["channel", "variant"], name="listing_channel_variant"),
            models.Index(fields=["last_seen_at"], name="listing_last_seen"),
        ]

    def __str__(self) -> str:
        return f"{self.variant_id} on {self.channel_id} ({self.external_id})"


class ReconcileRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    channel = models.ForeignKey(SalesChannel, on_delete=models.CASCADE, related_name="reconcile_runs")
    trigger = models.CharField(max_length=32, default="schedule")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    pages = models.PositiveIntegerField(default=0)
    listings_seen = models.PositiveIntegerField(default=0)
    mismatches = models.PositiveIntegerField(default=0)
    corrected = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    summary = models.JSONField(
        default=dict, blank=True, help_text="Counts by kind, listings linked, refusals, API time (services_reconcile)"
    )

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"reconcile {self.channel_id} {self.started_at:%Y-%m-%d %H:%M}"


class MismatchKind(models.TextChoices):
    QUANTITY_DRIFT = "quantity_drift", "Quantity drift"
    UNKNOWN_SKU = "unknown_sku", "SKU on the channel unknown to the master"
    NOT_LISTED = "not_listed", "Master SKU not listed on the channel"
    DUPLICATE_SKU = "duplicate_sku", "SKU listed more than once"


class StockMismatch(models.Model):
    """One disagreement between a channel and the master, found by reconciliation or an inventory webhook."""

    class Resolution(models.TextChoices):
        OPEN = "", "Open"
        CORRECTED = "corrected", "Channel corrected from the master"
        ACCEPTED = "accepted", "Channel's value accepted as an adjustment"
        DISMISSED = "dismissed", "Dismissed"
        GONE = "gone", "No longer seen"

    channel = models.ForeignKey(SalesChannel, on_delete=models.CASCADE, related_name="stock_mismatches")
    run = models.ForeignKey(ReconcileRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="found")
    kind = models.CharField(max_length=20, choices=MismatchKind.choices)
    listing = models.ForeignKey(ChannelListing, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    variant = models.ForeignKey(Variant, null=True, blank=True, on_delete=models.CASCADE, related_name="mismatches")
    sku = models.CharField(max_length=100, blank=True)
    external_id = models.CharField(max_length=191, blank=True)
    master_quantity = models.IntegerField(null=True, blank=True, help_text="What the channel should show")
    channel_quantity = models.IntegerField(null=True, blank=True)
    last_pushed_quantity = models.IntegerField(null=True, blank=True)
    source = models.CharField(max_length=32, default="reconcile", help_text="reconcile or webhook")
    detected_at = models.DateTimeField(auto_now_add=True)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, default=Resolution.OPEN, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=255, blank=True, help_text="Why it was left open, or the staff's note")

    class Meta:
        ordering = ["-detected_at", "-id"]
        indexes = [models.Index(fields=["channel", "resolution", "kind"], name="mismatch_open")]
        verbose_name_plural = "stock mismatches"

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.sku or self.external_id} on {self.channel_id}"


class CatalogImport(models.Model):
    """One uploaded catalog file: checked first (a dry run that writes nothing), then imported on confirmation.

    Both steps run as jobs on the "low" queue; their live progress is in the cache (inventory.services_catalog),
    since the import's own transaction hides its writes until it commits.
    """

    class Status(models.TextChoices):
        CHECKING = "checking", "Checking"
        CHECKED = "checked", "Ready to import"
        INVALID = "invalid", "Has errors"
        QUEUED = "queued", "Queued"
        IMPORTING = "importing", "Importing"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed, nothing imported"

    file_name = models.CharField(max_length=255)
    file_format = models.CharField(max_length=8)
    content = models.BinaryField(editable=False, help_text="The uploaded file, zlib-compressed")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CHECKING)
    rows = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first row errors: row, column, message")
    summary = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"


class CatalogExport(models.Model):
    """One export of the whole catalog into a file in the default storage (local media, S3 in production).

    Written by a job on the "low" queue (inventory.services_catalog_export), which keeps its live row count in
    the cache; the record and its file are deleted after a week by a daily job.
    """

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "XLSX"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    file_format = models.CharField(max_length=8, choices=Format.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    rows = models.PositiveIntegerField(default=0, help_text="Variants written")
    file = models.FileField(upload_to="exports/catalog/", max_length=255, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"catalog export {self.pk} ({self.file_format}, {self.get_status_display()})"

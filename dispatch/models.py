"""Dispatch: packing sessions and scans, batches, carrier accounts and rules, shipments and parcels, printers
and print jobs, tracking events and manifests."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from carriers.base import LabelFormat
from inventory.models import Variant
from oms.core.fields import EncryptedJSONField, EncryptedTextField
from oms.core.models import SalesChannel
from oms.orders.models import Order, OrderLine


class PackingStation(models.Model):
    """A packing bench: where its labels and slips print."""

    name = models.CharField(max_length=80, unique=True)
    label_printer = models.ForeignKey(
        "Printer", null=True, blank=True, on_delete=models.SET_NULL, related_name="label_stations"
    )
    document_printer = models.ForeignKey(
        "Printer",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="document_stations",
        help_text="Packing slips; the label printer when empty",
    )
    slip_page = models.CharField(max_length=8, choices=[("a4", "A4"), ("4x6", "4x6 in")], default="a4")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PrinterKind(models.TextChoices):
    PRINTNODE = "printnode", "Cloud printer (PrintNode)"
    ESCPOS = "escpos", "Thermal printer (ESC/POS over TCP)"


class Printer(models.Model):
    name = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=16, choices=PrinterKind.choices)
    # PrintNode
    printnode_printer_id = models.PositiveBigIntegerField(null=True, blank=True)
    api_key = EncryptedTextField(blank=True, help_text="PrintNode API key (stored encrypted)")
    api_base_url = models.URLField(blank=True, help_text="Leave empty for api.printnode.com")
    # ESC/POS
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(default=9100)
    takes_zpl = models.BooleanField(default=False, help_text="A label printer that prints raw ZPL")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CarrierAccount(models.Model):
    """One contract with one carrier: credentials, sender address and preferred label format."""

    name = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=32, help_text="The carrier adapter (carriers.registry)")
    api_base_url = models.URLField(blank=True)
    credentials = EncryptedJSONField(blank=True)
    options = models.JSONField(default=dict, blank=True)
    label_format = models.CharField(max_length=8, choices=[(f.value, f.name) for f in LabelFormat], default="pdf")
    default_service = models.CharField(max_length=64, blank=True)
    tracking_url_template = models.CharField(
        max_length=255, blank=True, help_text="e.g. https://tools.usps.com/go/TrackConfirmAction?tLabels={number}"
    )
    sender_name = models.CharField(max_length=200)
    sender_company = models.CharField(max_length=200, blank=True)
    sender_line1 = models.CharField(max_length=255)
    sender_line2 = models.CharField(max_length=255, blank=True)
    sender_city = models.CharField(max_length=120)
    sender_region = models.CharField(max_length=120, blank=True)
    sender_postal_code = models.CharField(max_length=20)
    sender_country = models.CharField(max_length=2)
    sender_phone = models.CharField(max_length=30, blank=True)
    sender_email = models.EmailField(blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ShippingRule(models.Model):
    """Which carrier and service an order ships with: the first active rule (lowest priority) that matches."""

    name = models.CharField(max_length=120)
    priority = models.PositiveIntegerField(default=100)
    carrier_account = models.ForeignKey(CarrierAccount, on_delete=models.CASCADE, related_name="rules")
    service = models.CharField(max_length=64, blank=True, help_text="Empty: the account's default service")
    countries = models.JSONField(default=list, blank=True, help_text="ISO codes; empty: any country")
    min_weight_grams = models.PositiveIntegerField(null=True, blank=True)
    max_weight_grams = models.PositiveIntegerField(null=True, blank=True)
    service_levels = models.JSONField(default=list, blank=True, help_text="Order service levels; empty: any")
    channel = models.ForeignKey(SalesChannel, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    cod = models.BooleanField(null=True, blank=True, help_text="Only cash-on-delivery (yes), never (no), or any")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["priority", "pk"]

    def __str__(self) -> str:
        return self.name


class PackSession(models.Model):
    """One packer holding one order: from "next order" until packed, released, or expired back to the queue."""

    class Outcome(models.TextChoices):
        OPEN = "open", "Packing"
        PACKED = "packed", "Packed"
        RELEASED = "released", "Put back"
        EXPIRED = "expired", "Timed out"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="pack_sessions")
    packer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="pack_sessions")
    station = models.ForeignKey(PackingStation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.OPEN)
    started_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    override_reason = models.TextField(blank=True, help_text="Why a manager let it pass without every scan")
    override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The order's id while the session is open, NULL after: MariaDB has no partial unique index, and a
    # unique column that is NULL when closed gives the same guarantee: one open session per order.
    open_key = models.PositiveBigIntegerField(null=True, blank=True, unique=True, editable=False)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["outcome", "expires_at"], name="pack_session_expiry"),
            models.Index(fields=["packer", "outcome"], name="pack_session_packer"),
        ]
        permissions = [
            ("pack_orders", "Can pack orders"),
            ("override_pack_check", "Can let an order pass without every scan"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} by {self.packer_id}"


class ScanResult(models.TextChoices):
    OK = "ok", "Right item"
    WRONG_SKU = "wrong_sku", "Not in this order"
    EXTRA = "extra", "One too many"
    UNKNOWN = "unknown", "Unknown barcode"


class PackScan(models.Model):
    """Every barcode a packer scanned, right or wrong: the audit trail of the pack check."""

    session = models.ForeignKey(PackSession, on_delete=models.CASCADE, related_name="scans")
    barcode = models.CharField(max_length=128)
    result = models.CharField(max_length=10, choices=ScanResult.choices)
    variant = models.ForeignKey(Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    line = models.ForeignKey(OrderLine, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.barcode}: {self.result}"


class Batch(models.Model):
    class Kind(models.TextChoices):
        CARRIER = "carrier", "By carrier"
        SINGLE_ITEM = "single_item", "Single-item orders"
        MANUAL = "manual", "Chosen by hand"

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    carrier_account = models.ForeignKey(CarrierAccount, null=True, blank=True, on_delete=models.SET_NULL)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"
        permissions = [("manage_batches", "Can group orders into batches and print pick lists")]

    def __str__(self) -> str:
        return self.name


class BatchOrder(models.Model):
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="members")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order"], name="order_in_one_batch")]

    def __str__(self) -> str:
        return f"order {self.order_id} in batch {self.batch_id}"


class ShipmentStatus(models.TextChoices):
    DRAFT = "draft", "To book"
    BUYING = "buying", "Booking with the carrier"
    BOUGHT = "bought", "Label bought"
    FAILED = "failed", "Carrier refused"
    UNKNOWN = "unknown", "Outcome unknown: check with the carrier"
    VOIDED = "voided", "Voided"


class Shipment(models.Model):
    """One purchase attempt of a label for an order; `purchase_key` is what makes a retry never buy twice."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="shipments")
    carrier_account = models.ForeignKey(CarrierAccount, on_delete=models.PROTECT, related_name="shipments")
    service = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=ShipmentStatus.choices, default=ShipmentStatus.DRAFT)
    purchase_key = models.CharField(max_length=64, unique=True)
    # The order's id while this shipment is live (to book, booking, bought or unknown), NULL once voided or
    # refused: at most one live purchase per order, enforced by a unique index (MariaDB has no partial ones).
    live_key = models.PositiveBigIntegerField(null=True, blank=True, unique=True, editable=False)
    station = models.ForeignKey(PackingStation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    attempts = models.PositiveIntegerField(default=0)
    attempt_started_at = models.DateTimeField(null=True, blank=True, help_text="When the last carrier call began")
    errors = models.JSONField(default=list, blank=True, help_text="The carrier's reasons, as the packer saw them")
    carrier_shipment_id = models.CharField(max_length=100, blank=True)
    cost = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    label_format = models.CharField(max_length=8, default="pdf")
    raw = models.JSONField(default=dict, blank=True)
    pickup_point_id = models.CharField(max_length=64, blank=True)
    cod_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    tracking_status = models.CharField(max_length=24, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    channel_synced_at = models.DateTimeField(null=True, blank=True)
    channel_sync_error = models.TextField(blank=True)
    channel_sync_attempts = models.PositiveIntegerField(default=0)
    shipped_email_at = models.DateTimeField(null=True, blank=True)
    delivered_email_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    bought_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "delivered_at", "last_polled_at"], name="shipment_tracking_due"),
            models.Index(fields=["carrier_account", "bought_at"], name="shipment_manifest"),
        ]
        permissions = [("void_shipment", "Can void labels"), ("reprint_documents", "Can reprint labels and slips")]

    def __str__(self) -> str:
        return f"shipment {self.pk} of order {self.order_id}"


class ShipmentParcel(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="parcels")
    position = models.PositiveSmallIntegerField()
    weight_grams = models.PositiveIntegerField()
    length_cm = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    width_cm = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    height_cm = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    tracking_number = models.CharField(max_length=64, blank=True, db_index=True)
    label = models.FileField(upload_to="labels/%Y/%m/%d/", blank=True, max_length=255)

    class Meta:
        ordering = ["shipment", "position"]
        constraints = [models.UniqueConstraint(fields=["shipment", "position"], name="parcel_position_once")]

    def __str__(self) -> str:
        return self.tracking_number or f"parcel {self.position + 1} of shipment {self.shipment_id}"


class ShipmentEvent(models.Model):
    """The audit trail of a shipment: booked, refused, voided, printed, written back, tracking events."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32)
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)
    actor_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class TrackingEvent(models.Model):
    """One event a carrier reported for one parcel; the same event reported twice is stored once."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="tracking_events")
    tracking_number = models.CharField(max_length=64)
    status = models.CharField(max_length=24)
    code = models.CharField(max_length=32, blank=True)
    description = models.CharField(max_length=255)
    location = models.CharField(max_length=255, blank=True)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["tracking_number", "occurred_at", "status", "code"], name="tracking_event_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tracking_number} {self.status} at {self.occurred_at:%Y-%m-%d %H:%M}"


class Document(models.Model):
    """A stored PDF or label: what a print job prints, and what a packer downloads when the printer is down."""

    class Kind(models.TextChoices):
        LABEL = "label", "Shipping label"
        PACKING_SLIP = "slip", "Packing slip"
        PICK_LIST = "pick_list", "Pick list"
        MANIFEST = "manifest", "Manifest"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    title = models.CharField(max_length=200)
    file = models.FileField(upload_to="documents/%Y/%m/%d/", max_length=255)
    content_type = models.CharField(max_length=40)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    shipment = models.ForeignKey(Shipment, null=True, blank=True, on_delete=models.CASCADE, related_name="documents")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


class PrintJob(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent to the printer"
        DONE = "done", "Printed"
        FAILED = "failed", "Failed"

    station = models.ForeignKey(PackingStation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    printer = models.ForeignKey(Printer, on_delete=models.PROTECT, related_name="jobs")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="print_jobs")
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    external_id = models.CharField(max_length=64, blank=True, help_text="The cloud printer's job id")
    reprint_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=255, blank=True, help_text="Why it was printed again")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "created_at"], name="print_job_state")]

    def __str__(self) -> str:
        return f"print job {self.pk} ({self.state})"


class Manifest(models.Model):
    """The parcels handed to one carrier on one day, as a signed-off PDF."""

    carrier_account = models.ForeignKey(CarrierAccount, on_delete=models.PROTECT, related_name="manifests")
    day = models.DateField()
    parcels = models.PositiveIntegerField()
    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day", "carrier_account"]

    def __str__(self) -> str:
        return f"{self.carrier_account} {self.day}"

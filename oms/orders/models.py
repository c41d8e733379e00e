"""Customers (the CRM record), addresses, orders, lines, holds, the order timeline and backfill runs."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from oms.core.fields import money_field
from oms.core.models import SalesChannel


class Customer(models.Model):
    """One person across every channel: matched by the channel's customer id, then e-mail, then phone."""

    first_name = models.CharField(max_length=120, blank=True)
    last_name = models.CharField(max_length=120, blank=True)
    email = models.EmailField(max_length=254, null=True, blank=True, unique=True)  # lower-cased; NULL if none
    phone = models.CharField(max_length=20, blank=True, db_index=True, help_text="E.164")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["last_name", "first_name"], name="customer_name")]

    def __str__(self) -> str:
        return self.full_name or self.email or self.phone or f"Customer {self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class CustomerIdentity(models.Model):
    """The customer's id on one channel."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    channel = models.ForeignKey(SalesChannel, on_delete=models.PROTECT, related_name="+")
    external_id = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="customer_identity_once_per_channel")
        ]
        verbose_name_plural = "customer identities"

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.external_id}"


class CustomerNote(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.body[:60]


class Address(models.Model):
    """A normalised postal address; immutable once stored (orders point at it), deduplicated per customer."""

    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="addresses")
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the normalised fields")
    name = models.CharField(max_length=200, blank=True)
    company = models.CharField(max_length=200, blank=True)
    line1 = models.CharField(max_length=255, blank=True)
    line2 = models.CharField(max_length=255, blank=True)
    city = models.CharField(max_length=120, blank=True)
    region = models.CharField(max_length=120, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    phone = models.CharField(max_length=20, blank=True, help_text="E.164 when it could be parsed")
    problems = models.JSONField(default=list, blank=True, help_text="Why validation failed, if it did")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "fingerprint"], name="address_once_per_customer")]
        verbose_name_plural = "addresses"

    def __str__(self) -> str:
        return ", ".join(p for p in (self.name, self.line1, self.city, self.postal_code, self.country) if p)

    @property
    def is_valid(self) -> bool:
        return not self.problems


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "Pending payment"
    READY = "ready", "Ready"
    ON_HOLD = "on_hold", "On hold"
    PICKING = "picking", "Picking"
    PACKED = "packed", "Packed"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    CANCELLED = "cancelled", "Cancelled"
    RETURNED = "returned", "Returned"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    AUTHORIZED = "authorized", "Authorized"
    PAID = "paid", "Paid"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded", "Refunded"
    VOIDED = "voided", "Voided"
    COD = "cod", "Cash on delivery"


class ServiceLevel(models.IntegerChoices):
    """How fast the customer paid to get it: the packing queue takes lower numbers first on the same ship-by day."""

    EXPRESS = 0, "Express / next day"
    PRIORITY = 1, "Priority"
    STANDARD = 2, "Standard"
    ECONOMY = 3, "Economy"


# Words in a channel's shipping method that name its speed; the first match wins, in this order.
SERVICE_LEVEL_WORDS: tuple[tuple[ServiceLevel, tuple[str, ...]], ...] = (
    (ServiceLevel.EXPRESS, ("express", "overnight", "next day", "next-day", "same day", "1-day", "expedited")),
    (ServiceLevel.PRIORITY, ("priority", "2-day", "two day", "fast")),
    (ServiceLevel.ECONOMY, ("economy", "saver", "untracked", "free shipping", "media mail")),
)


def service_level_for(shipping_method: str) -> ServiceLevel:
    method = shipping_method.lower()
    for level, words in SERVICE_LEVEL_WORDS:
        if any(word in method for word in words):
            return level
    return ServiceLevel.STANDARD


class HoldReason(models.TextChoices):
    UNKNOWN_SKU = "unknown_sku", "Unknown SKU"
    INSUFFICIENT_STOCK = "insufficient_stock", "Insufficient stock"
    ADDRESS_INVALID = "address_invalid", "Address invalid"
    MANUAL = "manual", "Manual"
    PAYMENT_REVIEW = "payment_review", "Payment review"


class Order(models.Model):
    """One order from one channel, stored exactly once: (channel, external_id) is unique."""

    channel = models.ForeignKey(SalesChannel, on_delete=models.PROTECT, related_name="orders")
    external_id = models.CharField(max_length=64)
    number = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT)
    payment_status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="orders")
    email = models.EmailField(max_length=254, blank=True, db_index=True)
    phone = models.CharField(max_length=20, blank=True)
    shipping_address = models.ForeignKey(Address, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    billing_address = models.ForeignKey(Address, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    subtotal = money_field()
    total_tax = money_field()
    shipping_total = money_field()
    discount_total = money_field()
    total = money_field()
    shipping_method = models.CharField(max_length=120, blank=True)
    service_level = models.PositiveSmallIntegerField(choices=ServiceLevel.choices, default=ServiceLevel.STANDARD)
    placed_at = models.DateTimeField()
    channel_updated_at = models.DateTimeField(help_text="The channel's own modification time of what we hold")
    ship_by = models.DateField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True, help_text="The customer's note")
    tags = models.JSONField(default=list, blank=True)
    is_test = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="order_once_per_channel"),
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative"),
        ]
        indexes = [
            models.Index(fields=["placed_at", "id"], name="order_placed"),
            models.Index(fields=["status", "placed_at"], name="order_status_placed"),
            models.Index(fields=["channel", "placed_at"], name="order_channel_placed"),
            models.Index(fields=["channel", "status"], name="order_channel_status"),
            models.Index(fields=["total", "id"], name="order_total"),
            # The packing queue: "next order" walks this index and skips rows other packers hold.
            models.Index(fields=["status", "ship_by", "service_level", "placed_at", "id"], name="order_pack_queue"),
        ]
        permissions = [
            ("view_dashboard", "Can see the operations dashboard"),
            ("hold_order", "Can put orders on hold"),
            ("release_order", "Can release held orders"),
            ("cancel_order", "Can cancel orders"),
            ("export_orders", "Can export orders"),
            ("view_packing_queue", "Can see the packing queue"),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.channel_id})"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    external_id = models.CharField(max_length=64)
    sku = models.CharField(max_length=100, blank=True, db_index=True)
    title = models.CharField(max_length=255)
    variant_title = models.CharField(max_length=255, blank=True)
    quantity = models.PositiveIntegerField()
    unit_price = money_field()
    tax = money_field()
    discount = money_field()
    requires_shipping = models.BooleanField(default=True)
    external_variant_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "external_id"], name="order_line_once_per_order"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku or self.title}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity - self.discount


class OrderHold(models.Model):
    """A reason an order may not move on; the order is on_hold while any hold is unreleased."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="holds")
    reason = models.CharField(max_length=32, choices=HoldReason.choices)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    release_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["released_at", "reason"], name="order_hold_open_reason")]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} on {self.order_id}"


class OrderEvent(models.Model):
    """The order's timeline as staff read it: intake, updates, transitions, holds, notes."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40)
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)
    actor_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["order", "created_at"], name="order_event_time")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class SyncRun(models.Model):
    """One backfill run of a channel's orders: when, how much, and what went wrong."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Finished with errors"
        FAILED = "failed", "Failed"

    channel = models.ForeignKey(SalesChannel, on_delete=models.PROTECT, related_name="sync_runs")
    trigger = models.CharField(max_length=40, help_text="schedule, command, button")
    since = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    pages = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveIntegerField(default=0)
    records = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["channel", "started_at"], name="sync_run_channel_time")]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.started_at:%Y-%m-%d %H:%M} {self.status}"

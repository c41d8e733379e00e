"""Admin for the order domain and for sales channels (whose form needs the adapter registry)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from guardian.admin import GuardedModelAdmin

from channels_adapters.registry import kind_choices
from oms.core.models import SalesChannel
from oms.core.services import channel_end_secret_rotation, channel_save_edited
from oms.orders.models import (
    Address,
    Customer,
    CustomerIdentity,
    CustomerNote,
    Order,
    OrderEvent,
    OrderHold,
    OrderLine,
    SyncRun,
)


class SalesChannelForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=kind_choices)
    api_base_url = forms.URLField(required=False, max_length=300, assume_scheme="https")
    new_credentials = forms.JSONField(
        required=False,
        help_text='Secret credentials to set, e.g. {"access_token": "shpat_..."}; stored encrypted. '
        "Leave empty to keep the current ones.",
    )
    new_webhook_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="Setting a new secret keeps the old one as previous until rotation ends.",
    )

    class Meta:
        model = SalesChannel
        fields = (
            "kind",
            "name",
            "slug",
            "active",
            "api_base_url",
            "options",
            "backfill_every_minutes",
            "orders_synced_until",
        )

    def clean_new_credentials(self) -> dict[str, str]:
        value = self.cleaned_data.get("new_credentials") or {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise forms.ValidationError("credentials must be a JSON object of strings")
        return value


@admin.register(SalesChannel)
class SalesChannelAdmin(GuardedModelAdmin):
    form = SalesChannelForm
    list_display = ("name", "slug", "kind", "active", "orders_synced_until", "updated_at")
    list_filter = ("kind", "active")
    search_fields = ("name", "slug")
    readonly_fields = (
        "credential_names",
        "webhook_secret_set",
        "previous_secret_set",
        "created_at",
        "updated_at",
    )
    actions = ("end_secret_rotation",)

    @admin.display(description="credentials")
    def credential_names(self, obj: SalesChannel) -> str:
        return ", ".join(sorted(obj.credentials)) or "-"

    @admin.display(boolean=True)
    def webhook_secret_set(self, obj: SalesChannel) -> bool:
        return bool(obj.webhook_secret)

    @admin.display(boolean=True)
    def previous_secret_set(self, obj: SalesChannel) -> bool:
        return bool(obj.webhook_secret_previous)

    def save_model(self, request: HttpRequest, obj: SalesChannel, form: Any, change: bool) -> None:
        channel_save_edited(
            channel=obj,
            credentials=form.cleaned_data.get("new_credentials") or {},
            webhook_secret=form.cleaned_data.get("new_webhook_secret") or None,
            actor=request.user,
        )

    @admin.action(description="Stop accepting the previous webhook secret")
    def end_secret_rotation(self, request: HttpRequest, queryset: QuerySet[SalesChannel]) -> None:
        for channel in queryset:
            channel_end_secret_rotation(channel=channel, actor=request.user)
        messages.success(request, f"Rotation ended for {queryset.count()} channel(s).")


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    fields = (
        "sku",
        "title",
        "variant_title",
        "quantity",
        "unit_price",
        "tax",
        "discount",
        "requires_shipping",
    )
    readonly_fields = fields
    can_delete = False


class OrderHoldInline(admin.TabularInline):
    model = OrderHold
    extra = 0
    fields = ("reason", "note", "created_at", "released_at", "release_note")
    readonly_fields = fields
    can_delete = False


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    extra = 0
    fields = ("created_at", "kind", "message", "actor_label")
    readonly_fields = fields
    can_delete = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    """Orders change only through the services (state table, audit): the admin shows them read-only."""

    list_display = (
        "number",
        "channel",
        "status",
        "payment_status",
        "total",
        "currency",
        "placed_at",
        "customer",
    )
    list_filter = ("status", "payment_status", "channel", "currency", "is_test")
    search_fields = ("number", "external_id", "email", "customer__last_name", "lines__sku")
    date_hierarchy = "placed_at"
    list_select_related = ("channel", "customer")
    raw_id_fields = ("customer", "shipping_address", "billing_address")
    inlines = (OrderLineInline, OrderHoldInline, OrderEventInline)
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Order._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(OrderLine)
class OrderLineAdmin(admin.ModelAdmin):
    list_display = ("order", "sku", "title", "quantity", "unit_price")
    search_fields = ("sku", "title", "order__number")
    list_select_related = ("order",)
    raw_id_fields = ("order",)
    show_full_result_count = False


class CustomerIdentityInline(admin.TabularInline):
    model = CustomerIdentity
    extra = 0


class CustomerNoteInline(admin.TabularInline):
    model = CustomerNote
    extra = 0
    readonly_fields = ("author", "created_at")


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("__str__", "email", "phone", "created_at")
    search_fields = ("email", "phone", "first_name", "last_name")
    inlines = (CustomerIdentityInline, CustomerNoteInline)
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(Address)
class AddressAdmin(admin.ModelAdmin):
    list_display = ("__str__", "country", "postal_code", "customer")
    list_filter = ("country",)
    search_fields = ("name", "line1", "city", "postal_code", "customer__email")
    raw_id_fields = ("customer",)
    readonly_fields = ("fingerprint", "problems")


@admin.register(CustomerIdentity)
class CustomerIdentityAdmin(admin.ModelAdmin):
    list_display = ("customer", "channel", "external_id")
    list_filter = ("channel",)
    search_fields = ("external_id", "customer__email")
    raw_id_fields = ("customer",)


@admin.register(CustomerNote)
class CustomerNoteAdmin(admin.ModelAdmin):
    list_display = ("customer", "author", "created_at", "__str__")
    search_fields = ("body", "customer__email")
    raw_id_fields = ("customer",)


@admin.register(OrderHold)
class OrderHoldAdmin(admin.ModelAdmin):
    list_display = ("order", "reason", "created_at", "released_at")
    list_filter = ("reason", ("released_at", admin.EmptyFieldListFilter))
    search_fields = ("order__number", "note")
    raw_id_fields = ("order",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in OrderHold._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(OrderEvent)
class OrderEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "order", "kind", "message", "actor_label")
    list_filter = ("kind",)
    search_fields = ("order__number", "message")
    raw_id_fields = ("order",)
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in OrderEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = (
        "channel",
        "trigger",
        "status",
        "started_at",
        "finished_at",
        "pages",
        "records",
        "error_count",
    )
    list_filter = ("status", "channel", "trigger")
    date_hierarchy = "started_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in SyncRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

"""Admin of dispatch: stations, printers, carrier accounts and shipping rules are set up here; batches, shipments,
print jobs, pack sessions and manifests are records of what happened and are shown read-only.

Secrets are write-only: a printer's API key and a carrier account's credentials are never shown back, only
whether they are set (and the credential names); a new value replaces the stored one.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from carriers.registry import kind_choices
from dispatch.models import (
    Batch,
    BatchOrder,
    CarrierAccount,
    Document,
    Manifest,
    PackingStation,
    PackScan,
    PackSession,
    Printer,
    PrintJob,
    Shipment,
    ShipmentEvent,
    ShipmentParcel,
    ShippingRule,
    TrackingEvent,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record of what happened: it changes only through the dispatch services, never by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# ---------------------------------------------------------------------------------------------------------
# Set-up: stations, printers, carriers, rules


@admin.register(PackingStation)
class PackingStationAdmin(admin.ModelAdmin):
    list_display = ("name", "label_printer", "document_printer", "slip_page", "active")
    list_filter = ("active", "slip_page")
    search_fields = ("name",)
    autocomplete_fields = ("label_printer", "document_printer")


class PrinterForm(forms.ModelForm):
    api_base_url = forms.URLField(
        required=False, max_length=200, assume_scheme="https", help_text="Leave empty for api.printnode.com"
    )
    new_api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        label="New API key",
        help_text="PrintNode API key, stored encrypted and never shown again. Leave empty to keep the current one.",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored API key")

    class Meta:
        model = Printer
        fields = (
            "name",
            "kind",
            "active",
            "printnode_printer_id",
            "api_base_url",
            "host",
            "port",
            "takes_zpl",
        )


@admin.register(Printer)
class PrinterAdmin(admin.ModelAdmin):
    form = PrinterForm
    list_display = ("name", "kind", "host", "port", "printnode_printer_id", "takes_zpl", "active", "api_key_set")
    list_filter = ("kind", "active")
    search_fields = ("name", "host")
    readonly_fields = ("api_key_set",)

    @admin.display(boolean=True, description="API key set")
    def api_key_set(self, obj: Printer) -> bool:
        return bool(obj.api_key)

    def save_model(self, request: HttpRequest, obj: Printer, form: Any, change: bool) -> None:
        new_key = (form.cleaned_data.get("new_api_key") or "").strip()
        if new_key:
            obj.api_key = new_key
        elif form.cleaned_data.get("clear_api_key"):
            obj.api_key = ""
        super().save_model(request, obj, form, change)


class CarrierAccountForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=(), help_text="The carrier adapter")
    api_base_url = forms.URLField(
        required=False, max_length=200, assume_scheme="https", help_text="Empty: the carrier's production API"
    )
    new_credentials = forms.JSONField(
        required=False,
        label="New credentials",
        help_text='Secret credentials to set, e.g. {"client_id": "...", "client_secret": "..."}; stored encrypted '
        "and never shown again. Leave empty to keep the current ones.",
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
    )

    class Meta:
        model = CarrierAccount
        fields = (
            "name",
            "kind",
            "active",
            "api_base_url",
            "options",
            "label_format",
            "default_service",
            "tracking_url_template",
            "sender_name",
            "sender_company",
            "sender_line1",
            "sender_line2",
            "sender_city",
            "sender_region",
            "sender_postal_code",
            "sender_country",
            "sender_phone",
            "sender_email",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = list(kind_choices())
        current = self.instance.kind if self.instance and self.instance.pk else ""
        if current and current not in {kind for kind, _ in choices}:
            choices.append((current, f"{current} (no adapter installed)"))
        self.fields["kind"].choices = choices  # type: ignore[attr-defined]

    def clean_new_credentials(self) -> dict[str, str]:
        value = self.cleaned_data.get("new_credentials") or {}
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise forms.ValidationError("credentials must be a JSON object of strings")
        return value


@admin.register(CarrierAccount)
class CarrierAccountAdmin(admin.ModelAdmin):
    form = CarrierAccountForm
    list_display = ("name", "kind", "default_service", "label_format", "sender_country", "active", "credential_names")
    list_filter = ("kind", "active", "label_format")
    search_fields = ("name", "sender_name", "sender_company")
    readonly_fields = ("credential_names",)

    @admin.display(description="credentials")
    def credential_names(self, obj: CarrierAccount) -> str:
        return ", ".join(sorted(obj.credentials)) or "-"

    def save_model(self, request: HttpRequest, obj: CarrierAccount, form: Any, change: bool) -> None:
        new = form.cleaned_data.get("new_credentials") or {}
        if new:
            obj.credentials = new
        super().save_model(request, obj, form, change)


@admin.register(ShippingRule)
class ShippingRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "priority", "carrier_account", "service", "countries", "channel", "cod", "active")
    list_editable = ("priority", "active")
    list_filter = ("active", "carrier_account")
    search_fields = ("name", "service")
    ordering = ("priority", "pk")


# ---------------------------------------------------------------------------------------------------------
# Records: batches, sessions, shipments, printing, manifests


class BatchOrderInline(ReadOnlyInline):
    model = BatchOrder
    fields = ("order",)
    readonly_fields = ("order",)


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    """A batch is made on the batches screen (the service picks the orders); here it can be renamed or closed."""

    list_display = ("name", "kind", "carrier_account", "created_by", "created_at", "closed_at")
    list_filter = ("kind", "carrier_account")
    search_fields = ("name",)
    fields = ("name", "kind", "carrier_account", "created_by", "created_at", "closed_at")
    readonly_fields = ("kind", "carrier_account", "created_by", "created_at")
    inlines = (BatchOrderInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class PackScanInline(ReadOnlyInline):
    model = PackScan
    fields = ("created_at", "barcode", "result", "variant", "line")
    readonly_fields = fields


@admin.register(PackSession)
class PackSessionAdmin(ReadOnlyAdmin):
    list_display = ("order", "packer", "station", "outcome", "started_at", "expires_at", "finished_at")
    list_filter = ("outcome", "station")
    search_fields = ("order__number", "packer__username")
    list_select_related = ("order", "packer", "station")
    inlines = (PackScanInline,)


class ShipmentParcelInline(ReadOnlyInline):
    model = ShipmentParcel
    fields = ("position", "weight_grams", "length_cm", "width_cm", "height_cm", "tracking_number", "label")
    readonly_fields = fields


class ShipmentEventInline(ReadOnlyInline):
    model = ShipmentEvent
    fields = ("created_at", "kind", "message", "actor_label")
    readonly_fields = fields


class TrackingEventInline(ReadOnlyInline):
    model = TrackingEvent
    fields = ("occurred_at", "tracking_number", "status", "code", "description", "location")
    readonly_fields = fields


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdmin):
    """Labels are bought, voided and booked again on the dispatch screens (with the carrier); never here."""

    list_display = ("pk", "order", "carrier_account", "service", "status", "tracking_status", "created_at", "bought_at")
    list_filter = ("status", "carrier_account", "tracking_status")
    search_fields = ("order__number", "parcels__tracking_number", "carrier_shipment_id")
    list_select_related = ("order", "carrier_account")
    date_hierarchy = "created_at"
    exclude = ("raw",)
    inlines = (ShipmentParcelInline, ShipmentEventInline, TrackingEventInline)

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        results, _ = super().get_search_results(request, queryset, search_term)
        return results.distinct(), False


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = ("title", "kind", "content_type", "order", "shipment", "created_at")
    list_filter = ("kind",)
    search_fields = ("title", "order__number")
    list_select_related = ("order", "shipment")


@admin.register(PrintJob)
class PrintJobAdmin(ReadOnlyAdmin):
    list_display = ("pk", "document", "printer", "station", "state", "attempts", "reason", "created_by", "created_at")
    list_filter = ("state", "printer", "station")
    search_fields = ("document__title", "external_id", "reason")
    list_select_related = ("document", "printer", "station", "created_by")
    date_hierarchy = "created_at"


@admin.register(Manifest)
class ManifestAdmin(ReadOnlyAdmin):
    list_display = ("day", "carrier_account", "parcels", "document", "created_by", "created_at")
    list_filter = ("carrier_account",)
    date_hierarchy = "day"
    list_select_related = ("carrier_account", "document", "created_by")

"""Forms of the dispatch screens: scans, packed and parcels, override and put-back, rebooking, voiding, reprints,
batches. Forms validate only; the views hand their clean data to dispatch.services and dispatch.selectors.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from dispatch.models import Batch, CarrierAccount, Document, PackingStation, Printer
from dispatch.services import ParcelInput
from oms.core.forms import ListForm
from oms.orders.models import Order

MAX_PARCELS = 20
MAX_PARCEL_GRAMS = 1_000_000  # a tonne: anything heavier is a typo, not a parcel


class StationForm(forms.Form):
    station = forms.ModelChoiceField(
        queryset=PackingStation.objects.none(), required=False, empty_label="No station: I download the labels"
    )

    def __init__(self, *args: Any, stations: QuerySet[PackingStation], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["station"].queryset = stations  # type: ignore[attr-defined]


class BatchChoiceForm(forms.Form):
    batch = forms.ModelChoiceField(
        queryset=Batch.objects.none(), required=False, label="Pack from", empty_label="The whole queue"
    )

    def __init__(self, *args: Any, batches: QuerySet[Batch], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["batch"].queryset = batches  # type: ignore[attr-defined]


class ScanForm(forms.Form):
    code = forms.CharField(
        max_length=128,
        label="Scan an item",
        error_messages={"required": "Nothing was scanned.", "max_length": "That is not a barcode: too long."},
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "off",
                "spellcheck": "false",
                "autofocus": True,
                "data-scan-input": True,
                "placeholder": "Scan…",
                "enterkeyhint": "send",
            }
        ),
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        error_messages={"required": "Say why."},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class OverrideForm(ReasonForm):
    reason = forms.CharField(
        max_length=2000,
        label="Why may it pass without every scan?",
        error_messages={"required": "Say why the order may pass without every scan."},
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "e.g. barcode torn off the mug"}),
    )


class ReleaseForm(ReasonForm):
    reason = forms.CharField(
        max_length=200,
        label="Why put it back?",
        error_messages={"required": "Say why the order goes back to the queue."},
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "e.g. item missing from its bin"}),
    )


class VoidForm(ReasonForm):
    reason = forms.CharField(
        max_length=2000,
        label="Why void this label?",
        error_messages={"required": "Say why the label is voided."},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


def _parse_weights(text: str) -> list[int]:
    weights = []
    for part in text.replace(";", ",").replace(" ", ",").split(","):
        if not part:
            continue
        try:
            grams = int(part)
        except ValueError:
            raise forms.ValidationError(f"“{part}” is not a weight in grams.") from None
        if not 0 < grams <= MAX_PARCEL_GRAMS:
            raise forms.ValidationError(f"{grams} g is not a parcel weight.")
        weights.append(grams)
    return weights


class ParcelsForm(forms.Form):
    """How many boxes and what each weighs; empty weights: the catalog's weight, split evenly."""

    parcels = forms.IntegerField(
        min_value=1,
        max_value=MAX_PARCELS,
        initial=1,
        required=False,
        label="Parcels",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    weights = forms.CharField(
        required=False,
        max_length=200,
        label="Weights (g)",
        help_text="One per parcel, separated by commas; empty: the catalog weight",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    carrier_account = forms.ModelChoiceField(
        queryset=CarrierAccount.objects.none(),
        required=False,
        label="Carrier",
        empty_label="As the shipping rules say",
    )
    service = forms.CharField(
        required=False, max_length=64, label="Service", help_text="Empty: the rule's or the account's default"
    )

    def __init__(self, *args: Any, carriers: QuerySet[CarrierAccount], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["carrier_account"].queryset = carriers  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        count = data.get("parcels") or 1
        try:
            weights = _parse_weights(data.get("weights") or "")
        except forms.ValidationError as exc:
            self.add_error("weights", exc)
            return data
        if weights and len(weights) != count:
            self.add_error("weights", f"Give {count} weight{'s' if count != 1 else ''}, one per parcel.")
        data["parcels"] = count
        data["weight_list"] = weights
        return data

    def parcel_inputs(self, *, catalog_grams: int) -> list[ParcelInput] | None:
        """The parcels to book; None for one parcel of the catalog weight (the service's own default)."""
        count: int = self.cleaned_data["parcels"]
        weights: list[int] = self.cleaned_data["weight_list"]
        if weights:
            return [ParcelInput(weight_grams=w) for w in weights]
        if count == 1:
            return None
        each = max(1, -(-catalog_grams // count))
        return [ParcelInput(weight_grams=each) for _ in range(count)]


class RebookForm(ParcelsForm):
    carrier_account = forms.ModelChoiceField(
        queryset=CarrierAccount.objects.none(),
        required=False,
        label="Carrier",
        empty_label="The same carrier",
    )
    service = forms.CharField(
        required=False, max_length=64, label="Service", help_text="Empty: the same service, or the account's default"
    )
    parcels = forms.IntegerField(
        min_value=1, max_value=MAX_PARCELS, required=False, label="Parcels", help_text="Empty: as before"
    )

    def clean(self) -> dict[str, Any]:
        given = self.data.get("parcels") not in (None, "")
        data = super().clean()
        data["parcels_given"] = given
        return data

    def rebook_parcels(self, *, catalog_grams: int) -> list[ParcelInput] | None:
        """The new parcels; None keeps the refused shipment's parcels."""
        if not self.cleaned_data["weight_list"] and not self.cleaned_data["parcels_given"]:
            return None
        count: int = self.cleaned_data["parcels"]
        weights: list[int] = self.cleaned_data["weight_list"]
        if weights:
            return [ParcelInput(weight_grams=w) for w in weights]
        each = max(1, -(-catalog_grams // count))
        return [ParcelInput(weight_grams=each) for _ in range(count)]


class ReprintForm(forms.Form):
    document = forms.ModelChoiceField(queryset=Document.objects.none(), label="Document")
    printer = forms.ModelChoiceField(queryset=Printer.objects.none(), label="Printer")
    reason = forms.CharField(
        max_length=255,
        label="Why print it again?",
        error_messages={"required": "Say why it is printed again."},
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "e.g. label jammed"}),
    )

    def __init__(self, *args: Any, documents: QuerySet[Document], printers: QuerySet[Printer], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["document"].queryset = documents  # type: ignore[attr-defined]
        self.fields["printer"].queryset = printers  # type: ignore[attr-defined]


class BatchCreateForm(forms.Form):
    kind = forms.ChoiceField(choices=Batch.Kind.choices, widget=forms.RadioSelect, initial=Batch.Kind.CARRIER)
    name = forms.CharField(
        required=False, max_length=120, label="Name", help_text="Empty: the date and time", strip=True
    )
    carrier_account = forms.ModelChoiceField(
        queryset=CarrierAccount.objects.none(), required=False, label="Carrier", empty_label="Choose…"
    )
    limit = forms.IntegerField(min_value=1, max_value=200, initial=50, required=False, label="At most, orders")
    orders = forms.ModelMultipleChoiceField(
        queryset=Order.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Order %(value)s is not ready any more, or not yours to batch."},
    )

    def __init__(self, *args: Any, carriers: QuerySet[CarrierAccount], orders: QuerySet[Order], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["carrier_account"].queryset = carriers  # type: ignore[attr-defined]
        self.fields["orders"].queryset = orders  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind == Batch.Kind.CARRIER and not data.get("carrier_account"):
            self.add_error("carrier_account", "Choose the carrier of the batch.")
        if kind == Batch.Kind.MANUAL and not data.get("orders") and "orders" not in self.errors:
            self.add_error("orders", "Tick the orders to put in the batch.")
        data["limit"] = data.get("limit") or 50
        return data


class PageForm(ListForm):
    """Just the paging of a list."""


class ManifestForm(forms.Form):
    """Which carrier account's end-of-day manifest, for which day (today unless told)."""

    carrier_account = forms.ModelChoiceField(
        queryset=CarrierAccount.objects.none(),
        label="Carrier account",
        empty_label="Choose…",
        error_messages={
            "required": "Choose the carrier account.",
            "invalid_choice": "That carrier account is not active any more: choose another.",
        },
    )
    day = forms.DateField(
        label="Day",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"required": "Give the day.", "invalid": "Give the day as YYYY-MM-DD."},
    )

    def __init__(self, *args: Any, carriers: QuerySet[CarrierAccount], **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"day": timezone.localdate()})
        super().__init__(*args, **kwargs)
        self.fields["carrier_account"].queryset = carriers  # type: ignore[attr-defined]

    def clean_day(self) -> date:
        day: date = self.cleaned_data["day"]
        if day > timezone.localdate():
            raise forms.ValidationError("That day has not come yet: no labels were bought on it.")
        return day

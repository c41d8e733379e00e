"""Forms of the stock screens: list filters, receive / adjust / transfer, and the stock-take scanner.

Forms validate only; the views hand their clean data to inventory.selectors_stock and inventory.services.
"""

from __future__ import annotations

from typing import Any

from django import forms

from inventory.models import Location, MismatchKind, MovementReason
from inventory.selectors_stock import MismatchFilters, SkuFilters
from oms.core.forms import ListForm
from oms.core.models import SalesChannel

MAX_UNITS = 1_000_000

SKU_SORT_CHOICES = [
    ("sku", "SKU A→Z"),
    ("-sku", "SKU Z→A"),
    ("title", "Product title"),
    ("available", "Available, lowest first"),
    ("-available", "Available, highest first"),
    ("-on_hand", "On hand, highest first"),
    ("on_hand", "On hand, lowest first"),
]
STOCK_CHOICES = [
    ("", "Any stock"),
    ("low", "Low stock"),
    ("out", "Out of stock"),
    ("mismatched", "Open mismatches"),
]
KIND_CHOICES = [("", "Active SKUs"), ("bundles", "Bundles"), ("inactive", "Inactive SKUs"), ("all", "Everything")]

# Why stock is adjusted by hand; "correction" is booked as a correction, the rest as adjustments.
ADJUST_REASONS = [
    ("damaged", "Damaged"),
    ("lost", "Lost or stolen"),
    ("found", "Found"),
    ("correction", "Correction of an earlier mistake"),
    ("other", "Other (explain in the note)"),
]


class SkuFilterForm(ListForm):
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(
            attrs={"placeholder": "SKU, barcode or product title", "type": "search", "autocomplete": "off"}
        ),
    )
    stock = forms.ChoiceField(required=False, choices=STOCK_CHOICES, label="Stock")
    kind = forms.ChoiceField(required=False, choices=KIND_CHOICES, label="Show")
    sort = forms.ChoiceField(required=False, choices=SKU_SORT_CHOICES, label="Sort")

    def filters(self) -> SkuFilters:
        data = self.valid_data()
        return SkuFilters(
            q=(data.get("q") or "").strip(),
            stock=data.get("stock") or "",
            kind=data.get("kind") or "",
            sort=data.get("sort") or "sku",
        )


class MismatchFilterForm(ListForm):
    channel = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Channel")
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *MismatchKind.choices], label="Kind")

    def __init__(self, *args: Any, channels: list[SalesChannel], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["channel"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101 - declared above
        field.choices = [("", "All channels"), *((c.pk, c.name) for c in channels)]

    def filters(self) -> MismatchFilters:
        data = self.valid_data()
        return MismatchFilters(channel_id=data.get("channel"), kind=data.get("kind") or "")


# ---------------------------------------------------------------------------------------------------------
# Moving stock by hand


class _LocationsForm(forms.Form):
    """A form whose location fields offer the given (active) locations and clean to Location rows."""

    location_fields: tuple[str, ...] = ("location",)

    def __init__(self, *args: Any, locations: list[Location], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._locations = {str(loc.pk): loc for loc in locations}
        choices = [(str(loc.pk), f"{loc.name} ({loc.code})") for loc in locations]
        for name in self.location_fields:
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)  # noqa: S101 - declared below
            field.choices = choices if len(choices) == 1 else [("", "Choose…"), *choices]

    def _location(self, name: str) -> Location:
        return self._locations[str(self.cleaned_data[name])]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in self.location_fields:
            if data.get(name):
                data[name] = self._locations[str(data[name])]
        return data


class ReceiveForm(_LocationsForm):
    location = forms.ChoiceField(label="Into location", error_messages={"required": "Choose a location."})
    quantity = forms.IntegerField(
        min_value=1,
        max_value=MAX_UNITS,
        label="Units received",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    reference = forms.CharField(
        required=False,
        max_length=100,
        label="Reference",
        widget=forms.TextInput(attrs={"placeholder": "Delivery note or PO number"}),
    )
    note = forms.CharField(required=False, max_length=255, label="Note")


class AdjustForm(_LocationsForm):
    location = forms.ChoiceField(label="At location", error_messages={"required": "Choose a location."})
    delta = forms.IntegerField(
        min_value=-MAX_UNITS,
        max_value=MAX_UNITS,
        label="Change (units)",
        help_text="Negative to remove units, positive to add them",
        widget=forms.NumberInput(attrs={"placeholder": "e.g. -2"}),
    )
    reason = forms.ChoiceField(choices=ADJUST_REASONS, label="Reason")
    note = forms.CharField(required=False, max_length=200, label="Note")

    def clean_delta(self) -> int:
        delta = int(self.cleaned_data["delta"])
        if delta == 0:
            raise forms.ValidationError("A change of 0 changes nothing: enter how many units to add or remove.")
        return delta

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["note"] = (data.get("note") or "").strip()
        if data.get("reason") == "other" and not data["note"]:
            self.add_error("note", "Say why the stock changes.")
        return data

    def movement_reason(self) -> str:
        return MovementReason.CORRECTION if self.cleaned_data["reason"] == "correction" else MovementReason.ADJUST

    def movement_note(self) -> str:
        """The reason in words, then the note: what the ledger row says."""
        label = dict(ADJUST_REASONS)[self.cleaned_data["reason"]]
        if self.cleaned_data["reason"] == "other":
            return str(self.cleaned_data["note"])
        note = self.cleaned_data["note"]
        return f"{label}: {note}" if note else label


class TransferForm(_LocationsForm):
    location_fields = ("source", "target")
    source = forms.ChoiceField(label="From", error_messages={"required": "Choose where the units are now."})
    target = forms.ChoiceField(label="To", error_messages={"required": "Choose where the units go."})
    quantity = forms.IntegerField(min_value=1, max_value=MAX_UNITS, label="Units")
    note = forms.CharField(required=False, max_length=255, label="Note")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        source, target = data.get("source"), data.get("target")
        if source is not None and target is not None and source == target:
            self.add_error("target", "A transfer needs two different locations.")
        return data


# ---------------------------------------------------------------------------------------------------------
# Stock-take


class ScanForm(forms.Form):
    code = forms.CharField(
        max_length=100,
        label="Scan or type a barcode / SKU",
        error_messages={"required": "Nothing was scanned."},
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "off",
                "spellcheck": "false",
                "autofocus": True,
                "data-scan-input": True,
                "placeholder": "Scan…",
            }
        ),
    )
    quantity = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=100_000,
        initial=1,
        label="Units",
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "class": "qty-input"}),
    )

    def clean_quantity(self) -> int:
        return self.cleaned_data.get("quantity") or 1


class CountSetForm(forms.Form):
    counted = forms.IntegerField(
        min_value=0,
        max_value=MAX_UNITS,
        label="Counted",
        error_messages={"required": "Enter the number on the shelf (0 for none)."},
    )

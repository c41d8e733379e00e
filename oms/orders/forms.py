"""Forms of the order screens: list filters that turn query strings into clean filters, and the order actions.

Forms validate only; the views hand their clean data to selectors and services.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms

from oms.core.forms import ListForm
from oms.core.models import SalesChannel
from oms.orders.models import HoldReason, OrderHold, OrderStatus
from oms.orders.selectors import CustomerFilters, OrderFilters

ORDER_SORT_CHOICES = [
    ("-placed", "Newest first"),
    ("placed", "Oldest first"),
    ("number", "Number A→Z"),
    ("-number", "Number Z→A"),
    ("-total", "Total, highest first"),
    ("total", "Total, lowest first"),
]

CUSTOMER_SORT_CHOICES = [("-created", "Newest first"), ("name", "Name"), ("email", "E-mail")]


class BoundedDateField(forms.DateField):
    """A date the database and time-zone arithmetic can handle: 9999-12-31 plus a day would overflow."""

    earliest = date(1900, 1, 1)
    latest = date(2999, 12, 31)

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value and not self.earliest <= value <= self.latest:
            raise forms.ValidationError(f"Enter a date between {self.earliest:%Y} and {self.latest:%Y}.")


class OrderFilterForm(ListForm):
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(
            attrs={"placeholder": "Number, e-mail, name or SKU", "type": "search", "autocomplete": "off"}
        ),
    )
    channel = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Channel")
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *OrderStatus.choices], label="State")
    placed_from = BoundedDateField(required=False, label="Placed from", widget=forms.DateInput(attrs={"type": "date"}))
    placed_to = BoundedDateField(required=False, label="to", widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(required=False, choices=ORDER_SORT_CHOICES, label="Sort")

    def __init__(self, *args: Any, channels: list[SalesChannel], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the user's channels are choices: another channel's id is "not one of the available choices".
        field = self.fields["channel"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101 - declared above
        field.choices = [("", "All channels"), *((c.pk, c.name) for c in channels)]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("placed_from"), data.get("placed_to")
        if start and end and start > end:
            self.add_error("placed_to", "The end date is before the start date.")
        return data

    def filters(self) -> OrderFilters:
        """The valid part of the input: a field with an error is left out (and shown as an error)."""
        data = self.valid_data()
        return OrderFilters(
            channel_id=data.get("channel"),
            status=data.get("state") or "",
            placed_from=data.get("placed_from"),
            placed_to=data.get("placed_to"),
            q=(data.get("q") or "").strip(),
            sort=data.get("sort") or "-placed",
        )


class CustomerFilterForm(ListForm):
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "Name, e-mail or phone", "type": "search", "autocomplete": "off"}),
    )
    sort = forms.ChoiceField(required=False, choices=CUSTOMER_SORT_CHOICES, label="Sort")

    def filters(self) -> CustomerFilters:
        data = self.valid_data()
        return CustomerFilters(q=(data.get("q") or "").strip(), sort=data.get("sort") or "-created")


class HoldForm(forms.Form):
    reason = forms.ChoiceField(choices=HoldReason.choices, initial=HoldReason.MANUAL)
    note = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What needs to happen before it can ship",
    )


class ReleaseForm(forms.Form):
    hold = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Which hold")
    note = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, open_holds: list[OrderHold], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["hold"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101 - declared above
        field.choices = [
            ("", "All open holds"),
            *((h.pk, f"{h.get_reason_display()} ({h.created_at:%Y-%m-%d})") for h in open_holds),
        ]


class CancelForm(forms.Form):
    reason = forms.CharField(
        max_length=200,
        label="Reason",
        widget=forms.TextInput(attrs={"placeholder": "Why is it cancelled?"}),
        error_messages={"required": "Give a reason for the cancellation."},
    )

    def clean_reason(self) -> str:
        reason = str(self.cleaned_data["reason"]).strip()
        if not reason:
            raise forms.ValidationError("Give a reason for the cancellation.")
        return reason


class CustomerNoteForm(forms.Form):
    body = forms.CharField(
        max_length=5000,
        label="Note",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Add a note for the team"}),
        error_messages={"required": "A note cannot be empty."},
    )

    def clean_body(self) -> str:
        body = str(self.cleaned_data["body"]).strip()
        if not body:
            raise forms.ValidationError("A note cannot be empty.")
        return body

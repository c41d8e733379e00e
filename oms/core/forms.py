"""Forms of the core's staff screens: list paging shared by every app, the alert list's filters. Forms validate only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms

from oms.core.models import Alert, SalesChannel

ALERTS_PER_PAGE = 50
PER_PAGE_CHOICES = [(25, "25"), (50, "50"), (100, "100"), (200, "200")]
DEFAULT_PER_PAGE = 50
MAX_PAGE = 100_000


class ListForm(forms.Form):
    """Paging fields shared by staff lists; every field is optional and a bad value is a form error, never a crash."""

    page = forms.IntegerField(required=False, min_value=1, max_value=MAX_PAGE)
    per_page = forms.TypedChoiceField(
        required=False, choices=PER_PAGE_CHOICES, coerce=int, empty_value=None, label="Per page"
    )

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        if data is not None and not data.get("per_page"):
            # So that the select shows the size really used; links keep only what the user chose.
            data = data.copy()
            data["per_page"] = str(DEFAULT_PER_PAGE)
        super().__init__(data, *args, **kwargs)

    def valid_data(self) -> dict[str, Any]:
        """The fields that validated (all of them for a valid form); call after is_valid()."""
        data: dict[str, Any] = getattr(self, "cleaned_data", None) or {}
        return data

    def page_number(self) -> int:
        return self.valid_data().get("page") or 1

    def page_size(self) -> int:
        return self.valid_data().get("per_page") or DEFAULT_PER_PAGE


STATE_CHOICES = [("open", "Open"), ("unread", "Open and unread"), ("all", "All, resolved too")]


@dataclass(frozen=True)
class AlertFilters:
    state: str = "open"  # "open", "unread" or "all"
    severity: str = ""
    channel_id: int | None = None
    page: int = 1


class AlertFilterForm(forms.Form):
    state = forms.ChoiceField(required=False, choices=STATE_CHOICES, label="Show")
    severity = forms.ChoiceField(
        required=False, choices=[("", "Any severity"), *Alert.Severity.choices], label="Severity"
    )
    channel = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Channel")
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def __init__(self, *args: Any, channels: list[SalesChannel], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the user's channels are choices: another channel's id is "not one of the available choices".
        field = self.fields["channel"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101 - declared above
        field.choices = [("", "All channels"), *((c.pk, c.name) for c in channels)]

    def filters(self) -> AlertFilters:
        """The valid part of the input; call after is_valid()."""
        data: dict[str, Any] = getattr(self, "cleaned_data", None) or {}
        return AlertFilters(
            state=data.get("state") or "open",
            severity=data.get("severity") or "",
            channel_id=data.get("channel"),
            page=data.get("page") or 1,
        )

"""Pages of staff lists without counting the table: fetch one row more than shown to know whether a next page exists.

Shared by the domain apps' selectors; nothing here knows a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from django.db.models import Model, QuerySet

T = TypeVar("T")
M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, found by fetching one row more than shown: no COUNT(*) over the table."""

    items: list[T]
    number: int
    per_page: int
    has_next: bool
    truncated: bool = False  # a search matched more rows than it looks at: only some of them are listed

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def next_number(self) -> int:
        return self.number + 1

    @property
    def previous_number(self) -> int:
        return max(self.number - 1, 1)

    @property
    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.items else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * self.per_page + len(self.items)


def paginate(queryset: QuerySet[M], *, page: int, per_page: int) -> Page[M]:
    offset = (page - 1) * per_page
    rows = list(queryset[offset : offset + per_page + 1])
    return Page(items=rows[:per_page], number=page, per_page=per_page, has_next=len(rows) > per_page)

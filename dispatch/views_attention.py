"""The "needs attention" page: orders late to ship, parcels without tracking movement, holds that last too long.

Reads only, through dispatch.services_checks.needs_attention, scoped to the channels the user may see.
"""

from __future__ import annotations

from collections import Counter

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from dispatch.services_checks import StuckKind, needs_attention
from oms.core.views import staff_view
from oms.orders.selectors import channel_scope

PAGE_ROWS = 500


@require_safe
@staff_view("orders.view_order")
def needs_attention_list(request: HttpRequest) -> HttpResponse:
    scope = channel_scope(request.user)  # type: ignore[arg-type]  # staff_view: signed in
    kind = request.GET.get("kind", "")
    chosen = StuckKind(kind) if kind in {k.value for k in StuckKind} else None
    now = timezone.now()
    every = needs_attention(now=now, channel_ids=None if scope.every else scope.ids, limit=None)
    counts = Counter(row.kind for row in every)
    rows = [row for row in every if chosen is None or row.kind == chosen]
    return render(
        request,
        "dispatch/needs_attention.html",
        {
            "rows": [(row, row.days(now)) for row in rows[:PAGE_ROWS]],
            "truncated": len(rows) > PAGE_ROWS,
            "total": len(rows),
            "kinds": [(k, k.label, counts.get(k, 0)) for k in StuckKind],
            "chosen": chosen,
            "show_channel": len(scope.channels) > 1,
            "can_view_order": request.user.has_perm("orders.view_order"),
        },
    )

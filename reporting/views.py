"""The operations dashboard: orders per state and channel, holds, syncs and the inbox backlog."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from oms.core.views import staff_view
from reporting import selectors


@require_safe
@staff_view("orders.view_dashboard")
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    return render(
        request,
        "reporting/dashboard.html",
        {
            "board": selectors.dashboard(user=user),
            "can_view_orders": user.has_perm("orders.view_order"),
            "can_view_syncs": user.has_perm("orders.view_syncrun"),
        },
    )

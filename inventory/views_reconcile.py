"""The channels' stock status and the "Reconcile now" button, mounted under /inventory/channels/.

The button only enqueues the reconciliation job (inventory.services_reconcile does the work); both views are
scoped to the channels the user may see.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from inventory.selectors_reconcile import channel_stock_status
from inventory.selectors_stock import visible_channels
from inventory.services_reconcile import JOB_TIMEOUT, RECONCILE_JOB
from oms.core.models import SalesChannel
from oms.core.queue import enqueue_after_commit
from oms.core.views import staff_view

VIEW_RUNS = "inventory.view_reconcilerun"
RECONCILE = "inventory.add_reconcilerun"
PARTIAL = "inventory/reconcile/_status.html"


def _channel_or_404(request: HttpRequest, pk: int) -> SalesChannel:
    for channel in visible_channels(request.user):
        if channel.pk == pk:
            return channel
    raise Http404("No such channel.")


def _htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def status_context(request: HttpRequest, channel: SalesChannel, *, back: str = "") -> dict[str, object]:
    """What the status partial needs (the channel list's template tag uses it too)."""
    return {
        "status": channel_stock_status(channel=channel),
        "can_reconcile": request.user.has_perm(RECONCILE),
        "next": back,
    }


@require_safe
@staff_view(VIEW_RUNS)
def channel_stock(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _channel_or_404(request, pk)
    context = status_context(request, channel, back=request.get_full_path())
    return render(request, PARTIAL if _htmx(request) else "inventory/reconcile/channel_stock.html", context)


@require_POST
@staff_view(RECONCILE)
def channel_reconcile(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _channel_or_404(request, pk)
    if not channel.active:
        messages.error(request, f"{channel.name} is inactive: activate it before reconciling.")
    else:
        enqueue_after_commit(
            RECONCILE_JOB,
            channel.pk,
            "button",
            queue="low",
            job_id=f"reconcile-{channel.pk}",
            job_timeout=JOB_TIMEOUT,
        )
        messages.success(request, f"Reconciliation of {channel.name} started: its run appears here when it is done.")
    if _htmx(request):
        return render(request, PARTIAL, status_context(request, channel))
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("inventory:channel-stock", args=[channel.pk])
    return HttpResponseRedirect(back)

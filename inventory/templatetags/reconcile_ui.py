"""The channel's stock status partial, for pages outside inventory (the channel list)."""

from __future__ import annotations

from typing import Any

from django import template

from inventory.views_reconcile import PARTIAL, VIEW_RUNS, status_context
from oms.core.models import SalesChannel

register = template.Library()


@register.inclusion_tag(PARTIAL, takes_context=True)
def channel_stock_status(context: template.Context, channel: SalesChannel) -> dict[str, Any]:
    """`{% channel_stock_status channel %}`: last reconcile, open mismatches, pending and failing pushes, and the
    "Reconcile now" button; nothing for users who may not see reconciliations."""
    request = context["request"]
    if not request.user.has_perm(VIEW_RUNS):
        return {"status": None}
    return {
        **status_context(request, channel, back=f"{request.get_full_path()}#channel-{channel.pk}"),
        "csrf_token": context.get("csrf_token"),
        "embedded": True,
    }

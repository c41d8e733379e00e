"""Template context shared by every staff page: the navigation the user's permissions allow, who they are, and
their unread alerts (the bell)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from oms.core.selectors import ALERTS_PERM


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url: str
    active: bool


# (key, label, URL name, permission or "staff", path prefixes that mark it active). A key listed twice is
# shown once, as its first entry the user may open: Packing is the scan-to-verify screen for those who pack,
# the read-only overview for the others.
NAV_SCREENS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("dashboard", "Dashboard", "reporting:dashboard", "orders.view_dashboard", ("/dashboard/",)),
    ("orders", "Orders", "orders:order-list", "orders.view_order", ("/orders/",)),
    ("customers", "Customers", "orders:customer-list", "orders.view_customer", ("/orders/customers/",)),
    ("channels", "Channels & syncs", "orders:channel-list", "orders.view_syncrun", ("/orders/channels/",)),
    ("packing", "Packing", "dispatch:pack", "dispatch.pack_orders", ("/dispatch/pack/", "/orders/packing/")),
    ("packing", "Packing", "orders:packing", "orders.view_packing_queue", ("/orders/packing/",)),
    ("dispatch", "Dispatch", "dispatch:queue", "dispatch.view_packsession", ("/dispatch/",)),
    ("stock", "Stock", "inventory:sku-list", "inventory.view_stock", ("/inventory/",)),
    ("catalog", "Catalog import", "inventory:catalog-import", "inventory.import_catalog", ("/inventory/catalog/",)),
    ("alerts", "Alerts", "alert-list", "core.view_alerts", ("/alerts/",)),
    ("admin", "Django admin", "admin:index", "staff", ("/admin/",)),
)


def role_label(user: Any) -> str:
    """The user's role groups in words; cached on the user, since partials render the context again."""
    cached = getattr(user, "_oms_role_label", None)
    if cached is None:
        names = sorted(user.groups.values_list("name", flat=True))
        if user.is_superuser and "Admin" not in names:
            names.insert(0, "Superuser")
        cached = ", ".join(names) or "No role"
        user._oms_role_label = cached
    return cached


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "nav_role": "", "can_see_alerts": False}
    allowed: list[tuple[str, str, str, tuple[str, ...]]] = []
    for key, label, url_name, perm, prefixes in NAV_SCREENS:
        if any(key == shown for shown, *_ in allowed):
            continue
        if perm == "staff" and not user.is_staff:
            continue
        if perm != "staff" and not user.has_perm(perm):
            continue
        allowed.append((key, label, reverse(url_name), prefixes))
    # The longest matching prefix wins, so /orders/customers/ marks Customers, not Orders.
    path = request.path
    matches = [prefix for *_, prefixes in allowed for prefix in prefixes if path.startswith(prefix)]
    active_prefix = max(matches, key=len) if matches else None
    items = [NavItem(key=k, label=lbl, url=url, active=active_prefix in prefixes) for k, lbl, url, prefixes in allowed]
    return {
        "nav_items": items,
        "nav_role": role_label(user),
        # The bell loads its count with htmx (core.views.alert_bell): no page pays a query for it.
        "can_see_alerts": user.has_perm(ALERTS_PERM),
    }

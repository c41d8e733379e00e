"""Staff entry points of the core: sign in/out, the role-aware home, the permission gate every staff view uses,
and the notification area (alerts).

Screens of the domain apps live in their own views modules; nothing here reads or writes domain data.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.http import require_GET, require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from oms.core.forms import ALERTS_PER_PAGE, AlertFilterForm, AlertFilters
from oms.core.models import Alert
from oms.core.paging import Page, paginate
from oms.core.selectors import ALERTS_PERM, alerts_unread_count, alerts_with_read_state, channels_visible_to
from oms.core.services import alert_mark_read

View = Callable[..., HttpResponseBase]

# Where each role lands after signing in: the first screen its permissions open.
HOME_SCREENS: tuple[tuple[str, str], ...] = (
    ("orders.view_dashboard", "reporting:dashboard"),
    ("orders.view_order", "orders:order-list"),
    ("orders.view_packing_queue", "orders:packing"),
)


def htmx_toast(request: HttpRequest, message: str, status: int) -> HttpResponse:
    """Answer an htmx request with a toast instead of a swap: the panel the user acted on stays as it was."""
    response = render(request, "partials/toast.html", {"message": message}, status=status)
    response["HX-Retarget"] = "#toasts"
    response["HX-Reswap"] = "beforeend"
    return response


def staff_view(*perms: str) -> Callable[[View], View]:
    """Login required, then every permission in `perms` (global, not per object), else 403.

    An htmx request gets a small partial instead of a full page: a redirect to the sign-in page when the
    session expired, or an inline message when the permission is missing.
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            htmx = bool(getattr(request, "htmx", False))
            if not request.user.is_authenticated:
                if htmx:
                    # The session ran out while the page was open: sign in again, then come back to that page.
                    current = urlsplit(request.headers.get("HX-Current-URL", ""))
                    back = f"{current.path}?{current.query}" if current.query else current.path
                    query = f"?{urlencode({'next': back})}" if back else ""
                    return HttpResponseClientRedirect(f"{resolve_url('login')}{query}")
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perms(perms):
                if htmx:
                    return htmx_toast(request, "Your role does not allow this action. Nothing was changed.", 403)
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """Logout is a POST (Django 5 refuses GET), from the button in the header."""


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    for perm, url_name in HOME_SCREENS:
        if request.user.has_perm(perm):
            return HttpResponseRedirect(resolve_url(url_name))
    if request.user.is_staff:
        return redirect("admin:index")
    raise PermissionDenied("Your account has no role yet: ask an administrator to add you to one.")


# ---------------------------------------------------------------------------------------------------------
# The notification area: alerts the user may see (channel-scoped), read or unread per user


def _safe_link(link: str) -> str:
    """Only a path on this site, or an http(s) address, becomes a link; anything else (javascript:) does not."""
    if link.startswith("/") and not link.startswith("//"):
        return link
    return link if link.startswith(("https://", "http://")) else ""


def _alert_page(request: HttpRequest, filters: AlertFilters) -> Page[Alert]:
    qs = alerts_with_read_state(request.user).select_related("channel")
    if filters.state in ("open", "unread"):
        qs = qs.filter(resolved_at__isnull=True)
    if filters.state == "unread":
        qs = qs.filter(Q(is_read=False))  # the annotation of alerts_with_read_state
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    if filters.channel_id is not None:
        qs = qs.filter(channel_id=filters.channel_id)
    page = paginate(qs.order_by("-last_raised_at", "-id"), page=filters.page, per_page=ALERTS_PER_PAGE)
    for alert in page.items:
        alert.safe_link = _safe_link(alert.link)  # type: ignore[attr-defined]
    return page


def _alert_filter_form(request: HttpRequest, data: Any) -> AlertFilterForm:
    channels = list(channels_visible_to(request.user).order_by("name", "pk"))
    form = AlertFilterForm(data, channels=channels)
    form.is_valid()  # errors are shown next to the fields; the valid filters still apply
    return form


@require_safe
@staff_view(ALERTS_PERM)
def alert_list(request: HttpRequest) -> HttpResponse:
    form = _alert_filter_form(request, request.GET)
    filters = form.filters()
    return render(
        request,
        "core/alert_list.html",
        {
            "form": form,
            "filters": filters,
            "page": _alert_page(request, filters),
            "show_channel": len(form.fields["channel"].choices) > 2,  # type: ignore[attr-defined]
        },
    )


@require_safe
@staff_view(ALERTS_PERM)
def alert_bell(request: HttpRequest) -> HttpResponse:
    """The header's bell with the user's unread count: one query, loaded by htmx after the page."""
    response = render(request, "partials/alert_bell.html", {"count": alerts_unread_count(request.user)})
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@staff_view(ALERTS_PERM)
def alert_read(request: HttpRequest, pk: int) -> HttpResponse:
    alert = alerts_with_read_state(request.user).select_related("channel").filter(pk=pk).first()
    if alert is None:
        if getattr(request, "htmx", False):
            return htmx_toast(request, "This alert is not on your channels, or no longer exists.", 404)
        raise Http404("No such alert.")
    alert_mark_read(user=request.user, alerts=[alert])  # type: ignore[arg-type]
    if not getattr(request, "htmx", False):
        return redirect("alert-list")
    alert.is_read = True  # type: ignore[attr-defined]
    alert.safe_link = _safe_link(alert.link)  # type: ignore[attr-defined]
    context = {
        "alert": alert,
        "show_channel": request.POST.get("show_channel") == "1",
        "oob": True,
        "alert_count": alerts_unread_count(request.user),
    }
    return render(request, "core/_alert_row.html", context)


@require_POST
@staff_view(ALERTS_PERM)
def alert_read_all(request: HttpRequest) -> HttpResponse:
    """Mark every open alert the user may see read (whatever the filters show)."""
    unread = alerts_with_read_state(request.user).filter(Q(resolved_at__isnull=True), Q(is_read=False)).only("pk")
    marked = alert_mark_read(user=request.user, alerts=unread)  # type: ignore[arg-type]
    if not getattr(request, "htmx", False):
        return redirect("alert-list")
    form = _alert_filter_form(request, request.POST)
    filters = form.filters()
    context = {
        "form": form,
        "filters": filters,
        "page": _alert_page(request, filters),
        "show_channel": len(form.fields["channel"].choices) > 2,  # type: ignore[attr-defined]
        "done": f"{marked} alert{'s' if marked != 1 else ''} marked read." if marked else "Nothing was unread.",
        "oob": True,
        "alert_count": alerts_unread_count(request.user),
    }
    return render(request, "core/_alert_list.html", context)

"""Staff entry points of the core: sign in/out, the role-aware home, and the permission gate every staff view uses.

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
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseClientRedirect

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

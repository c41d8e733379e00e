"""Root URLs: staff screens, webhooks, the Django admin and the RQ dashboard."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from oms.orders.webhooks import channel_webhook


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("webhooks/<slug:slug>/", channel_webhook, name="channel-webhook"),
    path("healthz/", healthz, name="healthz"),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("", include("oms.core.urls")),
    path("orders/", include("oms.orders.urls")),
    path("inventory/", include("inventory.urls")),
    path("dispatch/", include("dispatch.urls")),
    path("dashboard/", include("reporting.urls")),
]

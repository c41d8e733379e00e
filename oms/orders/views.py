"""Staff screens of the order domain: orders, customers, channels and syncs, and the packing overview.

Views validate input with forms and delegate: reads to oms.orders.selectors, writes to oms.orders.services.
Every view checks its permission server-side and scopes reads to the user's channels.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from oms.core.models import InboundEvent, SalesChannel
from oms.core.queue import enqueue_after_commit
from oms.core.spreadsheet import EchoWriter, csv_safe
from oms.core.views import htmx_toast, staff_view
from oms.orders import selectors, services
from oms.orders.forms import (
    CancelForm,
    CustomerFilterForm,
    CustomerNoteForm,
    HoldForm,
    OrderFilterForm,
    ReleaseForm,
)
from oms.orders.models import Customer, Order, OrderStatus
from oms.orders.states import HOLDABLE, IllegalTransition, can_transition

SYNC_JOB = "oms.orders.jobs.channel_sync_orders"


def _htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


# ---------------------------------------------------------------------------------------------------------
# Order list and export


@require_safe
@staff_view("orders.view_order")
def order_list(request: HttpRequest) -> HttpResponse:
    scope = selectors.channel_scope(request.user)
    channels = scope.channels
    form = OrderFilterForm(request.GET, channels=channels)
    form.is_valid()  # errors are shown next to the fields; the valid filters still apply
    page = selectors.order_page(
        user=request.user, filters=form.filters(), page=form.page_number(), per_page=form.page_size(), scope=scope
    )
    return render(
        request,
        "orders/order_list.html",
        {
            "form": form,
            "page": page,
            "channels": channels,
            "can_export": request.user.has_perm("orders.export_orders"),
            "show_channel": len(channels) > 1,
        },
    )


EXPORT_HEADER = [
    "Number",
    "Channel",
    "External id",
    "Placed at",
    "Status",
    "Payment",
    "Customer",
    "E-mail",
    "Phone",
    "Currency",
    "Subtotal",
    "Discounts",
    "Shipping",
    "Tax",
    "Total",
    "Ship by",
    "Shipping method",
    "Items",
]


def _export_row(order: Order) -> list[str]:
    customer = order.customer
    items = "; ".join(f"{line.quantity} x {line.sku or line.title}" for line in order.lines.all())
    cells: list[Any] = [
        order.number,
        order.channel.name,
        order.external_id,
        timezone.localtime(order.placed_at).strftime("%Y-%m-%d %H:%M"),
        order.get_status_display(),
        order.get_payment_status_display(),
        customer.full_name if customer else "",
        order.email,
        order.phone,
        order.currency,
        order.subtotal,
        order.discount_total,
        order.shipping_total,
        order.total_tax,
        order.total,
        order.ship_by.isoformat() if order.ship_by else "",
        order.shipping_method,
        items,
    ]
    return [csv_safe(c) for c in cells]


@require_safe
@staff_view("orders.view_order", "orders.export_orders")
def order_export(request: HttpRequest) -> HttpResponseBase:
    channels = selectors.visible_channels(request.user)
    form = OrderFilterForm(request.GET, channels=channels)
    if not form.is_valid():
        # The list shows what is wrong with the filters; an export of something else would mislead.
        return HttpResponseRedirect(f"{reverse('orders:order-list')}?{request.GET.urlencode()}")
    filters = form.filters()
    if request.method == "GET":  # a HEAD takes no rows
        services.order_export_record(actor=request.user, filters=filters)
    writer = csv.writer(EchoWriter())

    def rows() -> Iterator[str]:
        yield "\ufeff"  # so that spreadsheets read the file as UTF-8
        yield writer.writerow(EXPORT_HEADER)
        for order in selectors.order_export_rows(user=request.user, filters=filters):
            yield writer.writerow(_export_row(order))

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="orders-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------------------------------------------------
# Order detail and its actions


def _order_or_404(request: HttpRequest, pk: int, *, detail: bool = False) -> Order:
    try:
        if detail:
            return selectors.order_detail(user=request.user, pk=pk)
        return selectors.order_get(user=request.user, pk=pk)
    except Order.DoesNotExist:
        raise Http404("No such order on your channels.") from None


def _live_context(request: HttpRequest, order: Order, **overrides: Any) -> dict[str, Any]:
    """What the status + actions + timeline panel needs; `overrides` carry bound forms with errors."""
    user = request.user
    holds = list(order.holds.all())
    open_holds = [h for h in holds if h.released_at is None]
    context: dict[str, Any] = {
        "order": order,
        "open_holds": open_holds,
        "released_holds": [h for h in holds if h.released_at is not None],
        "events": list(order.events.all()),
        "audit_entries": selectors.audit_trail(obj=order),
        "can_hold": user.has_perm("orders.hold_order") and order.status in HOLDABLE,
        "can_release": user.has_perm("orders.release_order") and bool(open_holds),
        "can_cancel": user.has_perm("orders.cancel_order") and can_transition(order.status, OrderStatus.CANCELLED),
        "hold_form": HoldForm(),
        "release_form": ReleaseForm(open_holds=open_holds),
        "cancel_form": CancelForm(),
        "action_error": "",
        "action_done": "",
        "open_form": "",
    }
    context.update(overrides)
    return context


@require_safe
@staff_view("orders.view_order")
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = _order_or_404(request, pk, detail=True)
    context = _live_context(request, order)
    context["lines"] = list(order.lines.all())
    context["can_view_customer"] = request.user.has_perm("orders.view_customer")
    return render(request, "orders/order_detail.html", context)


def _form_error_text(form: Any) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def _order_action(
    request: HttpRequest,
    pk: int,
    *,
    name: str,
    make_form: Callable[[Order], forms.Form],
    act: Callable[[Order, dict[str, Any]], Order],
    done: str,
) -> HttpResponse:
    """Validate the form, call the service through `act`, then answer htmx with the panel or redirect back."""
    try:
        order = _order_or_404(request, pk)
    except Http404:
        if _htmx(request):
            return htmx_toast(request, "This order is not on your channels, or no longer exists.", 404)
        raise
    form = make_form(order)
    status = 200
    error = ""
    if form.is_valid():
        try:
            act(order, form.cleaned_data)
        except IllegalTransition as exc:
            error, status = f"Not possible: {exc}.", 409
        except ValueError as exc:
            error, status = f"Not possible: {exc}.", 422
    else:
        error, status = _form_error_text(form) or "Check the form.", 422

    if not _htmx(request):
        if error:
            messages.error(request, error)
        else:
            messages.success(request, done)
        return HttpResponseRedirect(reverse("orders:order-detail", args=[order.pk]))

    order = _order_or_404(request, pk, detail=True)
    overrides: dict[str, Any] = {"action_error": error, "action_done": "" if error else done}
    if error and name and not form.is_valid():
        overrides[f"{name}_form"] = form  # keep what the user typed, with the errors beside it
        overrides["open_form"] = name
    context = _live_context(request, order, **overrides)
    context["oob"] = True
    return render(request, "orders/_order_live.html", context, status=status)


@require_POST
@staff_view("orders.view_order", "orders.hold_order")
def order_hold(request: HttpRequest, pk: int) -> HttpResponse:
    return _order_action(
        request,
        pk,
        name="hold",
        make_form=lambda order: HoldForm(request.POST),
        done="Order put on hold.",
        act=lambda order, data: services.order_hold(
            order=order, reason=data["reason"], note=data["note"], actor=request.user
        ),
    )


@require_POST
@staff_view("orders.view_order", "orders.release_order")
def order_release(request: HttpRequest, pk: int) -> HttpResponse:
    return _order_action(
        request,
        pk,
        name="release",
        make_form=lambda order: ReleaseForm(
            request.POST, open_holds=list(order.holds.filter(released_at__isnull=True))
        ),
        done="Hold released.",
        act=lambda order, data: services.order_release(
            order=order, note=data["note"], hold_id=data["hold"], actor=request.user
        ),
    )


@require_POST
@staff_view("orders.view_order", "orders.cancel_order")
def order_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _order_action(
        request,
        pk,
        name="cancel",
        make_form=lambda order: CancelForm(request.POST),
        done="Order cancelled.",
        act=lambda order, data: services.order_cancel(order=order, reason=data["reason"], actor=request.user),
    )


# ---------------------------------------------------------------------------------------------------------
# Customers


@require_safe
@staff_view("orders.view_customer")
def customer_list(request: HttpRequest) -> HttpResponse:
    form = CustomerFilterForm(request.GET)
    form.is_valid()
    page = selectors.customer_page(
        user=request.user, filters=form.filters(), page=form.page_number(), per_page=form.page_size()
    )
    return render(request, "orders/customer_list.html", {"form": form, "page": page})


@require_safe
@staff_view("orders.view_customer")
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        detail = selectors.customer_detail(user=request.user, pk=pk)
    except Customer.DoesNotExist:
        raise Http404("No such customer on your channels.") from None
    return render(
        request,
        "orders/customer_detail.html",
        {
            "detail": detail,
            "customer": detail.customer,
            "notes": detail.notes,
            "note_form": CustomerNoteForm(),
            "can_add_note": request.user.has_perm("orders.add_customernote"),
            "can_view_orders": request.user.has_perm("orders.view_order"),
        },
    )


@require_POST
@staff_view("orders.view_customer", "orders.add_customernote")
def customer_note_add(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        customer = selectors.customer_get(user=request.user, pk=pk)
    except Customer.DoesNotExist:
        if _htmx(request):
            return htmx_toast(request, "This customer is not on your channels, or no longer exists.", 404)
        raise Http404("No such customer on your channels.") from None
    form = CustomerNoteForm(request.POST)
    status = 200
    if form.is_valid():
        try:
            services.customer_note_add(customer=customer, body=form.cleaned_data["body"], actor=request.user)
        except ValueError as exc:
            form.add_error("body", str(exc))
            status = 422
        else:
            form = CustomerNoteForm()
    else:
        status = 422
    if not _htmx(request):
        if status == 200:
            messages.success(request, "Note added.")
        else:
            messages.error(request, _form_error_text(form))
        return HttpResponseRedirect(reverse("orders:customer-detail", args=[customer.pk]))
    return render(
        request,
        "orders/_customer_notes.html",
        {
            "customer": customer,
            "notes": selectors.customer_notes(customer=customer),
            "note_form": form,
            "can_add_note": True,
        },
        status=status,
    )


# ---------------------------------------------------------------------------------------------------------
# Channels and syncs


@require_safe
@staff_view("orders.view_syncrun")
def channel_list(request: HttpRequest) -> HttpResponse:
    overviews = selectors.channel_overview(user=request.user)
    for overview in overviews:
        overview.webhook_url = request.build_absolute_uri(reverse("channel-webhook", args=[overview.channel.slug]))
    return render(
        request,
        "orders/channel_list.html",
        {
            "overviews": overviews,
            "can_sync": request.user.has_perm("orders.add_syncrun"),
            "can_retry": request.user.has_perm("core.change_inboundevent"),
        },
    )


@require_POST
@staff_view("orders.view_syncrun", "orders.add_syncrun")
def channel_sync(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        channel = selectors.channel_get(user=request.user, pk=pk)
    except SalesChannel.DoesNotExist:
        raise Http404("No such channel.") from None
    if not channel.active:
        messages.error(request, f"{channel.name} is inactive: activate it before syncing.")
    else:
        enqueue_after_commit(SYNC_JOB, channel.pk, "button", queue="low", job_id=f"sync-orders-{channel.pk}")
        messages.success(request, f"Sync of {channel.name} started: its run appears below when it is done.")
    return HttpResponseRedirect(f"{reverse('orders:channel-list')}#channel-{channel.pk}")


@require_POST
@staff_view("orders.view_syncrun", "core.change_inboundevent")
def inbound_event_retry(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        event = selectors.inbound_event_get(user=request.user, pk=pk)
    except InboundEvent.DoesNotExist:
        raise Http404("No such event.") from None
    try:
        services.inbound_event_retry(event=event, actor=request.user)
    except ValueError as exc:
        messages.error(request, f"Not retried: {exc}.")
    else:
        messages.success(request, f"Event {event.topic} #{event.pk} queued again.")
    return HttpResponseRedirect(f"{reverse('orders:channel-list')}#channel-{event.channel_id}")


# ---------------------------------------------------------------------------------------------------------
# Packing


@require_safe
@staff_view("orders.view_packing_queue")
def packing(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "orders/packing.html",
        {
            "overview": selectors.packing_overview(user=request.user),
            "can_view_order": request.user.has_perm("orders.view_order"),
            "today": timezone.localdate(),
        },
    )

"""Staff screens of stock: the SKU list and detail, receive / adjust / transfer, stock-take by scanner, mismatches.

Views validate input with forms and delegate: reads to inventory.selectors_stock, writes to inventory.services,
inventory.services_stocktake and inventory.services_reconcile. A StockError is the staff's answer, shown
as a form error with a 4xx partial, never a 500. Listings and mismatches are scoped to the user's channels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from inventory import selectors_stock as selectors
from inventory import services_reconcile
from inventory.forms import (
    AdjustForm,
    CountSetForm,
    MismatchFilterForm,
    ReceiveForm,
    ScanForm,
    SkuFilterForm,
    TransferForm,
)
from inventory.models import Location, StockLevel, StockMismatch, Variant
from inventory.services import StockError, stock_adjust, stock_receive, stock_transfer
from inventory.services_stocktake import StocktakeError, stocktake_post
from oms.core.views import htmx_toast, staff_view

VIEW = "inventory.view_stock"
RECEIVE = "inventory.receive_stock"
ADJUST = "inventory.adjust_stock"
MOVEMENTS_PER_PAGE = 25


def _htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _form_error_text(form: forms.Form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


# ---------------------------------------------------------------------------------------------------------
# SKU list


@require_safe
@staff_view(VIEW)
def sku_list(request: HttpRequest) -> HttpResponse:
    channels = selectors.visible_channels(request.user)
    form = SkuFilterForm(request.GET)
    form.is_valid()  # errors are shown next to the fields; the valid filters still apply
    page = selectors.sku_page(
        filters=form.filters(), channels=channels, page=form.page_number(), per_page=form.page_size()
    )
    return render(
        request,
        "inventory/sku_list.html",
        {
            "form": form,
            "page": page,
            "can_count": request.user.has_perm(ADJUST),
            "can_see_mismatches": request.user.has_perm("inventory.view_stockmismatch"),
        },
    )


# ---------------------------------------------------------------------------------------------------------
# SKU detail and moving stock by hand


def _variant_or_404(pk: int) -> Variant:
    try:
        return selectors.sku_get(pk=pk)
    except Variant.DoesNotExist:
        raise Http404("No such SKU.") from None


def _stock_context(
    request: HttpRequest,
    variant: Variant,
    *,
    stock: tuple[list[StockLevel], int, int, int] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """What the levels, totals and actions panels need; `overrides` carry a bound form with its errors."""
    levels, on_hand, allocated, available = stock or selectors.sku_stock(variant=variant)
    locations = selectors.active_locations()
    user = request.user
    stockable = not variant.is_bundle and bool(locations)
    context: dict[str, Any] = {
        "variant": variant,
        "levels": levels,
        "on_hand": on_hand,
        "allocated": allocated,
        "available": available,
        "is_low": 0 < available <= variant.low_stock_threshold,
        "can_receive": stockable and user.has_perm(RECEIVE),
        "can_adjust": stockable and user.has_perm(ADJUST),
        "can_transfer": stockable and user.has_perm(ADJUST) and len(locations) > 1,
        "receive_form": ReceiveForm(locations=locations),
        "adjust_form": AdjustForm(locations=locations),
        "transfer_form": TransferForm(locations=locations),
        "action_error": "",
        "action_done": "",
        "open_form": "",
    }
    context.update(overrides)
    return context


@require_safe
@staff_view(VIEW)
def sku_detail(request: HttpRequest, pk: int) -> HttpResponse:
    channels = selectors.visible_channels(request.user)
    try:
        detail = selectors.sku_detail(pk=pk, channels=channels)
    except Variant.DoesNotExist:
        raise Http404("No such SKU.") from None
    try:
        number = max(1, min(int(request.GET.get("page", "1")), 100_000))
    except ValueError:
        number = 1
    stock = (detail.levels, detail.on_hand, detail.allocated, detail.available)
    context = _stock_context(request, detail.variant, stock=stock)
    context.update(
        {
            "detail": detail,
            "movements": selectors.movement_page(variant=detail.variant, page=number, per_page=MOVEMENTS_PER_PAGE),
            "can_view_orders": request.user.has_perm("orders.view_order"),
            "can_see_mismatches": request.user.has_perm("inventory.view_stockmismatch"),
        }
    )
    return render(request, "inventory/sku_detail.html", context)


def _stock_action(
    request: HttpRequest,
    pk: int,
    *,
    name: str,
    make_form: Callable[[list[Location]], forms.Form],
    act: Callable[[Variant, Any], object],
    done: str,
) -> HttpResponse:
    """Validate the form, call the service through `act`, then answer htmx with the panels or redirect back."""
    try:
        variant = _variant_or_404(pk)
    except Http404:
        if _htmx(request):
            return htmx_toast(request, "This SKU no longer exists.", 404)
        raise
    form = make_form(selectors.active_locations())
    status = 200
    if form.is_valid():
        try:
            act(variant, form)
        except StockError as exc:
            form.add_error(None, str(exc))
            status = 422
    else:
        status = 422
    error = _form_error_text(form) if status != 200 else ""
    if not _htmx(request):
        if error:
            messages.error(request, f"Nothing was changed: {error}")
        else:
            messages.success(request, done)
        return HttpResponseRedirect(reverse("inventory:sku-detail", args=[variant.pk]))
    overrides: dict[str, Any] = {"action_error": error, "action_done": "" if error else done}
    if error:
        overrides[f"{name}_form"] = form  # keep what the user typed, with the errors beside it
        overrides["open_form"] = name
    context = _stock_context(request, variant, **overrides)
    context["oob"] = True
    context["allocations"] = selectors.sku_allocations(variant=variant)
    context["movements"] = selectors.movement_page(variant=variant, page=1, per_page=MOVEMENTS_PER_PAGE)
    context["can_view_orders"] = request.user.has_perm("orders.view_order")
    return render(request, "inventory/_sku_actions.html", context, status=status)


@require_POST
@staff_view(VIEW, RECEIVE)
def sku_receive(request: HttpRequest, pk: int) -> HttpResponse:
    def act(variant: Variant, form: Any) -> object:
        data = form.cleaned_data
        return stock_receive(
            variant=variant,
            location=data["location"],
            quantity=data["quantity"],
            reference=data["reference"].strip(),
            note=data["note"].strip(),
            actor=request.user,
        )

    return _stock_action(
        request,
        pk,
        name="receive",
        make_form=lambda locations: ReceiveForm(request.POST, locations=locations),
        act=act,
        done="Stock received.",
    )


@require_POST
@staff_view(VIEW, ADJUST)
def sku_adjust(request: HttpRequest, pk: int) -> HttpResponse:
    def act(variant: Variant, form: Any) -> object:
        return stock_adjust(
            variant=variant,
            location=form.cleaned_data["location"],
            delta=form.cleaned_data["delta"],
            note=form.movement_note(),
            reason=form.movement_reason(),
            actor=request.user,
        )

    return _stock_action(
        request,
        pk,
        name="adjust",
        make_form=lambda locations: AdjustForm(request.POST, locations=locations),
        act=act,
        done="Stock adjusted.",
    )


@require_POST
@staff_view(VIEW, ADJUST)
def sku_transfer(request: HttpRequest, pk: int) -> HttpResponse:
    def act(variant: Variant, form: Any) -> object:
        data = form.cleaned_data
        return stock_transfer(
            variant=variant,
            source=data["source"],
            target=data["target"],
            quantity=data["quantity"],
            note=data["note"].strip(),
            actor=request.user,
        )

    return _stock_action(
        request,
        pk,
        name="transfer",
        make_form=lambda locations: TransferForm(request.POST, locations=locations),
        act=act,
        done="Stock transferred.",
    )


# ---------------------------------------------------------------------------------------------------------
# Stock-take by scanner. The count in progress lives in the session (variant id -> units counted, in the
# order last scanned), so a reload or a dropped tablet connection does not lose it; posting it is one service call.

SESSION_PREFIX = "stocktake:"


def _session_key(location: Location) -> str:
    return f"{SESSION_PREFIX}{location.pk}"


def _counted(request: HttpRequest, location: Location) -> dict[int, int]:
    raw = request.session.get(_session_key(location)) or {}
    return {int(pk): int(n) for pk, n in raw.items()}


def _save_counted(request: HttpRequest, location: Location, counted: dict[int, int]) -> None:
    if counted:
        request.session[_session_key(location)] = {str(pk): n for pk, n in counted.items()}
    else:
        request.session.pop(_session_key(location), None)


def _location_or_404(code: str) -> Location:
    location = Location.objects.filter(code=code, active=True).first()
    if location is None:
        raise Http404("No such active location.")
    return location


def _sheet_context(
    request: HttpRequest, location: Location, *, counted: dict[int, int] | None = None, **extra: Any
) -> dict[str, Any]:
    counted = _counted(request, location) if counted is None else counted
    # Most recently scanned first: the row the person just scanned is at the top, next to the input.
    order = list(reversed(list(counted)))
    rows = selectors.count_sheet(location=location, counted={pk: counted[pk] for pk in order})
    context: dict[str, Any] = {
        "location": location,
        "rows": rows,
        "total_counted": sum(r.counted for r in rows),
        "differences": sum(1 for r in rows if r.difference),
        "scan_error": "",
        "scan_done": "",
        "last_variant_id": None,
        "failed_sku": "",
        "post_error": "",
        "posted": None,
    }
    context.update(extra)
    return context


def _sheet(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """The count sheet partial for htmx; without htmx, the message and a redirect back to the sheet."""
    if _htmx(request):
        return render(request, "inventory/_count_sheet.html", context, status=status)
    error = context["scan_error"] or context["post_error"]
    if error:
        messages.error(request, error)
    elif context["scan_done"]:
        messages.success(request, context["scan_done"])
    return HttpResponseRedirect(reverse("inventory:count-sheet", args=[context["location"].code]))


@require_safe
@staff_view(VIEW, ADJUST)
def count_start(request: HttpRequest) -> HttpResponse:
    locations = selectors.active_locations()
    in_progress = {loc.pk: len(_counted(request, loc)) for loc in locations}
    return render(
        request,
        "inventory/count_start.html",
        {"locations": [(loc, in_progress[loc.pk]) for loc in locations]},
    )


@require_safe
@staff_view(VIEW, ADJUST)
def count_sheet(request: HttpRequest, code: str) -> HttpResponse:
    location = _location_or_404(code)
    context = _sheet_context(request, location)
    context["scan_form"] = ScanForm()
    return render(request, "inventory/count_sheet.html", context)


@require_POST
@staff_view(VIEW, ADJUST)
def count_scan(request: HttpRequest, code: str) -> HttpResponse:
    location = _location_or_404(code)
    form = ScanForm(request.POST)
    if not form.is_valid():
        return _sheet(request, _sheet_context(request, location, scan_error=_form_error_text(form)), 422)
    scanned = form.cleaned_data["code"]
    try:
        variant = selectors.variant_for_scan(scanned)
    except selectors.ScanError as exc:
        return _sheet(request, _sheet_context(request, location, scan_error=str(exc)), 422)
    counted = _counted(request, location)
    units = counted.pop(variant.pk, 0) + form.cleaned_data["quantity"]
    counted[variant.pk] = units  # re-inserted: the last scanned is the newest entry
    _save_counted(request, location, counted)
    done = f"{variant.sku}: {units} counted"
    return _sheet(
        request, _sheet_context(request, location, counted=counted, scan_done=done, last_variant_id=variant.pk)
    )


@require_POST
@staff_view(VIEW, ADJUST)
def count_set(request: HttpRequest, code: str, variant_pk: int) -> HttpResponse:
    """Type the number counted for one SKU, or take it off the sheet (`remove`)."""
    location = _location_or_404(code)
    counted = _counted(request, location)
    if variant_pk not in counted:
        return _sheet(request, _sheet_context(request, location, scan_error="That SKU is not on this count."), 404)
    if request.POST.get("remove"):
        del counted[variant_pk]
        _save_counted(request, location, counted)
        return _sheet(request, _sheet_context(request, location, counted=counted))
    form = CountSetForm(request.POST)
    if not form.is_valid():
        return _sheet(request, _sheet_context(request, location, scan_error=_form_error_text(form)), 422)
    counted[variant_pk] = form.cleaned_data["counted"]
    _save_counted(request, location, counted)
    return _sheet(request, _sheet_context(request, location, counted=counted, last_variant_id=variant_pk))


@require_POST
@staff_view(VIEW, ADJUST)
def count_post(request: HttpRequest, code: str) -> HttpResponse:
    location = _location_or_404(code)
    counted = _counted(request, location)
    if not counted:
        return _sheet(request, _sheet_context(request, location, post_error="Nothing has been counted yet."), 422)
    try:
        result = stocktake_post(location=location, counted=counted, actor=request.user)
    except StocktakeError as exc:
        reason = str(exc) if exc.sku in str(exc) else f"{exc.sku}: {exc}"
        error = f"Nothing was posted. {reason}"
        return _sheet(request, _sheet_context(request, location, post_error=error, failed_sku=exc.sku), 409)
    _save_counted(request, location, {})
    done = (
        f"Stock-take posted: {result.counted} SKU{'s' if result.counted != 1 else ''} counted, "
        f"{len(result.movements)} corrected, {len(result.matched)} matched the books."
    )
    return _sheet(request, _sheet_context(request, location, counted={}, posted=result, scan_done=done))


@require_POST
@staff_view(VIEW, ADJUST)
def count_discard(request: HttpRequest, code: str) -> HttpResponse:
    location = _location_or_404(code)
    _save_counted(request, location, {})
    return _sheet(request, _sheet_context(request, location, counted={}, scan_done="Count discarded."))


# ---------------------------------------------------------------------------------------------------------
# Mismatches between the channels and the master

MISMATCH_PERMS = (VIEW, "inventory.view_stockmismatch")
RESOLVE_PERMS = (*MISMATCH_PERMS, "inventory.change_stockmismatch")
MISMATCH_ACTIONS: dict[str, tuple[Callable[..., StockMismatch], str]] = {
    "correct": (services_reconcile.mismatch_correct, "the master's quantity will be pushed to the channel."),
    "accept": (services_reconcile.mismatch_accept, "the channel's quantity was booked as a stock correction."),
    "dismiss": (services_reconcile.mismatch_dismiss, "dismissed without a change."),
}


@require_safe
@staff_view(*MISMATCH_PERMS)
def mismatch_list(request: HttpRequest) -> HttpResponse:
    channels = selectors.visible_channels(request.user)
    form = MismatchFilterForm(request.GET, channels=channels)
    form.is_valid()
    page = selectors.mismatch_page(
        channels=channels, filters=form.filters(), page=form.page_number(), per_page=form.page_size()
    )
    return render(
        request,
        "inventory/mismatch_list.html",
        {
            "form": form,
            "page": page,
            "show_channel": len(channels) > 1,
            "can_resolve": request.user.has_perm("inventory.change_stockmismatch"),
        },
    )


@require_POST
@staff_view(*RESOLVE_PERMS)
def mismatch_resolve(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in MISMATCH_ACTIONS:
        raise Http404("No such action.")
    service, done = MISMATCH_ACTIONS[action]
    try:
        mismatch = selectors.mismatch_get(pk=pk, channels=selectors.visible_channels(request.user))
    except StockMismatch.DoesNotExist:
        if _htmx(request):
            return htmx_toast(request, "This mismatch is not on your channels, or no longer exists.", 404)
        raise Http404("No such mismatch on your channels.") from None
    label = mismatch.sku or mismatch.external_id or f"#{mismatch.pk}"
    try:
        service(mismatch=mismatch, actor=request.user)
    except ValueError as exc:  # MismatchActionError and StockError: the reason in words, nothing changed
        messages.error(request, f"{label} on {mismatch.channel.name}: not possible, {exc}. Nothing was changed.")
    else:
        messages.success(request, f"{label} on {mismatch.channel.name}: {done}")
    # Back to the list as it was filtered: only the list's own parameters are carried over.
    previous = QueryDict(request.POST.get("back", ""))
    kept = {key: previous[key] for key in ("channel", "kind", "per_page", "page") if previous.get(key)}
    back = reverse("inventory:mismatch-list")
    back = f"{back}?{urlencode(kept)}" if kept else back
    if _htmx(request):  # the confirmed "accept" posts with htmx: the page reloads with the message
        response = HttpResponse(status=204)
        response["HX-Redirect"] = back
        return response
    return HttpResponseRedirect(back)

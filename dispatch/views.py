"""Staff screens of dispatch: the packing screen (station, next order, scan-to-verify, packed, the label's status),
the manager's live queue, batches with their pick lists, shipments with void and reprint, rate quotes for the
Packed and rebook forms, end-of-day manifests, and file downloads.

Views validate input with forms and delegate: reads to dispatch.selectors, writes to dispatch.services. A
DispatchError is the person's answer, shown in words with a 4xx, never a 500. The scan field's answers are
htmx partials; everything also works as plain form posts.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from carriers.base import Rate
from dispatch import selectors, services, services_tracking
from dispatch.documents import render_pick_list
from dispatch.forms import (
    BatchChoiceForm,
    BatchCreateForm,
    ManifestForm,
    OverrideForm,
    PageForm,
    ParcelsForm,
    RebookForm,
    ReleaseForm,
    ReprintForm,
    ScanForm,
    StationForm,
    VoidForm,
)
from dispatch.models import (
    Batch,
    CarrierAccount,
    Document,
    PackingStation,
    PackSession,
    PrintJob,
    ScanResult,
    Shipment,
    ShipmentParcel,
)
from dispatch.services import DispatchError, ExpectedItem, ParcelInput
from oms.core.views import htmx_toast, staff_view
from oms.orders.models import Order, OrderStatus
from oms.orders.selectors import channel_scope

PACK = "dispatch.pack_orders"
OVERRIDE = "dispatch.override_pack_check"
VIEW_QUEUE = "dispatch.view_packsession"
VIEW_SHIPMENT = "dispatch.view_shipment"
VOID = "dispatch.void_shipment"
REPRINT = "dispatch.reprint_documents"
VIEW_BATCH = "dispatch.view_batch"
MANAGE_BATCHES = "dispatch.manage_batches"
VIEW_MANIFEST = "dispatch.view_manifest"
ADD_MANIFEST = "dispatch.add_manifest"

STATION_KEY = "dispatch.station"  # the packer's bench, kept in their session; 0: chose to have none
BATCH_KEY = "dispatch.batch"


def _user(request: HttpRequest) -> User:
    """The signed-in staff member (staff_view has let only them through)."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied("Sign in first.")
    return user


def _htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _form_error_text(form: forms.Form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


class Refused(Exception):
    """A request that cannot be served as asked: answered with `status` and the message, never a 500."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _refusal(request: HttpRequest, refused: Refused) -> HttpResponse:
    if _htmx(request):
        return htmx_toast(request, refused.message, refused.status)
    if refused.status == 404:
        raise Http404(refused.message)
    if refused.status == 403:
        raise PermissionDenied(refused.message)
    return HttpResponse(refused.message, status=refused.status, content_type="text/plain; charset=utf-8")


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    """After a change: htmx navigates the whole page, a plain post is redirected (303: the next load is a GET)."""
    if _htmx(request):
        return HttpResponseClientRedirect(url)
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


# ---------------------------------------------------------------------------------------------------------
# Packing: station, next order


def _station_of(request: HttpRequest) -> tuple[bool, PackingStation | None]:
    """(chosen, station): whether the packer chose a bench this session, and which (None: no station)."""
    if STATION_KEY not in request.session:
        return False, None
    station = selectors.station_get(request.session.get(STATION_KEY))
    if station is None and request.session.get(STATION_KEY):
        del request.session[STATION_KEY]  # deactivated or deleted since: ask again
        return False, None
    return True, station


def _batch_of(request: HttpRequest) -> Batch | None:
    batch = selectors.batch_open_get(request.session.get(BATCH_KEY))
    if batch is None and request.session.get(BATCH_KEY):
        del request.session[BATCH_KEY]
    return batch


def _open_batches() -> QuerySet[Batch]:
    return Batch.objects.filter(pk__in=[b.pk for b in selectors.open_batches()]).order_by("-created_at")


@require_safe
@staff_view(PACK)
def pack_start(request: HttpRequest) -> HttpResponse:
    current = selectors.open_session_of(request.user)
    if current is not None:
        return HttpResponseRedirect(reverse("dispatch:pack-session", args=[current.pk]))
    chosen, station = _station_of(request)
    stations = selectors.stations_active()
    choosing = bool(stations) and (not chosen or request.GET.get("change") == "station")
    batch = _batch_of(request)
    batches = selectors.open_batches()
    return render(
        request,
        "dispatch/pack_start.html",
        {
            "choosing": choosing,
            "stations": stations,
            "station": station,
            "batch": batch,
            "batches": batches,
            "ready_count": Order.objects.filter(status=OrderStatus.READY).count(),
        },
    )


@require_POST
@staff_view(PACK)
def pack_station(request: HttpRequest) -> HttpResponse:
    form = StationForm(request.POST, stations=PackingStation.objects.filter(active=True))
    if not form.is_valid():
        messages.error(request, f"No station chosen: {_form_error_text(form)}")
        return _redirect(request, reverse("dispatch:pack") + "?change=station")
    station = form.cleaned_data["station"]
    request.session[STATION_KEY] = station.pk if station else 0
    messages.success(request, f"Packing at {station.name}." if station else "Packing without a station.")
    return _redirect(request, reverse("dispatch:pack"))


@require_POST
@staff_view(PACK)
def pack_next(request: HttpRequest) -> HttpResponse:
    _, station = _station_of(request)
    if "batch" in request.POST:
        form = BatchChoiceForm(request.POST, batches=_open_batches())
        if not form.is_valid():
            messages.error(request, "That batch is closed or has nothing left to pack: choose again.")
            return _redirect(request, reverse("dispatch:pack"))
        chosen = form.cleaned_data["batch"]
        if chosen is None:
            request.session.pop(BATCH_KEY, None)
        else:
            request.session[BATCH_KEY] = chosen.pk
    batch = _batch_of(request)
    try:
        session = services.pack_next(packer=_user(request), station=station, batch=batch)
    except ValueError as exc:  # DispatchError, or the order's state changed under us
        messages.error(request, f"No order handed out: {exc}.")
        return _redirect(request, reverse("dispatch:pack"))
    if session is None:
        where = f"in batch {batch.name}" if batch else "in the queue"
        messages.info(request, f"Nothing is waiting to be packed {where}.")
        return _redirect(request, reverse("dispatch:pack"))
    return _redirect(request, reverse("dispatch:pack-session", args=[session.pk]))


@require_POST
@staff_view(PACK)
def batch_pack(request: HttpRequest, pk: int) -> HttpResponse:
    batch = selectors.batch_open_get(pk)
    if batch is None:
        return _refusal(request, Refused(404, "No such open batch."))
    request.session[BATCH_KEY] = batch.pk
    messages.success(request, f"Packing batch {batch.name}: “Next order” takes its orders first.")
    return _redirect(request, reverse("dispatch:pack"))


# ---------------------------------------------------------------------------------------------------------
# Packing: one order


@dataclass(frozen=True, slots=True)
class Feedback:
    """The banner above the lines: green for a right scan, red for anything else, with the message."""

    result: str  # a ScanResult, or "error" for a refused request
    message: str

    @property
    def ok(self) -> bool:
        return self.result == ScanResult.OK


def _session_or_refuse(request: HttpRequest, pk: int, *, managers_too: bool = False) -> PackSession:
    try:
        session = selectors.session_get(pk)
    except PackSession.DoesNotExist:
        raise Refused(404, "No such packing session: take the next order.") from None
    if session.packer_id != request.user.pk and not (managers_too and request.user.has_perm(OVERRIDE)):
        raise Refused(403, f"Order {session.order.number} is being packed by {session.packer.get_username()}.")
    return session


def _pack_context(
    request: HttpRequest,
    session: PackSession,
    *,
    items: list[ExpectedItem] | None = None,
    feedback: Feedback | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    order = session.order
    items = items if items is not None else services.pack_progress(session)
    complete = bool(items) and all(i.done for i in items)
    catalog_grams = selectors.order_weight_grams(order)
    user = request.user
    context: dict[str, Any] = {
        "session": session,
        "order": order,
        "rows": selectors.pack_rows(order, items),
        "scanned": sum(min(i.scanned, i.quantity) for i in items),
        "needed": sum(i.quantity for i in items),
        "complete": complete,
        "ready": session.outcome == PackSession.Outcome.OPEN and (complete or bool(session.override_reason)),
        "unscannable": [i for i in items if i.variant_id is None],
        "feedback": feedback,
        "catalog_grams": catalog_grams,
        "scan_form": ScanForm(),
        "parcels_form": ParcelsForm(carriers=selectors.carrier_accounts_active()),
        "override_form": OverrideForm(),
        "release_form": ReleaseForm(),
        "can_override": user.has_perm(OVERRIDE),
        "gate_error": "",
        "own": session.packer_id == user.pk,
    }
    context.update(overrides)
    return context


def _live(request: HttpRequest, session: PackSession, status: int = 200, **kwargs: Any) -> HttpResponse:
    """The scan's answer: the live part (banner, lines, packed gate) for htmx, the whole page otherwise."""
    context = _pack_context(request, session, **kwargs)
    template = "dispatch/_pack_live.html" if _htmx(request) else "dispatch/pack_session.html"
    return render(request, template, context, status=status)


@require_safe
@staff_view(PACK)
def pack_session(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        session = _session_or_refuse(request, pk, managers_too=True)
    except Refused as refused:
        return _refusal(request, refused)
    if session.outcome == PackSession.Outcome.OPEN:
        return render(request, "dispatch/pack_session.html", _pack_context(request, session))
    shipment = selectors.latest_shipment_of(session.order) if session.outcome == PackSession.Outcome.PACKED else None
    context: dict[str, Any] = {"session": session, "order": session.order, "shipment": shipment}
    if shipment is not None:
        context.update(_status_context(request, shipment))
    return render(request, "dispatch/pack_done.html", context)


@require_POST
@staff_view(PACK)
def pack_scan(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        session = _session_or_refuse(request, pk)
    except Refused as refused:
        return _refusal(request, refused)
    form = ScanForm(request.POST)
    if not form.is_valid():
        return _live(request, session, feedback=Feedback("error", _form_error_text(form)), status=400)
    try:
        outcome = services.pack_scan(session=session, barcode=form.cleaned_data["code"], actor=request.user)
    except DispatchError as exc:
        session = selectors.session_get(pk)
        return _live(request, session, feedback=Feedback("error", str(exc)), status=409)
    return _live(request, session, items=outcome.items, feedback=Feedback(outcome.result, outcome.message))


@require_safe
@staff_view(PACK)
def pack_gate(request: HttpRequest, pk: int) -> HttpResponse:
    """The "Packed" part alone, polled while it is closed: a manager's override opens it without a reload."""
    try:
        session = _session_or_refuse(request, pk, managers_too=True)
    except Refused as refused:
        return _refusal(request, refused)
    if session.outcome != PackSession.Outcome.OPEN:
        return HttpResponseClientRedirect(reverse("dispatch:pack-session", args=[session.pk]))
    return render(request, "dispatch/_pack_gate.html", _pack_context(request, session))


@require_POST
@staff_view(PACK)
def pack_packed(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        session = _session_or_refuse(request, pk)
    except Refused as refused:
        return _refusal(request, refused)
    form = ParcelsForm(request.POST, carriers=selectors.carrier_accounts_active())
    if not form.is_valid():
        return _live(request, session, parcels_form=form, gate_error=_form_error_text(form), status=422)
    data = form.cleaned_data
    try:
        services.pack_complete(
            session=session,
            actor=request.user,
            parcels=form.parcel_inputs(catalog_grams=selectors.order_weight_grams(session.order)),
            carrier_account=data["carrier_account"],
            service=data["service"].strip(),
        )
    except ValueError as exc:  # DispatchError, or an order whose state moved under us
        session = selectors.session_get(pk)
        return _live(request, session, parcels_form=form, gate_error=str(exc), status=422)
    return _redirect(request, reverse("dispatch:pack-session", args=[session.pk]))


def _back_to_queue(request: HttpRequest) -> bool:
    return request.POST.get("back") == "queue"


@require_POST
@staff_view(PACK, OVERRIDE)
def pack_override(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        session = _session_or_refuse(request, pk, managers_too=True)
    except Refused as refused:
        return _refusal(request, refused)
    form = OverrideForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.pack_override(session=session, manager=request.user, reason=form.cleaned_data["reason"])
        except DispatchError as exc:
            error = str(exc)
    else:
        error = _form_error_text(form)
    if _back_to_queue(request) and not _htmx(request):
        if error:
            messages.error(request, f"Not let through: {error}")
        else:
            messages.success(request, f"Order {session.order.number} may be packed without every scan.")
        return _redirect(request, reverse("dispatch:queue"))
    session = selectors.session_get(pk)
    if error:
        return _live(
            request, session, override_form=form, feedback=Feedback("error", f"Not let through: {error}"), status=422
        )
    done = Feedback(ScanResult.OK, f"Let through by {request.user.get_username()}: {session.override_reason}")
    return _live(request, session, feedback=done)


@require_POST
@staff_view(PACK)
def pack_release(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        session = _session_or_refuse(request, pk, managers_too=True)
    except Refused as refused:
        return _refusal(request, refused)
    form = ReleaseForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.pack_release(session=session, actor=request.user, reason=form.cleaned_data["reason"])
        except ValueError as exc:
            error = str(exc)
    else:
        error = _form_error_text(form)
    back = reverse("dispatch:queue") if _back_to_queue(request) else reverse("dispatch:pack")
    if error and not _back_to_queue(request):
        session = selectors.session_get(pk)
        if session.outcome == PackSession.Outcome.OPEN:
            return _live(
                request, session, release_form=form, feedback=Feedback("error", f"Not put back: {error}"), status=422
            )
    if error:
        messages.error(request, f"Not put back: {error}")
    else:
        messages.success(request, f"Order {session.order.number} is back in the queue.")
    return _redirect(request, back)


# ---------------------------------------------------------------------------------------------------------
# The label's status after "Packed", rebooking


def _status_context(request: HttpRequest, shipment: Shipment, **overrides: Any) -> dict[str, Any]:
    panel = selectors.shipment_panel(shipment)
    context: dict[str, Any] = {
        "panel": panel,
        "shipment": shipment,
        "waiting_long": shipment.status in selectors.SHIPMENT_PENDING
        and (timezone.now() - shipment.created_at).total_seconds() > 120,
        "can_rebook": request.user.has_perm(PACK) and panel.newer_id is None,
        "rebook_form": RebookForm(carriers=selectors.carrier_accounts_active()),
        "rebook_error": "",
    }
    context.update(overrides)
    return context


def _shipment_or_refuse(request: HttpRequest, pk: int) -> Shipment:
    try:
        return selectors.shipment_get(pk=pk, user=request.user)
    except Shipment.DoesNotExist:
        raise Refused(404, "No such shipment on your channels.") from None


@require_safe
@staff_view(VIEW_SHIPMENT)
def shipment_status(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        shipment = _shipment_or_refuse(request, pk)
    except Refused as refused:
        return _refusal(request, refused)
    return render(request, "dispatch/_shipment_status.html", _status_context(request, shipment))


@require_POST
@staff_view(VIEW_SHIPMENT, PACK)
def shipment_rebook(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        shipment = _shipment_or_refuse(request, pk)
    except Refused as refused:
        return _refusal(request, refused)
    form = RebookForm(request.POST, carriers=selectors.carrier_accounts_active())
    error = ""
    new: Shipment | None = None
    if form.is_valid():
        try:
            new = services.shipment_rebook(
                shipment=shipment,
                actor=request.user,
                carrier_account=form.cleaned_data["carrier_account"],
                service=form.cleaned_data["service"].strip(),
                parcels=form.rebook_parcels(catalog_grams=selectors.order_weight_grams(shipment.order)),
            )
        except ValueError as exc:
            error = str(exc)
    else:
        error = _form_error_text(form)
    if not _htmx(request):
        if error or new is None:
            messages.error(request, f"Not booked again: {error}")
            return _redirect(request, reverse("dispatch:shipment-detail", args=[shipment.pk]))
        messages.success(request, "Booked again: the label is being bought.")
        return _redirect(request, reverse("dispatch:shipment-detail", args=[new.pk]))
    if error or new is None:
        context = _status_context(request, shipment, rebook_form=form, rebook_error=error)
        return render(request, "dispatch/_shipment_status.html", context, status=422)
    new = selectors.shipment_get(pk=new.pk, user=request.user)
    return render(request, "dispatch/_shipment_status.html", _status_context(request, new))


# ---------------------------------------------------------------------------------------------------------
# Rate quotes for the Packed and rebook forms: the packer picks a service from them (htmx partials)


def _rates_error(request: HttpRequest, message: str, status: int = 422) -> HttpResponse:
    return render(request, "dispatch/_rates.html", {"error": message}, status=status)


def _rates_answer(
    request: HttpRequest, *, order: Order, account: CarrierAccount, parcels: list[ParcelInput] | None
) -> HttpResponse:
    try:
        quotes = services.shipment_rates(order=order, carrier_account=account, parcels=parcels)
    except DispatchError as exc:
        return _rates_error(request, str(exc))
    rates: list[Rate] = list(quotes)
    return render(request, "dispatch/_rates.html", {"account": account, "rates": rates, "supported": quotes.supported})


@require_POST
@staff_view(PACK)
def pack_rates(request: HttpRequest, pk: int) -> HttpResponse:
    """Quotes for the box on the packing screen: the chosen carrier's, or the shipping rules' carrier's."""
    try:
        session = _session_or_refuse(request, pk)
        if session.outcome != PackSession.Outcome.OPEN:
            raise Refused(409, f"Order {session.order.number} is no longer being packed.")
    except Refused as refused:
        return _refusal(request, refused)
    form = ParcelsForm(request.POST, carriers=selectors.carrier_accounts_active())
    if not form.is_valid():
        return _rates_error(request, _form_error_text(form))
    order = session.order
    parcels = form.parcel_inputs(catalog_grams=selectors.order_weight_grams(order))
    account = form.cleaned_data["carrier_account"]
    if account is None:
        weight = sum(p.weight_grams for p in parcels) if parcels else None
        chosen = services.carrier_choose(order=order, weight_grams=weight)
        if chosen is None:
            return _rates_error(request, "No shipping rule matches this order: choose a carrier to see its rates.")
        account = chosen[0]
    return _rates_answer(request, order=order, account=account, parcels=parcels)


@require_POST
@staff_view(VIEW_SHIPMENT, PACK)
def shipment_rates(request: HttpRequest, pk: int) -> HttpResponse:
    """Quotes for booking a refused or voided shipment again: the chosen carrier's, or the same carrier's."""
    try:
        shipment = _shipment_or_refuse(request, pk)
    except Refused as refused:
        return _refusal(request, refused)
    form = RebookForm(request.POST, carriers=selectors.carrier_accounts_active())
    if not form.is_valid():
        return _rates_error(request, _form_error_text(form))
    order = shipment.order
    parcels = form.rebook_parcels(catalog_grams=selectors.order_weight_grams(order))
    return _rates_answer(
        request,
        order=order,
        account=form.cleaned_data["carrier_account"] or shipment.carrier_account,
        parcels=parcels if parcels is not None else selectors.parcel_inputs_of(shipment),
    )


# ---------------------------------------------------------------------------------------------------------
# Shipment page: void, reprint


@require_safe
@staff_view(VIEW_SHIPMENT)
def shipment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        detail = selectors.shipment_detail(pk=pk, user=request.user)
    except Shipment.DoesNotExist:
        raise Http404("No such shipment on your channels.") from None
    shipment = detail.panel.shipment
    user = request.user
    context = _status_context(request, shipment)
    context.update(
        {
            "detail": detail,
            "can_void": user.has_perm(VOID) and shipment.status == "bought",
            "can_settle": user.has_perm(VOID) and shipment.status == "unknown",
            "can_reprint": user.has_perm(REPRINT) and bool(detail.panel.documents),
            "void_form": VoidForm(),
            "reprint_form": ReprintForm(
                documents=shipment.documents.all(),
                printers=selectors.printers_active(),
                initial={"printer": detail.panel.label_printer},
            ),
            "can_view_order": user.has_perm("orders.view_order"),
            "on_detail": True,
        }
    )
    return render(request, "dispatch/shipment_detail.html", context)


def _shipment_with_reason(
    request: HttpRequest,
    pk: int,
    act: Callable[..., object],
    *,
    verb: str,
    done: str,
) -> HttpResponse:
    """A POST that changes one shipment with a reason (void, settle): the outcome as a message on its page."""
    try:
        shipment = _shipment_or_refuse(request, pk)
    except Refused as refused:
        return _refusal(request, refused)
    form = VoidForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not {verb}: {_form_error_text(form)}")
    else:
        try:
            act(shipment=shipment, actor=request.user, reason=form.cleaned_data["reason"])
        except ValueError as exc:
            messages.error(request, f"Not {verb}: {exc}")
        else:
            messages.success(request, done)
    return _redirect(request, reverse("dispatch:shipment-detail", args=[shipment.pk]))


@require_POST
@staff_view(VIEW_SHIPMENT, VOID)
def shipment_void(request: HttpRequest, pk: int) -> HttpResponse:
    return _shipment_with_reason(
        request,
        pk,
        services.shipment_void,
        verb="voided",
        done="Label voided. The order is back to packed: book it again when ready.",
    )


@require_POST
@staff_view(VIEW_SHIPMENT, VOID)
def shipment_settle(request: HttpRequest, pk: int) -> HttpResponse:
    return _shipment_with_reason(
        request,
        pk,
        services.shipment_resolve_unknown,
        verb="settled",
        done="Settled: no label is live. Book the order again when ready.",
    )


@require_POST
@staff_view(VIEW_SHIPMENT, REPRINT)
def shipment_reprint(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        shipment = _shipment_or_refuse(request, pk)
    except Refused as refused:
        return _refusal(request, refused)
    form = ReprintForm(request.POST, documents=shipment.documents.all(), printers=selectors.printers_active())
    if not form.is_valid():
        messages.error(request, f"Not printed: {_form_error_text(form)}")
        return _redirect(request, reverse("dispatch:shipment-detail", args=[shipment.pk]))
    document = form.cleaned_data["document"]
    last = PrintJob.objects.filter(document=document).order_by("-created_at", "-pk").first()
    try:
        services.print_document(
            document=document,
            printer=form.cleaned_data["printer"],
            station=shipment.station,
            actor=request.user,
            reprint_of=last,
            reason=form.cleaned_data["reason"],
        )
    except ValueError as exc:
        messages.error(request, f"Not printed: {exc}")
    else:
        messages.success(request, f"{document.title} sent to {form.cleaned_data['printer'].name}.")
    return _redirect(request, reverse("dispatch:shipment-detail", args=[shipment.pk]))


# ---------------------------------------------------------------------------------------------------------
# Downloads: labels and documents, streamed from the storage (local media or S3)


def _stream(name: str, *, content_type: str, filename: str) -> HttpResponseBase:
    if not name:
        raise Http404("This file was never stored.")
    try:
        handle = default_storage.open(name, "rb")
    except (FileNotFoundError, OSError):
        raise Http404("This file is missing from the storage.") from None
    inline = content_type == "application/pdf"
    response = FileResponse(handle, content_type=content_type, as_attachment=not inline, filename=filename)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _content_type_of(name: str) -> str:
    if name.endswith(".zpl"):
        return "application/zpl"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


@require_safe
@staff_view(VIEW_SHIPMENT)
def parcel_label(request: HttpRequest, pk: int) -> HttpResponseBase:
    try:
        parcel = selectors.parcel_get(pk=pk, user=request.user)
    except ShipmentParcel.DoesNotExist:
        raise Http404("No such label on your channels.") from None
    name = parcel.label.name if parcel.label else ""
    return _stream(name, content_type=_content_type_of(name), filename=os.path.basename(name) or "label")


@require_safe
@staff_view(VIEW_SHIPMENT)
def document_download(request: HttpRequest, pk: int) -> HttpResponseBase:
    try:
        document = selectors.document_get(pk=pk, user=request.user)
    except Document.DoesNotExist:
        raise Http404("No such document on your channels.") from None
    name = document.file.name if document.file else ""
    content_type = document.content_type or _content_type_of(name)
    return _stream(name, content_type=content_type, filename=os.path.basename(name) or "document")


# ---------------------------------------------------------------------------------------------------------
# End-of-day manifests


def _manifest_list(request: HttpRequest, form: ManifestForm | None = None, status: int = 200) -> HttpResponse:
    page_form = PageForm(request.GET)
    page_form.is_valid()
    can_create = request.user.has_perm(ADD_MANIFEST)
    return render(
        request,
        "dispatch/manifest_list.html",
        {
            "page": selectors.manifest_page(page=page_form.page_number(), per_page=page_form.page_size()),
            "can_create": can_create,
            "can_download": request.user.has_perm(VIEW_SHIPMENT),
            "form": form or (ManifestForm(carriers=selectors.carrier_accounts_active()) if can_create else None),
        },
        status=status,
    )


@require_safe
@staff_view(VIEW_MANIFEST)
def manifest_list(request: HttpRequest) -> HttpResponse:
    return _manifest_list(request)


@require_POST
@staff_view(VIEW_MANIFEST, ADD_MANIFEST)
def manifest_create(request: HttpRequest) -> HttpResponse:
    form = ManifestForm(request.POST, carriers=selectors.carrier_accounts_active())
    if not form.is_valid():
        return _manifest_list(request, form, status=422)
    account = form.cleaned_data["carrier_account"]
    day = form.cleaned_data["day"]
    try:
        manifest = services_tracking.manifest_create(carrier_account=account, day=day, actor=request.user)
    except DispatchError as exc:
        form.add_error(None, str(exc))
        return _manifest_list(request, form, status=422)
    messages.success(
        request,
        f"Manifest of {account.name} for {day.isoformat()} made: {manifest.parcels} "
        f"parcel{'s' if manifest.parcels != 1 else ''}.",
    )
    return _redirect(request, reverse("dispatch:manifest-list"))


# ---------------------------------------------------------------------------------------------------------
# The manager's live queue


@require_safe
@staff_view(VIEW_QUEUE)
def queue(request: HttpRequest) -> HttpResponse:
    form = PageForm(request.GET)
    form.is_valid()
    overview = selectors.queue_overview(user=request.user, page=form.page_number(), per_page=form.page_size())
    context = {
        "overview": overview,
        "page": overview.today,
        "now": timezone.now(),
        "today": timezone.localdate(),
        "can_override": request.user.has_perm(OVERRIDE) and request.user.has_perm(PACK),
        "can_view_shipment": request.user.has_perm(VIEW_SHIPMENT),
        "override_form": OverrideForm(),
        "release_form": ReleaseForm(),
        "poll_url": request.get_full_path(),
    }
    template = "dispatch/_queue_live.html" if _htmx(request) else "dispatch/queue.html"
    return render(request, template, context)


# ---------------------------------------------------------------------------------------------------------
# Batches and pick lists


def _batch_form(request: HttpRequest, data: Any = None) -> BatchCreateForm:
    ready = channel_scope(request.user).restrict(Order.objects.filter(status=OrderStatus.READY))
    return BatchCreateForm(data, carriers=selectors.carrier_accounts_active(), orders=ready)


def _batch_list(request: HttpRequest, form: BatchCreateForm | None = None, status: int = 200) -> HttpResponse:
    page_form = PageForm(request.GET)
    page_form.is_valid()
    can_manage = request.user.has_perm(MANAGE_BATCHES)
    return render(
        request,
        "dispatch/batch_list.html",
        {
            "page": selectors.batch_page(page=page_form.page_number(), per_page=page_form.page_size()),
            "can_manage": can_manage,
            "form": form or _batch_form(request),
            "candidates": selectors.batch_candidates(user=request.user) if can_manage else [],
            "ticked": set(request.POST.getlist("orders")) if form is not None else set(),
        },
        status=status,
    )


@require_safe
@staff_view(VIEW_BATCH)
def batch_list(request: HttpRequest) -> HttpResponse:
    return _batch_list(request)


@require_POST
@staff_view(VIEW_BATCH, MANAGE_BATCHES)
def batch_create(request: HttpRequest) -> HttpResponse:
    form = _batch_form(request, request.POST)
    if not form.is_valid():
        return _batch_list(request, form, status=422)
    data = form.cleaned_data
    try:
        batch = services.batch_create(
            name=data["name"],
            kind=data["kind"],
            actor=request.user,
            carrier_account=data["carrier_account"] if data["kind"] == Batch.Kind.CARRIER else None,
            orders=list(data["orders"]) if data["kind"] == Batch.Kind.MANUAL else (),
            limit=data["limit"],
        )
    except DispatchError as exc:
        form.add_error(None, str(exc))
        return _batch_list(request, form, status=422)
    messages.success(request, f"Batch {batch.name} created.")
    return _redirect(request, reverse("dispatch:batch-detail", args=[batch.pk]))


def _batch_or_404(pk: int) -> Batch:
    try:
        return selectors.batch_get(pk)
    except Batch.DoesNotExist:
        raise Http404("No such batch.") from None


@require_safe
@staff_view(VIEW_BATCH)
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch_or_404(pk)
    orders = selectors.batch_orders(batch=batch, user=request.user)
    return render(
        request,
        "dispatch/batch_detail.html",
        {
            "batch": batch,
            "orders": orders,
            "picks": selectors.pick_list_rows(orders),
            "can_pack": request.user.has_perm(PACK) and batch.closed_at is None,
            "can_close": request.user.has_perm(MANAGE_BATCHES) and batch.closed_at is None,
            "can_view_order": request.user.has_perm("orders.view_order"),
            "shown_limit": selectors.BATCH_ORDERS_SHOWN,
        },
    )


@require_POST
@staff_view(VIEW_BATCH, MANAGE_BATCHES)
def batch_close(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch_or_404(pk)
    try:
        services.batch_close(batch=batch, actor=request.user)
    except DispatchError as exc:
        messages.error(request, f"Not closed: {exc}.")
    else:
        messages.success(request, f"Batch {batch.name} closed: its orders not packed yet are back in the queue.")
    return _redirect(request, reverse("dispatch:batch-detail", args=[batch.pk]))


@require_safe
@staff_view(VIEW_BATCH)
def batch_pick_list(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch_or_404(pk)
    orders = selectors.batch_orders(batch=batch, user=request.user)
    pdf = render_pick_list(selectors.pick_list_data(batch, orders))
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="pick-list-{batch.pk}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response

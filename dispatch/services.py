"""Dispatch writes: the packing queue, scan-to-verify, booking labels without ever buying two, voiding.

The packing flow: `pack_next` hands a packer the most urgent ready order nobody holds (SKIP LOCKED, so ten
packers never get the same one), `pack_scan` checks every barcode against the order's lines, `pack_complete`
(only once every unit is scanned, or a manager let it pass) moves the order to packed and books the shipment
in a job. `shipment_buy` records each attempt before calling the carrier, so a double click, a retry or a
worker killed mid-call never buys a second label; see carriers/base.py for the carrier's part.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from carriers.base import (
    Address,
    CarrierAdapter,
    CarrierConfig,
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    Label,
    LabelFormat,
    NotSupported,
    Parcel,
    Rate,
    ShipmentRequest,
)
from carriers.registry import UnknownCarrierKind, carrier_class, carrier_for
from dispatch.models import (
    Batch,
    BatchOrder,
    CarrierAccount,
    Document,
    PackingStation,
    PackScan,
    PackSession,
    Printer,
    PrintJob,
    ScanResult,
    Shipment,
    ShipmentEvent,
    ShipmentParcel,
    ShipmentStatus,
    ShippingRule,
)
from inventory.models import BundleComponent, Variant
from oms.core.queue import enqueue_after_commit
from oms.core.services import Actor, acting_user, actor_label_for, alert_raise, alert_resolve, audit_record
from oms.orders.models import Order, OrderLine, OrderStatus, PaymentStatus
from oms.orders.services import order_transition, order_transition_locked

logger = logging.getLogger(__name__)

BUY_JOB = "dispatch.jobs.shipment_buy"
PRINT_JOB = "dispatch.jobs.print_job_send"
AFTER_SHIP_JOB = "dispatch.jobs.shipment_after_ship"
SLIP_JOB = "dispatch.jobs.packing_slip_print"
PACKAGING_GRAMS = 100  # a box and filler, added to the items' weight when the packer gives none
# A carrier call lasts at most its timeout (seconds); an attempt younger than this may still be in flight.
IN_FLIGHT = timedelta(minutes=2)


class DispatchError(ValueError):
    """A packing or shipping step that cannot happen as asked; the message is for the person who asked."""


# ---------------------------------------------------------------------------------------------------------
# The packing queue


def _queue(batch: Batch | None) -> Q:
    ready = Q(status=OrderStatus.READY)
    if batch is not None:
        ready &= Q(pk__in=BatchOrder.objects.filter(batch=batch).values("order_id"))
    return ready


def _open_session_of(packer: User) -> PackSession | None:
    return (
        PackSession.objects.select_related("order")
        .filter(packer=packer, outcome=PackSession.Outcome.OPEN, expires_at__gt=timezone.now())
        .order_by("-started_at")
        .first()
    )


def pack_next(*, packer: User, station: PackingStation | None = None, batch: Batch | None = None) -> PackSession | None:
    """The packer's open order if they have one, else the most urgent ready order nobody holds; None: queue empty.

    Urgency is the ship-by date, then the service level (express first), then age. The claim locks the order
    row with SKIP LOCKED: a packer never waits for another's claim and never gets the same order.
    """
    current = _open_session_of(packer)
    if current is not None:
        return current
    for _ in range(3):  # an order that changed under us between the skip-locked read and the claim: next one
        try:
            return _claim(packer=packer, station=station, batch=batch)
        except _ClaimLost:
            continue
    return None


class _ClaimLost(Exception):
    pass


@transaction.atomic
def _claim(*, packer: User, station: PackingStation | None, batch: Batch | None) -> PackSession | None:
    order = (
        Order.objects.select_for_update(skip_locked=True)
        .filter(_queue(batch))
        .order_by("ship_by", "service_level", "placed_at", "id")
        .first()
    )
    if order is None:
        return None
    if order.status != OrderStatus.READY:
        raise _ClaimLost
    order_transition_locked(order=order, to=OrderStatus.PICKING, actor=packer, reason="taken for packing")
    try:
        # No savepoint: a clash on open_key aborts this whole claim, and pack_next tries the next order.
        session = PackSession.objects.create(
            order=order,
            packer=packer,
            station=station,
            expires_at=timezone.now() + timedelta(minutes=settings.PACK_CLAIM_MINUTES),
            open_key=order.pk,
        )
    except IntegrityError:
        raise _ClaimLost from None
    session.order = order
    if station is not None and (station.document_printer_id or station.label_printer_id):
        enqueue_after_commit(SLIP_JOB, session.pk, queue="high")
    return session


def _lock_session(session: PackSession) -> PackSession:
    return PackSession.objects.select_for_update().select_related("order").get(pk=session.pk)


def _close(session: PackSession, outcome: str) -> None:
    session.outcome = outcome
    session.finished_at = timezone.now()
    session.open_key = None
    session.save(update_fields=["outcome", "finished_at", "open_key"])


@transaction.atomic
def pack_release(*, session: PackSession, actor: Actor, reason: str = "") -> PackSession:
    """The packer puts the order back in the queue (a missing item, a break); the scans stay in the log."""
    session = _lock_session(session)
    if session.outcome != PackSession.Outcome.OPEN:
        raise DispatchError("this order is no longer being packed")
    _close(session, PackSession.Outcome.RELEASED)
    order = session.order
    if order.status == OrderStatus.PICKING:
        order_transition(order=order, to=OrderStatus.READY, actor=actor, reason=reason or "put back in the queue")
    return session


def pack_sessions_expire(*, now: datetime | None = None) -> int:
    """Orders held too long without a scan go back to the queue. Returns how many."""
    now = now or timezone.now()
    expired = 0
    for pk in PackSession.objects.filter(outcome=PackSession.Outcome.OPEN, expires_at__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            session = PackSession.objects.select_for_update().select_related("order").get(pk=pk)
            if session.outcome != PackSession.Outcome.OPEN or session.expires_at > now:
                continue
            _close(session, PackSession.Outcome.EXPIRED)
            if session.order.status == OrderStatus.PICKING:
                order_transition(
                    order=session.order, to=OrderStatus.READY, actor=None, reason="packing timed out", system="dispatch"
                )
            expired += 1
    return expired


# ---------------------------------------------------------------------------------------------------------
# Scan-to-verify


@dataclass(frozen=True, slots=True)
class ExpectedItem:
    """One variant the packer must scan for one order line, and how many of it."""

    line_id: int
    variant_id: int | None  # None: the line's SKU is not in the catalog: it cannot be scanned
    sku: str
    title: str
    barcode: str
    quantity: int
    scanned: int = 0

    @property
    def done(self) -> bool:
        return self.scanned >= self.quantity


def pack_expected(order: Order) -> list[ExpectedItem]:
    """What must go in the box: each shipping line's variant (a bundle's components) times its quantity."""
    lines = list(OrderLine.objects.filter(order=order, requires_shipping=True).order_by("pk"))
    variants = {v.sku: v for v in Variant.objects.filter(sku__in=[line.sku for line in lines if line.sku])}
    parts: dict[int, list[tuple[Variant, int]]] = defaultdict(list)
    bundles = [v.pk for v in variants.values() if v.is_bundle]
    for bc in BundleComponent.objects.filter(bundle_id__in=bundles).select_related("component").order_by("pk"):
        parts[bc.bundle_id].append((bc.component, bc.quantity))
    items = []
    for line in lines:
        variant = variants.get(line.sku)
        if variant is None:
            items.append(ExpectedItem(line.pk, None, line.sku, line.title, "", line.quantity))
            continue
        for part, per in parts.get(variant.pk) or [(variant, 1)]:
            items.append(
                ExpectedItem(line.pk, part.pk, part.sku, part.title or line.title, part.barcode, per * line.quantity)
            )
    return items


def pack_progress(session: PackSession) -> list[ExpectedItem]:
    """The expected items with what has been scanned so far (right scans only)."""
    counts: dict[tuple[int | None, int | None], int] = defaultdict(int)
    scans = PackScan.objects.filter(session=session, result=ScanResult.OK)
    for line_id, variant_id in scans.values_list("line_id", "variant_id"):
        counts[(line_id, variant_id)] += 1
    out = []
    for item in pack_expected(session.order):
        scanned = counts.get((item.line_id, item.variant_id), 0)
        out.append(
            ExpectedItem(item.line_id, item.variant_id, item.sku, item.title, item.barcode, item.quantity, scanned)
        )
    return out


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    result: str
    message: str
    items: list[ExpectedItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result == ScanResult.OK

    @property
    def complete(self) -> bool:
        return all(item.done for item in self.items)


def _variant_for_barcode(code: str) -> Variant | None:
    return Variant.objects.filter(barcode=code).order_by("pk").first() or Variant.objects.filter(sku=code).first()


@transaction.atomic
def pack_scan(*, session: PackSession, barcode: str, actor: Actor) -> ScanOutcome:
    """Check one scanned barcode against the order; every scan is logged, right or wrong.

    The session row is locked for the check, so two scans arriving at once are both counted, never lost.
    """
    session = _lock_session(session)
    if session.outcome != PackSession.Outcome.OPEN:
        raise DispatchError("this order is no longer being packed: take the next one")
    code = barcode.strip()
    if not code:
        raise DispatchError("empty scan")
    code = code[:128]
    items = pack_progress(session)
    variant = _variant_for_barcode(code)
    line = None
    if variant is None:
        result, message = ScanResult.UNKNOWN, f"Unknown barcode {code}: not in the catalog"
    else:
        wanted = [item for item in items if item.variant_id == variant.pk]
        open_items = [item for item in wanted if not item.done]
        if not wanted:
            result, message = ScanResult.WRONG_SKU, f"Wrong item: {variant.sku} is not in order {session.order.number}"
        elif not open_items:
            result, message = (
                ScanResult.EXTRA,
                f"One too many: all {sum(i.quantity for i in wanted)} x {variant.sku} are scanned",
            )
        else:
            result, message = ScanResult.OK, f"{variant.sku} ✓"
            line = open_items[0].line_id
    PackScan.objects.create(session=session, barcode=code, result=result, variant=variant, line_id=line)
    session.expires_at = timezone.now() + timedelta(minutes=settings.PACK_CLAIM_MINUTES)
    session.save(update_fields=["expires_at"])
    if result != ScanResult.OK:
        logger.warning("pack check refused %s for order %s: %s", code, session.order.number, result)
        audit_record(
            actor=actor,
            verb="pack.scan_refused",
            obj=session.order,
            before={},
            after={"barcode": code, "result": result},
            reason=message,
            system="dispatch",
        )
    return ScanOutcome(result=result, message=message, items=pack_progress(session))


@transaction.atomic
def pack_override(*, session: PackSession, manager: Actor, reason: str) -> PackSession:
    """A manager lets an order pass without every scan (a damaged barcode, a substitute); the reason is kept."""
    user = acting_user(manager)
    if user is None or not user.has_perm("dispatch.override_pack_check"):
        raise DispatchError("only a manager can let an order pass without every scan")
    reason = reason.strip()
    if not reason:
        raise DispatchError("say why the order may pass without every scan")
    session = _lock_session(session)
    if session.outcome != PackSession.Outcome.OPEN:
        raise DispatchError("this order is no longer being packed")
    session.override_reason = reason[:2000]
    session.override_by = user
    session.save(update_fields=["override_reason", "override_by"])
    audit_record(
        actor=manager, verb="pack.override", obj=session.order, before={}, after={"session": session.pk}, reason=reason
    )
    return session


# ---------------------------------------------------------------------------------------------------------
# Carrier choice


def order_weight_grams(order: Order) -> int:
    """What the box weighs by the catalog: the shipping lines' variants plus packaging."""
    lines = list(OrderLine.objects.filter(order=order, requires_shipping=True))
    weights = dict(Variant.objects.filter(sku__in=[line.sku for line in lines]).values_list("sku", "weight_grams"))
    return sum((weights.get(line.sku) or 0) * line.quantity for line in lines) + PACKAGING_GRAMS


def carrier_choose(*, order: Order, weight_grams: int | None = None) -> tuple[CarrierAccount, str] | None:
    """The first active rule (by priority) that matches the order: destination, weight, service level,
    channel, cash on delivery. None when no rule matches: the packer picks by hand."""
    weight = weight_grams if weight_grams is not None else order_weight_grams(order)
    country = order.shipping_address.country if order.shipping_address else ""
    cod = order.payment_status == PaymentStatus.COD
    for rule in ShippingRule.objects.filter(active=True, carrier_account__active=True).select_related(
        "carrier_account"
    ):
        if rule.countries and country not in rule.countries:
            continue
        if rule.min_weight_grams is not None and weight < rule.min_weight_grams:
            continue
        if rule.max_weight_grams is not None and weight > rule.max_weight_grams:
            continue
        if rule.service_levels and order.service_level not in rule.service_levels:
            continue
        if rule.channel_id is not None and rule.channel_id != order.channel_id:
            continue
        if rule.cod is not None and rule.cod != cod:
            continue
        return rule.carrier_account, rule.service or rule.carrier_account.default_service
    return None


# ---------------------------------------------------------------------------------------------------------
# Packed: book the shipment


@dataclass(frozen=True, slots=True)
class ParcelInput:
    weight_grams: int
    length_cm: Decimal | None = None
    width_cm: Decimal | None = None
    height_cm: Decimal | None = None


def _event(
    shipment: Shipment, kind: str, message: str, *, actor: Actor = None, system: str = "dispatch", **data: object
) -> None:
    ShipmentEvent.objects.create(
        shipment=shipment,
        kind=kind,
        message=message[:500],
        data=data,
        actor_label=actor_label_for(actor, system=system),
    )


def _new_shipment(
    *,
    order: Order,
    account: CarrierAccount,
    service: str,
    parcels: Sequence[ParcelInput],
    actor: Actor,
    station: PackingStation | None,
) -> Shipment:
    if not parcels:
        raise DispatchError("a shipment needs at least one parcel")
    if any(p.weight_grams <= 0 for p in parcels):
        raise DispatchError("every parcel needs a weight above zero")
    if not service:
        raise DispatchError(f"choose a service for {account.name}")
    try:
        with transaction.atomic():
            shipment = Shipment.objects.create(
                order=order,
                carrier_account=account,
                service=service,
                purchase_key=uuid.uuid4().hex,
                live_key=order.pk,
                station=station,
                label_format=account.label_format,
                cod_amount=_cod_amount(order),
                created_by=acting_user(actor),
            )
    except IntegrityError:
        raise DispatchError(f"order {order.number} already has a label bought or being bought") from None
    ShipmentParcel.objects.bulk_create(
        ShipmentParcel(
            shipment=shipment,
            position=i,
            weight_grams=p.weight_grams,
            length_cm=p.length_cm,
            width_cm=p.width_cm,
            height_cm=p.height_cm,
        )
        for i, p in enumerate(parcels)
    )
    _event(shipment, "created", f"to book with {account.name} ({service}), {len(parcels)} parcel(s)", actor=actor)
    enqueue_after_commit(BUY_JOB, shipment.pk, queue="high")
    return shipment


@transaction.atomic
def pack_complete(
    *,
    session: PackSession,
    actor: Actor,
    parcels: Sequence[ParcelInput] | None = None,
    carrier_account: CarrierAccount | None = None,
    service: str = "",
) -> Shipment:
    """The box is closed: check that every unit was scanned (or a manager let it pass), move the order to packed
    and book its label in a job. The carrier is the packer's choice, or the rules'."""
    session = _lock_session(session)
    if session.outcome != PackSession.Outcome.OPEN:
        raise DispatchError("this order is no longer being packed")
    order = session.order
    items = pack_progress(session)
    missing = [item for item in items if not item.done]
    if missing and not session.override_reason:
        names = ", ".join(f"{item.quantity - item.scanned} x {item.sku or item.title}" for item in missing)
        raise DispatchError(f"not every item is scanned yet: {names}")
    weight = order_weight_grams(order)
    parcels = list(parcels) if parcels else [ParcelInput(weight_grams=weight)]
    if carrier_account is None:
        chosen = carrier_choose(order=order, weight_grams=sum(p.weight_grams for p in parcels))
        if chosen is None:
            raise DispatchError("no shipping rule matches this order: choose a carrier")
        carrier_account, rule_service = chosen
        service = service or rule_service
    service = service or carrier_account.default_service
    _close(session, PackSession.Outcome.PACKED)
    order_transition(order=order, to=OrderStatus.PACKED, actor=actor, reason="every item scanned")
    return _new_shipment(
        order=order, account=carrier_account, service=service, parcels=parcels, actor=actor, station=session.station
    )


@transaction.atomic
def shipment_rebook(
    *,
    shipment: Shipment,
    actor: Actor,
    carrier_account: CarrierAccount | None = None,
    service: str = "",
    parcels: Sequence[ParcelInput] | None = None,
) -> Shipment:
    """Book again after the carrier refused (fixed address, other carrier, other weight) or after a void.

    Allowed only when no label is live: a refused attempt bought nothing, a voided one was cancelled.
    """
    shipment = Shipment.objects.select_for_update().select_related("order", "carrier_account").get(pk=shipment.pk)
    if shipment.status not in (ShipmentStatus.FAILED, ShipmentStatus.VOIDED):
        raise DispatchError("only a refused or voided shipment can be booked again")
    order = Order.objects.select_for_update().get(pk=shipment.order_id)
    if order.status != OrderStatus.PACKED:
        raise DispatchError(f"order {order.number} is {order.get_status_display()}, not packed")
    account = carrier_account or shipment.carrier_account
    if parcels is None:
        parcels = [
            ParcelInput(p.weight_grams, p.length_cm, p.width_cm, p.height_cm)
            for p in shipment.parcels.order_by("position")
        ]
    return _new_shipment(
        order=order,
        account=account,
        service=service or (shipment.service if account == shipment.carrier_account else account.default_service),
        parcels=parcels,
        actor=actor,
        station=shipment.station,
    )


def carrier_adapter(account: CarrierAccount) -> CarrierAdapter:
    return carrier_for(
        account.kind,
        CarrierConfig(
            slug=f"carrier-{account.pk}",
            api_base_url=account.api_base_url or carrier_class(account.kind).default_api_base_url,
            credentials=dict(account.credentials),
            options={str(k): str(v) for k, v in account.options.items()},
            label_format=LabelFormat(account.label_format),
        ),
    )


def _address_from_order(order: Order) -> Address:
    a = order.shipping_address
    if a is None:
        raise DispatchError(f"order {order.number} has no shipping address")
    return Address(
        name=a.name,
        company=a.company,
        line1=a.line1,
        line2=a.line2,
        city=a.city,
        region=a.region,
        postal_code=a.postal_code,
        country_code=a.country,
        phone=a.phone or order.phone,
        email=order.email,
    )


def _sender(account: CarrierAccount) -> Address:
    return Address(
        name=account.sender_name,
        company=account.sender_company,
        line1=account.sender_line1,
        line2=account.sender_line2,
        city=account.sender_city,
        region=account.sender_region,
        postal_code=account.sender_postal_code,
        country_code=account.sender_country,
        phone=account.sender_phone,
        email=account.sender_email,
    )


def _cod_amount(order: Order) -> Decimal | None:
    return order.total if order.payment_status == PaymentStatus.COD else None


def _request_for(
    *,
    order: Order,
    account: CarrierAccount,
    parcels: Sequence[ParcelInput],
    service: str,
    cod_amount: Decimal | None,
    pickup_point_id: str = "",
) -> ShipmentRequest:
    """What the carrier is asked to book (or to quote): this order's parcels from the account's sender."""
    return ShipmentRequest(
        reference=order.number,
        ship_from=_sender(account),
        ship_to=_address_from_order(order),
        parcels=tuple(
            Parcel(
                weight_grams=p.weight_grams,
                length_cm=p.length_cm,
                width_cm=p.width_cm,
                height_cm=p.height_cm,
                reference=order.number,
            )
            for p in parcels
        ),
        service=service,
        ship_date=timezone.localdate(),
        contents=", ".join(line.title for line in order.lines.all()[:3])[:100],
        value=order.total,
        currency=order.currency,
        cod_amount=cod_amount,
        pickup_point_id=pickup_point_id,
    )


def shipment_request(shipment: Shipment) -> ShipmentRequest:
    return _request_for(
        order=shipment.order,
        account=shipment.carrier_account,
        parcels=[
            ParcelInput(p.weight_grams, p.length_cm, p.width_cm, p.height_cm)
            for p in shipment.parcels.order_by("position")
        ],
        service=shipment.service,
        cod_amount=shipment.cod_amount,
        pickup_point_id=shipment.pickup_point_id,
    )


class RateQuotes(list[Rate]):
    """A carrier's quotes, cheapest first. `supported` is False when the carrier gives no quotes at all
    (its adapter raised NotSupported): the list is then empty and the packer types the service."""

    def __init__(self, rates: Iterable[Rate] = (), *, supported: bool = True) -> None:
        super().__init__(rates)
        self.supported = supported


def shipment_rates(
    *, order: Order, carrier_account: CarrierAccount, parcels: Sequence[ParcelInput] | None = None
) -> RateQuotes:
    """What `carrier_account` would charge, by service, to ship these parcels of `order`; books and writes nothing.

    No parcels: one parcel of the catalog weight, as pack_complete books it. A carrier that refuses, or cannot be
    reached, is a DispatchError in words.
    """
    parcels = list(parcels) if parcels else [ParcelInput(weight_grams=order_weight_grams(order))]
    if any(p.weight_grams <= 0 for p in parcels):
        raise DispatchError("every parcel needs a weight above zero")
    name = carrier_account.name
    try:
        adapter = carrier_adapter(carrier_account)
    except UnknownCarrierKind:
        raise DispatchError(f"{name} has no carrier adapter for {carrier_account.kind!r}") from None
    # Quotes cover every service the carrier offers; the request still needs one the carrier books.
    service = carrier_account.default_service or next(iter(adapter.services), "")
    request = _request_for(
        order=order, account=carrier_account, parcels=parcels, service=service, cod_amount=_cod_amount(order)
    )
    try:
        rates = adapter.rates(request)
    except NotSupported:
        return RateQuotes(supported=False)
    except CarrierUnavailable as exc:
        raise DispatchError(f"{name} did not answer with rates ({exc}); try again, or type the service") from exc
    except CarrierRejected as exc:
        details = "; ".join(e.message for e in exc.errors if e.message and e.message != str(exc))
        raise DispatchError(
            f"{name} gives no rates for this shipment: {exc}" + (f" ({details})" if details else "")
        ) from exc
    except CarrierError as exc:
        raise DispatchError(f"{name} gives no rates: {exc}") from exc
    return RateQuotes(sorted(rates, key=lambda rate: (rate.amount, rate.service)))


def _begin_attempt(shipment_id: int) -> tuple[Shipment, str, datetime | None]:
    """Record the attempt before calling the carrier. Returns the shipment, what to do (buy, recover, or stop) and,
    to recover, when the unfinished earlier attempt began."""
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().select_related("order", "carrier_account").get(pk=shipment_id)
        if shipment.status in (ShipmentStatus.BOUGHT, ShipmentStatus.VOIDED, ShipmentStatus.FAILED):
            return shipment, "stop", None
        if shipment.status == ShipmentStatus.UNKNOWN:
            return shipment, "stop", None
        adapter_idempotent = carrier_class(shipment.carrier_account.kind).idempotent_purchase
        now = timezone.now()
        action = "buy"
        started = shipment.attempt_started_at
        if shipment.status == ShipmentStatus.BUYING and not adapter_idempotent:
            if started is not None and started > now - IN_FLIGHT:
                return shipment, "stop", None  # another worker may be in the middle of this very call
            # An earlier attempt started and never finished: it may have bought a label.
            action = "recover"
        shipment.status = ShipmentStatus.BUYING
        shipment.attempts += 1
        shipment.attempt_started_at = now
        shipment.save(update_fields=["status", "attempts", "attempt_started_at"])
    return shipment, action, started if action == "recover" else None


def _fail(shipment: Shipment, exc: CarrierRejected) -> None:
    errors = [{"field": e.field, "message": e.message} for e in exc.errors] or [{"field": "", "message": str(exc)}]
    with transaction.atomic():
        Shipment.objects.filter(pk=shipment.pk).update(status=ShipmentStatus.FAILED, errors=errors, live_key=None)
        _event(shipment, "refused", f"{shipment.carrier_account.name} refused: {exc}", errors=errors)
        alert_raise(
            kind="carrier_refused",
            severity="warning",
            title=f"{shipment.carrier_account.name} refused the label for order {shipment.order.number}",
            message="; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors),
            dedupe_key=f"shipment-refused:{shipment.order_id}",
            channel=shipment.order.channel,
        )


def _unknown(shipment: Shipment, why: str) -> None:
    with transaction.atomic():
        Shipment.objects.filter(pk=shipment.pk).update(
            status=ShipmentStatus.UNKNOWN, errors=[{"field": "", "message": why}]
        )
        _event(shipment, "unknown", why)
        alert_raise(
            kind="label_unknown",
            severity="critical",
            title=f"Label for order {shipment.order.number}: check with {shipment.carrier_account.name}",
            message=why,
            dedupe_key=f"shipment-unknown:{shipment.pk}",
            channel=shipment.order.channel,
        )


def shipment_buy(*, shipment_id: int) -> Shipment:
    """Buy the label of one shipment; safe to run any number of times (the job and its retries call it).

    Raises CarrierUnavailable when the carrier could not be reached and trying again is safe.
    """
    shipment, action, stalled_since = _begin_attempt(shipment_id)
    if action == "stop":
        return shipment
    adapter = carrier_adapter(shipment.carrier_account)
    try:
        request = shipment_request(shipment)
    except DispatchError as exc:
        _fail(shipment, CarrierRejected(str(exc)))
        return Shipment.objects.get(pk=shipment.pk)
    label: Label | None
    if action == "recover":
        try:
            label = adapter.find_label(request, idempotency_key=shipment.purchase_key)
        except NotSupported:
            _unknown(
                shipment,
                "an earlier attempt to buy this label stopped half-way; "
                f"{shipment.carrier_account.name} cannot be asked whether it bought one. "
                "Look it up in the carrier's portal, void it there if it exists, then book again.",
            )
            return Shipment.objects.get(pk=shipment.pk)
        except CarrierUnavailable:
            # Still "buying", and the look-up (which buys nothing) is over: the earlier attempt stays the last
            # purchase call, so the next try asks again instead of taking this one for a call still in flight.
            if stalled_since is not None:
                Shipment.objects.filter(
                    pk=shipment.pk, status=ShipmentStatus.BUYING, attempt_started_at=shipment.attempt_started_at
                ).update(attempt_started_at=stalled_since)
            raise
        except CarrierError as exc:
            _unknown(
                shipment,
                "an earlier attempt to buy this label stopped half-way, and "
                f"{shipment.carrier_account.name} would not say whether it bought one: {exc}. "
                "Look it up in the carrier's portal, void it there if it exists, then book again.",
            )
            return Shipment.objects.get(pk=shipment.pk)
        if label is None:
            action = "buy"
    if action == "buy":
        try:
            label = adapter.buy_label(request, idempotency_key=shipment.purchase_key)
        except CarrierRejected as exc:
            _fail(shipment, exc)
            return Shipment.objects.get(pk=shipment.pk)
        except CarrierUnavailable as exc:
            _event(shipment, "carrier_unavailable", f"{shipment.carrier_account.name} unreachable: {exc}")
            if not exc.request_sent:
                _back_to_draft(shipment)
            elif not adapter.idempotent_purchase:
                _unknown(
                    shipment,
                    f"{shipment.carrier_account.name} did not answer in time; it may have bought the label. "
                    "Look it up in the carrier's portal, void it there if it exists, then book again.",
                )
                return Shipment.objects.get(pk=shipment.pk)
            raise
        except CarrierError as exc:
            _fail(shipment, CarrierRejected(str(exc)))
            return Shipment.objects.get(pk=shipment.pk)
    if label is None:  # unreachable: "recover" found nothing and fell through to "buy"
        raise CarrierUnavailable("no label after the purchase call")
    return _bought(shipment, label)


def _back_to_draft(shipment: Shipment) -> None:
    Shipment.objects.filter(pk=shipment.pk, status=ShipmentStatus.BUYING).update(status=ShipmentStatus.DRAFT)


def _bought(shipment: Shipment, label: Label) -> Shipment:
    parcels = list(shipment.parcels.order_by("position"))
    documents = {doc.tracking_number: doc for doc in label.documents}
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().select_related("order", "carrier_account").get(pk=shipment.pk)
        if shipment.status == ShipmentStatus.BOUGHT:
            return shipment
        for i, parcel in enumerate(parcels):
            number = label.tracking_numbers[i] if i < len(label.tracking_numbers) else ""
            parcel.tracking_number = number
            doc = documents.get(number) or (label.documents[i] if i < len(label.documents) else None)
            if doc is not None:
                ext = "pdf" if doc.format == LabelFormat.PDF else "zpl"
                parcel.label.save(f"{shipment.order.number}-{number or i}.{ext}", ContentFile(doc.content), save=False)
            parcel.save(update_fields=["tracking_number", "label"])
        shipment.status = ShipmentStatus.BOUGHT
        shipment.carrier_shipment_id = label.shipment_id[:100]
        shipment.cost = label.cost
        shipment.currency = label.currency[:3]
        shipment.raw = {str(k): v for k, v in label.raw.items()} if label.raw else {}
        shipment.errors = []
        shipment.bought_at = timezone.now()
        shipment.tracking_status = "pre_transit"
        shipment.save()
        _event(
            shipment,
            "bought",
            f"label bought: {', '.join(label.tracking_numbers)}",
            tracking_numbers=list(label.tracking_numbers),
            cost=str(label.cost) if label.cost is not None else None,
        )
        alert_resolve(dedupe_key=f"shipment-refused:{shipment.order_id}")
        order = shipment.order
        if order.status == OrderStatus.PACKED:
            order_transition(order=order, to=OrderStatus.SHIPPED, actor=None, reason="label bought", system="dispatch")
        for parcel in parcels:
            if parcel.label:
                _print_label(shipment, parcel)
        enqueue_after_commit(AFTER_SHIP_JOB, shipment.pk)
    return shipment


# ---------------------------------------------------------------------------------------------------------
# Documents and printing


def document_store(
    *,
    kind: str,
    title: str,
    content: bytes,
    content_type: str,
    filename: str,
    order: Order | None = None,
    shipment: Shipment | None = None,
) -> Document:
    doc = Document(kind=kind, title=title[:200], content_type=content_type, order=order, shipment=shipment)
    doc.file.save(filename, ContentFile(content), save=False)
    doc.save()
    return doc


def _print_label(shipment: Shipment, parcel: ShipmentParcel) -> None:
    zpl = parcel.label.name.endswith(".zpl")
    doc = Document.objects.create(
        kind=Document.Kind.LABEL,
        title=f"Label {parcel.tracking_number} (order {shipment.order.number})",
        file=parcel.label.name,
        content_type="application/zpl" if zpl else "application/pdf",
        order=shipment.order,
        shipment=shipment,
    )
    station = shipment.station
    printer = station.label_printer if station is not None else None
    if printer is not None and printer.active:
        print_document(document=doc, printer=printer, station=station, actor=None)


@transaction.atomic
def print_document(
    *,
    document: Document,
    printer: Printer,
    station: PackingStation | None,
    actor: Actor,
    reprint_of: PrintJob | None = None,
    reason: str = "",
) -> PrintJob:
    """Queue a document for a printer; the job sends it. A printer that is down never blocks packing: the
    document can always be downloaded instead."""
    if reprint_of is not None and not reason.strip():
        raise DispatchError("say why it is printed again")
    job = PrintJob.objects.create(
        station=station,
        printer=printer,
        document=document,
        reprint_of=reprint_of,
        reason=reason.strip()[:255],
        created_by=acting_user(actor),
    )
    enqueue_after_commit(PRINT_JOB, job.pk, queue="high")
    return job


def dispatch_sweep(*, now: datetime | None = None) -> int:
    """Enqueue again what lost its job: shipments still to book (or stuck booking: the job recovers them) and
    print jobs still queued. Safe to run any time: both jobs do nothing twice."""
    from oms.core.queue import enqueue_now

    now = now or timezone.now()
    shipments = list(
        Shipment.objects.filter(
            Q(status=ShipmentStatus.DRAFT, created_at__lt=now - timedelta(minutes=2))
            | Q(status=ShipmentStatus.BUYING, attempt_started_at__lt=now - timedelta(minutes=30))
        ).values_list("pk", flat=True)[:500]
    )
    for pk in shipments:
        enqueue_now(BUY_JOB, pk, queue="high")
    jobs = list(
        PrintJob.objects.filter(state=PrintJob.State.QUEUED, created_at__lt=now - timedelta(minutes=2)).values_list(
            "pk", flat=True
        )[:500]
    )
    for pk in jobs:
        enqueue_now(PRINT_JOB, pk, queue="high")
    return len(shipments) + len(jobs)


# ---------------------------------------------------------------------------------------------------------
# Void


@transaction.atomic
def shipment_resolve_unknown(*, shipment: Shipment, actor: Actor, reason: str) -> Shipment:
    """A person checked with the carrier that an attempt of unknown outcome left no live label (none was bought,
    or they voided it in the carrier's portal): the attempt counts as refused and the order can be booked again.
    """
    user = acting_user(actor)
    if user is None or not user.has_perm("dispatch.void_shipment"):
        raise DispatchError("only someone who may void labels can settle an unknown purchase")
    reason = reason.strip()
    if not reason:
        raise DispatchError("say what the carrier's portal showed")
    shipment = Shipment.objects.select_for_update().select_related("order").get(pk=shipment.pk)
    if shipment.status != ShipmentStatus.UNKNOWN:
        raise DispatchError(f"this purchase is {shipment.get_status_display().lower()}, not unknown")
    shipment.status = ShipmentStatus.FAILED
    shipment.live_key = None
    shipment.errors = [{"field": "", "message": f"settled by hand: {reason}"[:500]}]
    shipment.save(update_fields=["status", "live_key", "errors"])
    _event(shipment, "settled", f"no live label at the carrier: {reason}", actor=actor)
    audit_record(
        actor=actor,
        verb="shipment.settle_unknown",
        obj=shipment,
        before={"status": ShipmentStatus.UNKNOWN},
        after={"status": ShipmentStatus.FAILED},
        reason=reason,
        system="dispatch",
    )
    alert_resolve(dedupe_key=f"shipment-unknown:{shipment.pk}")
    return shipment


def shipment_void(*, shipment: Shipment, actor: Actor, reason: str) -> Shipment:
    """Cancel a bought label with the carrier (one action, one audit row); the order goes back to packed so a
    new label can be booked. The call is made here, with the carrier's timeout: the person waits for the answer."""
    reason = reason.strip()
    if not reason:
        raise DispatchError("say why the label is voided")
    shipment = Shipment.objects.select_related("order", "carrier_account").get(pk=shipment.pk)
    if shipment.status != ShipmentStatus.BOUGHT:
        raise DispatchError(f"only a bought label can be voided; this one is {shipment.get_status_display().lower()}")
    if shipment.delivered_at is not None:
        raise DispatchError("a delivered parcel cannot be voided")
    label = Label(
        tracking_numbers=tuple(shipment.parcels.order_by("position").values_list("tracking_number", flat=True)),
        documents=(),
        shipment_id=shipment.carrier_shipment_id,
        service=shipment.service,
    )
    try:
        carrier_adapter(shipment.carrier_account).void_label(label)
    except CarrierError as exc:
        with transaction.atomic():
            _event(shipment, "void_refused", f"void refused: {exc}", actor=actor)
        raise DispatchError(f"{shipment.carrier_account.name} would not void it: {exc}") from exc
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().select_related("order").get(pk=shipment.pk)
        shipment.status = ShipmentStatus.VOIDED
        shipment.live_key = None
        shipment.voided_at = timezone.now()
        shipment.void_reason = reason[:2000]
        shipment.save(update_fields=["status", "live_key", "voided_at", "void_reason"])
        _event(shipment, "voided", f"voided: {reason}", actor=actor)
        audit_record(
            actor=actor,
            verb="shipment.void",
            obj=shipment,
            before={"status": ShipmentStatus.BOUGHT},
            after={"status": ShipmentStatus.VOIDED},
            reason=reason,
            system="dispatch",
        )
        if shipment.order.status == OrderStatus.SHIPPED:
            order_transition(order=shipment.order, to=OrderStatus.PACKED, actor=actor, reason=f"label voided: {reason}")
    return shipment


# ---------------------------------------------------------------------------------------------------------
# Batches


@transaction.atomic
def batch_create(
    *,
    name: str,
    kind: str,
    actor: Actor,
    carrier_account: CarrierAccount | None = None,
    orders: Sequence[Order] = (),
    limit: int = 200,
) -> Batch:
    """Group ready orders nobody is packing: by carrier (the rules' choice), single-item orders, or by hand."""
    if kind not in Batch.Kind.values:
        raise DispatchError(f"unknown batch kind {kind!r}")
    taken = BatchOrder.objects.filter(batch__closed_at__isnull=True).values("order_id")
    candidates = Order.objects.filter(status=OrderStatus.READY).exclude(pk__in=taken).select_related("shipping_address")
    chosen: list[Order]
    if kind == Batch.Kind.MANUAL:
        wanted = {o.pk for o in orders}
        chosen = list(candidates.filter(pk__in=wanted))
        if len(chosen) != len(wanted):
            raise DispatchError("some of the chosen orders are not ready or already in a batch")
    elif kind == Batch.Kind.SINGLE_ITEM:
        chosen = [
            o
            for o in candidates.order_by("ship_by", "service_level", "placed_at")[: limit * 5]
            if sum(line.quantity for line in o.lines.all() if line.requires_shipping) == 1
        ][:limit]
    else:
        if carrier_account is None:
            raise DispatchError("choose the carrier of the batch")
        chosen = []
        for o in candidates.order_by("ship_by", "service_level", "placed_at")[: limit * 5]:
            picked = carrier_choose(order=o)
            if picked is not None and picked[0].pk == carrier_account.pk:
                chosen.append(o)
            if len(chosen) >= limit:
                break
    if not chosen:
        raise DispatchError("no ready order fits this batch")
    batch = Batch.objects.create(
        name=name.strip()[:120] or f"Batch {timezone.localtime():%Y-%m-%d %H:%M}",
        kind=kind,
        carrier_account=carrier_account,
        created_by=acting_user(actor),
    )
    BatchOrder.objects.bulk_create(BatchOrder(batch=batch, order=o) for o in chosen)
    audit_record(
        actor=actor, verb="batch.create", obj=batch, before={}, after={"orders": len(chosen)}, system="dispatch"
    )
    return batch


# Orders a closed batch lets go of: not packed yet, so a packer or a new batch may still take them.
_UNPACKED = (OrderStatus.PENDING_PAYMENT, OrderStatus.READY, OrderStatus.ON_HOLD, OrderStatus.PICKING)


@transaction.atomic
def batch_close(*, batch: Batch, actor: Actor) -> Batch:
    """The batch is done: packers no longer see it, and its orders not packed yet leave it (an order is in one
    batch at most, so they could not go into a new one otherwise). Closing a closed batch is refused."""
    batch = Batch.objects.select_for_update().get(pk=batch.pk)
    if batch.closed_at is not None:
        raise DispatchError(f"batch {batch.name} is already closed")
    batch.closed_at = timezone.now()
    batch.save(update_fields=["closed_at"])
    unpacked = BatchOrder.objects.filter(batch=batch, order__status__in=_UNPACKED)
    released = sorted(unpacked.values_list("order_id", flat=True))
    BatchOrder.objects.filter(batch=batch, order_id__in=released).delete()
    audit_record(
        actor=actor,
        verb="batch.close",
        obj=batch,
        before={"closed_at": None},
        after={"closed_at": batch.closed_at.isoformat(), "released_orders": released},
        system="dispatch",
    )
    return batch

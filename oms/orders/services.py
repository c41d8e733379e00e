"""Writes of the order domain: intake (upsert from a ChannelOrder), the state table, holds, notes, inbox, backfill.

Every function here owns its transaction; callers pass model instances or ids, never half-built rows.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, OperationalError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from channels_adapters.base import (
    ChannelAddress,
    ChannelError,
    ChannelLine,
    ChannelOrder,
    InvalidPayload,
    WebhookEnvelope,
)
from inventory.channels import adapter_for_channel
from inventory.services import LineRequest, stock_allocate, stock_release, stock_ship
from inventory.services_fanout import stock_level_reported
from oms.core.models import InboundEvent, SalesChannel
from oms.core.queue import (
    WorkList,
    enqueue_after_commit,
    enqueue_now,
    get_queue,
    worklist_push,
    worklist_push_after_commit,
    worklist_register,
)
from oms.core.services import Actor, acting_user, actor_label_for, alert_raise, alert_resolve, audit_record
from oms.orders.models import (
    Address,
    Customer,
    CustomerIdentity,
    CustomerNote,
    HoldReason,
    Order,
    OrderEvent,
    OrderHold,
    OrderLine,
    OrderStatus,
    SyncRun,
    service_level_for,
)
from oms.orders.normalize import normalize_address, normalize_email, normalize_phone
from oms.orders.selectors import OrderFilters
from oms.orders.states import HOLDABLE, OPEN_STATES, IllegalTransition, base_status, can_transition

logger = logging.getLogger(__name__)

INBOX_JOB = "oms.orders.jobs.inbound_event_process"
# The request path hands new deliveries to the workers through this list: one Redis round trip per delivery.
INBOX = worklist_register(WorkList(name="inbox", handler=INBOX_JOB, queue="default", drainers=2))

T = TypeVar("T")

# MySQL/MariaDB: deadlock found; lock wait timeout.
_RETRYABLE_DB_ERRORS = {1213, 1205}


class ConcurrentInsert(Exception):
    """Another transaction stored the same order first; the whole unit of work starts again."""


def _retry_whole_transaction(work: Callable[[], T], *, attempts: int = 6) -> T:
    """Run `work` (which opens its own transaction) again when it lost a race.

    Continuing after a lost unique-key insert would upgrade InnoDB's shared lock on the duplicate to an
    exclusive one, which deadlocks when several deliveries race; starting over finds the committed row and
    locks it exclusively at once. Inside an outer transaction there is nothing to retry: errors propagate.
    """
    for attempt in range(attempts):
        try:
            return work()
        except ConcurrentInsert:
            if attempt == attempts - 1:
                raise
        except OperationalError as exc:
            code = exc.args[0] if exc.args else None
            if code not in _RETRYABLE_DB_ERRORS or attempt == attempts - 1:
                raise
        time.sleep(random.uniform(0.002, 0.02) * (attempt + 1))  # noqa: S311 - jitter, not crypto
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------------------
# The state table


def _snapshot(order: Order) -> dict[str, Any]:
    return {
        "status": order.status,
        "payment_status": order.payment_status,
        "total": str(order.total),
        "currency": order.currency,
    }


def _event(order: Order, kind: str, message: str, *, actor_label: str, **data: Any) -> None:
    OrderEvent.objects.create(order=order, kind=kind, message=message[:500], data=data, actor_label=actor_label)


def _lock(order: Order) -> Order:
    return Order.objects.select_for_update().get(pk=order.pk)


def _apply_transition(order: Order, target: str, *, actor: Actor, reason: str, system: str) -> Order:
    """Move a locked order; the caller holds the row lock and the transaction."""
    if order.status == target:
        return order
    if not can_transition(order.status, target):
        raise IllegalTransition(
            f"order {order.number} cannot go from {order.get_status_display()} to {OrderStatus(target).label}"
        )
    before = order.status
    order.status = target
    order.save(update_fields=["status", "updated_at"])
    label = actor_label_for(actor, system=system)
    if target == OrderStatus.CANCELLED:
        stock_release(reference=stock_reference(order), actor=actor, note=reason, system=system)
    elif target == OrderStatus.SHIPPED:
        stock_ship(reference=stock_reference(order), actor=actor, system=system)
    _event(
        order,
        "status",
        f"{OrderStatus(before).label} → {OrderStatus(target).label}" + (f": {reason}" if reason else ""),
        actor_label=label,
        before=before,
        after=target,
    )
    audit_record(
        actor=actor,
        verb="order.transition",
        obj=order,
        before={"status": before},
        after={"status": target},
        reason=reason,
        system=system,
    )
    return order


@transaction.atomic
def order_transition(*, order: Order, to: str, actor: Actor, reason: str = "", system: str = "system") -> Order:
    """Apply one transition of the state table, with its audit row; IllegalTransition if not allowed."""
    return _apply_transition(_lock(order), to, actor=actor, reason=reason, system=system)


def order_transition_locked(*, order: Order, to: str, actor: Actor, reason: str = "", system: str = "system") -> Order:
    """`order_transition` for a caller that already holds the order's row lock in its own transaction (it read
    the row with select_for_update): no second read, no savepoint. Hot paths only, such as the packing queue."""
    if not connection.in_atomic_block:
        raise RuntimeError("order_transition_locked needs the caller's transaction and row lock")
    return _apply_transition(order, to, actor=actor, reason=reason, system=system)


def _hold(order: Order, *, reason: str, note: str, actor: Actor, system: str) -> OrderHold | None:
    if order.status not in HOLDABLE:
        raise IllegalTransition(f"order {order.number} is {order.get_status_display()} and cannot be held")
    if reason not in HoldReason.values:
        raise ValueError(f"unknown hold reason {reason!r}")
    if order.holds.filter(reason=reason, released_at__isnull=True).exists() and reason != HoldReason.MANUAL:
        return None  # the same automatic reason is already holding it
    user = acting_user(actor)
    hold = OrderHold.objects.create(order=order, reason=reason, note=note, created_by=user)
    label = actor_label_for(actor, system=system)
    _event(
        order,
        "hold",
        f"Held: {HoldReason(reason).label}" + (f" — {note}" if note else ""),
        actor_label=label,
        reason=reason,
    )
    audit_record(
        actor=actor,
        verb="order.hold",
        obj=order,
        after={"reason": reason, "hold": hold.pk},
        reason=note,
        system=system,
    )
    if order.status != OrderStatus.ON_HOLD:
        _apply_transition(order, OrderStatus.ON_HOLD, actor=actor, reason=HoldReason(reason).label, system=system)
    if actor is None:  # staff who hold an order know it; an automatic hold must reach someone
        alert_raise(
            kind="order.hold",
            title=f"Order {order.number} on hold: {HoldReason(reason).label}",
            message=note,
            channel=order.channel,
            link=reverse("orders:order-detail", args=[order.pk]),
            dedupe_key=_hold_alert_key(order, reason),
        )
    return hold


def _hold_alert_key(order: Order, reason: str) -> str:
    return f"order-hold:{order.pk}:{reason}"


@transaction.atomic
def order_hold(*, order: Order, reason: str, note: str = "", actor: Actor, system: str = "system") -> Order:
    order = _lock(order)
    _hold(order, reason=reason, note=note, actor=actor, system=system)
    return order


def _release(order: Order, holds: list[OrderHold], *, note: str, actor: Actor, system: str) -> None:
    user = acting_user(actor)
    now = timezone.now()
    label = actor_label_for(actor, system=system)
    for hold in holds:
        alert_resolve(dedupe_key=_hold_alert_key(order, hold.reason))
        hold.released_at = now
        hold.released_by = user
        hold.release_note = note
        hold.save(update_fields=["released_at", "released_by", "release_note"])
        _event(
            order,
            "release",
            f"Released: {hold.get_reason_display()}" + (f" — {note}" if note else ""),
            actor_label=label,
            reason=hold.reason,
        )
        audit_record(
            actor=actor,
            verb="order.release",
            obj=order,
            before={"reason": hold.reason, "hold": hold.pk},
            reason=note,
            system=system,
        )
    if order.status == OrderStatus.ON_HOLD and not order.holds.filter(released_at__isnull=True).exists():
        _apply_transition(
            order, base_status(order.payment_status), actor=actor, reason="all holds released", system=system
        )


@transaction.atomic
def order_release(
    *, order: Order, actor: Actor, note: str = "", hold_id: int | None = None, system: str = "system"
) -> Order:
    """Release one hold (or all of them); the order moves on once nothing holds it."""
    order = _lock(order)
    holds = list(order.holds.filter(released_at__isnull=True))
    if hold_id is not None:
        holds = [h for h in holds if h.pk == hold_id]
    if not holds:
        raise IllegalTransition(f"order {order.number} has no open hold to release")
    _release(order, holds, note=note, actor=actor, system=system)
    return order


def _cancel(order: Order, *, actor: Actor, reason: str, system: str, when: datetime | None = None) -> None:
    _apply_transition(order, OrderStatus.CANCELLED, actor=actor, reason=reason, system=system)
    order.cancelled_at = when or timezone.now()
    order.cancel_reason = reason[:200]
    order.save(update_fields=["cancelled_at", "cancel_reason", "updated_at"])
    order.holds.filter(released_at__isnull=True).update(released_at=order.cancelled_at, release_note="order cancelled")


@transaction.atomic
def order_cancel(*, order: Order, actor: Actor, reason: str, system: str = "system") -> Order:
    if not reason.strip():
        raise ValueError("a cancellation needs a reason")
    order = _lock(order)
    _cancel(order, actor=actor, reason=reason.strip(), system=system)
    return order


@transaction.atomic
def customer_note_add(*, customer: Customer, body: str, actor: Actor) -> CustomerNote:
    body = body.strip()
    if not body:
        raise ValueError("a note cannot be empty")
    user = acting_user(actor)
    note = CustomerNote.objects.create(customer=customer, body=body, author=user)
    audit_record(actor=actor, verb="customer.note", obj=customer, after={"note": note.pk})
    return note


def order_export_record(*, actor: Actor, filters: OrderFilters) -> None:
    """Audit who exported orders and with which filters: the file holds customers' names, emails and totals.
    The filters are the validated ones the export applied (what was taken), not the raw query string."""
    applied = {
        name: value.isoformat() if isinstance(value, date) else value
        for name, value in asdict(filters).items()
        if value not in (None, "")
    }
    audit_record(actor=actor, verb="order.export", obj=None, after={"filters": applied}, system="order export")


# ---------------------------------------------------------------------------------------------------------
# Intake


@dataclass(frozen=True)
class IngestResult:
    order: Order
    created: bool
    changed: bool
    stale: bool = False


def _customer_for(channel: SalesChannel, co: ChannelOrder) -> tuple[Customer | None, bool]:
    """Find the customer by channel identity, then e-mail, then phone; create one if nobody matches.

    Returns (customer, created).
    """
    c = co.customer
    email = normalize_email((c.email if c else "") or co.email)
    country = co.shipping_address.country_code if co.shipping_address else ""
    phone = normalize_phone((c.phone if c else "") or co.phone, country)
    external_id = c.external_id if c else ""
    first = (c.first_name if c else "") or ""
    last = (c.last_name if c else "") or ""
    if not (email or phone or external_id or first or last):
        return None, False

    customer = None
    identity_known = False
    if external_id:
        identity = (
            CustomerIdentity.objects.select_related("customer").filter(channel=channel, external_id=external_id).first()
        )
        customer = identity.customer if identity else None
        identity_known = identity is not None
    if customer is None and email:
        customer = Customer.objects.filter(email=email).first()
    if customer is None and phone:
        customer = Customer.objects.filter(phone=phone).order_by("id").first()
    created = False
    if customer is None:
        try:
            with transaction.atomic():
                customer = Customer.objects.create(email=email or None, phone=phone, first_name=first, last_name=last)
                if external_id and not identity_known:
                    CustomerIdentity.objects.create(channel=channel, external_id=external_id, customer=customer)
                    identity_known = True
                created = True
        except IntegrityError:  # another delivery created the same e-mail (or identity) a moment ago
            customer = Customer.objects.filter(email=email).first() if email else None
            if customer is None and external_id:
                customer = Customer.objects.get(identities__channel=channel, identities__external_id=external_id)
            if customer is None:
                raise
    else:
        changed = []
        for attr, value in (("first_name", first), ("last_name", last), ("phone", phone)):
            if value and not getattr(customer, attr):
                setattr(customer, attr, value)
                changed.append(attr)
        if email and not customer.email and not Customer.objects.filter(email=email).exists():
            customer.email = email
            changed.append("email")
        if changed:
            customer.save(update_fields=[*changed, "updated_at"])
    if external_id and not identity_known:
        # get_or_create takes its own savepoint and re-reads when a concurrent delivery inserted first.
        CustomerIdentity.objects.get_or_create(
            channel=channel, external_id=external_id, defaults={"customer": customer}
        )
    return customer, created


def _address_for(
    customer: Customer | None,
    raw: ChannelAddress | None,
    *,
    fresh: bool = False,
    seen: dict[str, Address] | None = None,
) -> Address | None:
    """The customer's stored address equal to `raw`, stored now if new.

    `fresh`: the customer was created in this transaction, so none of its addresses can exist yet.
    `seen`: addresses already resolved in this transaction (billing is often the shipping address).
    """
    if raw is None:
        return None
    norm = normalize_address(
        name=raw.name,
        company=raw.company,
        line1=raw.line1,
        line2=raw.line2,
        city=raw.city,
        region=raw.region,
        postal_code=raw.postal_code,
        country_code=raw.country_code,
        phone=raw.phone,
    )
    fields = {
        "name": norm.name[:200],
        "company": norm.company[:200],
        "line1": norm.line1[:255],
        "line2": norm.line2[:255],
        "city": norm.city[:120],
        "region": norm.region[:120],
        "postal_code": norm.postal_code[:20],
        "country": norm.country,
        "phone": norm.phone,
        "problems": norm.problems,
    }
    fingerprint = norm.fingerprint()
    if seen is not None and fingerprint in seen:
        return seen[fingerprint]
    if customer is None or fresh:
        address = Address.objects.create(customer=customer, fingerprint=fingerprint, **fields)
    else:
        address, _ = Address.objects.get_or_create(customer=customer, fingerprint=fingerprint, defaults=fields)
    if seen is not None:
        seen[fingerprint] = address
    return address


def default_ship_by(placed_at: datetime) -> date:
    """The ship-by date when the channel gives none: SHIP_BY_BUSINESS_DAYS working days (Mon-Fri) after the sale."""
    day = timezone.localtime(placed_at).date()
    left = settings.SHIP_BY_BUSINESS_DAYS
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def _order_fields(co: ChannelOrder) -> dict[str, Any]:
    return {
        "number": co.number[:64],
        "payment_status": str(co.payment_status),
        "email": normalize_email(co.email or (co.customer.email if co.customer else "")),
        "phone": normalize_phone(co.phone, co.shipping_address.country_code if co.shipping_address else ""),
        "currency": co.currency.upper()[:3],
        "subtotal": co.subtotal,
        "total_tax": co.total_tax,
        "shipping_total": co.shipping_total,
        "discount_total": co.discount_total,
        "total": co.total,
        "shipping_method": co.shipping_method[:120],
        "service_level": service_level_for(co.shipping_method),
        "placed_at": co.placed_at,
        "channel_updated_at": co.updated_at,
        "ship_by": co.ship_by or default_ship_by(co.placed_at),
        "note": co.note,
        "tags": list(co.tags),
        "is_test": co.test,
    }


def _line_values(cl: ChannelLine) -> dict[str, Any]:
    return {
        "sku": cl.sku[:100],
        "title": cl.title[:255] or cl.sku or "(untitled)",
        "variant_title": cl.variant_title[:255],
        "quantity": cl.quantity,
        "unit_price": cl.unit_price,
        "tax": cl.tax,
        "discount": cl.discount,
        "requires_shipping": cl.requires_shipping,
        "external_variant_id": cl.external_variant_id[:64],
    }


def _create_lines(order: Order, co: ChannelOrder) -> list[OrderLine]:
    lines = [OrderLine(order=order, external_id=cl.external_id, **_line_values(cl)) for cl in co.lines]
    OrderLine.objects.bulk_create(lines)
    return lines


def _sync_lines(order: Order, co: ChannelOrder) -> bool:
    existing = {line.external_id: line for line in order.lines.all()}
    changed = False
    seen = set()
    for cl in co.lines:
        seen.add(cl.external_id)
        values = _line_values(cl)
        line = existing.get(cl.external_id)
        if line is None:
            OrderLine.objects.create(order=order, external_id=cl.external_id, **values)
            changed = True
        elif any(getattr(line, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(line, k, v)
            line.save()
            changed = True
    gone = [line.pk for ext, line in existing.items() if ext not in seen]
    if gone:
        OrderLine.objects.filter(pk__in=gone).delete()
        changed = True
    return changed


def _validate_order(co: ChannelOrder) -> None:
    if not co.lines:
        raise InvalidPayload(f"order {co.number} has no lines")
    for line in co.lines:
        if line.quantity <= 0:
            raise InvalidPayload(f"order {co.number} line {line.external_id} has quantity {line.quantity}")
    if co.total < 0:
        raise InvalidPayload(f"order {co.number} has a negative total")
    if len(co.currency) != 3:
        raise InvalidPayload(f"order {co.number} has currency {co.currency!r}")


def stock_reference(order: Order) -> str:
    """The reference under which an order's stock is allocated, released and shipped."""
    return f"order:{order.pk}"


STOCK_HOLDS = (HoldReason.UNKNOWN_SKU, HoldReason.INSUFFICIENT_STOCK)


def _allocate(order: Order, lines: list[OrderLine], *, system: str, fresh: bool) -> None:
    """Promise stock to the order's shippable lines; hold what the catalog does not know or cannot cover."""
    no_sku = [line.title for line in lines if line.requires_shipping and not line.sku]
    requests = [
        LineRequest(line=str(line.pk), sku=line.sku, quantity=line.quantity)
        for line in lines
        if line.requires_shipping and line.sku
    ]
    result = stock_allocate(reference=stock_reference(order), lines=requests, system=system)
    unknown = sorted(set(result.unknown.values()))
    if no_sku or unknown:
        parts = ([f"no SKU on: {', '.join(no_sku)}"] if no_sku else []) + (
            [f"not in the catalog: {', '.join(unknown)}"] if unknown else []
        )
        _hold(order, reason=HoldReason.UNKNOWN_SKU, note="; ".join(parts)[:400], actor=None, system=system)
    if result.short:
        note = "; ".join(f"{sku}: {wanted} wanted, {got} allocated" for sku, wanted, got in result.short.values())
        _hold(order, reason=HoldReason.INSUFFICIENT_STOCK, note=note[:400], actor=None, system=system)
    if fresh:
        return
    settled = [r for r in STOCK_HOLDS if not (r == HoldReason.UNKNOWN_SKU and (no_sku or unknown))]
    settled = [r for r in settled if not (r == HoldReason.INSUFFICIENT_STOCK and result.short)]
    stale = list(order.holds.filter(reason__in=settled, released_at__isnull=True))
    if stale:
        _release(order, stale, note="stock allocated", actor=None, system=system)


def _automatic_holds(order: Order, *, system: str, lines: list[OrderLine] | None = None, fresh: bool = False) -> None:
    """Allocate stock, and hold for what a packer could not fix: unknown SKUs, short stock, a bad address.

    `fresh`: the order was created in this transaction (so it has no holds to release yet).
    """
    if order.status not in HOLDABLE:
        return
    if lines is None:
        lines = list(order.lines.all())
    _allocate(order, lines, system=system, fresh=fresh)
    ships = any(line.requires_shipping for line in lines)
    address = order.shipping_address
    if ships and address is None:
        _hold(order, reason=HoldReason.ADDRESS_INVALID, note="no shipping address", actor=None, system=system)
    elif ships and address is not None and address.problems:
        _hold(
            order,
            reason=HoldReason.ADDRESS_INVALID,
            note="; ".join(address.problems),
            actor=None,
            system=system,
        )
    elif address is not None and not address.problems and not fresh:
        stale = list(order.holds.filter(reason=HoldReason.ADDRESS_INVALID, released_at__isnull=True))
        if stale:
            _release(order, stale, note="address corrected on the channel", actor=None, system=system)


@transaction.atomic
def order_allocate(*, order: Order, actor: Actor = None, system: str = "system") -> Order:
    """Try again to allocate an order's stock (after a delivery, or by a staff click); releases stock holds."""
    order = _lock(order)
    if order.status in HOLDABLE:
        _allocate(order, list(order.lines.all()), system=system, fresh=False)
    return order


def order_ingest(*, channel: SalesChannel, co: ChannelOrder, source: str) -> IngestResult:
    """Upsert one channel order on (channel, external_id); an older payload never overwrites a newer one."""
    _validate_order(co)
    if connection.in_atomic_block:
        with transaction.atomic():
            return _ingest(channel, co, source=source, outermost=False)

    def work() -> IngestResult:
        with transaction.atomic():
            return _ingest(channel, co, source=source, outermost=True)

    return _retry_whole_transaction(work)


def _ingest(channel: SalesChannel, co: ChannelOrder, *, source: str, outermost: bool) -> IngestResult:
    system = f"{channel.slug}:{source}"
    order = Order.objects.select_for_update().filter(channel=channel, external_id=co.external_id).first()
    if order is None:
        customer, customer_created = _customer_for(channel, co)
        addresses: dict[str, Address] = {}
        fields = _order_fields(co)
        status = OrderStatus.CANCELLED if co.cancelled_at else base_status(fields["payment_status"])
        try:
            with transaction.atomic():
                order = Order.objects.create(
                    channel=channel,
                    external_id=co.external_id,
                    status=status,
                    customer=customer,
                    shipping_address=_address_for(
                        customer, co.shipping_address, fresh=customer_created, seen=addresses
                    ),
                    billing_address=_address_for(customer, co.billing_address, fresh=customer_created, seen=addresses),
                    cancelled_at=co.cancelled_at,
                    cancel_reason=co.cancel_reason[:200],
                    **fields,
                )
        except IntegrityError:
            # A concurrent delivery of the same order won the insert.
            if outermost:
                raise ConcurrentInsert(co.external_id) from None
            order = Order.objects.select_for_update().get(channel=channel, external_id=co.external_id)
        else:
            lines = _create_lines(order, co)
            _event(order, "received", f"Received from {channel.name} ({source})", actor_label=system)
            audit_record(actor=None, verb="order.ingest", obj=order, after=_snapshot(order), system=system)
            _automatic_holds(order, system=system, lines=lines, fresh=True)
            return IngestResult(order=order, created=True, changed=True)

    if co.updated_at < order.channel_updated_at:
        logger.info("ignoring stale payload for %s: %s < %s", order, co.updated_at, order.channel_updated_at)
        return IngestResult(order=order, created=False, changed=False, stale=True)
    return _order_update(order, channel, co, source=source, system=system)


def _order_update(order: Order, channel: SalesChannel, co: ChannelOrder, *, source: str, system: str) -> IngestResult:
    before = _snapshot(order)
    fields = _order_fields(co)
    changed_fields = [k for k, v in fields.items() if getattr(order, k) != v and k != "channel_updated_at"]
    for k, v in fields.items():
        setattr(order, k, v)
    customer = order.customer or _customer_for(channel, co)[0]
    if customer is not None and order.customer_id != customer.pk:
        order.customer = customer
        changed_fields.append("customer")
    addresses: dict[str, Address] = {}
    for attr, raw in (("shipping_address", co.shipping_address), ("billing_address", co.billing_address)):
        address = _address_for(order.customer, raw, seen=addresses)
        if (address.pk if address else None) != getattr(order, f"{attr}_id"):
            setattr(order, attr, address)
            changed_fields.append(attr)
    order.save()
    lines_changed = order.status in OPEN_STATES and _sync_lines(order, co)
    if lines_changed:
        changed_fields.append("lines")
        # The levels stay locked until commit, so nobody takes the units between release and re-allocation.
        stock_release(reference=stock_reference(order), note="lines changed on the channel", system=system)

    # What the channel says may move the order: a cancellation, or the payment it was waiting for.
    if co.cancelled_at and order.status != OrderStatus.CANCELLED:
        if can_transition(order.status, OrderStatus.CANCELLED):
            _cancel(
                order,
                actor=None,
                reason=co.cancel_reason or "cancelled on the channel",
                system=system,
                when=co.cancelled_at,
            )
        else:
            _event(
                order,
                "warning",
                f"Cancelled on {channel.name} but already {order.get_status_display()}",
                actor_label=system,
            )
    elif order.status == OrderStatus.PENDING_PAYMENT and base_status(order.payment_status) == OrderStatus.READY:
        _apply_transition(order, OrderStatus.READY, actor=None, reason=f"payment {order.payment_status}", system=system)
    elif order.status == OrderStatus.READY and base_status(order.payment_status) == OrderStatus.PENDING_PAYMENT:
        _apply_transition(
            order,
            OrderStatus.PENDING_PAYMENT,
            actor=None,
            reason=f"payment {order.payment_status}",
            system=system,
        )

    if changed_fields:
        _event(
            order,
            "updated",
            f"Updated from {channel.name} ({source}): {', '.join(sorted(set(changed_fields)))}",
            actor_label=system,
            fields=sorted(set(changed_fields)),
        )
        audit_record(
            actor=None,
            verb="order.update",
            obj=order,
            before=before,
            after=_snapshot(order),
            reason=source,
            system=system,
        )
        _automatic_holds(order, system=system)
    return IngestResult(order=order, created=False, changed=bool(changed_fields))


# ---------------------------------------------------------------------------------------------------------
# The inbox


def inbound_event_store(*, channel: SalesChannel, envelope: WebhookEnvelope, body: str) -> tuple[InboundEvent, bool]:
    """Store a verified delivery once and enqueue its processing once it is committed. (event, created)."""
    key = envelope.event_id[:191]
    row = {
        "channel": channel,
        "event_key": key,
        "topic": envelope.topic[:100],
        "resource_id": envelope.resource_id[:64],
        "body": body,
        "enqueued_at": timezone.now(),
    }
    if connection.in_atomic_block:
        try:
            with transaction.atomic():
                event = InboundEvent.objects.create(**row)
                worklist_push_after_commit(INBOX, event.pk)
        except IntegrityError:
            return InboundEvent.objects.get(channel=channel, event_key=key), False
        return event, True
    # On the request path (autocommit) the INSERT is its own transaction: committed when it returns, with no
    # BEGIN/COMMIT round trips around it; the unique constraint turns a repeat into an IntegrityError.
    try:
        event = InboundEvent.objects.create(**row)
    except IntegrityError:
        return InboundEvent.objects.get(channel=channel, event_key=key), False
    worklist_push(INBOX, event.pk)
    return event, True


def inbound_event_process(*, event_id: int) -> str:
    """Turn a stored delivery into an order. Safe to run twice: a processed event is left alone."""
    return _retry_whole_transaction(lambda: _inbound_event_process(event_id))


def _inbound_event_process(event_id: int) -> str:
    with transaction.atomic():
        event = InboundEvent.objects.select_for_update().select_related("channel").get(pk=event_id)
        if event.status != InboundEvent.Status.PENDING:
            return str(event.status)
        event.attempts += 1
        adapter = adapter_for_channel(event.channel)
        if event.topic in adapter.order_topics:
            try:
                payload = json.loads(event.body)
                co = adapter.parse_order(payload)
                _validate_order(co)
                with transaction.atomic():
                    _ingest(event.channel, co, source=f"webhook {event.topic}", outermost=True)
            except (InvalidPayload, ValueError) as exc:
                # Permanent: the body will not parse better next time. Kept, visible, healed by backfill.
                event.status = InboundEvent.Status.FAILED
                event.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            else:
                event.status = InboundEvent.Status.PROCESSED
                event.last_error = ""
        elif event.topic in adapter.stock_topics:
            try:
                stock = adapter.parse_stock_update(json.loads(event.body))
            except (InvalidPayload, ValueError) as exc:
                event.status = InboundEvent.Status.FAILED
                event.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            else:
                outcome = stock_level_reported(channel=event.channel, stock=stock)
                event.status = InboundEvent.Status.PROCESSED if outcome != "unknown" else InboundEvent.Status.IGNORED
                event.last_error = ""
        elif event.topic in adapter.deferred_topics:
            event.status = InboundEvent.Status.DEFERRED
        else:
            event.status = InboundEvent.Status.IGNORED
        event.processed_at = timezone.now()
        event.save(update_fields=["status", "attempts", "processed_at", "last_error"])
        return str(event.status)


def inbound_event_record_error(*, event_id: int, error: str) -> None:
    """A transient failure: count the attempt; past the limit the event is failed for staff to see."""
    with transaction.atomic():
        event = InboundEvent.objects.select_for_update().get(pk=event_id)
        if event.status != InboundEvent.Status.PENDING:
            return
        event.attempts += 1
        event.last_error = error[:2000]
        if event.attempts >= settings.INBOX_MAX_ATTEMPTS:
            event.status = InboundEvent.Status.FAILED
        event.save(update_fields=["attempts", "last_error", "status"])


def inbound_event_retry(*, event: InboundEvent, actor: Actor) -> None:
    """Staff put a failed event back in the queue."""
    with transaction.atomic():
        event = InboundEvent.objects.select_for_update().get(pk=event.pk)
        if event.status not in (InboundEvent.Status.FAILED, InboundEvent.Status.PENDING):
            raise ValueError(f"event {event.pk} is {event.get_status_display()}, not failed")
        event.status = InboundEvent.Status.PENDING
        event.attempts = 0
        event.enqueued_at = timezone.now()
        event.save(update_fields=["status", "attempts", "enqueued_at"])
        audit_record(actor=actor, verb="inbox.retry", obj=event)
        enqueue_after_commit(INBOX_JOB, event.pk, queue="default", job_id=f"inbox-{event.pk}")


def inbox_sweep() -> int:
    """Re-enqueue pending events that waited too long (Redis was down, a worker died). Returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.INBOX_SWEEP_AFTER_SECONDS)
    waiting = list(
        InboundEvent.objects.filter(status=InboundEvent.Status.PENDING, enqueued_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:5000]
    )
    if not waiting:
        return 0
    queue = get_queue("default")
    swept = 0
    for pk in waiting:
        job = queue.fetch_job(f"inbox-{pk}") if not settings.OMS_JOBS_INLINE else None
        if job is not None and job.get_status(refresh=False) in (
            "queued",
            "started",
            "scheduled",
            "deferred",
        ):
            continue
        if enqueue_now(INBOX_JOB, pk, queue="default", job_id=f"inbox-{pk}"):
            InboundEvent.objects.filter(pk=pk).update(enqueued_at=timezone.now())
            swept += 1
    if swept:
        logger.warning("inbox sweeper re-enqueued %d waiting events", swept)
    return swept


# ---------------------------------------------------------------------------------------------------------
# Backfill


class SyncAlreadyRunning(RuntimeError):
    pass


def channel_sync_orders(
    *,
    channel: SalesChannel,
    since: datetime | None = None,
    trigger: str = "schedule",
    max_pages: int = 10_000,
) -> SyncRun:
    """Pull every order updated since the saved cursor (or `since`), page by page, saving the cursor as it goes."""
    lock_key = f"sync-orders-{channel.pk}"
    if not cache.add(lock_key, "1", timeout=1800):
        raise SyncAlreadyRunning(f"a backfill of {channel.name} is already running")
    try:
        return _sync(channel=channel, since=since, trigger=trigger, max_pages=max_pages)
    finally:
        cache.delete(lock_key)


def _sync(*, channel: SalesChannel, since: datetime | None, trigger: str, max_pages: int) -> SyncRun:
    overlap = timedelta(seconds=settings.ORDER_BACKFILL_OVERLAP_SECONDS)
    start_from = (
        since if since is not None else (channel.orders_synced_until - overlap if channel.orders_synced_until else None)
    )
    # We hold the channel's sync lock, so a run still marked running was cut off (worker killed, deploy).
    SyncRun.objects.filter(channel=channel, status=SyncRun.Status.RUNNING).update(
        status=SyncRun.Status.FAILED, finished_at=timezone.now(), errors=["interrupted before it finished"]
    )
    run = SyncRun.objects.create(channel=channel, trigger=trigger, since=start_from)
    adapter = adapter_for_channel(channel)
    cursor: str | None = None
    newest = channel.orders_synced_until
    try:
        while run.pages < max_pages:
            page = adapter.fetch_orders(since=start_from, cursor=cursor)
            run.pages += 1
            run.api_calls += page.calls
            for co in page.orders:
                run.records += 1
                try:
                    result = order_ingest(channel=channel, co=co, source="backfill")
                except Exception as exc:  # one bad order must not stop the others
                    logger.exception("backfill of %s: order %s failed", channel.slug, co.external_id)
                    run.error_count += 1
                    run.errors = [*run.errors, f"order {co.number or co.external_id}: {exc}"][-50:]
                    continue
                run.created += result.created
                run.updated += result.changed and not result.created
                if newest is None or co.updated_at > newest:
                    newest = co.updated_at
            for rejected in page.rejected:
                run.records += 1
                run.error_count += 1
                run.errors = [*run.errors, f"order {rejected.external_id}: {rejected.error}"][-50:]
            if newest is not None and newest != channel.orders_synced_until:
                SalesChannel.objects.filter(pk=channel.pk).update(orders_synced_until=newest)
                channel.orders_synced_until = newest
            run.save(update_fields=["pages", "api_calls", "records", "created", "updated", "error_count", "errors"])
            cursor = page.next_cursor
            if cursor is None:
                break
        run.status = SyncRun.Status.PARTIAL if run.error_count else SyncRun.Status.SUCCEEDED
    except ChannelError as exc:
        run.status = SyncRun.Status.FAILED
        run.error_count += 1
        run.errors = [*run.errors, f"{type(exc).__name__}: {exc}"][-50:]
    run.finished_at = timezone.now()
    run.save()
    return run


def backfills_due(*, now: datetime | None = None) -> list[int]:
    """Active channels whose last backfill started longer ago than their interval; enqueue a sync for each."""
    now = now or timezone.now()
    due = []
    for channel in SalesChannel.objects.filter(active=True):
        last = channel.sync_runs.order_by("-started_at").values_list("started_at", flat=True).first()
        if last is None or last <= now - timedelta(minutes=channel.backfill_every_minutes):
            due.append(channel.pk)
            enqueue_now(
                "oms.orders.jobs.channel_sync_orders",
                channel.pk,
                queue="low",
                job_id=f"sync-orders-{channel.pk}",
            )
    return due

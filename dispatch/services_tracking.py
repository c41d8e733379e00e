"""Dispatch after the label is bought: tracking written back to the channel, the customer's e-mails, carrier
tracking polls (up to delivered), and the end-of-day manifest.

Every outside call here (channel, carrier, mail server) is made outside a database transaction and is safe to
repeat: the channel write-back is idempotent on the channel's side, each e-mail is claimed before it is sent,
and a tracking event the carrier reports twice is stored once. Nothing here buys or voids labels (services.py).
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import quote

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from carriers.base import CarrierAuthFailed, CarrierError, TrackingResult, TrackingStatus
from carriers.registry import UnknownCarrierKind, carrier_class
from channels_adapters.base import ChannelError, NotSupported, Tracking
from channels_adapters.registry import UnknownChannelKind
from dispatch.documents import ManifestData, ManifestRow, render_manifest
from dispatch.models import (
    CarrierAccount,
    Document,
    Manifest,
    Shipment,
    ShipmentEvent,
    ShipmentParcel,
    ShipmentStatus,
    TrackingEvent,
)
from dispatch.services import AFTER_SHIP_JOB, DispatchError, carrier_adapter, document_store
from inventory.channels import adapter_for_channel
from oms.core.queue import enqueue_after_commit, enqueue_now, get_queue
from oms.core.services import Actor, acting_user, actor_label_for, alert_raise, alert_resolve, audit_record
from oms.orders.models import Order, OrderStatus
from oms.orders.services import order_transition

logger = logging.getLogger(__name__)

TRACKING_NUMBER_PLACEHOLDER = "{number}"

# Channel write-back: how often the backstop tries again, and for how long after the label was bought.
SYNC_MAX_ATTEMPTS = 8
SYNC_BACKOFF_MINUTES = (5, 5, 10, 30, 60, 120, 240, 480)  # wait after attempt n (index n) before the next
SYNC_WINDOW = timedelta(days=14)
EMAIL_WINDOW = timedelta(days=3)  # "on its way" a week late says more about us than about the parcel
SWEEP_LIMIT = 200

# Tracking polls
TRACK_CHUNK = 30  # numbers per track() call: FedEx's limit, the smallest of the bulk APIs
TRACKING_GIVE_UP = timedelta(days=90)  # a parcel that has not arrived in 90 days is a case for a person
ALERT_STATUSES = frozenset({TrackingStatus.EXCEPTION, TrackingStatus.RETURNED})
_PROGRESS = {
    TrackingStatus.PRE_TRANSIT: 0,
    TrackingStatus.UNKNOWN: 0,
    TrackingStatus.IN_TRANSIT: 1,
    TrackingStatus.AVAILABLE_FOR_PICKUP: 2,
    TrackingStatus.OUT_FOR_DELIVERY: 2,
    TrackingStatus.DELIVERED: 3,
}

# The kinds of ShipmentEvent that record the channel write-back; the latest one says where it stands.
SYNC_DONE = "channel_synced"
SYNC_NOT_NEEDED = "channel_not_needed"
SYNC_REFUSED = "channel_refused"
SYNC_FAILED = "channel_sync_failed"
SYNC_REOPENED = "channel_sync_reopened"
SYNC_KINDS = (SYNC_DONE, SYNC_NOT_NEEDED, SYNC_REFUSED, SYNC_FAILED, SYNC_REOPENED)
SYNC_CLOSED = frozenset({SYNC_DONE, SYNC_NOT_NEEDED, SYNC_REFUSED})


def _event(shipment: Shipment, kind: str, message: str, *, actor: Actor = None, **data: object) -> None:
    ShipmentEvent.objects.create(
        shipment=shipment,
        kind=kind,
        message=message[:500],
        data=data,
        actor_label=actor_label_for(actor, system="dispatch"),
    )


def _order_link(order: Order) -> str:
    return reverse("orders:order-detail", args=[order.pk])


# ---------------------------------------------------------------------------------------------------------
# Tracking numbers and links


@dataclass(frozen=True, slots=True)
class ParcelLink:
    number: str
    url: str


def carrier_label(account: CarrierAccount) -> str:
    """The carrier's own name ("USPS"), as channels and customers know it; the account's name if unknown."""
    try:
        return carrier_class(account.kind).label
    except UnknownCarrierKind:
        return account.name


def tracking_url(account: CarrierAccount, number: str) -> str:
    """The public tracking page of one parcel, from the account's template; "" when it has none."""
    template = account.tracking_url_template.strip()
    if not template or not number:
        return ""
    return template.replace(TRACKING_NUMBER_PLACEHOLDER, quote(number, safe=""))


def _numbers(shipment: Shipment) -> list[str]:
    found: dict[str, None] = {}
    for number in shipment.parcels.order_by("position").values_list("tracking_number", flat=True):
        if number.strip():
            found.setdefault(number.strip(), None)
    return list(found)


def shipment_tracking_links(shipment: Shipment) -> list[ParcelLink]:
    account = shipment.carrier_account
    return [ParcelLink(number, tracking_url(account, number)) for number in _numbers(shipment)]


def shipment_tracking(shipment: Shipment) -> Tracking:
    """What the channel is told: every parcel's number, the carrier, and the tracking page.

    With several parcels and a template holding `{number}` the template itself is sent: the channel adapter
    makes one URL per number (Shopify's `urls`); with one parcel, its own URL.
    """
    numbers = tuple(_numbers(shipment))
    account = shipment.carrier_account
    template = account.tracking_url_template.strip()
    if not numbers:
        url = "" if TRACKING_NUMBER_PLACEHOLDER in template else template
    elif len(numbers) == 1:
        url = tracking_url(account, numbers[0])
    else:
        url = template  # a plain page, or `{number}` for the adapter to expand per parcel
    return Tracking(numbers=numbers, carrier=carrier_label(account), url=url, notify_customer=False)


# ---------------------------------------------------------------------------------------------------------
# After the label: the channel write-back


class ChannelSync(enum.StrEnum):
    SYNCED = "synced"
    ALREADY = "already"  # written back earlier, or closed (not needed, refused)
    NOT_NEEDED = "not_needed"  # the channel takes no tracking
    RETRY = "retry"  # the channel failed in a way that trying later may cure
    GAVE_UP = "gave_up"  # it kept failing: an alert asks a person
    REFUSED = "refused"  # the channel refused it as it stands: an alert asks a person
    SKIPPED = "skipped"  # the label is no longer bought (voided)
    BUSY = "busy"  # another worker is writing it back right now


def _sync_key(shipment_id: int) -> str:
    return f"shipment-channel-sync:{shipment_id}"


def _last_sync_kind(shipment: Shipment) -> str | None:
    return (
        ShipmentEvent.objects.filter(shipment=shipment, kind__in=SYNC_KINDS)
        .order_by("-pk")
        .values_list("kind", flat=True)
        .first()
    )


def shipment_channel_sync(*, shipment_id: int) -> ChannelSync:
    """Write the shipment's tracking back to the order's channel (the order marked fulfilled there).

    Safe to run any number of times: once written back, refused, or not needed, it does nothing; while another
    worker holds the write-back it steps aside. Customers are not notified by the channel: the OMS e-mails them.
    """
    shipment = Shipment.objects.select_related("order__channel", "carrier_account").get(pk=shipment_id)
    if shipment.channel_synced_at is not None or _last_sync_kind(shipment) in SYNC_CLOSED:
        return ChannelSync.ALREADY
    if shipment.status != ShipmentStatus.BOUGHT:
        return ChannelSync.SKIPPED
    lease, token = f"dispatch:channel-sync:{shipment.pk}", uuid.uuid4().hex
    if not cache.add(lease, token, timeout=120):
        return ChannelSync.BUSY
    try:
        shipment.refresh_from_db(fields=["channel_synced_at", "status"])  # the lease's last holder may have done it
        if shipment.channel_synced_at is not None or _last_sync_kind(shipment) in SYNC_CLOSED:
            return ChannelSync.ALREADY
        if shipment.status != ShipmentStatus.BOUGHT:
            return ChannelSync.SKIPPED
        return _write_back(shipment)
    finally:
        if cache.get(lease) == token:
            cache.delete(lease)


def _write_back(shipment: Shipment) -> ChannelSync:
    order = shipment.order
    tracking = shipment_tracking(shipment)
    try:
        adapter_for_channel(order.channel).mark_fulfilled(order_external_id=order.external_id, tracking=tracking)
    except NotSupported as exc:
        with transaction.atomic():
            _event(shipment, SYNC_NOT_NEEDED, f"{order.channel.name} takes no tracking: not written back ({exc})")
        return ChannelSync.NOT_NEEDED
    except UnknownChannelKind as exc:
        return _sync_refused(shipment, str(exc))
    except ChannelError as exc:
        if not exc.retryable:
            return _sync_refused(shipment, str(exc))
        return _sync_failed(shipment, str(exc))
    with transaction.atomic():
        Shipment.objects.filter(pk=shipment.pk).update(
            channel_synced_at=timezone.now(),
            channel_sync_error="",
            channel_sync_attempts=F("channel_sync_attempts") + 1,
        )
        _event(
            shipment,
            SYNC_DONE,
            f"tracking written back to {order.channel.name}: {', '.join(tracking.numbers) or 'no tracking number'}",
            numbers=list(tracking.numbers),
            carrier=tracking.carrier,
            url=tracking.url,
        )
        alert_resolve(dedupe_key=_sync_key(shipment.pk))
    return ChannelSync.SYNCED


def _sync_failed(shipment: Shipment, error: str) -> ChannelSync:
    order = shipment.order
    with transaction.atomic():
        Shipment.objects.filter(pk=shipment.pk).update(
            channel_sync_error=error[:2000], channel_sync_attempts=F("channel_sync_attempts") + 1
        )
        attempts = Shipment.objects.values_list("channel_sync_attempts", flat=True).get(pk=shipment.pk)
        _event(shipment, SYNC_FAILED, f"{order.channel.name} unavailable (try {attempts}): {error}", attempt=attempts)
        if attempts < SYNC_MAX_ATTEMPTS:
            logger.warning("shipment %s: tracking write-back failed (try %s): %s", shipment.pk, attempts, error)
            return ChannelSync.RETRY
        alert_raise(
            kind="channel_sync_failed",
            title=f"Tracking of order {order.number} not written back to {order.channel.name}",
            message=f"{attempts} tries failed; the last: {error}",
            channel=order.channel,
            link=_order_link(order),
            dedupe_key=_sync_key(shipment.pk),
        )
    return ChannelSync.GAVE_UP


def _sync_refused(shipment: Shipment, error: str) -> ChannelSync:
    order = shipment.order
    with transaction.atomic():
        Shipment.objects.filter(pk=shipment.pk).update(
            channel_sync_error=error[:2000], channel_sync_attempts=F("channel_sync_attempts") + 1
        )
        _event(shipment, SYNC_REFUSED, f"{order.channel.name} refused the tracking: {error}")
        alert_raise(
            kind="channel_sync_refused",
            title=f"{order.channel.name} refused the tracking of order {order.number}",
            message=error,
            channel=order.channel,
            link=_order_link(order),
            dedupe_key=_sync_key(shipment.pk),
        )
    return ChannelSync.REFUSED


@transaction.atomic
def shipment_channel_sync_reopen(*, shipment: Shipment, actor: Actor, reason: str = "") -> Shipment:
    """A person fixed what the channel refused (or gave up on): write the tracking back again, from try one."""
    shipment = Shipment.objects.select_for_update().select_related("order").get(pk=shipment.pk)
    if shipment.status != ShipmentStatus.BOUGHT:
        raise DispatchError("only a bought label's tracking can be written back")
    if shipment.channel_synced_at is not None:
        raise DispatchError("the tracking is already written back")
    shipment.channel_sync_attempts = 0
    shipment.channel_sync_error = ""
    shipment.save(update_fields=["channel_sync_attempts", "channel_sync_error"])
    _event(shipment, SYNC_REOPENED, f"write-back tried again{': ' + reason if reason else ''}", actor=actor)
    audit_record(actor=actor, verb="shipment.channel_sync_reopen", obj=shipment, reason=reason, system="dispatch")
    alert_resolve(dedupe_key=_sync_key(shipment.pk))
    enqueue_after_commit(AFTER_SHIP_JOB, shipment.pk)
    return shipment


# ---------------------------------------------------------------------------------------------------------
# The customer's e-mails, each sent once


class EmailOutcome(enum.StrEnum):
    SENT = "sent"
    ALREADY = "already"  # sent before, or another worker is sending it now
    NO_EMAIL = "no_email"  # the order has no e-mail address
    NOTHING_TO_SAY = "nothing_to_say"  # the label was voided; not delivered yet; delivered before "on its way" went
    FAILED = "failed"  # the mail server refused; the claim is released so that a retry sends it


EMAIL_SUBJECTS = {
    "shipped": "{shop}: your order {number} is on its way",
    "delivered": "{shop}: your order {number} has been delivered",
}


def _email_message(shipment: Shipment, kind: str) -> EmailMultiAlternatives:
    order = shipment.order
    address = order.shipping_address
    customer = order.customer
    name = (customer.first_name if customer is not None else "") or (address.name if address is not None else "")
    context = {
        "shop_name": settings.SHOP_NAME,
        "order_number": order.number,
        "name": name,
        "carrier": carrier_label(shipment.carrier_account),
        "parcels": shipment_tracking_links(shipment),
        "delivered_at": shipment.delivered_at,
    }
    subject = EMAIL_SUBJECTS[kind].format(shop=settings.SHOP_NAME, number=order.number)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=render_to_string(f"dispatch/email/{kind}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.email],
    )
    message.attach_alternative(render_to_string(f"dispatch/email/{kind}.html", context), "text/html")
    return message


def _send_once(shipment_id: int, kind: str) -> EmailOutcome:
    """Claim the e-mail with a conditional UPDATE (two workers never both win), send it, release it on failure."""
    column = f"{kind}_email_at"
    shipment = Shipment.objects.select_related("order__customer", "order__shipping_address", "carrier_account").get(
        pk=shipment_id
    )
    if not shipment.order.email:
        return EmailOutcome.NO_EMAIL
    if getattr(shipment, column) is not None:
        return EmailOutcome.ALREADY
    if shipment.status != ShipmentStatus.BOUGHT or (shipment.delivered_at is None) == (kind == "delivered"):
        return EmailOutcome.NOTHING_TO_SAY
    claimed_at = timezone.now()
    if not Shipment.objects.filter(pk=shipment.pk, **{f"{column}__isnull": True}).update(**{column: claimed_at}):
        return EmailOutcome.ALREADY
    try:
        _email_message(shipment, kind).send(fail_silently=False)
    except Exception as exc:  # any backend's failure: give the claim back, or the e-mail is never sent
        Shipment.objects.filter(pk=shipment.pk, **{column: claimed_at}).update(**{column: None})
        logger.warning("shipment %s: %s e-mail to the customer failed: %s", shipment.pk, kind, exc)
        _event(shipment, "email_failed", f"{kind} e-mail not sent: {exc}", email=kind)
        return EmailOutcome.FAILED
    _event(shipment, "email_sent", f"{kind} e-mail sent to {shipment.order.email}", email=kind)
    return EmailOutcome.SENT


def shipment_email_shipped(*, shipment_id: int) -> EmailOutcome:
    """The "on its way" e-mail with every parcel's number and tracking link; sent at most once, never after the
    parcel was delivered (the delivered e-mail says it all then)."""
    return _send_once(shipment_id, "shipped")


def shipment_email_delivered(*, shipment_id: int) -> EmailOutcome:
    """The "delivered" e-mail; sent at most once, and only once every parcel is delivered."""
    return _send_once(shipment_id, "delivered")


# ---------------------------------------------------------------------------------------------------------
# The after-ship job and its backstop


@dataclass(frozen=True, slots=True)
class AfterShip:
    channel: ChannelSync
    email: EmailOutcome  # "on its way"
    delivered_email: EmailOutcome | None = None  # once the parcel is delivered

    @property
    def retry(self) -> bool:
        """Whether the job should run again later: a channel outage or a mail server that refused."""
        return self.channel == ChannelSync.RETRY or EmailOutcome.FAILED in (self.email, self.delivered_email)


def shipment_after_ship(*, shipment_id: int) -> AfterShip:
    """Everything a bought label still owes: the channel write-back, the "on its way" e-mail, and the
    "delivered" one once the parcel is (the backstop sends that one when the mail server was down).

    They are independent: a channel outage never holds the customer's e-mail back, nor the other way round.
    """
    channel = shipment_channel_sync(shipment_id=shipment_id)
    email = shipment_email_shipped(shipment_id=shipment_id)
    delivered = None
    if Shipment.objects.filter(pk=shipment_id, delivered_at__isnull=False).exists():
        delivered = shipment_email_delivered(shipment_id=shipment_id)
    return AfterShip(channel=channel, email=email, delivered_email=delivered)


def _sync_due(shipment: Shipment, last_try: datetime | None, now: datetime) -> bool:
    attempts = shipment.channel_sync_attempts
    if attempts >= SYNC_MAX_ATTEMPTS:
        return False
    wait = timedelta(minutes=SYNC_BACKOFF_MINUTES[min(attempts, len(SYNC_BACKOFF_MINUTES) - 1)])
    started = last_try or shipment.bought_at
    return started is None or started <= now - wait


def shipments_after_ship_due(*, now: datetime | None = None, limit: int = SWEEP_LIMIT) -> list[int]:
    """Bought shipments that still owe the write-back (last try older than its backoff) or an e-mail to the
    customer: the job was lost (Redis down), ran out of retries, or the mail server was down."""
    now = now or timezone.now()
    last_sync = ShipmentEvent.objects.filter(shipment=OuterRef("pk"), kind__in=SYNC_KINDS).order_by("-pk")
    unsynced = list(
        Shipment.objects.filter(
            status=ShipmentStatus.BOUGHT,
            channel_synced_at__isnull=True,
            channel_sync_attempts__lt=SYNC_MAX_ATTEMPTS,
            bought_at__gte=now - SYNC_WINDOW,
        )
        .annotate(
            last_kind=Subquery(last_sync.values("kind")[:1]), last_at=Subquery(last_sync.values("created_at")[:1])
        )
        .filter(Q(last_kind__isnull=True) | ~Q(last_kind__in=SYNC_CLOSED))
        .order_by("bought_at", "pk")[: limit * 5]
    )
    due = {s.pk for s in unsynced if _sync_due(s, s.last_at, now)}
    first_wait = timedelta(minutes=SYNC_BACKOFF_MINUTES[0])
    emails_owed = Shipment.objects.filter(status=ShipmentStatus.BOUGHT).exclude(order__email="")
    due.update(
        emails_owed.filter(
            shipped_email_at__isnull=True,
            delivered_at__isnull=True,
            bought_at__gte=now - EMAIL_WINDOW,
            bought_at__lte=now - first_wait,
        )
        .order_by("bought_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    due.update(
        emails_owed.filter(
            delivered_email_at__isnull=True,
            delivered_at__gte=now - EMAIL_WINDOW,
            last_polled_at__lte=now - first_wait,
        )
        .order_by("delivered_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    return sorted(due)[:limit]


def shipments_after_ship_sweep(*, now: datetime | None = None, limit: int = SWEEP_LIMIT) -> int:
    """The cron backstop: enqueue the after-ship job of every shipment that still owes something. Returns how many."""
    due = shipments_after_ship_due(now=now, limit=limit)
    queue = None if settings.OMS_JOBS_INLINE else get_queue("default")
    swept = 0
    for pk in due:
        job_id = f"after-ship-{pk}"
        job = queue.fetch_job(job_id) if queue is not None else None
        if job is not None and job.get_status(refresh=False) in ("queued", "started", "scheduled", "deferred"):
            continue
        if enqueue_now(AFTER_SHIP_JOB, pk, queue="default", job_id=job_id):
            swept += 1
    if swept:
        logger.info("after-ship backstop enqueued %d shipments", swept)
    return swept


# ---------------------------------------------------------------------------------------------------------
# Tracking polls


@dataclass
class TrackingPollResult:
    shipments: int = 0  # due and asked about
    updated: int = 0  # recorded (events, status, polled time)
    events: int = 0  # events the carriers reported (repeats included; each is stored once)
    changed: int = 0  # shipments whose status changed
    delivered: int = 0
    failed_accounts: list[str] = field(default_factory=list)


def shipment_status_of(statuses: Sequence[str]) -> TrackingStatus:
    """One status for a shipment of several parcels: delivered when all are, a problem with any parcel first,
    else the least advanced parcel's."""
    values = [TrackingStatus(s) for s in statuses] or [TrackingStatus.PRE_TRANSIT]
    if all(s == TrackingStatus.DELIVERED for s in values):
        return TrackingStatus.DELIVERED
    for problem in (TrackingStatus.RETURNED, TrackingStatus.EXCEPTION, TrackingStatus.CANCELLED):
        if problem in values:
            return problem
    return min(values, key=lambda s: _PROGRESS.get(s, 0))


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _due_for_tracking(now: datetime, limit: int) -> list[Shipment]:
    due_before = now - timedelta(minutes=settings.TRACKING_POLL_MINUTES)
    return list(
        Shipment.objects.filter(
            status=ShipmentStatus.BOUGHT, delivered_at__isnull=True, bought_at__gte=now - TRACKING_GIVE_UP
        )
        .filter(Q(last_polled_at__isnull=True) | Q(last_polled_at__lte=due_before))
        .exclude(tracking_status=TrackingStatus.CANCELLED)
        .select_related("carrier_account")
        .order_by(F("last_polled_at").asc(nulls_first=True), "pk")[:limit]
    )


def tracking_poll(*, limit: int = 1000, now: datetime | None = None) -> TrackingPollResult:
    """Ask the carriers about every parcel not delivered and not asked about for TRACKING_POLL_MINUTES.

    Shipments are grouped per carrier account and asked about in chunks. A carrier that fails leaves its
    account's unanswered shipments for the next poll (logged; an alert when it refuses our credentials); the
    other accounts go on. Every parcel delivered: the order moves to delivered and the customer is told.
    """
    now = now or timezone.now()
    result = TrackingPollResult()
    shipments = _due_for_tracking(now, limit)
    if not shipments:
        return result
    numbers_of: dict[int, list[str]] = defaultdict(list)
    for shipment_id, number in (
        ShipmentParcel.objects.filter(shipment__in=[s.pk for s in shipments])
        .exclude(tracking_number="")
        .order_by("shipment_id", "position")
        .values_list("shipment_id", "tracking_number")
    ):
        if number.strip() and number.strip() not in numbers_of[shipment_id]:
            numbers_of[shipment_id].append(number.strip())
    by_account: dict[int, list[Shipment]] = defaultdict(list)
    for shipment in shipments:
        if not numbers_of[shipment.pk]:  # a service without tracking: nothing to ask, nothing to wait for
            Shipment.objects.filter(pk=shipment.pk).update(last_polled_at=now)
            continue
        by_account[shipment.carrier_account_id].append(shipment)
    for group in by_account.values():
        result.shipments += len(group)
        _poll_account(group, numbers_of, now, result)
    return result


def _poll_account(
    group: list[Shipment], numbers_of: dict[int, list[str]], now: datetime, result: TrackingPollResult
) -> None:
    account = group[0].carrier_account
    numbers = [n for s in group for n in numbers_of[s.pk]]
    answers: dict[str, TrackingResult] = {}
    asked: set[str] = set()
    failed = False
    try:
        adapter = carrier_adapter(account)
    except UnknownCarrierKind as exc:
        logger.error("tracking poll: %s: %s", account.name, exc)
        result.failed_accounts.append(account.name)
        return
    for chunk in _chunks(numbers, TRACK_CHUNK):
        try:
            for answer in adapter.track(list(chunk)):
                answers[answer.tracking_number.strip()] = answer
        except CarrierError as exc:
            failed = True
            result.failed_accounts.append(account.name)
            logger.warning("tracking poll: %s failed (%s); its parcels wait for the next poll", account.name, exc)
            if isinstance(exc, CarrierAuthFailed) or not exc.retryable:
                alert_raise(
                    kind="carrier_tracking_failed",
                    title=f"Tracking with {account.name} fails",
                    message=str(exc),
                    dedupe_key=f"carrier-tracking:{account.pk}",
                )
            break
        asked.update(chunk)
    if not failed:
        alert_resolve(dedupe_key=f"carrier-tracking:{account.pk}")
    for shipment in group:
        own = numbers_of[shipment.pk]
        if not set(own) <= asked:
            continue
        delivered = _record_tracking(shipment.pk, own, answers, now, result)
        if delivered:
            shipment_email_delivered(shipment_id=shipment.pk)


def _stored_status(number: str) -> str | None:
    return (
        TrackingEvent.objects.filter(tracking_number=number)
        .order_by("-occurred_at", "-pk")
        .values_list("status", flat=True)
        .first()
    )


def _record_tracking(
    shipment_id: int,
    numbers: Sequence[str],
    answers: dict[str, TrackingResult],
    now: datetime,
    result: TrackingPollResult,
) -> bool:
    """Store one shipment's new events and status; True when this poll found it delivered."""
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().select_related("order").get(pk=shipment_id)
        if shipment.status != ShipmentStatus.BOUGHT or shipment.delivered_at is not None:
            return False  # voided or delivered meanwhile
        rows = []
        statuses: list[str] = []
        latest = None
        delivered_at = None
        for number in numbers:
            answer = answers.get(number)
            events = answer.events if answer is not None else ()
            for ev in events:
                rows.append(
                    TrackingEvent(
                        shipment=shipment,
                        tracking_number=number[:64],
                        status=str(ev.status)[:24],
                        code=ev.code[:32],
                        description=ev.description[:255],
                        location=ev.location[:255],
                        occurred_at=ev.occurred_at,
                    )
                )
                if latest is None or ev.occurred_at >= latest.occurred_at:
                    latest = ev
                if ev.status == TrackingStatus.DELIVERED and (delivered_at is None or ev.occurred_at > delivered_at):
                    delivered_at = ev.occurred_at
            if answer is not None and answer.status != TrackingStatus.UNKNOWN:
                statuses.append(answer.status)
            else:  # not known to the carrier this time: keep what we knew
                statuses.append(_stored_status(number) or TrackingStatus.PRE_TRANSIT)
        TrackingEvent.objects.bulk_create(rows, ignore_conflicts=True)
        result.events += len(rows)
        result.updated += 1
        before = shipment.tracking_status
        status = shipment_status_of(statuses)
        shipment.tracking_status = status
        shipment.last_polled_at = now
        if latest is not None and (shipment.last_event_at is None or latest.occurred_at > shipment.last_event_at):
            shipment.last_event_at = latest.occurred_at
        fields = ["tracking_status", "last_polled_at", "last_event_at"]
        order = shipment.order
        if status != before:
            result.changed += 1
            what = f": {latest.description}" if latest is not None else ""
            _event(shipment, "tracking", f"{before or 'new'} → {status}{what}", before=before, after=str(status))
            if status in ALERT_STATUSES:
                alert_raise(
                    kind="tracking_exception",
                    title=f"Parcel of order {order.number}: {status.replace('_', ' ')}",
                    message=latest.description if latest is not None else "",
                    channel=order.channel,
                    link=_order_link(order),
                    dedupe_key=f"shipment-tracking:{shipment.pk}",
                )
            elif before in ALERT_STATUSES:
                alert_resolve(dedupe_key=f"shipment-tracking:{shipment.pk}")
        delivered = status == TrackingStatus.DELIVERED
        if delivered:
            shipment.delivered_at = delivered_at or now
            fields.append("delivered_at")
        shipment.save(update_fields=fields)
        if delivered:
            result.delivered += 1
            if order.status == OrderStatus.SHIPPED:
                order_transition(
                    order=order,
                    to=OrderStatus.DELIVERED,
                    actor=None,
                    reason="the carrier delivered it",
                    system="dispatch",
                )
    return delivered


# ---------------------------------------------------------------------------------------------------------
# End-of-day manifest


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def manifest_shipments(*, carrier_account: CarrierAccount, day: date) -> list[Shipment]:
    """The bought, not voided, shipments of one account whose label was bought on that local day."""
    start, end = _day_bounds(day)
    return list(
        Shipment.objects.filter(
            carrier_account=carrier_account, status=ShipmentStatus.BOUGHT, bought_at__gte=start, bought_at__lt=end
        )
        .select_related("order__shipping_address")
        .prefetch_related("parcels")
        .order_by("bought_at", "pk")
    )


@transaction.atomic
def manifest_create(*, carrier_account: CarrierAccount, day: date, actor: Actor) -> Manifest:
    """The end-of-day manifest of one carrier account: every parcel bought that day, as a PDF the driver signs.

    Made again later the same day, it lists the whole day again (labels bought after the first one included).
    """
    shipments = manifest_shipments(carrier_account=carrier_account, day=day)
    if not shipments:
        raise DispatchError(
            f"no labels were bought with {carrier_account.name} on {day.isoformat()}: nothing to hand over"
        )
    rows = []
    for shipment in shipments:
        parcels = sorted(shipment.parcels.all(), key=lambda p: p.position)
        address = shipment.order.shipping_address
        rows.append(
            ManifestRow(
                tracking_number=", ".join(p.tracking_number for p in parcels if p.tracking_number) or "—",
                order_number=shipment.order.number,
                recipient=address.name if address is not None else "",
                postal_code=address.postal_code if address is not None else "",
                country=address.country if address is not None else "",
                parcels=len(parcels),
                weight_kg=(Decimal(sum(p.weight_grams for p in parcels)) / 1000).quantize(Decimal("0.001")),
            )
        )
    account = carrier_account
    shipper_address = [
        line
        for line in (
            account.sender_company,
            account.sender_line1,
            account.sender_line2,
            " ".join(p for p in (account.sender_postal_code, account.sender_city) if p),
            " ".join(p for p in (account.sender_region, account.sender_country) if p),
        )
        if line
    ]
    pdf = render_manifest(
        ManifestData(
            carrier_name=carrier_label(account),
            account=account.name,
            date=day,
            rows=rows,
            shipper_name=account.sender_name,
            shipper_address=shipper_address,
        )
    )
    document = document_store(
        kind=Document.Kind.MANIFEST,
        title=f"{account.name} manifest {day.isoformat()}",
        content=pdf,
        content_type="application/pdf",
        filename=f"manifest-{account.pk}-{day.isoformat()}.pdf",
    )
    parcel_count = sum(row.parcels for row in rows)
    manifest = Manifest.objects.create(
        carrier_account=account,
        day=day,
        parcels=parcel_count,
        document=document,
        created_by=acting_user(actor),
    )
    audit_record(
        actor=actor,
        verb="manifest.create",
        obj=manifest,
        after={"shipments": len(rows), "parcels": parcel_count},
        system="dispatch",
    )
    return manifest

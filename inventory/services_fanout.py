"""Stock fan-out: the outbox becomes pending listings, and pending listings become absolute quantities pushed to
each channel in batches, within the channel's rate limit, urgent (zero or low) changes first.

A listing is "pending" while the channel may show something other than what the master allows. `push_seq`
is bumped on every change; a push clears `push_pending` only if the sequence it read is still current, so a
change that lands during a push is pushed again, with the latest quantity (never a delta from a stale base).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from redis.exceptions import RedisError

from channels_adapters.base import ChannelAdapter, ChannelError, ChannelStock, StockQuantity
from inventory.channels import adapter_for_channel
from inventory.models import ChannelListing, MismatchKind, StockChange, StockMismatch
from inventory.selectors import listing_quantities
from oms.core.models import DriftPolicy, SalesChannel
from oms.core.queue import enqueue_now, get_queue

logger = logging.getLogger(__name__)


def listings_mark_pending(*, listing_ids: Iterable[int], urgent: bool = False) -> int:
    """Mark listings for a push of the master's quantity and wake the fan-out once committed. Returns how many."""
    ids = list(listing_ids)
    if not ids:
        return 0
    now = timezone.now()
    with transaction.atomic():
        changed = ChannelListing.objects.filter(pk__in=ids, paused=False).update(
            push_pending=True,
            push_seq=F("push_seq") + 1,
            pending_since=Coalesce(F("pending_since"), now),
        )
        if urgent:
            ChannelListing.objects.filter(pk__in=ids, paused=False).update(push_urgent=True)
        fanout_signal(urgent=urgent)
    return changed


# ---------------------------------------------------------------------------------------------------------
# Waking the fan-out

FANOUT_JOB = "inventory.jobs.stock_fanout"
_SCHEDULED = "oms:fanout:scheduled"


def fanout_signal(*, urgent: bool = False) -> None:
    """Once the transaction commits, make sure one fan-out job is queued (urgent: at the front of `high`).

    Many changes in a burst queue one job: a flag (SET NX) stands for "a job is queued and has not started";
    the job clears it as it starts, so a change after that queues the next one.
    """
    transaction.on_commit(lambda: _wake(urgent), robust=True)


def _wake(urgent: bool) -> None:
    if settings.OMS_JOBS_INLINE:
        enqueue_now(FANOUT_JOB, queue="high")
        return
    try:
        first = get_queue("high").connection.set(_SCHEDULED, 1, nx=True, ex=30)
    except RedisError:
        logger.warning("fan-out not woken: Redis unreachable; the next change or reconciliation pushes")
        return
    if first:  # otherwise a job is queued and not started yet: it will see this change too
        enqueue_now(FANOUT_JOB, queue="high", at_front=urgent)


def fanout_started() -> None:
    if not settings.OMS_JOBS_INLINE:
        with suppress(RedisError):
            get_queue("high").connection.delete(_SCHEDULED)


# ---------------------------------------------------------------------------------------------------------
# Outbox -> pending listings


def fanout_collect(*, limit: int = 5000) -> set[int]:
    """Consume outbox rows: every listing of a changed variant becomes pending. Returns the channels touched."""
    with transaction.atomic():
        rows = list(
            StockChange.objects.select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", "variant_id", "urgent")[:limit]
        )
        if not rows:
            return set()
        variant_ids = {v for _, v, _ in rows}
        urgent_ids = {v for _, v, u in rows if u}
        now = timezone.now()
        listings = ChannelListing.objects.filter(variant_id__in=variant_ids, paused=False)
        listings.update(push_pending=True, push_seq=F("push_seq") + 1, pending_since=Coalesce(F("pending_since"), now))
        if urgent_ids:
            listings.filter(variant_id__in=urgent_ids).update(push_urgent=True)
        StockChange.objects.filter(pk__in=[pk for pk, _, _ in rows]).delete()
        return set(listings.values_list("channel_id", flat=True).distinct())


def channels_with_pending_pushes() -> set[int]:
    return set(
        ChannelListing.objects.filter(push_pending=True, paused=False, channel__active=True)
        .values_list("channel_id", flat=True)
        .distinct()
    )


# ---------------------------------------------------------------------------------------------------------
# Pending listings -> the channel


@dataclass(slots=True)
class PushReport:
    calls: int = 0
    pushed: int = 0
    failed: int = 0
    stale: int = 0
    skipped_locked: bool = False
    errors: list[str] = field(default_factory=list)


MAX_PUSH_FAILURES = 5  # per listing; after that it waits for the next reconciliation (or a new change)


@contextmanager
def _channel_lock(channel_id: int) -> Iterator[bool]:
    key = f"oms:fanout:channel:{channel_id}"
    token = uuid.uuid4().hex
    got = cache.add(key, token, timeout=120)
    try:
        yield got
    finally:
        if got and cache.get(key) == token:
            cache.delete(key)


MAX_PUSH_ROUNDS = 5


def _pushable(channel: SalesChannel) -> QuerySet[ChannelListing]:
    return ChannelListing.objects.filter(
        channel=channel, push_pending=True, paused=False, push_failures__lt=MAX_PUSH_FAILURES
    )


def channel_push_stock(*, channel: SalesChannel, batch: int = 250, max_batches: int = 40) -> PushReport:
    """Push every pending listing of one channel, urgent ones first, in batches the adapter takes at once.

    One pusher per channel at a time: another one finds the lock taken and returns at once (skipped_locked),
    leaving what it marked pending to the holder, which looks again each time it lets go of the lock. Raises
    ChannelError when the channel is down or throttles past the adapter's own retries: the listings stay
    pending, with the error recorded, for the job's retry.
    """
    report = PushReport()
    adapter = adapter_for_channel(channel)
    for _ in range(MAX_PUSH_ROUNDS):
        with _channel_lock(channel.pk) as got:
            if not got:
                report.skipped_locked = True
                return report
            for _ in range(max_batches):
                listings = list(
                    _pushable(channel).select_related("variant").order_by("-push_urgent", "pending_since", "pk")[:batch]
                )
                if not listings:
                    break
                _push_batch(adapter, channel, listings, report)
        # The lock is free again. A change marked pending after our last look, by a job that found the lock
        # taken, is ours to push: without this look it would wait for the next sale or reconciliation.
        if not _pushable(channel).exists():
            return report
    if not settings.OMS_JOBS_INLINE:
        _wake(urgent=False)  # more than these rounds could take (a steady stream of sales): the next job goes on
    return report


def _push_batch(
    adapter: ChannelAdapter, channel: SalesChannel, listings: list[ChannelListing], report: PushReport
) -> None:
    quantities = listing_quantities(listings)
    levels = [
        StockQuantity(
            external_ids={**listing.external_ids, "inventory_item_id": listing.external_id},
            sku=listing.variant.sku,
            quantity=quantities[listing.pk],
            change_from=listing.last_seen_quantity,
        )
        for listing in listings
    ]
    reference = f"gid://oms/StockPush/{channel.pk}-{uuid.uuid4().hex[:16]}"
    report.calls += 1
    try:
        results = adapter.push_stock(levels, reference=reference)
    except ChannelError as exc:
        message = f"{type(exc).__name__}: {exc}"[:2000]
        ChannelListing.objects.filter(pk__in=[listing.pk for listing in listings]).update(
            push_failures=F("push_failures") + 1, last_error=message
        )
        report.errors.append(message)
        raise
    now = timezone.now()
    for listing, level, result in zip(listings, levels, results, strict=True):
        if result.ok:
            report.pushed += 1
            if result.stale:
                report.stale += 1
                logger.info(
                    "%s %s: the channel held %s, not %s; set to %s",
                    channel.slug,
                    level.sku,
                    result.previous,
                    level.change_from,
                    level.quantity,
                )
            ChannelListing.objects.filter(pk=listing.pk).update(
                last_pushed_quantity=level.quantity,
                last_pushed_at=now,
                last_seen_quantity=level.quantity,
                last_seen_at=now,
                push_failures=0,
                last_error="",
            )
            # Done, unless a change landed while we pushed: then it goes again with the newer quantity.
            ChannelListing.objects.filter(pk=listing.pk, push_seq=listing.push_seq).update(
                push_pending=False, push_urgent=False, pending_since=None
            )
        else:
            report.failed += 1
            report.errors.append(f"{level.sku}: {result.error}")
            ChannelListing.objects.filter(pk=listing.pk).update(
                push_failures=F("push_failures") + 1,
                last_error=result.error[:2000],
                **({"last_seen_quantity": result.previous, "last_seen_at": now} if result.previous is not None else {}),
            )


# ---------------------------------------------------------------------------------------------------------
# What the channel tells us: its echo of our push, or drift


def stock_level_reported(*, channel: SalesChannel, stock: ChannelStock) -> str:
    """A channel reported a listing's quantity (an inventory webhook). Returns what it was.

    "echo": the value we pushed last, coming back; nothing to do. "unknown": no such listing (reconciliation
    reports it). "noted": another value, remembered as last seen; if it still disagrees with the master once
    the grace period is over and no push explains it, the drift sweep records it as drift. The grace period
    covers the usual case: a sale on that channel, whose order is on its way to us.
    """
    item = stock.external_ids.get("inventory_item_id", "")
    listing = ChannelListing.objects.filter(channel=channel, external_id=item).first()
    if listing is None:
        return "unknown"
    now = timezone.now()
    ChannelListing.objects.filter(pk=listing.pk).update(last_seen_quantity=stock.quantity, last_seen_at=now)
    if stock.quantity == listing.last_pushed_quantity:
        return "echo"
    return "noted"


def stock_drift_sweep(*, now: datetime | None = None, grace_seconds: int | None = None) -> int:
    """Record drift for listings whose channel reported a value the master disagrees with. Returns how many."""
    now = now or timezone.now()
    grace = settings.STOCK_DRIFT_GRACE_SECONDS if grace_seconds is None else grace_seconds
    settled = now - timedelta(seconds=grace)
    # Only what the channels reported lately (the index on last_seen_at): anything older either was swept
    # already or is found by the scheduled reconciliation. Listings with an open drift are left out in the
    # query, not one query each, so that a channel with many known drifts does not slow every sweep.
    already_open = StockMismatch.objects.filter(
        listing=OuterRef("pk"), kind=MismatchKind.QUANTITY_DRIFT, resolution=StockMismatch.Resolution.OPEN
    )
    suspects = list(
        ChannelListing.objects.filter(
            last_seen_at__gt=settled - timedelta(seconds=settings.STOCK_DRIFT_LOOKBACK_SECONDS),
            last_seen_at__lte=settled,
            push_pending=False,
            paused=False,
            channel__active=True,
        )
        .filter(Q(last_pushed_at__isnull=True) | Q(last_seen_at__gt=F("last_pushed_at")))
        .exclude(last_seen_quantity=F("last_pushed_quantity"))
        .exclude(Exists(already_open))
        .select_related("channel", "variant")[:5000]
    )
    if not suspects:
        return 0
    expected = listing_quantities(suspects)
    found = 0
    for listing in suspects:
        if listing.last_seen_quantity == expected[listing.pk]:
            continue  # the channel's own count agrees with the master (a sale it counted first)
        drift_record(listing=listing, channel_quantity=listing.last_seen_quantity, master_quantity=expected[listing.pk])
        found += 1
    return found


def drift_record(*, listing: ChannelListing, channel_quantity: int | None, master_quantity: int) -> StockMismatch:
    """A listing shows what the master does not allow: record it, alert, and apply the channel's policy."""
    from oms.core.services import alert_raise

    channel = listing.channel
    with transaction.atomic():
        mismatch = StockMismatch.objects.create(
            channel=channel,
            kind=MismatchKind.QUANTITY_DRIFT,
            listing=listing,
            variant=listing.variant,
            sku=listing.variant.sku,
            external_id=listing.external_id,
            master_quantity=master_quantity,
            channel_quantity=channel_quantity,
            last_pushed_quantity=listing.last_pushed_quantity,
            source="webhook",
        )
        alert_raise(
            kind="stock.drift",
            title=f"{listing.variant.sku} shows {channel_quantity} on {channel.name}, master allows {master_quantity}",
            message=f"Policy: {channel.get_stock_drift_policy_display()}",
            channel=channel,
            link=f"/inventory/mismatches/?channel={channel.pk}",
            dedupe_key=f"stock-mismatch:{mismatch.pk}",
        )
    if channel.stock_drift_policy != DriftPolicy.ALERT:
        from inventory.services_reconcile import MismatchActionError, mismatch_accept, mismatch_correct

        act = mismatch_correct if channel.stock_drift_policy == DriftPolicy.CORRECT else mismatch_accept
        try:
            act(mismatch=mismatch, actor=None)
        except MismatchActionError as exc:  # left open for staff, with the alert saying why
            logger.warning("%s: drift on %s left open: %s", channel.slug, listing.variant.sku, exc)
    return mismatch

"""Reconciliation of a channel with the master, staff's one-click answers to its mismatches, and importing a
channel's catalog as listings.

Reads the channel only through its adapter (fetch_stock, fetch_products). Never pushes stock itself: it marks
listings pending for the fan-out, and changes the master only through inventory.services.stock_adjust.

What a run reports (one open StockMismatch per channel, kind and SKU or channel id; a re-run updates it):

* quantity drift: a listing shows another quantity than the master allows. Not for a listing with a push
  pending (the push explains the difference), a paused listing (staff set its quantity by hand), or one the
  channel changed within STOCK_DRIFT_GRACE_SECONDS (a sale whose order is still on its way to us).
* unknown SKU: an item whose SKU no master variant has, or that has no SKU at all: its orders would be held.
* not listed: a listing of this channel (not paused, active variant) that the channel no longer returns, i.e.
  deleted there or no longer stocked at the managed location. Active variants the channel has never listed are
  not mismatches (most channels sell part of the catalog): the run counts them in its summary.
* duplicate SKU: the same SKU on more than one of the channel's items; none of them is linked automatically.

An item whose SKU matches a variant without a listing on the channel is linked (a listing is created, or a
listing whose item the channel no longer returns is moved to it) and then compared; the run's summary says so.
Open mismatches not found again are resolved as "gone". A dismissed finding stays dismissed: the same unknown
SKU, duplicate or missing listing is not reported again, and a drift only when its quantities change.

The channel's stock_drift_policy acts on drift only: "correct" marks the listings pending (the fan-out pushes
the master's quantity) and resolves them as corrected; "accept" books the channel's change as a "correction"
ledger row and resolves them as accepted, refusing (left open, with the reason in the note and the alert) what
cannot be booked; a channel still showing what we last pushed is corrected instead, since it did not change.
"alert" only records. Each new mismatch left open gets an alert of its own, not e-mailed; each run with news
sends one e-mailed summary.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max, QuerySet
from django.urls import reverse
from django.utils import timezone

from channels_adapters.base import ChannelAdapter, ChannelError, ChannelProduct, ChannelStock
from inventory.channels import adapter_for_channel
from inventory.models import (
    ChannelListing,
    Location,
    MismatchKind,
    MovementReason,
    Product,
    ReconcileRun,
    StockLevel,
    StockMismatch,
    Variant,
)
from inventory.selectors import ListingRules, listing_quantities
from inventory.selectors_reconcile import channel_listing_quantities
from inventory.services import StockError, stock_adjust
from inventory.services_fanout import listings_mark_pending
from oms.core.models import Alert, DriftPolicy, SalesChannel
from oms.core.queue import enqueue_now
from oms.core.services import (
    Actor,
    acting_user,
    alert_raise,
    alert_raise_many,
    alert_resolve,
    alert_resolve_many,
    audit_record,
)

logger = logging.getLogger(__name__)

RECONCILE_JOB = "inventory.jobs.channel_reconcile"
JOB_TIMEOUT = 4 * 3600  # a large catalog within a slow plan's rate limit takes a while
LOCK_SECONDS = 600  # renewed as the run goes, so a killed worker blocks the channel for ten minutes at most
BATCH = 1000
SAMPLE = 20  # SKUs named in a run's summary per list
PROGRESS_SECONDS = 5.0  # how often a run's page count is saved (and its lock renewed) while reading
SYSTEM = "reconcile"
OPEN = StockMismatch.Resolution.OPEN
STOCK_ID = "inventory_item_id"  # the adapters' name for the id of the stocked thing (ChannelListing.external_id)


class ReconcileAlreadyRunning(RuntimeError):
    """A reconciliation or catalog import of the channel holds its lock."""


class MismatchActionError(ValueError):
    """A staff action on a mismatch that cannot be done; the message is for staff (no final full stop)."""


def mismatch_alert_key(mismatch_id: int) -> str:
    return f"stock-mismatch:{mismatch_id}"


def _summary_alert_key(channel: SalesChannel) -> str:
    return f"stock-reconcile:{channel.pk}"


def _failed_alert_key(channel: SalesChannel) -> str:
    return f"stock-reconcile-failed:{channel.pk}"


def _mismatch_link(channel: SalesChannel, kind: str = "") -> str:
    query = f"?channel={channel.pk}" + (f"&kind={kind}" if kind else "")
    return reverse("inventory:mismatch-list") + query


def _stock_id(external_ids: Mapping[str, str]) -> str:
    return str(external_ids.get(STOCK_ID) or "")


def _batches(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextmanager
def _channel_lock(channel: SalesChannel) -> Iterator[Callable[[], None]]:
    """One reconciliation or catalog import per channel at a time; yields a function that renews the lock."""
    key = f"reconcile-{channel.pk}"
    token = uuid.uuid4().hex
    if not cache.add(key, token, timeout=LOCK_SECONDS):
        raise ReconcileAlreadyRunning(f"a reconciliation or catalog import of {channel.name} is already running")

    def renew() -> None:
        cache.touch(key, LOCK_SECONDS)

    try:
        yield renew
    finally:
        if cache.get(key) == token:
            cache.delete(key)


# ---------------------------------------------------------------------------------------------------------
# Findings


def mismatch_key(kind: str, sku: str, external_id: str) -> tuple[str, str]:
    """What makes a mismatch the same one again: a listing's item for drift and missing listings, else the SKU
    (the channel's item id when there is no SKU)."""
    if kind in (MismatchKind.QUANTITY_DRIFT, MismatchKind.NOT_LISTED) or not sku:
        return (kind, f"id:{external_id}")
    return (kind, f"sku:{sku}")


@dataclass(slots=True)
class _Finding:
    kind: str
    sku: str
    external_id: str
    listing_id: int | None = None
    variant_id: int | None = None
    master_quantity: int | None = None
    channel_quantity: int | None = None
    last_pushed_quantity: int | None = None
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return mismatch_key(self.kind, self.sku, self.external_id)


@dataclass(slots=True)
class _Listing:
    """A listing's values the comparison needs: tens of thousands of these cost a fraction of model instances."""

    pk: int
    channel_id: int
    variant_id: int
    external_id: str
    buffer: int
    maximum: int | None
    percentage: int
    paused: bool
    push_pending: bool
    last_pushed_quantity: int | None
    last_seen_quantity: int | None


_LISTING_VALUES = (
    "pk",
    "channel_id",
    "variant_id",
    "external_id",
    "buffer",
    "maximum",
    "percentage",
    "paused",
    "push_pending",
    "last_pushed_quantity",
    "last_seen_quantity",
)


def _listing_rows(listings: QuerySet[ChannelListing]) -> list[_Listing]:
    return [_Listing(*row) for row in listings.order_by("pk").values_list(*_LISTING_VALUES)]


@dataclass(slots=True)
class _Catalog:
    """The master's side, loaded once per run: variants by SKU and the channel's listings."""

    variant_by_sku: dict[str, tuple[int, bool, bool]]  # sku -> (pk, active, is_bundle)
    sku_of: dict[int, str]
    listings: list[_Listing]
    by_external: dict[str, _Listing]
    by_variant: dict[int, list[_Listing]]


def _load_catalog(channel: SalesChannel) -> _Catalog:
    variant_by_sku: dict[str, tuple[int, bool, bool]] = {}
    sku_of: dict[int, str] = {}
    for pk, sku, active, is_bundle in Variant.objects.order_by().values_list("pk", "sku", "active", "is_bundle"):
        variant_by_sku[sku] = (pk, active, is_bundle)
        sku_of[pk] = sku
    listings = _listing_rows(ChannelListing.objects.filter(channel=channel))
    by_variant: dict[int, list[_Listing]] = defaultdict(list)
    for listing in listings:
        by_variant[listing.variant_id].append(listing)
    return _Catalog(
        variant_by_sku=variant_by_sku,
        sku_of=sku_of,
        listings=listings,
        by_external={listing.external_id: listing for listing in listings},
        by_variant=by_variant,
    )


WHOLE_CATALOG = 2000  # from this many listings on, read every variant's stock in one pass rather than by id


def _quantities(listings: Sequence[ListingRules]) -> dict[int, int]:
    """What each listing may show: by id in batches for a few (an IN list of a whole channel would overflow),
    in one pass over every variant's stock for many."""
    if len(listings) >= WHOLE_CATALOG:
        return channel_listing_quantities(listings)
    return listing_quantities(listings)


# ---------------------------------------------------------------------------------------------------------
# The run


@dataclass(slots=True)
class _RunState:
    summary: dict[str, Any] = field(default_factory=dict)
    findings: list[_Finding] = field(default_factory=list)
    deferred: set[tuple[str, str]] = field(default_factory=set)  # keys not judged this time: leave them open
    seen: dict[int, int] = field(default_factory=dict)  # listing pk -> the channel's quantity
    unchanged: set[int] = field(default_factory=set)  # seen showing the same quantity as last seen
    unseen: list[int] = field(default_factory=list)  # the channel's listings it did not return

    def see(self, listing: _Listing, quantity: int) -> None:
        self.seen[listing.pk] = quantity
        if listing.last_seen_quantity == quantity:
            self.unchanged.add(listing.pk)

    def count(self, name: str, n: int = 1) -> None:
        self.summary[name] = self.summary.get(name, 0) + n

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Seconds per phase, in the summary: where a slow run spends its time beyond the channel's API."""
        began = time.monotonic()
        try:
            yield
        finally:
            self.summary.setdefault("phases", {})[phase] = round(time.monotonic() - began, 3)

    def sample(self, name: str, value: str) -> None:
        values = self.summary.setdefault(name, [])
        if len(values) < SAMPLE:
            values.append(value)


def channel_reconcile(
    *,
    channel: SalesChannel,
    trigger: str = "schedule",
    grace_seconds: int | None = None,
    adapter: ChannelAdapter | None = None,
    max_pages: int = 100_000,
) -> ReconcileRun:
    """Read every stocked item of the channel, compare it with the master, record and act on the mismatches.

    One run per channel at a time (ReconcileAlreadyRunning otherwise). A channel that fails mid-way fails the
    run and changes nothing: a partial read would report every unread listing as missing. `adapter` lets a
    benchmark time the channel's calls; it defaults to the channel's own, with its shared rate limiter.
    """
    with _channel_lock(channel) as renew:
        # We hold the channel's lock, so a run still marked running was cut off (worker killed, deploy).
        ReconcileRun.objects.filter(channel=channel, status=ReconcileRun.Status.RUNNING).update(
            status=ReconcileRun.Status.FAILED, finished_at=timezone.now(), error="interrupted before it finished"
        )
        run = ReconcileRun.objects.create(channel=channel, trigger=trigger[:32])
        started = time.monotonic()
        state = _RunState()
        try:
            items, api_seconds, calls = _read_stock(adapter or adapter_for_channel(channel), run, renew, max_pages)
        except ChannelError as exc:
            return _fail(run, channel, f"{type(exc).__name__}: {exc}", started)
        state.summary.update(items=len(items), api_calls=calls, api_seconds=round(api_seconds, 3))
        grace = settings.STOCK_DRIFT_GRACE_SECONDS if grace_seconds is None else grace_seconds
        try:
            with state.timed("compare"):
                _compare(channel, items, state, grace=grace)
            with state.timed("record"):
                recorded = _record(channel, run, state)
            renew()
            with state.timed("policy"):
                _apply_policy(channel, run, state, recorded)
        except Exception as exc:
            _fail(run, channel, f"{type(exc).__name__}: {exc}", started)
            raise
        state.summary["seconds"] = round(time.monotonic() - started, 3)
        run.status = ReconcileRun.Status.DONE
        run.finished_at = timezone.now()
        run.summary = state.summary
        run.save(
            update_fields=["status", "finished_at", "pages", "listings_seen", "mismatches", "corrected", "summary"]
        )
        _summary_alert(channel, run)
        alert_resolve(dedupe_key=_failed_alert_key(channel))
        return run


def _read_stock(
    adapter: ChannelAdapter, run: ReconcileRun, renew: Callable[[], None], max_pages: int
) -> tuple[list[ChannelStock], float, int]:
    items: list[ChannelStock] = []
    cursor: str | None = None
    api_seconds = 0.0
    calls = 0
    reported = time.monotonic()
    while run.pages < max_pages:
        asked = time.monotonic()
        page = adapter.fetch_stock(cursor=cursor)
        api_seconds += time.monotonic() - asked
        calls += page.calls
        items.extend(page.items)
        run.pages += 1
        run.listings_seen = len(items)
        if asked - reported > PROGRESS_SECONDS:  # progress for the status screen, and the lock kept
            ReconcileRun.objects.filter(pk=run.pk).update(pages=run.pages, listings_seen=run.listings_seen)
            renew()
            reported = asked
        cursor = page.next_cursor
        if cursor is None:
            return items, api_seconds, calls
    raise ChannelError(f"more than {max_pages} pages of stock: stopped reading", retryable=False)


def _fail(run: ReconcileRun, channel: SalesChannel, error: str, started: float) -> ReconcileRun:
    logger.warning("reconcile of %s failed: %s", channel.slug, error)
    run.status = ReconcileRun.Status.FAILED
    run.error = error[:4000]
    run.finished_at = timezone.now()
    run.summary = {"seconds": round(time.monotonic() - started, 3)}
    run.save(update_fields=["status", "error", "finished_at", "pages", "listings_seen", "summary"])
    alert_raise(
        kind="stock.reconcile",
        title=f"Stock reconciliation of {channel.name} failed",
        message=f"{error}\n\nNothing was changed; the next run tries again.",
        severity=Alert.Severity.WARNING,
        channel=channel,
        link=_mismatch_link(channel),
        dedupe_key=_failed_alert_key(channel),
    )
    return run


def _compare(channel: SalesChannel, items: list[ChannelStock], state: _RunState, *, grace: int) -> None:
    with state.timed("load"):
        catalog = _load_catalog(channel)
    skus = Counter(sku for sku in (item.sku.strip() for item in items) if sku)
    duplicated: dict[str, list[str]] = {sku: [] for sku, n in skus.items() if n > 1}
    item_ids = {_stock_id(item.external_ids) for item in items}
    compare: list[tuple[_Listing, ChannelStock]] = []
    links: list[tuple[ChannelStock, int, str]] = []  # (item, variant pk, sku)
    moves: list[tuple[_Listing, ChannelStock, str]] = []  # a listing whose item is gone -> this item
    moved: set[int] = set()

    for item in items:
        sku = item.sku.strip()
        ext = _stock_id(item.external_ids)
        if sku in duplicated:
            duplicated[sku].append(ext)
        listing = catalog.by_external.get(ext) if ext else None
        if listing is not None:
            if listing.pk in state.seen:
                continue  # the same item twice in one read (a page boundary moved): count it once
            state.see(listing, item.quantity)
            compare.append((listing, item))
            variant_sku = catalog.sku_of.get(listing.variant_id, "")
            if not sku or sku not in catalog.variant_by_sku:
                state.findings.append(
                    _Finding(
                        MismatchKind.UNKNOWN_SKU,
                        sku,
                        ext,
                        listing_id=listing.pk,
                        variant_id=listing.variant_id,
                        channel_quantity=item.quantity,
                        note=(
                            f"the channel's item of {variant_sku} has "
                            + (f"SKU {sku}, unknown to the master" if sku else "no SKU")
                            + ": its orders cannot be matched"
                        )[:255],
                    )
                )
            elif sku != variant_sku:
                state.count("sku_conflicts")
                state.sample("sku_conflict_skus", f"{ext}: {sku} on the channel, {variant_sku} in the OMS")
            continue
        if not sku:
            missing = _Finding(MismatchKind.UNKNOWN_SKU, "", ext, channel_quantity=item.quantity)
            missing.note = "no SKU on the channel: its orders cannot be matched"
            state.findings.append(missing)
            continue
        found = catalog.variant_by_sku.get(sku)
        if found is None:
            state.findings.append(_Finding(MismatchKind.UNKNOWN_SKU, sku, ext, channel_quantity=item.quantity))
            continue
        if sku in duplicated or not ext:
            continue  # which of the items is the real one is the staff's call: the duplicate finding says so
        existing = catalog.by_variant.get(found[0], [])
        gone = [listing for listing in existing if listing.external_id not in item_ids and listing.pk not in moved]
        if not existing:
            links.append((item, found[0], sku))
        elif len(gone) == 1:
            moves.append((gone[0], item, sku))
            moved.add(gone[0].pk)
        else:
            state.count("sku_conflicts")
            state.sample("sku_conflict_skus", f"{ext}: {sku} is already listed under another item of the channel")

    compare += _link(channel, links, moves, catalog, state)
    for sku, ids in sorted(duplicated.items()):
        found = catalog.variant_by_sku.get(sku)
        joined = ", ".join(ids)
        state.findings.append(
            _Finding(
                MismatchKind.DUPLICATE_SKU,
                sku,
                joined[:191],
                variant_id=found[0] if found else None,
                note=f"{len(ids)} items on the channel have this SKU: {joined}"[:255],
            )
        )

    unseen = [
        listing
        for listing in catalog.listings
        if listing.pk not in state.seen and listing.pk not in moved and not listing.paused
    ]
    state.unseen = sorted(listing.pk for listing in catalog.listings if listing.pk not in state.seen)
    with state.timed("quantities"):
        quantities = _quantities([listing for listing, _ in compare] + unseen)
    now = timezone.now()
    for listing, item in compare:
        if listing.paused:
            state.count("paused_skipped")
            continue
        master = quantities[listing.pk]
        if item.quantity == master:
            continue
        finding = _Finding(
            MismatchKind.QUANTITY_DRIFT,
            catalog.sku_of.get(listing.variant_id, ""),
            listing.external_id,
            listing_id=listing.pk,
            variant_id=listing.variant_id,
            master_quantity=master,
            channel_quantity=item.quantity,
            last_pushed_quantity=listing.last_pushed_quantity,
        )
        if listing.push_pending:
            state.count("pending_skipped")
        elif grace and item.updated_at is not None and item.updated_at > now - timedelta(seconds=grace):
            state.count("recent_skipped")  # a sale on the channel whose order may still be on its way
            state.deferred.add(finding.key)
        else:
            state.findings.append(finding)
    for listing in unseen:
        variant = catalog.variant_by_sku.get(catalog.sku_of.get(listing.variant_id, ""))
        if variant is None or not variant[1]:
            continue  # a discontinued variant may leave the channel
        state.findings.append(
            _Finding(
                MismatchKind.NOT_LISTED,
                catalog.sku_of[listing.variant_id],
                listing.external_id,
                listing_id=listing.pk,
                variant_id=listing.variant_id,
                master_quantity=quantities.get(listing.pk),
                last_pushed_quantity=listing.last_pushed_quantity,
                note="the channel no longer returns this item at the managed location",
            )
        )
    _recheck_drift(state)
    listed = {listing.variant_id for listing in catalog.listings} | {v for _, v, _ in links}
    for sku, (pk, active, is_bundle) in catalog.variant_by_sku.items():
        if active and not is_bundle and pk not in listed:
            state.count("unlisted_variants")
            state.sample("unlisted_sample", sku)


def _link(
    channel: SalesChannel,
    links: list[tuple[ChannelStock, int, str]],
    moves: list[tuple[_Listing, ChannelStock, str]],
    catalog: _Catalog,
    state: _RunState,
) -> list[tuple[_Listing, ChannelStock]]:
    """Create listings for items whose SKU a variant has, and move listings whose item is gone to the new item."""
    compare: list[tuple[_Listing, ChannelStock]] = []
    with transaction.atomic():
        for listing, item, sku in moves:
            ext = _stock_id(item.external_ids)
            old = listing.external_id
            ChannelListing.objects.filter(pk=listing.pk).update(
                external_id=ext, external_ids=dict(item.external_ids), channel_sku=sku, updated_at=timezone.now()
            )
            listing.external_id = ext
            audit_record(
                actor=None,
                verb="listing.relink",
                obj=ChannelListing.objects.get(pk=listing.pk),
                before={"external_id": old},
                after={"external_id": ext, "sku": sku},
                reason="the channel no longer has the old item; an item with the same SKU took its place",
                system=SYSTEM,
            )
            state.count("relinked")
            state.sample("relinked_skus", sku)
            state.see(listing, item.quantity)
            compare.append((listing, item))
        if links:
            new = [
                ChannelListing(
                    channel=channel,
                    variant_id=variant_id,
                    external_id=_stock_id(item.external_ids),
                    external_ids=dict(item.external_ids),
                    channel_sku=sku,
                )
                for item, variant_id, sku in links
            ]
            ChannelListing.objects.bulk_create(new, batch_size=BATCH, ignore_conflicts=True)
            created = {
                row.external_id: row
                for batch in _batches([listing.external_id for listing in new])
                for row in _listing_rows(ChannelListing.objects.filter(channel=channel, external_id__in=batch))
            }
            for item, _, sku in links:
                row = created[_stock_id(item.external_ids)]
                state.see(row, item.quantity)
                compare.append((row, item))
                state.sample("linked_skus", sku)
            state.count("linked", len(links))
    return compare


def _recheck_drift(state: _RunState) -> None:
    """The master may have moved while we read the channel: drop drift a push now explains, or that is gone."""
    drift = [f for f in state.findings if f.kind == MismatchKind.QUANTITY_DRIFT and f.listing_id is not None]
    if not drift:
        return
    listings: list[_Listing] = []
    for batch in _batches([f.listing_id for f in drift]):
        listings += _listing_rows(ChannelListing.objects.filter(pk__in=batch))
    fresh = {listing.pk: listing for listing in listings}
    quantities = _quantities([listing for listing in listings if not listing.push_pending])
    keep = []
    for finding in state.findings:
        if finding.kind == MismatchKind.QUANTITY_DRIFT and finding.listing_id is not None:
            listing = fresh.get(finding.listing_id)
            if listing is None or listing.push_pending:
                state.count("pending_skipped")
                continue
            finding.master_quantity = quantities[listing.pk]
            if finding.master_quantity == finding.channel_quantity:
                continue
        keep.append(finding)
    state.findings = keep


@dataclass(slots=True)
class _Recorded:
    new: list[StockMismatch]
    drift: list[StockMismatch]  # new and still-open drift found this run: what the policy acts on


_MISMATCH_VALUES = (
    "listing_id",
    "variant_id",
    "sku",
    "external_id",
    "master_quantity",
    "channel_quantity",
    "last_pushed_quantity",
    "note",
)


def _record(channel: SalesChannel, run: ReconcileRun, state: _RunState) -> _Recorded:
    """Write what the channel was seen showing, and upsert the open mismatches; resolve the ones gone."""
    now = timezone.now()
    by_quantity: dict[int, list[int]] = defaultdict(list)
    for pk, quantity in state.seen.items():
        if pk not in state.unchanged:
            by_quantity[quantity].append(pk)
    changed = [pk for pks in by_quantity.values() for pk in pks]
    # Listings showing a new quantity: one UPDATE per batch showing the same quantity (cheaper than bulk_update's
    # CASE per row). The rest of those seen (in a steady state nearly all) only get last_seen_at: in one UPDATE
    # of the channel's listings but those named, when few are. In one short transaction of its own, so the
    # fan-out's updates of these rows never wait for the rest of the run.
    with state.timed("last_seen"), transaction.atomic():
        for quantity, pks in sorted(by_quantity.items()):
            for batch in _batches(sorted(pks)):
                ChannelListing.objects.filter(pk__in=batch).update(last_seen_quantity=quantity, last_seen_at=now)
        if len(state.unseen) + len(changed) <= BATCH:
            ChannelListing.objects.filter(channel=channel).exclude(pk__in=[*state.unseen, *changed]).update(
                last_seen_at=now
            )
        else:
            for batch in _batches(sorted(state.unchanged)):
                ChannelListing.objects.filter(pk__in=batch).update(last_seen_at=now)

    dismissed: dict[tuple[str, str], set[tuple[int | None, int | None]]] = defaultdict(set)
    for kind, sku, ext, master, shown in StockMismatch.objects.filter(
        channel=channel, resolution=StockMismatch.Resolution.DISMISSED
    ).values_list("kind", "sku", "external_id", "master_quantity", "channel_quantity"):
        dismissed[mismatch_key(kind, sku, ext)].add((master, shown))

    with transaction.atomic():
        open_rows: dict[tuple[str, str], StockMismatch] = {}
        extra: list[StockMismatch] = []
        for row in StockMismatch.objects.filter(channel=channel, resolution=OPEN).order_by("pk"):
            key = mismatch_key(row.kind, row.sku, row.external_id)
            if key in open_rows:  # twins (an older version, or a race with a webhook): keep the oldest
                extra.append(row)
            else:
                open_rows[key] = row
        new: list[StockMismatch] = []
        again: list[StockMismatch] = []
        moved_on: list[StockMismatch] = []  # found again with other values
        found_keys: set[tuple[str, str]] = set()
        for finding in state.findings:
            key = finding.key
            if key in found_keys:
                continue
            found_keys.add(key)
            existing = open_rows.get(key)
            if existing is not None:
                state.count(f"found_{finding.kind}")
                if any(getattr(existing, name) != getattr(finding, name) for name in _MISMATCH_VALUES):
                    for name in _MISMATCH_VALUES:
                        setattr(existing, name, getattr(finding, name))
                    moved_on.append(existing)
                existing.run = run
                again.append(existing)
                continue
            silenced = dismissed.get(key)
            if silenced is not None and (
                finding.kind != MismatchKind.QUANTITY_DRIFT
                or (finding.master_quantity, finding.channel_quantity) in silenced
            ):
                state.count("dismissed_skipped")
                continue
            state.count(f"found_{finding.kind}")
            new.append(
                StockMismatch(
                    channel=channel,
                    run=run,
                    kind=finding.kind,
                    source="reconcile",
                    **{name: getattr(finding, name) for name in _MISMATCH_VALUES},
                )
            )
        StockMismatch.objects.bulk_update(moved_on, list(_MISMATCH_VALUES), batch_size=BATCH)
        for batch in _batches([row.pk for row in again]):
            StockMismatch.objects.filter(pk__in=batch).update(run=run)
        new = _create_mismatches(new)
        gone = [row for key, row in open_rows.items() if key not in found_keys and key not in state.deferred]
        gone += extra
        for batch in _batches([row.pk for row in gone]):
            StockMismatch.objects.filter(pk__in=batch, resolution=OPEN).update(
                resolution=StockMismatch.Resolution.GONE, resolved_at=now
            )
        alert_resolve_many(dedupe_keys=[mismatch_alert_key(row.pk) for row in gone])
        state.summary.update(new=len(new), still_open=len(again), gone=len(gone))
        run.mismatches = len(new) + len(again)
        ReconcileRun.objects.filter(pk=run.pk).update(mismatches=run.mismatches)
    drift = [row for row in (*new, *again) if row.kind == MismatchKind.QUANTITY_DRIFT]
    return _Recorded(new=new, drift=drift)


def _create_mismatches(rows: list[StockMismatch]) -> list[StockMismatch]:
    if not rows:
        return []
    if connection.features.can_return_rows_from_bulk_insert:
        return StockMismatch.objects.bulk_create(rows, batch_size=BATCH)
    for row in rows:  # pragma: no cover - every supported database returns the new ids
        row.save()
    return rows


def _apply_policy(channel: SalesChannel, run: ReconcileRun, state: _RunState, recorded: _Recorded) -> None:
    """Apply the channel's drift policy to this run's drift, then raise one (un-mailed) alert per new mismatch
    that is still open."""
    policy = channel.stock_drift_policy
    resolved: set[int] = set()
    if policy == DriftPolicy.CORRECT and recorded.drift:
        resolved = _correct_many(recorded.drift, actor=None, reason=f"reconcile run {run.pk}: policy correct")
        state.summary["corrected"] = len(resolved)
    elif policy == DriftPolicy.ACCEPT:
        # A channel still showing what we last pushed did not change: the master did, and the push went missing.
        unchanged = [
            m
            for m in recorded.drift
            if m.last_pushed_quantity is not None and m.channel_quantity == m.last_pushed_quantity
        ]
        if unchanged:
            resolved = _correct_many(unchanged, actor=None, reason=f"reconcile run {run.pk}: the push went missing")
            state.summary["corrected"] = len(resolved)
        accepted = 0
        for mismatch in recorded.drift:
            if mismatch.pk in resolved:
                continue
            try:
                mismatch_accept(mismatch=mismatch, actor=None)
            except MismatchActionError as exc:
                state.count("refused_count")
                refusals = state.summary.setdefault("refused", [])
                if len(refusals) < 50:
                    refusals.append({"sku": mismatch.sku, "reason": str(exc)})
                mismatch.note = f"not accepted: {exc}"[:255]  # the alert says why, too
                StockMismatch.objects.filter(pk=mismatch.pk, resolution=OPEN).update(note=mismatch.note)
                continue
            resolved.add(mismatch.pk)
            accepted += 1
        state.summary["accepted"] = accepted
    run.corrected = len(resolved)
    links = {kind: _mismatch_link(channel, kind) for kind in MismatchKind.values}
    alert_raise_many(
        alerts=[
            Alert(
                kind="stock.mismatch",
                title=_mismatch_title(channel, mismatch),
                message=mismatch.note,
                channel=channel,
                link=links[mismatch.kind],
                dedupe_key=mismatch_alert_key(mismatch.pk),
            )
            for mismatch in recorded.new
            if mismatch.pk not in resolved
        ],
        email=False,
    )


def _mismatch_title(channel: SalesChannel, mismatch: StockMismatch) -> str:
    what = mismatch.sku or mismatch.external_id or "an item"
    if mismatch.kind == MismatchKind.QUANTITY_DRIFT:
        return (
            f"{what} shows {mismatch.channel_quantity} on {channel.name}; the master allows {mismatch.master_quantity}"
        )
    if mismatch.kind == MismatchKind.UNKNOWN_SKU:
        return f"{channel.name} lists {what if mismatch.sku else 'an item with no SKU'}, unknown to the master"
    if mismatch.kind == MismatchKind.NOT_LISTED:
        return f"{what} is no longer listed on {channel.name}"
    return f"{what} is listed more than once on {channel.name}"


def _summary_alert(channel: SalesChannel, run: ReconcileRun) -> None:
    """One e-mailed alert per run that found something new (or could not accept something); resolved by a run
    that leaves nothing open."""
    summary = run.summary
    still_open = StockMismatch.objects.filter(channel=channel, resolution=OPEN).count()
    key = _summary_alert_key(channel)
    if not still_open:
        alert_resolve(dedupe_key=key)
    if not (summary.get("new") or summary.get("refused_count")):
        return
    kinds = ", ".join(
        f"{summary[f'found_{kind}']} {label.lower()}"
        for kind, label in MismatchKind.choices
        if summary.get(f"found_{kind}")
    )
    lines = [
        f"Read {summary.get('items', 0)} items in {run.pages} page(s).",
        f"Found: {kinds or 'nothing'}; {summary.get('new', 0)} new, {summary.get('gone', 0)} gone.",
    ]
    if summary.get("linked"):
        lines.append(f"Linked {summary['linked']} item(s) to master SKUs by their SKU.")
    if summary.get("corrected"):
        lines.append(f"Pushed the master's quantity to {summary['corrected']} listing(s) (policy: correct).")
    if summary.get("accepted"):
        lines.append(f"Accepted the channel's quantity for {summary['accepted']} listing(s) (policy: accept).")
    if summary.get("refused_count"):
        lines.append(f"Could not accept {summary['refused_count']}: left open for staff.")
    lines.append(f"Open mismatches on {channel.name} now: {still_open}.")
    alert_resolve(dedupe_key=key)  # a fresh alert (and e-mail) per run with news; the older one is superseded
    alert_raise(
        kind="stock.reconcile",
        title=f"Reconciliation of {channel.name}: {summary.get('new', 0)} new mismatch(es), {still_open} open",
        message="\n".join(lines),
        channel=channel,
        link=_mismatch_link(channel),
        dedupe_key=key,
    )


# ---------------------------------------------------------------------------------------------------------
# Staff's one-click answers (and the drift policy's)


def _lock_open(mismatch: StockMismatch) -> StockMismatch:
    locked = StockMismatch.objects.select_for_update().filter(pk=mismatch.pk).first()
    if locked is None:
        raise MismatchActionError("this mismatch no longer exists")
    if locked.resolution != OPEN:
        raise MismatchActionError(f"this mismatch is already resolved ({locked.get_resolution_display().lower()})")
    return locked


def _resolve(mismatch: StockMismatch, resolution: str, *, actor: Actor, note: str = "") -> None:
    mismatch.resolution = resolution
    mismatch.resolved_at = timezone.now()
    mismatch.resolved_by = acting_user(actor)
    fields = ["resolution", "resolved_at", "resolved_by"]
    if note:
        mismatch.note = note[:255]
        fields.append("note")
    mismatch.save(update_fields=fields)


def _snapshot(mismatch: StockMismatch) -> dict[str, Any]:
    return {
        "kind": mismatch.kind,
        "sku": mismatch.sku,
        "external_id": mismatch.external_id,
        "master_quantity": mismatch.master_quantity,
        "channel_quantity": mismatch.channel_quantity,
        "last_pushed_quantity": mismatch.last_pushed_quantity,
        "resolution": mismatch.resolution,
    }


def _correctable(mismatch: StockMismatch) -> ChannelListing:
    if mismatch.kind != MismatchKind.QUANTITY_DRIFT:
        raise MismatchActionError(
            f"only a quantity drift can be corrected from the master; {mismatch.get_kind_display().lower()} "
            "needs a change on the channel or in the catalog"
        )
    listing = ChannelListing.objects.filter(pk=mismatch.listing_id).first() if mismatch.listing_id else None
    if listing is None:
        raise MismatchActionError("the listing behind this mismatch no longer exists")
    if listing.paused:
        raise MismatchActionError(f"the listing of {mismatch.sku} is paused: unpause it to push the master's quantity")
    return listing


def _correct_many(mismatches: Sequence[StockMismatch], *, actor: Actor, reason: str) -> set[int]:
    """Push the master's quantity to the drifted listings: mark them pending (a listing showing more than the
    master allows jumps the queue) and resolve their mismatches as corrected. Returns the mismatches resolved."""
    with transaction.atomic():
        ids = [m.pk for m in mismatches]
        locked = {
            m.pk: m
            for batch in _batches(ids)
            for m in StockMismatch.objects.select_for_update().filter(pk__in=batch, resolution=OPEN).order_by("pk")
        }
        paused = set(
            ChannelListing.objects.filter(
                pk__in=[m.listing_id for m in locked.values() if m.listing_id], paused=True
            ).values_list("pk", flat=True)
        )
        todo = [m for m in locked.values() if m.listing_id and m.listing_id not in paused]
        urgent = [m.listing_id for m in todo if (m.channel_quantity or 0) > (m.master_quantity or 0)]
        calm = [m.listing_id for m in todo if m.listing_id not in set(urgent)]
        listings_mark_pending(listing_ids=[pk for pk in urgent if pk], urgent=True)
        listings_mark_pending(listing_ids=[pk for pk in calm if pk])
        for mismatch in todo:
            before = _snapshot(mismatch)
            _resolve(mismatch, StockMismatch.Resolution.CORRECTED, actor=actor)
            audit_record(
                actor=actor,
                verb="stock_mismatch.correct",
                obj=mismatch,
                before=before,
                after={"resolution": mismatch.resolution, "pushes": mismatch.master_quantity},
                reason=reason,
                system=SYSTEM,
            )
        alert_resolve_many(dedupe_keys=[mismatch_alert_key(m.pk) for m in todo])
    return {m.pk for m in todo}


@transaction.atomic
def mismatch_correct(*, mismatch: StockMismatch, actor: Actor) -> StockMismatch:
    """Push the master's quantity to the channel for a drifted listing; resolves the mismatch as corrected."""
    locked = _lock_open(mismatch)
    _correctable(locked)
    _correct_many([locked], actor=actor, reason="corrected from the master")
    locked.refresh_from_db()
    return locked


def _accept_location(variant: Variant, delta: int) -> Location:
    """The variant's first active location (by priority) that can take the change: where it has stock, else the
    first active location; for a decrease, the first that has that many free units."""
    levels = list(
        StockLevel.objects.filter(variant=variant, location__active=True)
        .select_related("location")
        .order_by("location__priority", "location__code")
    )
    if delta < 0:
        for level in levels:
            if level.on_hand - level.allocated >= -delta:
                return level.location
        free = sum(level.on_hand - level.allocated for level in levels)
        raise MismatchActionError(
            f"accepting it would take {-delta} unit(s) of {variant.sku}, but only {free} are free at the active "
            "locations (the rest are allocated to open orders, or the result would be negative)"
        )
    if levels:
        return levels[0].location
    location = Location.objects.filter(active=True).order_by("priority", "code").first()
    if location is None:
        raise MismatchActionError("there is no active location to book the channel's quantity at")
    return location


@transaction.atomic
def mismatch_accept(*, mismatch: StockMismatch, actor: Actor) -> StockMismatch:
    """Take the channel's quantity as the truth: adjust the master's stock by the difference ("correction") at
    the variant's first active location, and resolve the mismatch as accepted.

    The difference is the channel's quantity less what we last pushed (what the channel changed on its own), or
    less what the master allows when nothing was pushed yet.
    """
    locked = _lock_open(mismatch)
    if locked.kind != MismatchKind.QUANTITY_DRIFT:
        reasons = {
            MismatchKind.UNKNOWN_SKU: "the SKU is unknown to the master: there is no stock to adjust; add the SKU to "
            "the catalog (or import the channel's catalog) first",
            MismatchKind.NOT_LISTED: "the channel no longer lists this SKU: there is no channel quantity to accept",
            MismatchKind.DUPLICATE_SKU: "the SKU is listed more than once on the channel: remove the duplicate there",
        }
        raise MismatchActionError(reasons.get(MismatchKind(locked.kind), "only a quantity drift can be accepted"))
    variant = Variant.objects.filter(pk=locked.variant_id).first() if locked.variant_id else None
    if variant is None or locked.channel_quantity is None:
        raise MismatchActionError("the variant or the channel's quantity behind this mismatch is no longer known")
    if variant.is_bundle:
        raise MismatchActionError(
            f"{variant.sku} is a bundle: it holds no stock of its own; adjust its components instead"
        )
    base = locked.last_pushed_quantity if locked.last_pushed_quantity is not None else locked.master_quantity
    if base is None:
        raise MismatchActionError("neither what the master allows nor what was last pushed is known")
    if locked.channel_quantity < 0:
        raise MismatchActionError(f"the channel shows {locked.channel_quantity}: a negative quantity cannot be stock")
    delta = locked.channel_quantity - base
    if delta == 0:
        what = "what we last pushed" if locked.last_pushed_quantity is not None else "what the master allowed"
        raise MismatchActionError(
            f"the channel still shows {what} ({base}): there is no change of the channel's to accept; "
            "correct it from the master instead"
        )
    location = _accept_location(variant, delta)
    channel = SalesChannel.objects.get(pk=locked.channel_id)
    note = (
        f"{channel.name} shows {locked.channel_quantity}"
        + (f", last pushed {locked.last_pushed_quantity}" if locked.last_pushed_quantity is not None else "")
        + f", master allowed {locked.master_quantity}: accepted (mismatch {locked.pk})"
    )
    try:
        stock_adjust(
            variant=variant,
            location=location,
            delta=delta,
            note=note,
            actor=actor,
            reason=MovementReason.CORRECTION,
            reference=f"mismatch:{locked.pk}",
            system=SYSTEM,
        )
    except StockError as exc:
        raise MismatchActionError(str(exc).rstrip(".")) from None
    before = _snapshot(locked)
    _resolve(locked, StockMismatch.Resolution.ACCEPTED, actor=actor)
    audit_record(
        actor=actor,
        verb="stock_mismatch.accept",
        obj=locked,
        before=before,
        after={"resolution": locked.resolution, "delta": delta, "location": location.code},
        reason=note,
        system=SYSTEM,
    )
    alert_resolve(dedupe_key=mismatch_alert_key(locked.pk))
    return locked


@transaction.atomic
def mismatch_dismiss(*, mismatch: StockMismatch, actor: Actor, note: str = "") -> StockMismatch:
    """Close a mismatch without a change. Reconciliation does not report the same finding again (a drift only
    when its quantities change)."""
    locked = _lock_open(mismatch)
    before = _snapshot(locked)
    _resolve(locked, StockMismatch.Resolution.DISMISSED, actor=actor, note=note.strip() or locked.note)
    audit_record(
        actor=actor,
        verb="stock_mismatch.dismiss",
        obj=locked,
        before=before,
        after={"resolution": locked.resolution},
        reason=note.strip(),
        system=SYSTEM,
    )
    alert_resolve(dedupe_key=mismatch_alert_key(locked.pk))
    return locked


# ---------------------------------------------------------------------------------------------------------
# Scheduling


def reconciles_due(*, now: datetime | None = None) -> list[int]:
    """Active channels whose last reconciliation started longer ago than their interval (0: only on demand);
    enqueue a reconciliation of each on the "low" queue."""
    now = now or timezone.now()
    due = []
    rows = (
        SalesChannel.objects.filter(active=True, reconcile_every_minutes__gt=0)
        .annotate(last=Max("reconcile_runs__started_at"))
        .values_list("pk", "reconcile_every_minutes", "last")
        .order_by("pk")
    )
    for pk, minutes, last in rows:
        if last is None or last <= now - timedelta(minutes=minutes):
            due.append(pk)
            enqueue_now(RECONCILE_JOB, pk, queue="low", job_id=f"reconcile-{pk}", job_timeout=JOB_TIMEOUT)
    return due


# ---------------------------------------------------------------------------------------------------------
# Importing a channel's catalog


@dataclass(slots=True)
class ImportReport:
    """What import_channel_catalog did: items matched to master SKUs, listings created or updated, and what it
    could not match."""

    channel: str
    pages: int = 0
    items: int = 0
    matched: int = 0
    listings_created: int = 0
    listings_updated: int = 0
    products_created: int = 0
    variants_created: int = 0
    created_skus: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # SKUs the master does not have (created with create_missing)
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # SKU -> the channel's item ids
    no_sku: list[str] = field(default_factory=list)  # "title (item id)" of items without a SKU
    conflicts: list[str] = field(default_factory=list)  # matched, but the listing could not be made
    api_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "items": self.items,
            "matched": self.matched,
            "listings_created": self.listings_created,
            "listings_updated": self.listings_updated,
            "products_created": self.products_created,
            "variants_created": self.variants_created,
            "unmatched": len(self.unmatched),
            "duplicates": len(self.duplicates),
            "no_sku": len(self.no_sku),
            "conflicts": len(self.conflicts),
        }


def _product_name(item: ChannelProduct) -> str:
    return f"{item.title} — {item.variant_title}" if item.variant_title else item.title


def import_channel_catalog(
    *, channel: SalesChannel, create_missing: bool = False, actor: Actor = None, adapter: ChannelAdapter | None = None
) -> ImportReport:
    """Read the channel's products and link each item to the master variant with its SKU (creating or updating
    the ChannelListing). With `create_missing`, SKUs the master lacks become new products and variants (no
    stock). Items without a SKU, and SKUs on more than one item, are reported and not linked."""
    report = ImportReport(channel=channel.slug)
    with _channel_lock(channel) as renew:
        adapter = adapter or adapter_for_channel(channel)
        items: list[ChannelProduct] = []
        cursor: str | None = None
        while True:
            asked = time.monotonic()
            page = adapter.fetch_products(cursor=cursor)
            report.api_seconds += time.monotonic() - asked
            report.pages += 1
            items.extend(page.items)
            renew()
            cursor = page.next_cursor
            if cursor is None:
                break
        report.items = len(items)
        _import(channel, items, report, create_missing=create_missing, actor=actor)
    return report


def _import(
    channel: SalesChannel, items: list[ChannelProduct], report: ImportReport, *, create_missing: bool, actor: Actor
) -> None:
    by_sku: dict[str, list[ChannelProduct]] = defaultdict(list)
    for item in items:
        sku = item.sku.strip()
        if not sku:
            report.no_sku.append(f"{_product_name(item)} ({_stock_id(item.external_ids) or '-'})")
        else:
            by_sku[sku].append(item)
    singles: dict[str, ChannelProduct] = {}
    for sku, found in by_sku.items():
        if len(found) > 1:
            report.duplicates[sku] = [_stock_id(item.external_ids) for item in found]
        else:
            singles[sku] = found[0]
    variants: dict[str, int] = {}
    for batch in _batches(sorted(singles)):
        variants.update(
            {sku: pk for pk, sku in Variant.objects.filter(sku__in=batch).order_by().values_list("pk", "sku")}
        )
    report.unmatched = sorted(sku for sku in singles if sku not in variants)
    listings = list(ChannelListing.objects.filter(channel=channel).order_by("pk"))
    by_external = {listing.external_id: listing for listing in listings}
    by_variant: dict[int, list[ChannelListing]] = defaultdict(list)
    for listing in listings:
        by_variant[listing.variant_id].append(listing)
    item_ids = {_stock_id(item.external_ids) for item in items}

    with transaction.atomic():
        if create_missing and report.unmatched:
            variants.update(_create_variants([singles[sku] for sku in report.unmatched], report))
        new: list[ChannelListing] = []
        changed: list[ChannelListing] = []
        moved: set[int] = set()
        for sku, item in sorted(singles.items()):
            variant_id = variants.get(sku)
            if variant_id is None:
                continue
            ext = _stock_id(item.external_ids)
            if not ext:
                report.conflicts.append(f"{sku}: the channel gave no {STOCK_ID}")
                continue
            ids = {str(k): str(v) for k, v in item.external_ids.items()}
            linked = by_external.get(ext)
            if linked is not None:
                listing = linked
                if listing.variant_id != variant_id:
                    report.conflicts.append(f"{sku}: item {ext} is listed as another SKU in the OMS")
                    continue
            else:
                gone = [
                    other
                    for other in by_variant.get(variant_id, [])
                    if other.external_id not in item_ids and other.pk not in moved
                ]
                if by_variant.get(variant_id) and not gone:
                    report.conflicts.append(f"{sku}: already listed under another item of the channel")
                    continue
                if gone:
                    listing = gone[0]
                    moved.add(listing.pk)
                    listing.external_id = ext
                else:
                    new.append(
                        ChannelListing(
                            channel=channel, variant_id=variant_id, external_id=ext, external_ids=ids, channel_sku=sku
                        )
                    )
                    report.matched += 1
                    continue
            report.matched += 1
            if listing.pk in moved or listing.external_ids != ids or listing.channel_sku != sku:
                listing.external_ids = ids
                listing.channel_sku = sku
                changed.append(listing)
        ChannelListing.objects.bulk_create(new, batch_size=BATCH)
        now = timezone.now()
        for listing in changed:
            listing.updated_at = now
        ChannelListing.objects.bulk_update(
            changed, ["external_id", "external_ids", "channel_sku", "updated_at"], batch_size=BATCH
        )
        report.listings_created = len(new)
        report.listings_updated = len(changed)
        audit_record(
            actor=actor,
            verb="channel.catalog_import",
            obj=channel,
            after={**report.as_dict(), "created_skus": report.created_skus[:SAMPLE]},
            system="import_channel_catalog",
        )


def _create_variants(items: list[ChannelProduct], report: ImportReport) -> dict[str, int]:
    """New products (one per channel product) and variants, without stock, for SKUs the master lacks."""
    groups: dict[str, list[ChannelProduct]] = defaultdict(list)
    for item in items:
        groups[str(item.external_ids.get("product_id") or _stock_id(item.external_ids) or item.sku)].append(item)
    keys = sorted(groups)
    products = [Product(title=groups[key][0].title[:255] or groups[key][0].sku) for key in keys]
    if connection.features.can_return_rows_from_bulk_insert:
        Product.objects.bulk_create(products, batch_size=BATCH)
    else:  # pragma: no cover - every supported database returns them
        for product in products:
            product.save()
    report.products_created = len(products)
    variants = [
        Variant(
            product=product,
            sku=item.sku.strip(),
            title=item.variant_title[:255],
            barcode=item.barcode[:64],
            **({"sale_price": item.price} if item.price is not None else {}),
            weight_grams=item.weight_grams if item.weight_grams is not None and item.weight_grams >= 0 else None,
        )
        for key, product in zip(keys, products, strict=True)
        for item in groups[key]
    ]
    Variant.objects.bulk_create(variants, batch_size=BATCH)
    report.variants_created = len(variants)
    report.created_skus = sorted(v.sku for v in variants)
    created: dict[str, int] = {}
    for batch in _batches(report.created_skus):
        created.update({sku: pk for pk, sku in Variant.objects.filter(sku__in=batch).values_list("pk", "sku")})
    return created

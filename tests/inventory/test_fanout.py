"""Fan-out through real HTTP against the Shopify emulator: a sale on one channel reaches every other channel as
an absolute quantity, in batches, zero-stock changes first, with stale compares, echoes and drift handled."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from channels_adapters.base import ChannelLine, ChannelStock
from inventory.jobs import stock_fanout
from inventory.models import ChannelListing, MismatchKind, StockChange, StockMismatch
from inventory.services import stock_adjust, stock_receive
from inventory.services_fanout import channel_push_stock, fanout_collect, stock_drift_sweep, stock_level_reported
from oms.core.models import Alert, DriftPolicy
from oms.orders.services import order_ingest
from tests.emulators.shopify import ShopifyEmulator
from tests.factories import channel_order, location, sales_channel, stocked

pytestmark = pytest.mark.django_db


def mutations(emulator: ShopifyEmulator) -> list[dict]:
    return [r.json for r in emulator.graphql_requests if "inventorySetQuantities" in (r.json or {}).get("query", "")]


def pushed_quantities(emulator: ShopifyEmulator) -> list[list[dict]]:
    return [m["variables"]["input"]["quantities"] for m in mutations(emulator)]


@pytest.fixture
def shops():
    """Two emulated stores, each a channel listing the same SKUs."""
    with ExitStack() as stack:
        emulators = [stack.enter_context(ShopifyEmulator(shop_domain=f"s{n}.myshopify.com")) for n in range(2)]
        channels = [
            sales_channel(
                slug=f"shop-{n}",
                api_base_url=e.base_url,
                options={"shop_domain": e.shop_domain, "location_id": e.location_id},
                credentials={"access_token": e.access_token},
            )
            for n, e in enumerate(emulators)
        ]
        yield list(zip(channels, emulators, strict=True))


def list_everywhere(shops, sku: str, on_hand: int) -> dict[str, str]:
    """A stocked master SKU, listed on every shop with the quantity the shop shows now (= what we last pushed)."""
    variant = stocked(sku, on_hand)
    items = {}
    for channel, emulator in shops:
        ids = emulator.add_product(sku=sku, available=on_hand)
        ChannelListing.objects.create(
            channel=channel,
            variant=variant,
            external_id=ids["inventory_item_id"],
            external_ids={"location_id": ids["location_id"]},
            channel_sku=sku,
            last_pushed_quantity=on_hand,
            last_seen_quantity=on_hand,
        )
        items[channel.slug] = ids["inventory_item_id"]
    StockChange.objects.all().delete()
    return items


def sale(channel, sku: str, quantity: int = 1):
    line = ChannelLine(external_id="1", sku=sku, title=sku, quantity=quantity, unit_price=Decimal("10"))
    return order_ingest(channel=channel, co=channel_order(lines=(line,)), source="test").order


def test_a_sale_on_one_channel_sets_the_new_quantity_everywhere(shops, django_capture_on_commit_callbacks):
    items = list_everywhere(shops, "JUG", 3)
    (seller, seller_shop), (other, other_shop) = shops
    seller_shop.set_available(items[seller.slug], 2)  # Shopify counted its own sale already
    with django_capture_on_commit_callbacks(execute=True):
        sale(seller, "JUG")
    assert other_shop.available(items[other.slug]) == 2
    assert seller_shop.available(items[seller.slug]) == 2
    [[sent]] = pushed_quantities(other_shop)
    assert sent["quantity"] == 2
    assert sent["changeFromQuantity"] == 3  # the last value we knew the channel held
    listing = ChannelListing.objects.get(channel=other)
    assert (listing.last_pushed_quantity, listing.push_pending) == (2, False)
    assert not StockChange.objects.exists()


def test_a_stale_compare_is_reread_and_retried(shops, django_capture_on_commit_callbacks):
    items = list_everywhere(shops, "BOWL", 5)
    channel, emulator = shops[1]
    emulator.set_available(items[channel.slug], 9)  # someone changed it on Shopify
    with django_capture_on_commit_callbacks(execute=True):
        stock_adjust(variant=stocked("BOWL", 0), location=location(), delta=-1, note="broken", actor=None)
    assert emulator.available(items[channel.slug]) == 4
    assert len(pushed_quantities(emulator)) >= 2  # the first was refused as stale, then re-read and set


def test_batches_of_250_with_zero_stock_changes_first(shops):
    channel, emulator = shops[0]
    main = location()
    for n in range(300):
        list_everywhere([shops[0]], f"SKU-{n:03d}", 2)
    ChannelListing.objects.filter(channel=channel).update(push_pending=True, pending_since=timezone.now())
    last = ChannelListing.objects.filter(channel=channel).order_by("-pk")[0]
    stock_adjust(variant=last.variant, location=main, delta=-2, note="sold out at the fair", actor=None)
    fanout_collect()
    report = channel_push_stock(channel=channel)
    assert (report.calls, report.pushed, report.failed) == (2, 300, 0)
    first_batch, second_batch = pushed_quantities(emulator)
    assert len(first_batch) == 250
    assert len(second_batch) == 50
    assert first_batch[0]["inventoryItemId"] == last.external_id  # the sold-out SKU went first
    assert first_batch[0]["quantity"] == 0


def test_a_change_left_by_a_pusher_that_found_the_lock_taken_is_pushed_by_the_holder(shops):
    """The race of two fan-out jobs: the holder has just found nothing more to push, and before it lets go of
    the channel's lock another job marks a listing pending and finds the lock taken. The holder must look
    again once it lets go, or that change waits for the next sale."""
    channel, emulator = shops[0]
    first = list_everywhere([shops[0]], "PLATE-A", 4)[channel.slug]
    second = list_everywhere([shops[0]], "PLATE-B", 4)[channel.slug]
    stock_adjust(variant=stocked("PLATE-A", 0), location=location(), delta=-1, note="chipped", actor=None)
    fanout_collect()
    seen: dict[str, int | bool | None] = {"pending_selects": 0, "skipped": None}

    def other_job_in_the_window(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith("SELECT") and "push_pending" in sql and "ORDER BY" in sql and seen["skipped"] is None:
            seen["pending_selects"] = int(seen["pending_selects"] or 0) + 1
            if seen["pending_selects"] == 2:  # the holder's look that finds nothing more, the lock still held
                seen["skipped"] = False
                stock_adjust(variant=stocked("PLATE-B", 0), location=location(), delta=-4, note="sold", actor=None)
                fanout_collect()
                seen["skipped"] = channel_push_stock(channel=channel).skipped_locked
        return result

    with connection.execute_wrapper(other_job_in_the_window):
        report = channel_push_stock(channel=channel)

    assert seen["skipped"] is True
    assert (emulator.available(first), emulator.available(second)) == (3, 0)
    assert report.pushed == 2
    assert not ChannelListing.objects.filter(push_pending=True).exists()


def test_throttled_pushes_wait_and_go_through(shops):
    items = list_everywhere(shops, "VASE", 4)
    channel, emulator = shops[0]
    ChannelListing.objects.filter(channel=channel).update(push_pending=True)
    emulator.force_throttled(2)
    report = channel_push_stock(channel=channel)
    assert report.pushed == 1
    assert emulator.available(items[channel.slug]) == 4


def test_a_failing_channel_keeps_its_listings_pending_with_the_error(shops, settings):
    list_everywhere(shops, "CUP", 4)
    channel, emulator = shops[0]
    ChannelListing.objects.filter(channel=channel).update(push_pending=True)
    emulator.fail_next(status=503, count=20)
    result = stock_fanout()
    assert type(result).__name__ == "Retry"
    listing = ChannelListing.objects.get(channel=channel)
    assert listing.push_pending
    assert listing.push_failures == 1
    assert "503" in listing.last_error, listing.last_error


def test_our_own_echo_is_ignored_and_drift_is_recorded_after_the_grace(shops):
    items = list_everywhere(shops, "LAMP", 6)
    channel, _ = shops[0]
    stock = ChannelStock(external_ids={"inventory_item_id": items[channel.slug]}, sku="LAMP", quantity=6)
    assert stock_level_reported(channel=channel, stock=stock) == "echo"
    drifted = ChannelStock(external_ids={"inventory_item_id": items[channel.slug]}, sku="LAMP", quantity=11)
    assert stock_level_reported(channel=channel, stock=drifted) == "noted"
    assert stock_drift_sweep() == 0  # within the grace: an order may be on its way
    assert stock_drift_sweep(now=timezone.now() + timedelta(minutes=5)) == 1
    mismatch = StockMismatch.objects.get()
    assert (mismatch.kind, mismatch.channel_quantity, mismatch.master_quantity) == (MismatchKind.QUANTITY_DRIFT, 11, 6)
    assert Alert.objects.filter(kind="stock.drift", channel=channel).exists()
    assert stock_drift_sweep(now=timezone.now() + timedelta(minutes=6)) == 0  # recorded once


def test_the_drift_sweep_reads_recent_reports_in_a_fixed_number_of_queries(
    shops, settings, django_assert_max_num_queries
):
    channel, _ = shops[0]
    skus = [f"MUG-{n}" for n in range(6)]
    for sku in skus:
        list_everywhere(shops, sku, 3)
    # Every listing on the first shop reported 9 where we pushed 3: six drifts, recorded by the first sweep.
    ChannelListing.objects.filter(channel=channel).update(last_seen_quantity=9, last_seen_at=timezone.now())
    later = timezone.now() + timedelta(minutes=5)
    assert stock_drift_sweep(now=later) == 6

    # Known drifts are left out by the query itself: the second sweep costs the same whatever their number.
    with django_assert_max_num_queries(1):
        assert stock_drift_sweep(now=later + timedelta(minutes=1)) == 0

    # A report older than the look-back is the scheduled reconciliation's to find, not the sweep's.
    StockMismatch.objects.update(resolution=StockMismatch.Resolution.DISMISSED)
    long_after = later + timedelta(seconds=settings.STOCK_DRIFT_LOOKBACK_SECONDS + 60)
    assert stock_drift_sweep(now=long_after) == 0
    assert stock_drift_sweep(now=later + timedelta(minutes=2)) == 6


def test_a_sale_counted_by_the_channel_first_is_not_drift(shops, django_capture_on_commit_callbacks):
    items = list_everywhere(shops, "RUG", 2)
    channel, _ = shops[0]
    counted = ChannelStock(external_ids={"inventory_item_id": items[channel.slug]}, sku="RUG", quantity=1)
    assert stock_level_reported(channel=channel, stock=counted) == "noted"
    with django_capture_on_commit_callbacks(execute=True):
        sale(channel, "RUG")  # the order arrives after the channel's own count
    assert stock_drift_sweep(now=timezone.now() + timedelta(minutes=5)) == 0
    assert not StockMismatch.objects.exists()


def test_drift_policy_correct_pushes_the_master_back(shops, django_capture_on_commit_callbacks):
    items = list_everywhere(shops, "TRAY", 5)
    channel, emulator = shops[0]
    channel.stock_drift_policy = DriftPolicy.CORRECT
    channel.save()
    emulator.set_available(items[channel.slug], 40)
    drifted = ChannelStock(external_ids={"inventory_item_id": items[channel.slug]}, sku="TRAY", quantity=40)
    stock_level_reported(channel=channel, stock=drifted)
    with django_capture_on_commit_callbacks(execute=True):
        assert stock_drift_sweep(now=timezone.now() + timedelta(minutes=5)) == 1
    assert emulator.available(items[channel.slug]) == 5
    assert StockMismatch.objects.get().resolution == StockMismatch.Resolution.CORRECTED


def test_receiving_stock_reaches_the_channels(shops, django_capture_on_commit_callbacks):
    items = list_everywhere(shops, "PLATE", 0)
    with django_capture_on_commit_callbacks(execute=True):
        stock_receive(variant=stocked("PLATE", 0), location=location(), quantity=7, actor=None)
    assert [e.available(items[c.slug]) for c, e in shops] == [7, 7]

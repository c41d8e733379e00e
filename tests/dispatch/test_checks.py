"""Stuck-order checks through the real intake, packing and carrier emulator; time moves through `now=`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from carriers.base import TrackingStatus
from channels_adapters.base import ChannelLine
from dispatch.services_checks import StuckKind, needs_attention, stuck_key, stuck_orders_check
from dispatch.services_tracking import tracking_poll
from dispatch.views_attention import needs_attention_list
from oms.core.models import Alert
from oms.orders.models import HoldReason, OrderStatus
from oms.orders.services import order_cancel, order_release
from tests.dispatch.test_tracking import numbers, ship, shop_channel, usps_account
from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.usps import USPSEmulator
from tests.factories import ingested_order, staff_user

pytestmark = pytest.mark.django_db


def unknown_sku_line() -> ChannelLine:
    return ChannelLine(external_id="x-1", sku="NOT-IN-CATALOG", title="Mystery", quantity=1, unit_price=Decimal(9))


@pytest.fixture
def shopify() -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator() as running:
        yield running


@pytest.fixture
def usps() -> Iterator[USPSEmulator]:
    running = USPSEmulator()
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_an_order_past_its_ship_by_date_is_raised_once_and_resolved_when_it_clears(channel):
    today = timezone.localdate()
    late = ingested_order(channel, ship_by=today)
    ingested_order(channel, ship_by=today + timedelta(days=5))
    ingested_order(channel, ship_by=today - timedelta(days=1), payment_status="pending")  # not paid: not ours
    now = timezone.now()
    assert needs_attention(now=now) == []

    later = now + timedelta(days=2)
    [row] = needs_attention(now=later)
    assert (row.kind, row.order_id, row.order_number) == (StuckKind.LATE, late.pk, late.number)
    assert "2 days late" in row.detail
    result = stuck_orders_check(now=later)
    assert (result.stuck, result.raised, result.resolved) == (1, 1, 0)
    alert = Alert.objects.get(dedupe_key=stuck_key(StuckKind.LATE, late.pk))
    assert alert.kind == "stuck.late"
    assert alert.channel_id == channel.pk
    assert alert.link == reverse("orders:order-detail", args=[late.pk])
    summary = Alert.objects.get(kind="stuck.summary")
    assert late.number not in summary.message  # the summary belongs to no channel: counts only
    assert "1 not shipped by its ship-by date" in summary.message

    again = stuck_orders_check(now=later + timedelta(hours=1))
    assert (again.stuck, again.raised, again.resolved) == (1, 0, 0)
    alert.refresh_from_db()
    assert alert.occurrences == 1  # left alone, not bumped back to unread every hour

    order_cancel(order=late, actor=None, reason="customer cancelled")
    cleared = stuck_orders_check(now=later + timedelta(hours=2))
    assert (cleared.stuck, cleared.resolved) == (0, 1)
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_an_order_on_hold_too_long_is_raised_and_resolved_on_release(channel):
    held = ingested_order(channel, stock=False, lines=(unknown_sku_line(),))
    assert held.status == OrderStatus.ON_HOLD
    now = timezone.now()
    assert stuck_orders_check(now=now + timedelta(days=settings.STUCK_ON_HOLD_DAYS - 1)).stuck == 0

    later = now + timedelta(days=settings.STUCK_ON_HOLD_DAYS, hours=1)
    [row] = needs_attention(now=later)
    assert (row.kind, row.order_id) == (StuckKind.ON_HOLD, held.pk)
    assert HoldReason.UNKNOWN_SKU.label in row.detail
    assert stuck_orders_check(now=later).raised == 1
    assert Alert.objects.filter(dedupe_key=stuck_key(StuckKind.ON_HOLD, held.pk), resolved_at__isnull=True).exists()

    manager = staff_user("Manager", all_channels=True)
    order_release(order=held, actor=manager, note="sold as a custom item")
    assert stuck_orders_check(now=later).resolved == 1
    assert not Alert.objects.filter(kind="stuck.on_hold", resolved_at__isnull=True).exists()


def test_a_parcel_without_tracking_movement_is_raised_until_it_is_delivered(shopify, usps):
    shop = shop_channel(shopify)
    account = usps_account(usps)
    shipment = ship(shop, shopify, account)
    now = timezone.now()
    quiet = now + timedelta(days=settings.STUCK_NO_MOVEMENT_DAYS, hours=1)
    assert needs_attention(now=now) == []

    [row] = needs_attention(now=quiet)  # no tracking event yet: counted from the purchase
    assert (row.kind, row.order_id, row.shipment_id) == (StuckKind.NO_MOVEMENT, shipment.order_id, shipment.pk)
    assert "no tracking event since" in row.detail
    tracking_poll(now=now)  # the carrier reports the label created: still no movement days later
    [row] = needs_attention(now=quiet + timedelta(hours=12))
    assert "last tracking event" in row.detail
    assert stuck_orders_check(now=quiet + timedelta(hours=12)).raised == 1

    usps.advance(numbers(shipment)[0], TrackingStatus.DELIVERED)
    tracking_poll(now=now + timedelta(hours=2))
    result = stuck_orders_check(now=quiet + timedelta(days=1))
    assert (result.stuck, result.resolved) == (0, 1)


def test_needs_attention_is_scoped_to_channels_and_the_page_shows_a_managers_own(channel, other_channel, rf):
    today = timezone.localdate()
    ours = ingested_order(channel, ship_by=today - timedelta(days=3))
    theirs = ingested_order(other_channel, ship_by=today - timedelta(days=1))
    rows = needs_attention()
    assert [r.order_id for r in rows] == [ours.pk, theirs.pk]  # longest stuck first
    assert [r.order_id for r in needs_attention(channel_ids=[other_channel.pk])] == [theirs.pk]
    assert needs_attention(kinds=[StuckKind.ON_HOLD]) == []

    manager = staff_user("Manager", channels=[channel])
    response = _get(rf, manager)
    assert response.status_code == 200
    page = response.content.decode()
    assert ours.number in page
    assert theirs.number not in page
    assert '<td class="num">3</td>' in page  # days late
    empty = _get(rf, manager, kind="on_hold").content.decode()
    assert "Nothing is stuck of this kind" in empty


def _get(rf: RequestFactory, user, **query):
    request = rf.get("/dispatch/attention/", query)
    request.user = user
    return needs_attention_list(request)


def test_needs_attention_reads_only_the_longest_stuck(channel):
    today = timezone.localdate()
    for days in (9, 3, 6, 2):
        ingested_order(channel, number=f"#LATE-{days}", ship_by=today - timedelta(days=days))
    with CaptureQueriesContext(connection) as queries:
        rows = needs_attention(limit=2)
    assert [row.order_number for row in rows] == ["#LATE-9", "#LATE-6"]
    late_reads = [q["sql"] for q in queries if "orders_order" in q["sql"] and "ship_by" in q["sql"]]
    assert late_reads
    assert all("LIMIT 2" in sql for sql in late_reads)

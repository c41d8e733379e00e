"""Intake allocates stock: short stock and unknown SKUs hold the order with an alert; cancel releases; ship
consumes; changed lines re-allocate."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail

from channels_adapters.base import ChannelLine
from inventory.models import Allocation, StockLevel
from inventory.services import stock_receive
from oms.core.models import Alert
from oms.orders.models import HoldReason, OrderStatus
from oms.orders.services import order_allocate, order_cancel, order_ingest, order_transition, stock_reference
from tests.factories import channel_order, location, staff_user, stocked, variant
from tests.inventory.test_services import assert_ledger_matches_levels

pytestmark = pytest.mark.django_db


def line(sku: str, quantity: int = 1, ext: str = "1") -> ChannelLine:
    return ChannelLine(external_id=ext, sku=sku, title=sku.title(), quantity=quantity, unit_price=Decimal("10"))


def open_holds(order) -> set[str]:
    return set(order.holds.filter(released_at__isnull=True).values_list("reason", flat=True))


def test_an_order_with_stock_is_allocated_and_ready(channel):
    v = stocked("JUG", 3)
    order = order_ingest(channel=channel, co=channel_order(lines=(line("JUG", 2),)), source="test").order
    assert order.status == OrderStatus.READY
    assert StockLevel.objects.get(variant=v).allocated == 2
    assert Allocation.objects.get().reference == stock_reference(order)
    assert_ledger_matches_levels()


def test_short_stock_holds_with_an_alert_e_mailed_to_managers_and_a_delivery_releases_it(
    channel, django_capture_on_commit_callbacks
):
    staff_user("Manager", all_channels=True, username="boss").__class__.objects.filter(username="boss").update(
        email="boss@example.com"
    )
    v = stocked("RARE", 1)
    co = channel_order(lines=(line("RARE", 2),))
    with django_capture_on_commit_callbacks(execute=True):
        order = order_ingest(channel=channel, co=co, source="test").order
    assert order.status == OrderStatus.ON_HOLD
    assert open_holds(order) == {HoldReason.INSUFFICIENT_STOCK}
    assert StockLevel.objects.get(variant=v).allocated == 0  # whole lines only: the one unit stays free
    alert = Alert.objects.get(kind="order.hold")
    assert "RARE: 2 wanted, 0 allocated" in alert.message
    assert alert.link == f"/orders/{order.pk}/"
    assert [m.to for m in mail.outbox] == [["boss@example.com"]]

    stock_receive(variant=v, location=location(), quantity=1, actor=None)
    order = order_allocate(order=order)
    assert order.status == OrderStatus.READY
    assert open_holds(order) == set()
    assert Alert.objects.get(pk=alert.pk).resolved_at is not None
    assert StockLevel.objects.get(variant=v).allocated == 2
    assert_ledger_matches_levels()


def test_a_sku_not_in_the_catalog_holds_as_unknown(channel):
    order = order_ingest(channel=channel, co=channel_order(lines=(line("GHOST"),)), source="test").order
    assert open_holds(order) == {HoldReason.UNKNOWN_SKU}
    assert "not in the catalog: GHOST" in order.holds.get().note
    variant("GHOST")
    stocked("GHOST", 4)
    assert order_allocate(order=order).status == OrderStatus.READY


def test_cancel_releases_and_shipping_consumes(channel):
    v = stocked("PLATE", 5)
    first = order_ingest(channel=channel, co=channel_order(lines=(line("PLATE", 2),)), source="test").order
    second = order_ingest(channel=channel, co=channel_order(lines=(line("PLATE", 3),)), source="test").order
    assert StockLevel.objects.get(variant=v).allocated == 5
    order_cancel(order=first, actor=None, reason="customer changed their mind")
    assert StockLevel.objects.get(variant=v).allocated == 3
    for status in (OrderStatus.PICKING, OrderStatus.PACKED, OrderStatus.SHIPPED):
        order_transition(order=second, to=status, actor=None)
    level = StockLevel.objects.get(variant=v)
    assert (level.on_hand, level.allocated) == (2, 0)
    assert not Allocation.objects.exists()
    assert_ledger_matches_levels()


def test_changed_lines_on_the_channel_reallocate(channel):
    a, b = stocked("AAA", 5), stocked("BBB", 5)
    co = channel_order(lines=(line("AAA", 2, "x"),))
    order = order_ingest(channel=channel, co=co, source="test").order
    changed = channel_order(
        external_id=co.external_id,
        number=co.number,
        placed_at=co.placed_at,
        updated_at=co.updated_at.replace(year=co.updated_at.year + 1),
        lines=(line("AAA", 1, "x"), line("BBB", 3, "y")),
    )
    order_ingest(channel=channel, co=changed, source="test")
    assert StockLevel.objects.get(variant=a).allocated == 1
    assert StockLevel.objects.get(variant=b).allocated == 3
    order.refresh_from_db()
    assert order.status == OrderStatus.READY
    assert_ledger_matches_levels()


def test_a_cancelled_order_from_the_channel_allocates_nothing(channel):
    from django.utils import timezone

    v = stocked("DISH", 2)
    order_ingest(
        channel=channel, co=channel_order(lines=(line("DISH", 2),), cancelled_at=timezone.now()), source="test"
    )
    assert StockLevel.objects.get(variant=v).allocated == 0

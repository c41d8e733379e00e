"""Races for the last units on a real server database: never an oversell, and the ledger stays equal to levels."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from channels_adapters.base import ChannelLine
from inventory.models import Allocation, StockLevel
from inventory.services import LineRequest, stock_allocate, stock_release
from oms.orders.models import HoldReason, Order, OrderHold, OrderStatus
from oms.orders.services import order_ingest
from tests.factories import channel_order, location, sales_channel, stocked
from tests.inventory.test_services import assert_ledger_matches_levels

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.server]


def race(count, target):
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i):
        try:
            barrier.wait(timeout=20)
            target(i)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def test_fifty_buyers_on_three_channels_race_for_the_last_five_units(needs_server_db):
    stocked("LAST-FIVE", 3, at=location("main", priority=1))
    stocked("LAST-FIVE", 2, at=location("annex", priority=2))
    channels = [sales_channel(slug=f"race-{n}") for n in range(3)]
    orders = [
        channel_order(
            lines=(ChannelLine(external_id=f"l{i}", sku="LAST-FIVE", title="Last", quantity=1, unit_price=Decimal(9)),)
        )
        for i in range(50)
    ]
    errors = race(50, lambda i: order_ingest(channel=channels[i % 3], co=orders[i], source="race"))
    assert errors == []
    assert Order.objects.count() == 50
    assert Order.objects.filter(status=OrderStatus.READY).count() == 5
    held = OrderHold.objects.filter(reason=HoldReason.INSUFFICIENT_STOCK, released_at__isnull=True)
    assert held.count() == 45
    assert Order.objects.filter(status=OrderStatus.ON_HOLD).count() == 45
    assert sum(Allocation.objects.values_list("quantity", flat=True)) == 5
    assert all(level.allocated == level.on_hand for level in StockLevel.objects.all())
    assert_ledger_matches_levels()


def test_allocations_and_releases_interleaving_keep_the_invariants(needs_server_db):
    stocked("HOT", 10)

    def work(i):
        for round_ in range(5):
            reference = f"order:{i}-{round_}"
            stock_allocate(reference=reference, lines=[LineRequest(line="1", sku="HOT", quantity=1 + i % 3)])
            if round_ % 2 == 0:
                stock_release(reference=reference)

    assert race(12, work) == []
    level = StockLevel.objects.get()
    assert 0 <= level.allocated <= level.on_hand == 10
    assert_ledger_matches_levels()

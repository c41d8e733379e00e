"""Races on a real server database: however deliveries interleave, an order is stored exactly once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from channels_adapters.base import PaymentStatus
from oms.orders.models import Customer, Order, OrderLine
from oms.orders.services import order_ingest
from tests.factories import channel_order, sales_channel, shop_catalog

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.server]


def race(workers, target):
    barrier = threading.Barrier(len(workers))
    errors = []

    def run(arg):
        try:
            barrier.wait(timeout=10)
            target(arg)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def test_eight_concurrent_ingests_of_one_order_store_it_once(needs_server_db):
    channel = sales_channel(slug="race-shop")
    for _ in range(5):
        co = channel_order()
        errors = race(range(8), lambda _, co=co: order_ingest(channel=channel, co=co, source="race"))
        assert errors == []
        assert Order.objects.filter(channel=channel, external_id=co.external_id).count() == 1
        order = Order.objects.get(channel=channel, external_id=co.external_id)
        assert OrderLine.objects.filter(order=order).count() == 2
        assert Customer.objects.filter(email=co.email).count() == 1


def test_create_and_paid_racing_end_paid(needs_server_db):
    shop_catalog()  # the flush took the catalog: without it the orders would wait on unknown SKUs
    channel = sales_channel(slug="race-shop-2")
    for _ in range(5):
        created = channel_order(payment_status=PaymentStatus.PENDING)
        paid = channel_order(
            external_id=created.external_id,
            number=created.number,
            lines=created.lines,
            email=created.email,
            customer=created.customer,
            payment_status=PaymentStatus.PAID,
            updated_at=created.updated_at + timedelta(seconds=30),
        )
        errors = race([created, paid, created, paid], lambda co: order_ingest(channel=channel, co=co, source="race"))
        assert errors == []
        order = Order.objects.get(channel=channel, external_id=created.external_id)
        # Whichever arrived last, the newer payload wins.
        assert order.payment_status == "paid"
        assert order.status == "ready"
        assert order.channel_updated_at == paid.updated_at

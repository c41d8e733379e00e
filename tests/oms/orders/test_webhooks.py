"""POST /webhooks/<slug>/ through the real view, with deliveries signed exactly as Shopify signs them."""

import json
import threading
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client, TestCase

from oms.core.models import InboundEvent
from oms.orders.models import Order, OrderStatus
from tests.emulators.shopify import order_payload, webhook_delivery
from tests.factories import PREVIOUS_SECRET, WEBHOOK_SECRET, sales_channel

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "shopify"


def post(client, slug, headers, body):
    """Post as Shopify does; what the view enqueues after commit then runs inline, as on the embedded default."""
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(f"/webhooks/{slug}/", data=body, content_type="application/json", headers=headers)


def deliver(client, channel, topic, payload, *, secret=WEBHOOK_SECRET, event_id=None):
    headers, body = webhook_delivery(
        topic, payload, secret, shop_domain=channel.options["shop_domain"], event_id=event_id
    )
    return post(client, channel.slug, headers, body)


@pytest.mark.django_db
def test_genuine_delivery_is_acknowledged_and_becomes_an_order(client, channel):
    payload = order_payload(id=820982911946154508, name="#9999", email="Jon@Example.com")
    response = deliver(client, channel, "orders/create", payload)
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.PROCESSED
    assert event.event_key.startswith("orders/create:")
    order = Order.objects.get(channel=channel, external_id="820982911946154508")
    assert order.number == "#9999"
    assert order.email == "jon@example.com"
    assert order.lines.count() == len(payload["line_items"])


@pytest.mark.django_db
def test_same_delivery_ten_times_is_one_order(client, channel):
    payload = order_payload()
    headers, body = webhook_delivery(
        "orders/create", payload, WEBHOOK_SECRET, shop_domain=channel.options["shop_domain"]
    )
    answers = [post(client, channel.slug, headers, body) for _ in range(10)]
    assert [a.status_code for a in answers] == [200] * 10
    assert [a.json()["status"] for a in answers] == ["accepted"] + ["duplicate"] * 9
    assert InboundEvent.objects.count() == 1
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_redelivery_with_a_new_delivery_id_is_a_duplicate(client, channel):
    payload = order_payload()
    first = deliver(client, channel, "orders/create", payload, event_id="evt-1")
    again = deliver(client, channel, "orders/create", payload, event_id="evt-1")
    assert first.json()["status"] == "accepted"
    assert again.json()["status"] == "duplicate"
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_bad_signature_is_401_and_stores_nothing(client, channel):
    response = deliver(client, channel, "orders/create", order_payload(), secret="not-the-secret")
    assert response.status_code == 401
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db
def test_tampered_body_is_401(client, channel):
    headers, body = webhook_delivery(
        "orders/create", order_payload(), WEBHOOK_SECRET, shop_domain=channel.options["shop_domain"]
    )
    assert post(client, channel.slug, headers, body.replace(b'"USD"', b'"EUR"')).status_code == 401


@pytest.mark.django_db
def test_missing_signature_is_401(client, channel):
    headers, body = webhook_delivery(
        "orders/create", order_payload(), WEBHOOK_SECRET, shop_domain=channel.options["shop_domain"]
    )
    headers.pop("X-Shopify-Hmac-Sha256")
    assert post(client, channel.slug, headers, body).status_code == 401


@pytest.mark.django_db
def test_previous_secret_is_accepted_during_rotation_only(client):
    from oms.core.services import channel_end_secret_rotation

    channel = sales_channel(slug="rotating", webhook_secret=WEBHOOK_SECRET, webhook_secret_previous=PREVIOUS_SECRET)
    assert deliver(client, channel, "orders/create", order_payload(), secret=PREVIOUS_SECRET).status_code == 200
    assert deliver(client, channel, "orders/create", order_payload(), secret=WEBHOOK_SECRET).status_code == 200
    channel_end_secret_rotation(channel=channel, actor=None)
    assert deliver(client, channel, "orders/create", order_payload(), secret=PREVIOUS_SECRET).status_code == 401


@pytest.mark.django_db
def test_unknown_or_inactive_channel_is_404(client, channel):
    headers, body = webhook_delivery(
        "orders/create", order_payload(), WEBHOOK_SECRET, shop_domain=channel.options["shop_domain"]
    )
    assert post(client, "no-such-shop", headers, body).status_code == 404
    channel.active = False
    channel.save()
    assert post(client, channel.slug, headers, body).status_code == 404


@pytest.mark.django_db
def test_oversized_body_is_413_and_stores_nothing(client, channel):
    payload = order_payload(note="x" * (1024 * 1024))
    response = deliver(client, channel, "orders/create", payload)
    assert response.status_code == 413
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db
def test_malformed_json_with_a_valid_signature_is_400(client, channel):
    headers, _ = webhook_delivery(
        "orders/create", order_payload(), WEBHOOK_SECRET, shop_domain=channel.options["shop_domain"]
    )
    from tests.emulators.shopify import sign

    body = b'{"id": 1, "line_items": ['
    headers["X-Shopify-Hmac-Sha256"] = sign(body, WEBHOOK_SECRET)
    response = post(client, channel.slug, headers, body)
    assert response.status_code == 400
    assert "malformed" in response.json()["error"]
    assert not InboundEvent.objects.exists()


@pytest.mark.django_db
def test_get_is_not_allowed(client, channel):
    assert client.get(f"/webhooks/{channel.slug}/").status_code == 405


@pytest.mark.django_db
def test_signed_payload_that_cannot_be_mapped_is_kept_as_failed(client, channel):
    payload = order_payload()
    del payload["line_items"]
    response = deliver(client, channel, "orders/create", payload)
    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.FAILED
    assert "line_items" in event.last_error
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_out_of_order_updates_keep_the_newest(client, channel):
    created = order_payload(updated_at="2026-11-20T10:00:00-05:00", financial_status="pending")
    paid = {**created, "financial_status": "paid", "updated_at": "2026-11-20T10:05:00-05:00"}
    assert deliver(client, channel, "orders/paid", paid).status_code == 200
    assert deliver(client, channel, "orders/create", created).status_code == 200
    order = Order.objects.get()
    assert order.payment_status == "paid"
    assert order.status == OrderStatus.READY


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fixture", "topic", "expected_event_status"),
    [
        ("orders_create.json", "orders/create", "processed"),
        ("orders_updated.json", "orders/updated", "processed"),
        ("orders_paid.json", "orders/paid", "processed"),
        ("orders_cancelled.json", "orders/cancelled", "processed"),
        ("refunds_create.json", "refunds/create", "deferred"),
        ("orders_create_digital.json", "orders/create", "processed"),
        ("orders_create_eur.json", "orders/create", "processed"),
        ("orders_create_cod.json", "orders/create", "processed"),
    ],
)
def test_each_fixture_through_the_real_view(client, channel, fixture, topic, expected_event_status):
    payload = json.loads((FIXTURES / fixture).read_text())
    response = deliver(client, channel, topic, payload)
    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert event.status == expected_event_status, event.last_error
    if expected_event_status == "processed":
        order = Order.objects.get(channel=channel, external_id=str(payload["id"]))
        if topic == "orders/cancelled":
            assert order.status == OrderStatus.CANCELLED
        if fixture == "orders_create_cod.json":
            assert order.payment_status == "cod"
            assert order.status in (OrderStatus.READY, OrderStatus.ON_HOLD)
        if fixture == "orders_create_eur.json":
            assert order.currency == "EUR"


@pytest.mark.django_db
def test_redis_down_still_acknowledges_and_the_sweeper_recovers(client, channel, settings):
    from datetime import timedelta

    from django.utils import timezone

    from oms.orders.services import inbox_sweep

    settings.OMS_JOBS_INLINE = False
    settings.RQ_QUEUES = {name: {"URL": "redis://127.0.0.1:1/0"} for name in ("high", "default", "low")}
    response = deliver(client, channel, "orders/create", order_payload())
    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert event.status == InboundEvent.Status.PENDING
    assert not Order.objects.exists()

    settings.OMS_JOBS_INLINE = True  # Redis is back (inline here)
    assert inbox_sweep() == 0  # not waited long enough yet
    InboundEvent.objects.filter(pk=event.pk).update(enqueued_at=timezone.now() - timedelta(minutes=10))
    assert inbox_sweep() == 1
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.PROCESSED
    assert Order.objects.count() == 1


@pytest.mark.django_db
def test_real_redis_queue_and_worker(client, channel, settings, redis_url):
    import django_rq
    from rq import SimpleWorker

    url = redis_url.rsplit("/", 1)[0] + "/14"
    settings.OMS_JOBS_INLINE = False
    settings.RQ_QUEUES = {name: {"URL": url} for name in ("high", "default", "low")}
    queue = django_rq.get_queue("default")
    queue.connection.flushdb()
    for n in range(3):
        assert deliver(client, channel, "orders/create", order_payload(id=8_800 + n)).status_code == 200
    assert queue.count == 1  # one drainer for the three deliveries
    assert not Order.objects.exists()
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert Order.objects.count() == 3
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {InboundEvent.Status.PROCESSED}
    queue.connection.flushdb()


@pytest.mark.django_db(transaction=True)
@pytest.mark.server
def test_two_deliveries_of_one_order_racing_store_it_once(needs_server_db):
    channel = sales_channel(slug="race-hooks")
    for round_ in range(4):
        payload = order_payload(id=5_550_000 + round_)
        paid = {**payload, "financial_status": "paid"}
        deliveries = [
            webhook_delivery("orders/create", payload, WEBHOOK_SECRET, shop_domain=channel.options["shop_domain"]),
            webhook_delivery("orders/paid", paid, WEBHOOK_SECRET, shop_domain=channel.options["shop_domain"]),
        ]
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def send(headers, body, barrier=barrier, statuses=statuses):
            try:
                barrier.wait(timeout=10)
                statuses.append(post(Client(), channel.slug, headers, body).status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=send, args=d) for d in deliveries]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert statuses == [200, 200]
        assert Order.objects.filter(channel=channel, external_id=str(payload["id"])).count() == 1
    assert InboundEvent.objects.filter(status="processed").count() == 8


@pytest.mark.django_db
def test_inventory_webhooks_are_recognised_as_echo_or_noted(client, channel):
    from inventory.models import ChannelListing, Variant

    payload = json.loads((FIXTURES / "inventory_levels_update.json").read_text())
    listing = ChannelListing.objects.create(
        channel=channel,
        variant=Variant.objects.get(sku="MUG-BLUE"),
        external_id="gid://shopify/InventoryItem/47393211465814",
        last_pushed_quantity=7,
    )
    assert deliver(client, channel, "inventory_levels/update", payload, event_id="inv-1").status_code == 200
    assert InboundEvent.objects.get(event_key__contains="inv-1").status == InboundEvent.Status.PROCESSED
    listing.refresh_from_db()
    assert listing.last_seen_quantity == 7  # our own value: an echo

    drifted = {**payload, "available": 3}
    assert deliver(client, channel, "inventory_levels/update", drifted, event_id="inv-2").status_code == 200
    listing.refresh_from_db()
    assert listing.last_seen_quantity == 3  # noted for the drift sweep

    unknown = {**payload, "inventory_item_id": 1}
    assert deliver(client, channel, "inventory_levels/update", unknown, event_id="inv-3").status_code == 200
    assert InboundEvent.objects.get(event_key__contains="inv-3").status == InboundEvent.Status.IGNORED

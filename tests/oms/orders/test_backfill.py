"""Backfill over real HTTP against the Shopify emulator: cursor, pages, logging, and healing missed webhooks."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from inventory.channels import channel_configure
from oms.core.models import SalesChannel
from oms.orders.models import Order, SyncRun
from oms.orders.services import backfills_due, channel_sync_orders
from tests.emulators.shopify import ShopifyEmulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    # A generous bucket keeps the tests quick; throttling itself is covered in tests/channels_adapters.
    with ShopifyEmulator(restore_rate=100_000, maximum_available=100_000) as emulator:
        yield emulator


@pytest.fixture
def shop_channel(shop):
    channel, _ = channel_configure(
        kind="shopify",
        slug="emu-shop",
        name="Emulated shop",
        options={
            "shop_domain": shop.shop_domain,
            "access_token": shop.access_token,
            "webhook_secret": "s",
            "api_base_url": shop.base_url,
        },
    )
    return channel


def seed(shop, n, start=None):
    start = start or datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    return [
        shop.add_order(updated_at=start + timedelta(minutes=i), created_at=start + timedelta(minutes=i))
        for i in range(n)
    ]


def test_first_backfill_pulls_every_order_once_and_logs_the_run(shop, shop_channel):
    seed(shop, 25)
    run = channel_sync_orders(channel=shop_channel, trigger="test")
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.records == 25
    assert run.created == 25
    assert run.pages >= 3  # ten orders a page
    assert run.api_calls >= run.pages
    assert run.finished_at is not None
    assert Order.objects.filter(channel=shop_channel).count() == 25
    shop_channel.refresh_from_db()
    assert shop_channel.orders_synced_until == max(o.channel_updated_at for o in Order.objects.all())
    # The adapter asked for the pinned API version with the store's token.
    request = shop.graphql_requests[0]
    assert "/admin/api/2026-07/graphql.json" in request.path
    assert request.headers.get("X-Shopify-Access-Token") == shop.access_token


def test_next_backfill_starts_from_the_cursor_and_only_updates_changes(shop, shop_channel):
    orders = seed(shop, 12)
    channel_sync_orders(channel=shop_channel, trigger="test")
    shop.update_order(orders[3]["id"], note="gift wrap please")
    shop.clear_requests()
    run = channel_sync_orders(channel=SalesChannel.objects.get(pk=shop_channel.pk), trigger="test")
    assert run.created == 0
    assert run.updated == 1
    assert run.records < 12  # the query started at the cursor (minus a short overlap), not at the beginning
    assert "updated_at:>=" in str(shop.graphql_requests[0].json)
    assert Order.objects.get(external_id=str(orders[3]["id"])).note == "gift wrap please"
    assert Order.objects.count() == 12


def test_since_overrides_the_cursor(shop, shop_channel):
    seed(shop, 5, start=datetime(2026, 10, 1, tzinfo=UTC))
    seed(shop, 5, start=datetime(2026, 11, 10, tzinfo=UTC))
    run = channel_sync_orders(channel=shop_channel, since=datetime(2026, 11, 1, tzinfo=UTC), trigger="test")
    assert run.records == 5
    assert Order.objects.count() == 5


def test_webhook_and_backfill_of_the_same_order_store_it_once(client, shop, shop_channel):
    from tests.emulators.shopify import webhook_delivery
    from tests.oms.orders.test_webhooks import post

    payload = shop.add_order()
    headers, body = webhook_delivery("orders/create", payload, "s", shop_domain=shop.shop_domain)
    assert post(client, shop_channel.slug, headers, body).status_code == 200
    run = channel_sync_orders(channel=shop_channel, trigger="test")
    assert run.records == 1
    assert run.created == 0
    assert Order.objects.count() == 1


def test_throttled_channel_is_waited_for_not_failed(shop, shop_channel):
    seed(shop, 3)
    shop.force_throttled(2)
    run = channel_sync_orders(channel=shop_channel, trigger="test")
    assert run.status == SyncRun.Status.SUCCEEDED
    assert Order.objects.count() == 3


def test_rejected_token_fails_the_run_visibly(shop, shop_channel):
    seed(shop, 2)
    channel_configure(kind="shopify", slug="emu-shop", name="Emulated shop", options={"access_token": "wrong"})
    run = channel_sync_orders(channel=SalesChannel.objects.get(slug="emu-shop"), trigger="test")
    assert run.status == SyncRun.Status.FAILED
    assert run.errors
    assert "AuthenticationFailed" in run.errors[0]
    assert not Order.objects.exists()


def test_one_bad_order_does_not_stop_the_others(shop, shop_channel):
    seed(shop, 3)
    shop.add_order(line_items=[], updated_at=datetime(2026, 11, 1, 8, 0, tzinfo=UTC))
    run = channel_sync_orders(channel=shop_channel, trigger="test")
    assert run.status == SyncRun.Status.PARTIAL
    assert run.error_count == 1
    assert Order.objects.count() == 3


def test_sync_orders_command(shop, shop_channel, capsys):
    seed(shop, 4)
    call_command("sync_orders", "emu-shop", "--since", "2026-10-01")
    out = capsys.readouterr().out
    assert "4 record(s), 4 created" in out
    assert SyncRun.objects.get().trigger == "command"


def test_sync_orders_command_rejects_bad_input(shop_channel):
    with pytest.raises(CommandError, match="no channel"):
        call_command("sync_orders", "nope")
    with pytest.raises(CommandError, match="--since takes a date"):
        call_command("sync_orders", "emu-shop", "--since", "last tuesday")


def test_sync_orders_command_fails_when_the_channel_does(shop, shop_channel):
    shop.fail_next(50, status=503)
    with pytest.raises(CommandError, match="failed"):
        call_command("sync_orders", "emu-shop")


def test_scheduler_enqueues_due_channels_only(shop, shop_channel):
    seed(shop, 2)
    assert backfills_due() == [shop_channel.pk]  # never synced: due, and (inline) synced now
    assert Order.objects.count() == 2
    assert backfills_due() == []  # just ran
    assert backfills_due(now=datetime.now(UTC) + timedelta(minutes=16)) == [shop_channel.pk]


def test_an_order_the_adapter_cannot_map_is_reported_and_the_page_goes_on(shop, shop_channel):
    seed(shop, 3)
    bad = shop.add_order(updated_at=datetime(2026, 11, 1, 8, 30, tzinfo=UTC))
    shop.update_order(
        bad["id"], created_at=None, processed_at=None, updated_at=datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    )
    run = channel_sync_orders(channel=shop_channel, trigger="test")
    assert run.status == SyncRun.Status.PARTIAL
    assert run.records == 4
    assert run.error_count == 1
    assert str(bad["id"]) in run.errors[0]
    assert Order.objects.count() == 3


def test_a_run_cut_off_earlier_is_closed_as_interrupted(shop, shop_channel):
    stale = SyncRun.objects.create(channel=shop_channel, trigger="schedule")
    seed(shop, 1)
    run = channel_sync_orders(channel=shop_channel, trigger="test")
    stale.refresh_from_db()
    assert stale.status == SyncRun.Status.FAILED
    assert stale.errors == ["interrupted before it finished"]
    assert run.status == SyncRun.Status.SUCCEEDED


def test_a_second_backfill_of_the_same_channel_is_refused_while_one_runs(shop_channel):
    from django.core.cache import cache

    from oms.orders.services import SyncAlreadyRunning

    cache.add(f"sync-orders-{shop_channel.pk}", "1")
    try:
        with pytest.raises(SyncAlreadyRunning):
            channel_sync_orders(channel=shop_channel, trigger="test")
    finally:
        cache.delete(f"sync-orders-{shop_channel.pk}")
    assert not SyncRun.objects.exists()

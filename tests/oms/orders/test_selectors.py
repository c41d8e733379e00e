"""Reads of the staff screens: channel scope, search, paging without COUNT, customers, channels and packing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_adapters.base import ChannelCustomer, ChannelLine
from oms.core.models import InboundEvent
from oms.orders import selectors
from oms.orders.models import Customer, HoldReason, SyncRun
from oms.orders.selectors import CustomerFilters, OrderFilters
from oms.orders.services import order_hold
from tests.factories import ingested_order

pytestmark = pytest.mark.django_db


def test_visible_channels_follow_global_and_per_channel_access(channel, other_channel, manager, admin_user, packer):
    assert [c.slug for c in selectors.visible_channels(manager)] == ["main-shop"]
    assert [c.slug for c in selectors.visible_channels(admin_user)] == ["eu-shop", "main-shop"]
    # Packers hold the permission through their group: every channel.
    assert len(selectors.visible_channels(packer)) == 2
    assert selectors.sees_every_channel(admin_user)
    assert not selectors.sees_every_channel(manager)


def test_order_list_is_scoped_even_when_filtering_on_a_foreign_channel(channel, other_channel, manager):
    ingested_order(channel, number="#MINE")
    ingested_order(other_channel, number="#NOT-MINE")

    mine = selectors.order_list(user=manager, filters=OrderFilters())
    forced = selectors.order_list(user=manager, filters=OrderFilters(channel_id=other_channel.pk))

    assert [o.number for o in mine] == ["#MINE"]
    assert list(forced) == []


def test_search_matches_a_sku_on_any_line_once(channel, admin_user):
    ingested_order(
        channel,
        number="#TWO-LINES",
        lines=(
            ChannelLine(external_id="1", sku="CUP-RED", title="Cup", quantity=1, unit_price=Decimal("1")),
            ChannelLine(external_id="2", sku="CUP-RED-XL", title="Cup XL", quantity=1, unit_price=Decimal("1")),
        ),
    )

    found = selectors.order_list(user=admin_user, filters=OrderFilters(q="cup-red"))

    assert [o.number for o in found] == ["#TWO-LINES"]  # no duplicate from the join


def test_order_page_fetches_one_extra_row_and_never_counts(channel, admin_user):
    for i in range(7):
        ingested_order(channel, number=f"#{i}")

    with CaptureQueriesContext(connection) as ctx:
        page = selectors.order_page(user=admin_user, filters=OrderFilters(), page=2, per_page=3)

    assert [len(page.items), page.has_next, page.has_previous] == [3, True, True]
    assert (page.start_index, page.end_index) == (4, 6)
    sql = " ".join(q["sql"] for q in ctx.captured_queries).upper()
    assert "COUNT(" not in sql
    assert "LIMIT 4 OFFSET 3" in sql


def test_order_page_prefetches_lines_and_open_holds(channel, admin_user):
    order = ingested_order(channel)
    order_hold(order=order, reason=HoldReason.MANUAL, actor=None)

    page = selectors.order_page(user=admin_user, filters=OrderFilters(), page=1, per_page=10)

    with CaptureQueriesContext(connection) as ctx:
        row = page.items[0]
        assert [h.reason for h in row.open_holds] == [HoldReason.MANUAL]  # type: ignore[attr-defined]
        assert len(row.lines.all()) == 2
        assert row.channel.name
        assert row.customer is not None
        assert row.customer.email
    assert len(ctx.captured_queries) == 0


def test_placed_dates_are_whole_days_in_local_time(channel, admin_user):
    today = timezone.localdate()
    ingested_order(channel, number="#TODAY", placed_at=timezone.now())
    ingested_order(channel, number="#OLD", placed_at=timezone.now() - timedelta(days=3))

    found = selectors.order_list(user=admin_user, filters=OrderFilters(placed_from=today, placed_to=today))

    assert [o.number for o in found] == ["#TODAY"]


def test_customers_visible_to_a_limited_manager(channel, other_channel, manager):
    ingested_order(channel, customer=ChannelCustomer(external_id="a", email="a@example.com", first_name="A"))
    ingested_order(other_channel, customer=ChannelCustomer(external_id="b", email="b@example.com", first_name="B"))
    Customer.objects.create(email="nobody@example.com", first_name="Orphan")

    rows = selectors.customer_page(user=manager, filters=CustomerFilters(), page=1, per_page=50).items

    assert [r.customer.email for r in rows] == ["a@example.com"]
    assert rows[0].order_count == 1


def test_customers_with_every_channel_include_customers_without_orders(channel, admin_user):
    Customer.objects.create(email="nobody@example.com", first_name="Orphan")

    found = selectors.customer_list(user=admin_user, filters=CustomerFilters(q="orphan"))

    assert [c.email for c in found] == ["nobody@example.com"]


def test_customer_detail_of_a_hidden_customer_raises(channel, other_channel, manager):
    hidden = ingested_order(other_channel)

    with pytest.raises(Customer.DoesNotExist):
        selectors.customer_detail(user=manager, pk=hidden.customer_id or 0)


def test_channel_overview_keeps_the_newest_runs_and_failed_events_per_channel(channel, other_channel, admin_user):
    for i in range(12):
        SyncRun.objects.create(channel=channel, trigger=f"t{i}")
    SyncRun.objects.create(channel=other_channel, trigger="only")
    for i in range(3):
        InboundEvent.objects.create(
            channel=channel, event_key=f"f{i}", topic="orders/create", body="{}", status=InboundEvent.Status.FAILED
        )
    InboundEvent.objects.create(channel=channel, event_key="p", topic="orders/create", body="{}")

    overviews = {o.channel.slug: o for o in selectors.channel_overview(user=admin_user, runs=10, failed=2)}

    main = overviews["main-shop"]
    assert [r.trigger for r in main.runs] == [f"t{i}" for i in range(11, 1, -1)]
    assert len(main.failed_events) == 2
    assert (main.failed_count, main.pending_count) == (3, 1)
    assert [r.trigger for r in overviews["eu-shop"].runs] == ["only"]


def test_packing_overview_orders_by_ship_by_then_age(channel, packer):
    today = timezone.localdate()
    ingested_order(channel, number="#NO-DATE", ship_by=None, placed_at=timezone.now() - timedelta(days=5))
    ingested_order(channel, number="#TOMORROW", ship_by=today + timedelta(days=1))
    ingested_order(channel, number="#YESTERDAY", ship_by=today - timedelta(days=1))

    overview = selectors.packing_overview(user=packer)

    # No date from the channel: due two working days after the sale, so three days ago at the latest.
    assert [o.number for o in overview.oldest] == ["#NO-DATE", "#YESTERDAY", "#TOMORROW"]
    assert (overview.ready_count, overview.overdue_count) == (3, 2)
    assert overview.oldest[0].line_count == 2  # type: ignore[attr-defined]


def test_packing_overview_is_scoped(channel, other_channel, manager):
    ingested_order(channel, number="#A")
    ingested_order(other_channel, number="#B")

    overview = selectors.packing_overview(user=manager)

    assert ([o.number for o in overview.oldest], overview.ready_count) == (["#A"], 1)

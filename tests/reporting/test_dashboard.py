"""The operations dashboard: the state x channel grid, holds, syncs and the inbox backlog, scoped per user."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from channels_adapters.base import PaymentStatus
from oms.core.models import InboundEvent
from oms.orders.models import HoldReason, OrderStatus, SyncRun
from oms.orders.services import order_hold, order_transition
from reporting.selectors import STATES, dashboard
from tests.factories import ingested_order

pytestmark = pytest.mark.django_db


def _cell(board, slug: str, state: str) -> int:
    row = next(r for r in board.rows if r.channel.slug == slug)
    return dict(row.cells)[state]


@pytest.fixture
def book(channel, other_channel):
    ready = [ingested_order(channel) for _ in range(3)]
    order_transition(order=ready[0], to=OrderStatus.PICKING, actor=None)
    order_hold(order=ready[1], reason=HoldReason.MANUAL, note="check stock", actor=None)
    ingested_order(channel, payment_status=PaymentStatus.PENDING)
    ingested_order(other_channel, number="#EU-1")
    held_eu = ingested_order(other_channel, number="#EU-HELD")
    order_hold(order=held_eu, reason=HoldReason.PAYMENT_REVIEW, actor=None)
    return {"held_a": ready[1], "held_b": held_eu}


def test_grid_counts_orders_per_state_and_channel(admin_user, book):
    board = dashboard(user=admin_user)

    assert [r.channel.slug for r in board.rows] == ["eu-shop", "main-shop"]
    assert _cell(board, "main-shop", OrderStatus.READY) == 1
    assert _cell(board, "main-shop", OrderStatus.PICKING) == 1
    assert _cell(board, "main-shop", OrderStatus.ON_HOLD) == 1
    assert _cell(board, "main-shop", OrderStatus.PENDING_PAYMENT) == 1
    assert _cell(board, "eu-shop", OrderStatus.ON_HOLD) == 1
    assert board.grand_total == 6
    assert board.state_totals[[s for s, _ in STATES].index(OrderStatus.ON_HOLD)] == 2
    assert board.headline["on_hold"] == 2


def test_grid_is_one_grouped_query(admin_user, book):
    with CaptureQueriesContext(connection) as ctx:
        dashboard(user=admin_user)

    grouped = [q["sql"] for q in ctx.captured_queries if "GROUP BY" in q["sql"] and "orders_order" in q["sql"]]
    assert len(grouped) == 1
    assert len(ctx.captured_queries) <= 8


def test_on_hold_list_shows_open_reasons_newest_first(admin_user, book):
    board = dashboard(user=admin_user)

    assert [o.number for o in board.on_hold] == [book["held_b"].number, book["held_a"].number]
    held = board.on_hold[1]
    assert [h.get_reason_display() for h in held.open_holds] == ["Manual"]  # type: ignore[attr-defined]


def test_last_sync_and_inbox_backlog_per_channel(admin_user, channel, other_channel):
    SyncRun.objects.create(channel=channel, trigger="schedule", status=SyncRun.Status.SUCCEEDED)
    latest = SyncRun.objects.create(
        channel=channel,
        trigger="button",
        status=SyncRun.Status.FAILED,
        error_count=1,
        errors=["AuthenticationFailed: token revoked"],
    )
    SyncRun.objects.filter(pk=latest.pk).update(started_at=timezone.now() + timedelta(seconds=1))
    for i, status in enumerate(["pending", "pending", "failed", "processed"]):
        InboundEvent.objects.create(channel=channel, event_key=f"k{i}", topic="orders/create", body="{}", status=status)

    board = dashboard(user=admin_user)

    main = next(r for r in board.rows if r.channel.slug == "main-shop")
    eu = next(r for r in board.rows if r.channel.slug == "eu-shop")
    assert main.last_sync is not None
    assert main.last_sync.pk == latest.pk
    assert (main.pending_events, main.failed_events) == (2, 1)
    assert main.oldest_pending_at is not None
    assert eu.last_sync is None
    assert (eu.pending_events, eu.failed_events) == (0, 0)


def test_dashboard_page_renders_the_figures_with_links(client, admin_user, book, channel):
    SyncRun.objects.create(
        channel=channel,
        trigger="button",
        status=SyncRun.Status.FAILED,
        error_count=1,
        errors=["AuthenticationFailed: token revoked"],
    )
    client.force_login(admin_user)

    response = client.get(reverse("reporting:dashboard"))

    html = response.content.decode()
    assert response.status_code == 200
    assert f'?channel={channel.pk}&amp;state=on_hold"' in html
    assert "check stock" in html
    assert "token revoked" in html
    assert reverse("orders:order-detail", args=[book["held_a"].pk]) in html


def test_limited_manager_sees_only_their_channel_in_every_figure(client, manager, book):
    client.force_login(manager)

    response = client.get(reverse("reporting:dashboard"))

    board = response.context["board"]
    assert [r.channel.slug for r in board.rows] == ["main-shop"]
    assert board.grand_total == 4
    assert [o.number for o in board.on_hold] == [book["held_a"].number]
    assert "#EU-HELD" not in response.content.decode()
    assert "EU Shop" not in response.content.decode()


def test_warehouse_sees_the_dashboard_without_sync_links(client, warehouse_user, book):
    client.force_login(warehouse_user)

    response = client.get(reverse("reporting:dashboard"))

    assert response.status_code == 200
    assert reverse("orders:channel-list") not in response.content.decode()


def test_packer_may_not_see_the_dashboard(client, packer):
    client.force_login(packer)

    assert client.get(reverse("reporting:dashboard")).status_code == 403

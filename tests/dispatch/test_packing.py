"""The packing queue and scan-to-verify through the real services (no carrier involved yet)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from channels_adapters.base import ChannelLine
from dispatch.models import PackScan, PackSession, ScanResult
from dispatch.services import (
    DispatchError,
    pack_next,
    pack_override,
    pack_progress,
    pack_release,
    pack_scan,
    pack_sessions_expire,
)
from inventory.services import bundle_set_components
from oms.core.models import AuditEntry
from oms.orders.models import Order, OrderStatus, ServiceLevel
from tests.factories import ingested_order, staff_user, stocked

pytestmark = pytest.mark.django_db


def line(sku: str, quantity: int = 1, n: int = 1) -> ChannelLine:
    return ChannelLine(external_id=f"{sku}-{n}", sku=sku, title=sku.title(), quantity=quantity, unit_price=Decimal(5))


def claim(packer, **options) -> PackSession:
    session = pack_next(packer=packer, **options)
    assert session is not None, "the queue was empty"
    return session


@pytest.fixture
def packer_user(db):
    return staff_user("Packer")


def test_next_order_is_the_most_urgent_ready_one(channel, packer_user):
    today = timezone.localdate()
    late = ingested_order(channel, ship_by=today + timedelta(days=3))
    express = ingested_order(channel, ship_by=today + timedelta(days=1), shipping_method="Express next day")
    standard = ingested_order(channel, ship_by=today + timedelta(days=1), shipping_method="Standard")
    oldest_standard = ingested_order(
        channel,
        ship_by=today + timedelta(days=1),
        shipping_method="Standard",
        placed_at=timezone.now() - timedelta(days=2),
    )
    assert express.service_level == ServiceLevel.EXPRESS

    order_ids = []
    for _ in range(4):
        user = staff_user("Packer")
        session = claim(user)
        order_ids.append(session.order_id)
    assert order_ids == [express.pk, oldest_standard.pk, standard.pk, late.pk]
    assert pack_next(packer=packer_user) is None
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.PICKING}


def test_a_packer_gets_their_open_order_back(channel, packer_user):
    ingested_order(channel)
    ingested_order(channel)
    first = claim(packer_user)
    again = claim(packer_user)
    assert again.pk == first.pk


def test_missing_ship_by_defaults_to_working_days_after_the_sale(channel):
    friday = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.get_current_timezone())
    order = ingested_order(channel, placed_at=friday, ship_by=None)
    assert order.ship_by == date(2026, 11, 24)  # Mon, Tue


def test_scans_verify_every_unit(channel, packer_user):
    stocked("CUP-1", 10, barcode="4006381333931")
    stocked("CUP-2", 10, barcode="4006381333948")
    stocked("OTHER", 10, barcode="5901234123457")
    ingested_order(channel, lines=(line("CUP-1", 2), line("CUP-2", 1, n=2)))
    session = claim(packer_user)

    assert pack_scan(session=session, barcode="4006381333931", actor=packer_user).ok
    wrong = pack_scan(session=session, barcode="5901234123457", actor=packer_user)
    assert wrong.result == ScanResult.WRONG_SKU
    assert "not in order" in wrong.message
    unknown = pack_scan(session=session, barcode="0000000000000", actor=packer_user)
    assert unknown.result == ScanResult.UNKNOWN
    assert pack_scan(session=session, barcode="4006381333931 ", actor=packer_user).ok
    extra = pack_scan(session=session, barcode="4006381333931", actor=packer_user)
    assert extra.result == ScanResult.EXTRA
    last = pack_scan(session=session, barcode="CUP-2", actor=packer_user)  # the SKU typed in works too
    assert last.ok
    assert last.complete
    assert [(i.sku, i.scanned, i.quantity) for i in last.items] == [("CUP-1", 2, 2), ("CUP-2", 1, 1)]
    assert list(PackScan.objects.filter(session=session).values_list("result", flat=True)) == [
        "ok",
        "wrong_sku",
        "unknown",
        "ok",
        "extra",
        "ok",
    ]
    assert AuditEntry.objects.filter(verb="pack.scan_refused").count() == 3


def test_a_bundle_is_packed_by_its_components(channel, packer_user):
    a = stocked("KIT-A", 10, barcode="111")
    b = stocked("KIT-B", 10, barcode="222")
    kit = stocked("KIT", 0)
    bundle_set_components(bundle=kit, components=[(a, 1), (b, 2)], actor=None)
    ingested_order(channel, lines=(line("KIT", 1),))
    session = claim(packer_user)
    assert [(i.sku, i.quantity) for i in pack_progress(session)] == [("KIT-A", 1), ("KIT-B", 2)]
    for code in ("111", "222", "222"):
        outcome = pack_scan(session=session, barcode=code, actor=packer_user)
    assert outcome.complete


def test_override_needs_a_manager_and_a_reason(channel, packer_user):
    ingested_order(channel)
    session = claim(packer_user)
    with pytest.raises(DispatchError, match="only a manager"):
        pack_override(session=session, manager=packer_user, reason="barcode torn")
    manager = staff_user("Manager", all_channels=True)
    with pytest.raises(DispatchError, match="say why"):
        pack_override(session=session, manager=manager, reason="  ")
    pack_override(session=session, manager=manager, reason="barcode torn off the mug")
    session.refresh_from_db()
    assert session.override_reason == "barcode torn off the mug"
    assert AuditEntry.objects.filter(verb="pack.override").exists()


def test_release_and_expiry_return_the_order_to_the_queue(channel, packer_user):
    order = ingested_order(channel)
    session = claim(packer_user)
    pack_release(session=session, actor=packer_user, reason="missing item")
    order.refresh_from_db()
    assert order.status == OrderStatus.READY
    with pytest.raises(DispatchError):
        pack_scan(session=session, barcode="x", actor=packer_user)

    other = staff_user("Packer")
    session = claim(other)
    assert session.order_id == order.pk
    assert pack_sessions_expire() == 0
    assert pack_sessions_expire(now=timezone.now() + timedelta(hours=1)) == 1
    order.refresh_from_db()
    session.refresh_from_db()
    assert order.status == OrderStatus.READY
    assert session.outcome == PackSession.Outcome.EXPIRED
    assert session.open_key is None
    assert claim(packer_user).order_id == order.pk


def test_orders_not_ready_are_never_handed_out(channel, packer_user):
    ingested_order(channel, payment_status="pending")
    held = ingested_order(channel, stock=False, lines=(line("NOT-IN-CATALOG"),))
    assert held.status == OrderStatus.ON_HOLD
    assert pack_next(packer=packer_user) is None

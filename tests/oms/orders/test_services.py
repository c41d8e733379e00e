"""The state table, holds and intake, through the real services and database."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType

from channels_adapters.base import ChannelAddress, ChannelCustomer, ChannelLine, InvalidPayload, PaymentStatus
from oms.core.models import AuditEntry
from oms.orders.models import Customer, HoldReason, Order, OrderEvent, OrderHold, OrderStatus
from oms.orders.services import (
    customer_note_add,
    order_cancel,
    order_hold,
    order_ingest,
    order_release,
    order_transition,
)
from oms.orders.states import TRANSITIONS, IllegalTransition
from tests.factories import channel_order, ingested_order

pytestmark = pytest.mark.django_db


def audit_for(order):
    return AuditEntry.objects.filter(content_type=ContentType.objects.get_for_model(Order), object_id=str(order.pk))


def test_paid_order_is_ready_and_audited(channel):
    order = ingested_order(channel)
    assert order.status == OrderStatus.READY
    assert order.lines.count() == 2
    assert order.total == Decimal("58.55")
    assert audit_for(order).filter(verb="order.ingest").count() == 1
    assert OrderEvent.objects.filter(order=order, kind="received").exists()


def test_pending_payment_then_paid_moves_to_ready(channel):
    co = channel_order(payment_status=PaymentStatus.PENDING)
    order = order_ingest(channel=channel, co=co, source="test").order
    assert order.status == OrderStatus.PENDING_PAYMENT
    paid = channel_order(
        external_id=co.external_id,
        number=co.number,
        lines=co.lines,
        payment_status=PaymentStatus.PAID,
        updated_at=co.updated_at + timedelta(minutes=5),
    )
    result = order_ingest(channel=channel, co=paid, source="test")
    order.refresh_from_db()
    assert result.changed
    assert order.status == OrderStatus.READY
    assert audit_for(order).filter(verb="order.transition", after__status="ready").exists()


def test_cod_order_is_ready_without_payment(channel):
    order = ingested_order(channel, payment_status=PaymentStatus.COD)
    assert order.status == OrderStatus.READY
    assert order.payment_status == "cod"


def test_older_payload_never_overwrites_newer(channel):
    co = channel_order()
    order_ingest(channel=channel, co=co, source="test")
    newer = channel_order(
        external_id=co.external_id,
        number=co.number,
        lines=co.lines,
        updated_at=co.updated_at + timedelta(hours=1),
        note="newest note",
    )
    order_ingest(channel=channel, co=newer, source="test")
    older = channel_order(
        external_id=co.external_id,
        number=co.number,
        lines=co.lines,
        updated_at=co.updated_at + timedelta(minutes=1),
        note="stale note",
    )
    result = order_ingest(channel=channel, co=older, source="test")
    order = Order.objects.get(channel=channel, external_id=co.external_id)
    assert result.stale
    assert order.note == "newest note"
    assert order.channel_updated_at == newer.updated_at


def test_same_payload_twice_changes_nothing(channel):
    co = channel_order()
    order_ingest(channel=channel, co=co, source="test")
    events = OrderEvent.objects.count()
    result = order_ingest(channel=channel, co=co, source="test")
    assert not result.created
    assert not result.changed
    assert OrderEvent.objects.count() == events
    assert Order.objects.count() == 1


def test_line_changes_are_applied(channel):
    co = channel_order()
    order = order_ingest(channel=channel, co=co, source="test").order
    edited = channel_order(
        external_id=co.external_id,
        number=co.number,
        updated_at=co.updated_at + timedelta(1),
        lines=(co.lines[0],),
    )
    order_ingest(channel=channel, co=edited, source="test")
    assert list(order.lines.values_list("sku", flat=True)) == ["MUG-BLUE"]


def test_cancelled_on_channel_cancels_here(channel):
    co = channel_order()
    order_ingest(channel=channel, co=co, source="test")
    cancelled = channel_order(
        external_id=co.external_id,
        number=co.number,
        lines=co.lines,
        updated_at=co.updated_at + timedelta(hours=1),
        cancelled_at=co.updated_at,
        cancel_reason="customer",
    )
    order = order_ingest(channel=channel, co=cancelled, source="test").order
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.cancel_reason == "customer"


def test_line_without_sku_holds_the_order(channel):
    order = ingested_order(
        channel,
        lines=(ChannelLine(external_id="9001", sku="", title="Custom engraving", quantity=1, unit_price=Decimal("5")),),
    )
    assert order.status == OrderStatus.ON_HOLD
    assert order.holds.get().reason == HoldReason.UNKNOWN_SKU


def test_digital_order_without_address_is_not_held(channel):
    order = ingested_order(
        channel,
        shipping_address=None,
        lines=(
            ChannelLine(
                external_id="9002",
                sku="EBOOK-1",
                title="E-book",
                quantity=1,
                unit_price=Decimal("9"),
                requires_shipping=False,
            ),
        ),
    )
    assert order.status == OrderStatus.READY


def test_invalid_address_holds_and_corrected_address_releases(channel):
    bad = ChannelAddress(name="Ann", line1="", city="Berlin", postal_code="123", country_code="DE")
    co = channel_order(shipping_address=bad)
    order = order_ingest(channel=channel, co=co, source="test").order
    assert order.status == OrderStatus.ON_HOLD
    hold = order.holds.get()
    assert hold.reason == HoldReason.ADDRESS_INVALID
    assert "street address missing" in hold.note
    good = ChannelAddress(name="Ann", line1="Unter den Linden 1", city="Berlin", postal_code="10117", country_code="DE")
    fixed = channel_order(
        external_id=co.external_id,
        number=co.number,
        lines=co.lines,
        shipping_address=good,
        updated_at=co.updated_at + timedelta(hours=1),
    )
    order_ingest(channel=channel, co=fixed, source="test")
    order.refresh_from_db()
    assert order.status == OrderStatus.READY
    assert not order.holds.filter(released_at__isnull=True).exists()


def test_one_customer_across_channels_by_email(channel, other_channel):
    a = ingested_order(
        channel,
        email="Same@Example.com",
        customer=ChannelCustomer(external_id="1", email="Same@Example.com", first_name="Sam"),
    )
    b = ingested_order(
        other_channel,
        email="same@example.com",
        customer=ChannelCustomer(external_id="99", email="same@example.com"),
    )
    assert a.customer_id == b.customer_id
    customer = Customer.objects.get()
    assert customer.email == "same@example.com"
    assert customer.identities.count() == 2


def test_customer_matched_by_phone_when_email_differs(channel, other_channel):
    address = ChannelAddress(
        name="P",
        line1="1 Main St",
        city="Louisville",
        postal_code="40202",
        country_code="US",
        phone="502-555-0100",
    )
    a = ingested_order(channel, email="", customer=ChannelCustomer(phone="502-555-0100"), shipping_address=address)
    b = ingested_order(
        other_channel, email="", customer=ChannelCustomer(phone="+1 (502) 555-0100"), shipping_address=address
    )
    assert a.customer_id == b.customer_id
    assert a.customer is not None
    assert a.customer.phone == "+15025550100"


def test_every_legal_transition_is_allowed_and_every_other_refused(channel, admin_user):
    order = ingested_order(channel)
    for target in OrderStatus.values:
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.READY)
        order.refresh_from_db()
        if target in TRANSITIONS[OrderStatus.READY] or target == OrderStatus.READY:
            order_transition(order=order, to=target, actor=admin_user, reason="test")
        else:
            with pytest.raises(IllegalTransition, match="cannot go from Ready"):
                order_transition(order=order, to=target, actor=admin_user, reason="test")


def test_illegal_transition_writes_nothing(channel, admin_user):
    order = ingested_order(channel)
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.SHIPPED)
    before = audit_for(order).count()
    with pytest.raises(IllegalTransition):
        order_cancel(order=order, actor=admin_user, reason="too late")
    order.refresh_from_db()
    assert order.status == OrderStatus.SHIPPED
    assert audit_for(order).count() == before


def test_manual_hold_and_release_with_actor_and_reason(channel, admin_user):
    order = ingested_order(channel)
    order_hold(order=order, reason=HoldReason.MANUAL, note="customer asked to wait", actor=admin_user)
    order.refresh_from_db()
    assert order.status == OrderStatus.ON_HOLD
    entry = audit_for(order).get(verb="order.hold")
    assert entry.actor == admin_user
    assert entry.reason == "customer asked to wait"
    order_release(order=order, actor=admin_user, note="ok now")
    order.refresh_from_db()
    assert order.status == OrderStatus.READY
    assert OrderHold.objects.get(order=order).released_by == admin_user


def test_release_returns_unpaid_order_to_pending_payment(channel, admin_user):
    order = ingested_order(channel, payment_status=PaymentStatus.PENDING)
    order_hold(order=order, reason=HoldReason.PAYMENT_REVIEW, actor=admin_user)
    order_release(order=order, actor=admin_user)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT


def test_release_waits_for_every_hold(channel, admin_user):
    order = ingested_order(channel)
    order_hold(order=order, reason=HoldReason.MANUAL, actor=admin_user)
    order_hold(order=order, reason=HoldReason.PAYMENT_REVIEW, actor=admin_user)
    manual = order.holds.get(reason=HoldReason.MANUAL)
    order_release(order=order, actor=admin_user, hold_id=manual.pk)
    order.refresh_from_db()
    assert order.status == OrderStatus.ON_HOLD
    order_release(order=order, actor=admin_user)
    order.refresh_from_db()
    assert order.status == OrderStatus.READY


def test_release_without_hold_is_refused(channel, admin_user):
    order = ingested_order(channel)
    with pytest.raises(IllegalTransition, match="no open hold"):
        order_release(order=order, actor=admin_user)


def test_unknown_hold_reason_is_refused(channel, admin_user):
    order = ingested_order(channel)
    with pytest.raises(ValueError, match="unknown hold reason"):
        order_hold(order=order, reason="bored", actor=admin_user)
    order.refresh_from_db()
    assert order.status == OrderStatus.READY


def test_cancel_needs_a_reason_and_closes_holds(channel, admin_user):
    order = ingested_order(channel)
    with pytest.raises(ValueError, match="reason"):
        order_cancel(order=order, actor=admin_user, reason="  ")
    order_hold(order=order, reason=HoldReason.MANUAL, actor=admin_user)
    order_cancel(order=order, actor=admin_user, reason="fraud")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert not order.holds.filter(released_at__isnull=True).exists()
    assert audit_for(order).filter(verb="order.transition", reason="fraud").exists()


def test_order_without_lines_is_refused(channel):
    with pytest.raises(InvalidPayload, match="no lines"):
        order_ingest(channel=channel, co=channel_order(lines=()), source="test")
    assert not Order.objects.exists()


def test_audit_trail_is_append_only(channel, admin_user):
    order = ingested_order(channel)
    entry = audit_for(order).first()
    entry.reason = "rewritten"
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        AuditEntry.objects.all().delete()
    with pytest.raises(TypeError):
        AuditEntry.objects.update(reason="x")


def test_customer_note(channel, admin_user):
    customer = ingested_order(channel).customer
    assert customer is not None
    note = customer_note_add(customer=customer, body=" prefers DHL ", actor=admin_user)
    assert note.body == "prefers DHL"
    with pytest.raises(ValueError):
        customer_note_add(customer=customer, body="", actor=admin_user)

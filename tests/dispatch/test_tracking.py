"""After the label, through the real code: packing, buying from the USPS emulator, the write-back to the Shopify
emulator over HTTP, the customer's e-mails (locmem mailbox), tracking polls and the end-of-day manifest."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.test import TestCase
from django.utils import timezone
from pypdf import PdfReader
from rq import Retry

from carriers.base import TrackingStatus
from channels_adapters.base import ChannelAdapter
from channels_adapters.registry import ADAPTERS
from channels_adapters.shopify import ShopifyAdapter
from dispatch import jobs
from dispatch.models import CarrierAccount, Document, Shipment, ShipmentEvent, ShipmentStatus, TrackingEvent
from dispatch.services import DispatchError, ParcelInput, pack_complete, pack_expected, pack_next, pack_scan
from dispatch.services_tracking import (
    ChannelSync,
    EmailOutcome,
    manifest_create,
    shipment_after_ship,
    shipment_channel_sync,
    shipment_channel_sync_reopen,
    shipment_email_shipped,
    shipments_after_ship_due,
    shipments_after_ship_sweep,
    tracking_poll,
)
from oms.core.models import Alert, SalesChannel
from oms.orders.models import Order, OrderStatus
from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.usps import USPSEmulator
from tests.factories import channel_order, ingested_order, sales_channel, shop_catalog, staff_user

pytestmark = pytest.mark.django_db

USPS_TRACKING = "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}"
SERVICE = "USPS_GROUND_ADVANTAGE"


# ------------------------------------------------------------------------------------------------ helpers


def shop_channel(shopify: ShopifyEmulator, *, slug: str = "northwind", kind: str = "shopify") -> SalesChannel:
    shop_catalog()
    return sales_channel(
        slug=slug,
        name="Northwind Shopify",
        kind=kind,
        api_base_url=shopify.base_url,
        options={"shop_domain": shopify.shop_domain},
        credentials={"access_token": shopify.access_token},
    )


def usps_account(usps: USPSEmulator, *, name: str = "USPS main") -> CarrierAccount:
    fields: dict[str, Any] = {
        "name": name,
        "kind": "usps",
        "api_base_url": usps.base_url,
        "credentials": {"client_id": usps.client_id, "client_secret": usps.client_secret},
        "options": {"crid": usps.crid, "mid": usps.mid, "account_number": usps.account_number},
        "default_service": SERVICE,
        "tracking_url_template": USPS_TRACKING,
        "sender_name": "Ada Lovelace",
        "sender_company": "Northwind Goods",
        "sender_line1": "4120 Bingham Ave",
        "sender_city": "Saint Louis",
        "sender_region": "MO",
        "sender_postal_code": "63116",
        "sender_country": "US",
        "sender_phone": "+13145550100",
    }
    return CarrierAccount.objects.create(**fields)


def ship(
    channel: SalesChannel,
    shopify: ShopifyEmulator,
    account: CarrierAccount,
    *,
    parcels: Sequence[ParcelInput] = (ParcelInput(weight_grams=680),),
    remote: dict[str, Any] | None = None,
    **order_fields: Any,
) -> Shipment:
    """An order on the Shopify emulator and in the OMS, packed scan by scan and its label bought from USPS; the
    jobs run inline once the packing transaction commits (the after-ship job included)."""
    remote = remote if remote is not None else shopify.add_order()
    order = ingested_order(channel, external_id=str(remote["id"]), **order_fields)
    packer = staff_user("Packer")
    session = pack_next(packer=packer)
    assert session is not None
    assert session.order_id == order.pk
    for item in pack_expected(order):
        for _ in range(item.quantity):
            assert pack_scan(session=session, barcode=item.sku, actor=packer).ok
    with TestCase.captureOnCommitCallbacks(execute=True):
        shipment = pack_complete(
            session=session, actor=packer, parcels=list(parcels), carrier_account=account, service=SERVICE
        )
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.BOUGHT, shipment.errors
    return shipment


def numbers(shipment: Shipment) -> list[str]:
    return list(shipment.parcels.order_by("position").values_list("tracking_number", flat=True))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kinds(shipment: Shipment) -> list[str]:
    return list(ShipmentEvent.objects.filter(shipment=shipment).values_list("kind", flat=True))


# ------------------------------------------------------------------------------------------------ fixtures


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


@pytest.fixture
def shop(shopify: ShopifyEmulator) -> SalesChannel:
    return shop_channel(shopify)


@pytest.fixture
def account(usps: USPSEmulator) -> CarrierAccount:
    return usps_account(usps)


@pytest.fixture(autouse=True)
def _shop_name(settings):
    settings.SHOP_NAME = "Northwind Goods"


# ------------------------------------------------------------------------------------- write-back, e-mail


def test_a_bought_label_is_written_back_to_shopify_and_the_customer_told_once(shop, shopify, account):
    shipment = ship(shop, shopify, account)
    order = shipment.order
    [number] = numbers(shipment)

    [fulfillment] = shopify.fulfillments(order.external_id)
    assert fulfillment["tracking_numbers"] == [number]
    assert fulfillment["tracking_company"] == "USPS"
    assert fulfillment["tracking_urls"] == [USPS_TRACKING.replace("{number}", number)]
    assert fulfillment["notify_customer"] is False
    shipment.refresh_from_db()
    assert shipment.channel_synced_at is not None
    assert shipment.channel_sync_attempts == 1
    assert "channel_synced" in kinds(shipment)

    [message] = mail.outbox
    assert message.to == [order.email]
    assert message.subject == f"Northwind Goods: your order {order.number} is on its way"
    assert number in message.body
    assert f"tLabels={number}" in message.body
    assert isinstance(message, EmailMultiAlternatives)
    html, content_type = message.alternatives[0]
    assert content_type == "text/html"
    assert isinstance(html, str)
    assert f'href="https://tools.usps.com/go/TrackConfirmAction?tLabels={number}"' in html
    assert order.number in html
    assert shipment.shipped_email_at is not None

    # The job again (a retry, the backstop): nothing is sent twice.
    shopify.clear_requests()
    again = shipment_after_ship(shipment_id=shipment.pk)
    assert (again.channel, again.email) == (ChannelSync.ALREADY, EmailOutcome.ALREADY)
    assert shopify.requests == []
    assert len(mail.outbox) == 1
    assert len(shopify.fulfillments(order.external_id)) == 1


def test_every_parcel_goes_back_in_one_fulfillment_with_a_link_each(shop, shopify, account):
    shipment = ship(shop, shopify, account, parcels=[ParcelInput(weight_grams=500), ParcelInput(weight_grams=2300)])
    first, second = numbers(shipment)

    [fulfillment] = shopify.fulfillments(shipment.order.external_id)
    assert fulfillment["tracking_numbers"] == [first, second]
    assert fulfillment["tracking_urls"] == [USPS_TRACKING.replace("{number}", n) for n in (first, second)]
    [message] = mail.outbox
    assert "2 parcels" in message.body
    assert f"tLabels={first}" in message.body
    assert f"tLabels={second}" in message.body


def test_a_held_fulfillment_order_is_retried_until_shopify_takes_it(shop, shopify, account):
    shipment = ship(shop, shopify, account, remote=shopify_order(shopify, "ON_HOLD"))
    order = shipment.order
    assert shipment.channel_synced_at is None
    assert shipment.channel_sync_attempts == 1
    assert "on hold" in shipment.channel_sync_error
    assert len(mail.outbox) == 1  # the customer is told anyway
    assert shopify.fulfillments(order.external_id) == []
    assert isinstance(jobs.shipment_after_ship(shipment.pk), Retry)  # the job asks RQ to try again
    shipment.refresh_from_db()
    assert shipment.channel_sync_attempts == 2

    # Too early for the backstop; later, it is due.
    assert shipments_after_ship_due(now=timezone.now()) == []
    later = timezone.now() + timedelta(minutes=30)
    assert shipments_after_ship_due(now=later) == [shipment.pk]

    [fo] = shopify.fulfillment_orders(order.external_id)
    shopify.set_fulfillment_order_status(fo["id"], "OPEN")
    assert shipments_after_ship_sweep(now=later) == 1
    shipment.refresh_from_db()
    assert shipment.channel_synced_at is not None
    assert shipment.channel_sync_error == ""
    assert [f["tracking_numbers"] for f in shopify.fulfillments(order.external_id)] == [numbers(shipment)]
    assert len(mail.outbox) == 1
    assert shipments_after_ship_due(now=later + timedelta(hours=1)) == []


def shopify_order(shopify: ShopifyEmulator, fulfillment_order_status: str) -> dict[str, Any]:
    """An order on Shopify whose fulfillment order is held (a fraud check, say) or closed (fulfilled elsewhere)."""
    remote = shopify.add_order()
    [fo] = shopify.fulfillment_orders(remote["id"])
    shopify.set_fulfillment_order_status(fo["id"], fulfillment_order_status)
    return remote


def test_a_refusal_raises_one_alert_and_stops_until_a_person_reopens_it(shop, shopify, account):
    shipment = ship(shop, shopify, account, remote=shopify_order(shopify, "CLOSED"))  # fulfilled outside the OMS
    assert shipment.channel_synced_at is None
    assert "nothing left to fulfil" in shipment.channel_sync_error
    alert = Alert.objects.get(dedupe_key=f"shipment-channel-sync:{shipment.pk}", resolved_at__isnull=True)
    assert alert.kind == "channel_sync_refused"
    assert alert.channel_id == shop.pk
    shopify.clear_requests()
    assert shipment_channel_sync(shipment_id=shipment.pk) == ChannelSync.ALREADY
    assert shopify.requests == []
    assert shipments_after_ship_due(now=timezone.now() + timedelta(days=1)) == []


def test_a_person_reopens_a_refused_write_back_once_the_channel_is_fixed(shop, shopify, account):
    missing = {"id": 5_550_001}  # not on Shopify (yet): imported from elsewhere, say
    shipment = ship(shop, shopify, account, remote=missing)
    assert "has no order" in shipment.channel_sync_error
    alert = Alert.objects.get(dedupe_key=f"shipment-channel-sync:{shipment.pk}", resolved_at__isnull=True)

    shopify.add_order(id=missing["id"])
    manager = staff_user("Manager", all_channels=True)
    with TestCase.captureOnCommitCallbacks(execute=True):
        shipment_channel_sync_reopen(shipment=shipment, actor=manager, reason="order created on Shopify")
    shipment.refresh_from_db()
    assert shipment.channel_synced_at is not None
    assert [f["tracking_numbers"] for f in shopify.fulfillments(missing["id"])] == [numbers(shipment)]
    assert kinds(shipment)[-2:] == ["channel_sync_reopened", "channel_synced"]
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert len(mail.outbox) == 1


class NoTrackingShop(ShopifyAdapter):
    """A storefront whose API takes no tracking: the contract's default mark_fulfilled (NotSupported)."""

    kind: ClassVar[str] = "no-tracking"
    label: ClassVar[str] = "No tracking"
    mark_fulfilled = ChannelAdapter.mark_fulfilled


def test_a_channel_that_takes_no_tracking_is_marked_not_needed(monkeypatch, shopify, account):
    monkeypatch.setitem(ADAPTERS, NoTrackingShop.kind, NoTrackingShop)
    channel = shop_channel(shopify, slug="no-tracking", kind=NoTrackingShop.kind)
    shipment = ship(channel, shopify, account)

    assert shipment.channel_synced_at is None
    assert "channel_not_needed" in kinds(shipment)
    assert not Alert.objects.filter(dedupe_key=f"shipment-channel-sync:{shipment.pk}").exists()
    assert shipments_after_ship_due(now=timezone.now() + timedelta(days=1)) == []
    assert len(mail.outbox) == 1


def test_no_email_when_the_order_has_none(shop, shopify, account):
    shipment = ship(shop, shopify, account, email="", customer=None)
    assert shipment.order.email == ""
    assert mail.outbox == []
    assert shipment.shipped_email_at is None
    assert shipment_email_shipped(shipment_id=shipment.pk) == EmailOutcome.NO_EMAIL
    assert shipments_after_ship_due(now=timezone.now() + timedelta(hours=1)) == []


def test_a_claimed_email_is_not_sent_by_a_second_worker(shop, shopify, account):
    shipment = ship(shop, shopify, account)
    Shipment.objects.filter(pk=shipment.pk).update(shipped_email_at=None)
    # Another worker claims it between our read and our UPDATE: the conditional UPDATE loses, nothing is sent.
    Shipment.objects.filter(pk=shipment.pk, shipped_email_at__isnull=True).update(shipped_email_at=timezone.now())
    assert shipment_email_shipped(shipment_id=shipment.pk) == EmailOutcome.ALREADY
    assert len(mail.outbox) == 1


def test_a_mail_server_that_fails_gives_the_claim_back_so_a_retry_sends(shop, shopify, account, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    shipment = ship(shop, shopify, account)
    assert shipment.channel_synced_at is not None  # the write-back does not wait for the mail server
    assert shipment.shipped_email_at is None
    assert "email_failed" in kinds(shipment)
    assert isinstance(jobs.shipment_after_ship(shipment.pk), Retry)

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert shipments_after_ship_sweep(now=timezone.now() + timedelta(minutes=10)) == 1
    shipment.refresh_from_db()
    assert shipment.shipped_email_at is not None
    assert len(mail.outbox) == 1


# ------------------------------------------------------------------------------------------ tracking polls


def test_tracking_poll_stores_each_event_once_and_delivers_the_order(shop, shopify, account, usps):
    shipment = ship(shop, shopify, account)
    [number] = numbers(shipment)
    mail.outbox.clear()
    start = timezone.now()

    usps.advance(number, TrackingStatus.IN_TRANSIT)
    first = tracking_poll(now=start)
    assert (first.shipments, first.updated, first.changed, first.delivered) == (1, 1, 1, 0)
    shipment.refresh_from_db()
    assert shipment.tracking_status == TrackingStatus.IN_TRANSIT
    assert shipment.last_polled_at == start
    assert shipment.last_event_at is not None
    stored = TrackingEvent.objects.filter(shipment=shipment).count()
    assert stored == 3  # label created, accepted, arrived at the regional facility
    assert kinds(shipment).count("tracking") == 1

    assert tracking_poll(now=start + timedelta(minutes=5)).shipments == 0  # not due yet
    again = tracking_poll(now=start + timedelta(hours=2))
    assert (again.updated, again.changed) == (1, 0)
    assert TrackingEvent.objects.filter(shipment=shipment).count() == stored  # reported again, stored once

    usps.advance(number, TrackingStatus.DELIVERED)
    done = tracking_poll(now=start + timedelta(hours=4))
    assert done.delivered == 1
    shipment.refresh_from_db()
    assert shipment.tracking_status == TrackingStatus.DELIVERED
    assert shipment.delivered_at == TrackingEvent.objects.get(shipment=shipment, status="delivered").occurred_at
    assert Order.objects.get(pk=shipment.order_id).status == OrderStatus.DELIVERED
    [message] = mail.outbox
    assert message.subject == f"Northwind Goods: your order {shipment.order.number} has been delivered"
    assert number in message.body
    assert shipment.delivered_email_at is not None
    assert tracking_poll(now=start + timedelta(days=1)).shipments == 0  # delivered: never asked again
    assert len(mail.outbox) == 1


def test_a_delivered_email_the_mail_server_refused_is_sent_by_the_backstop(shop, shopify, account, usps, settings):
    shipment = ship(shop, shopify, account)
    mail.outbox.clear()
    usps.advance(numbers(shipment)[0], TrackingStatus.DELIVERED)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    start = timezone.now()
    assert tracking_poll(now=start).delivered == 1
    shipment.refresh_from_db()
    assert shipment.delivered_at is not None
    assert shipment.delivered_email_at is None

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert shipments_after_ship_sweep(now=start + timedelta(minutes=10)) == 1
    [message] = mail.outbox
    assert "has been delivered" in message.subject
    assert shipments_after_ship_due(now=start + timedelta(minutes=20)) == []


def test_a_shipment_is_delivered_only_when_every_parcel_is(shop, shopify, account, usps):
    shipment = ship(shop, shopify, account, parcels=[ParcelInput(weight_grams=500), ParcelInput(weight_grams=900)])
    first, second = numbers(shipment)
    mail.outbox.clear()
    start = timezone.now()
    usps.advance(first, TrackingStatus.DELIVERED)
    usps.advance(second, TrackingStatus.IN_TRANSIT)

    tracking_poll(now=start)
    shipment.refresh_from_db()
    assert shipment.tracking_status == TrackingStatus.IN_TRANSIT
    assert shipment.delivered_at is None
    assert Order.objects.get(pk=shipment.order_id).status == OrderStatus.SHIPPED
    assert mail.outbox == []

    usps.advance(second, TrackingStatus.DELIVERED)
    tracking_poll(now=start + timedelta(hours=2))
    shipment.refresh_from_db()
    assert shipment.delivered_at is not None
    assert Order.objects.get(pk=shipment.order_id).status == OrderStatus.DELIVERED
    assert len(mail.outbox) == 1


def test_an_exception_raises_an_alert_that_clears_when_the_parcel_moves_on(shop, shopify, account, usps):
    shipment = ship(shop, shopify, account)
    [number] = numbers(shipment)
    start = timezone.now()
    usps.advance(number, TrackingStatus.EXCEPTION)

    tracking_poll(now=start)
    shipment.refresh_from_db()
    assert shipment.tracking_status == TrackingStatus.EXCEPTION
    alert = Alert.objects.get(dedupe_key=f"shipment-tracking:{shipment.pk}")
    assert alert.resolved_at is None
    assert "Notice Left" in alert.message

    usps.advance(number, TrackingStatus.DELIVERED)
    tracking_poll(now=start + timedelta(hours=2))
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_a_failing_carrier_waits_for_the_next_poll_and_the_others_go_on(shop, shopify, account, usps):
    with USPSEmulator() as other:
        assert isinstance(other, USPSEmulator)
        second_account = usps_account(other, name="USPS second warehouse")
        ours = ship(shop, shopify, account)
        theirs = ship(shop, shopify, second_account)
        start = timezone.now()
        usps.advance(numbers(ours)[0], TrackingStatus.IN_TRANSIT)
        other.advance(numbers(theirs)[0], TrackingStatus.IN_TRANSIT)
        other.fail_next(429, retry_after="30", path_contains="/tracking/")

        result = tracking_poll(now=start)
        assert result.failed_accounts == ["USPS second warehouse"]
        ours.refresh_from_db()
        theirs.refresh_from_db()
        assert ours.tracking_status == TrackingStatus.IN_TRANSIT
        assert theirs.last_polled_at is None  # left for the next poll
        assert theirs.tracking_status == "pre_transit"

        later = tracking_poll(now=start + timedelta(minutes=1))  # ours is not due; theirs is
        assert (later.shipments, later.failed_accounts) == (1, [])
        theirs.refresh_from_db()
        assert theirs.tracking_status == TrackingStatus.IN_TRANSIT

        # Credentials the carrier refuses: an alert for the account, cleared once tracking works again.
        CarrierAccount.objects.filter(pk=second_account.pk).update(
            credentials={"client_id": other.client_id, "client_secret": "revoked"}
        )
        tracking_poll(now=start + timedelta(hours=2))
        alert = Alert.objects.get(dedupe_key=f"carrier-tracking:{second_account.pk}")
        assert alert.resolved_at is None
        CarrierAccount.objects.filter(pk=second_account.pk).update(
            credentials={"client_id": other.client_id, "client_secret": other.client_secret}
        )
        tracking_poll(now=start + timedelta(hours=4))
        alert.refresh_from_db()
        assert alert.resolved_at is not None


# ------------------------------------------------------------------------------------------------ manifest


def test_the_manifest_lists_the_days_labels_and_refuses_an_empty_day(shop, shopify, account):
    kept = ship(shop, shopify, account)
    two_parcels = ship(shop, shopify, account, parcels=[ParcelInput(weight_grams=500), ParcelInput(weight_grams=700)])
    refused = _refused_by_usps(shop, account)
    manager = staff_user("Manager", all_channels=True)
    today = timezone.localdate()

    manifest = manifest_create(carrier_account=account, day=today, actor=manager)
    assert manifest.parcels == 3
    assert manifest.created_by == manager
    document = manifest.document
    assert document.kind == Document.Kind.MANIFEST
    assert document.content_type == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(document.file.read())).pages)
    joined = "".join(text.split())  # long numbers wrap in their column
    for number in numbers(kept) + numbers(two_parcels):
        assert number in joined
    assert kept.order.number in text
    assert refused.order.number not in text
    assert "2 shipments, 3 parcels" in text

    with pytest.raises(DispatchError, match="no labels were bought"):
        manifest_create(carrier_account=account, day=today - timedelta(days=1), actor=manager)


def _refused_by_usps(shop: SalesChannel, account: CarrierAccount) -> Shipment:
    """A shipment USPS refused (a ZIP code that does not exist): no label, so not on the manifest."""
    address = channel_order().shipping_address
    assert address is not None
    order = ingested_order(shop, shipping_address=replace(address, postal_code="00012"))
    packer = staff_user("Packer")
    session = pack_next(packer=packer)
    assert session is not None
    assert session.order_id == order.pk
    for item in pack_expected(order):
        for _ in range(item.quantity):
            pack_scan(session=session, barcode=item.sku, actor=packer)
    with TestCase.captureOnCommitCallbacks(execute=True):
        shipment = pack_complete(session=session, actor=packer, carrier_account=account, service=SERVICE)
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.FAILED
    return shipment

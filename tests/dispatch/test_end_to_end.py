"""One Shopify order from its webhook to the customer's door, through HTTP everywhere the real system talks HTTP.

The order is created on the Shopify emulator and the same payload is delivered, signed, to /webhooks/<slug>/;
the inbox job makes it an order (jobs run inline once each request's transaction commits). A packer signs in,
picks a station, takes the next order and scans every item's barcode on the packing screen; "Packed" books
the label with the USPS emulator (the carrier chosen by a shipping rule), stores it in S3 (moto's server),
prints the packing slip on a loopback ESC/POS listener and the label on the PrintNode emulator, writes the
tracking back to Shopify and e-mails the customer. A tracking poll then finds the parcel delivered.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.test import Client
from django.urls import reverse

from carriers.base import TrackingStatus
from dispatch.models import (
    Document,
    PackingStation,
    PackScan,
    PackSession,
    Printer,
    PrinterKind,
    PrintJob,
    Shipment,
    ShipmentEvent,
    ShipmentStatus,
    ShippingRule,
)
from dispatch.services_tracking import tracking_poll
from inventory.models import StockLevel
from oms.core.models import AuditEntry, InboundEvent, SalesChannel
from oms.orders.models import Order, OrderEvent, OrderStatus
from tests.dispatch.test_tracking import SERVICE, USPS_TRACKING, usps_account
from tests.emulators.escpos_listener import EscposListener
from tests.emulators.printnode import PrintNodeEmulator
from tests.emulators.shopify import ShopifyEmulator, webhook_delivery
from tests.emulators.usps import USPSEmulator
from tests.factories import WEBHOOK_SECRET, location, sales_channel, staff_user, stocked
from tests.s3 import BUCKET

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
PASSWORD = "pw-for-tests-only"
MUG = ("E2E-MUG-350", "4006381333931", 350, 2)  # SKU, barcode, grams, quantity ordered
SCARF = ("E2E-SCARF-NVY", "5901234123457", 120, 1)


@pytest.fixture
def shopify() -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator() as running:
        yield running


@pytest.fixture
def usps() -> Iterator[USPSEmulator]:
    with USPSEmulator() as running:
        assert isinstance(running, USPSEmulator)
        yield running


@pytest.fixture
def printnode() -> Iterator[PrintNodeEmulator]:
    with PrintNodeEmulator() as running:
        yield running


@pytest.fixture
def listener() -> Iterator[EscposListener]:
    with EscposListener() as peer:
        yield peer


def northwind(shopify: ShopifyEmulator) -> SalesChannel:
    return sales_channel(
        slug="northwind",
        name="Northwind Shopify",
        kind="shopify",
        api_base_url=shopify.base_url,
        options={"shop_domain": shopify.shop_domain},
        credentials={"access_token": shopify.access_token},
    )


def bench(printnode: PrintNodeEmulator, listener: EscposListener) -> PackingStation:
    slips = Printer.objects.create(
        name="Bench 1 slips", kind=PrinterKind.ESCPOS, host=listener.host, port=listener.port
    )
    labels = Printer.objects.create(
        name="Bench 1 labels",
        kind=PrinterKind.PRINTNODE,
        api_key=printnode.api_key,
        printnode_printer_id=printnode.printer_id,
        api_base_url=printnode.base_url,
    )
    return PackingStation.objects.create(name="Bench 1", document_printer=slips, label_printer=labels)


def deliver_webhook(client: Client, channel: SalesChannel, topic: str, payload: dict[str, Any], capture: Any) -> Any:
    """POST one delivery exactly as Shopify sends it; the inbox job runs once the view's transaction commits."""
    headers, body = webhook_delivery(topic, payload, WEBHOOK_SECRET, shop_domain=channel.options["shop_domain"])
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    with capture(execute=True):
        return client.post(f"/webhooks/{channel.slug}/", data=body, content_type="application/json", headers=headers)


def on_hand(sku: str) -> tuple[int, int]:
    level = StockLevel.objects.get(variant__sku=sku, location__code="main")
    return level.on_hand, level.allocated


def test_a_shopify_order_is_packed_shipped_written_back_and_delivered(
    client,
    shopify,
    usps,
    printnode,
    listener,
    s3_storage,
    settings,
    django_capture_on_commit_callbacks,
):
    capture = django_capture_on_commit_callbacks
    settings.SHOP_NAME = "Northwind Goods"
    main = location("main", name="Main warehouse")
    for sku, barcode, grams, _ in (MUG, SCARF):
        stocked(sku, 10, at=main, barcode=barcode, weight_grams=grams, product_title=sku.title())
    channel = northwind(shopify)
    account = usps_account(usps)
    ShippingRule.objects.create(name="US parcels by USPS", carrier_account=account, countries=["US"])
    station = bench(printnode, listener)

    # --- The order is placed on Shopify, and Shopify tells us with a signed webhook.
    remote = shopify.add_order(
        line_items=[
            {"sku": sku, "title": sku.title(), "quantity": qty, "price": "18.00", "grams": grams}
            for sku, _, grams, qty in (MUG, SCARF)
        ]
    )
    response = deliver_webhook(client, channel, "orders/create", remote, capture)
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    assert InboundEvent.objects.get().status == InboundEvent.Status.PROCESSED
    order = Order.objects.get(channel=channel, external_id=str(remote["id"]))
    assert order.status == OrderStatus.READY
    assert order.email == remote["email"]
    assert on_hand(MUG[0]) == (10, 2)  # allocated, still on the shelf
    assert on_hand(SCARF[0]) == (10, 1)

    # --- A packer signs in at Bench 1 and takes the next order; its slip prints on the bench's thermal printer.
    packer = staff_user("Packer", username="pia-packer", password=PASSWORD)
    signed_in = client.post(reverse("login"), {"username": packer.username, "password": PASSWORD})
    assert signed_in.status_code == 302
    assert client.post(reverse("dispatch:pack-station"), {"station": station.pk}).status_code == 303
    with capture(execute=True):
        taken = client.post(reverse("dispatch:pack-next"))
    session = PackSession.objects.get(packer=packer, outcome=PackSession.Outcome.OPEN)
    assert session.order_id == order.pk
    assert session.station == station
    assert taken["Location"] == reverse("dispatch:pack-session", args=[session.pk])
    [slip] = listener.wait_for(1)
    assert slip.startswith(b"\x1b@")  # ESC @: the printer is initialised
    assert order.number.encode() in slip
    assert MUG[0].encode() in slip
    assert SCARF[0].encode() in slip
    slip_job = PrintJob.objects.get(document__kind=Document.Kind.PACKING_SLIP)
    assert (slip_job.printer.kind, slip_job.state) == (PrinterKind.ESCPOS, PrintJob.State.DONE)

    page = client.get(reverse("dispatch:pack-session", args=[session.pk]))
    assert page.status_code == 200
    assert order.number in page.content.decode()
    assert not page.context["ready"]

    # --- Every item is scanned by its barcode; a wrong item is refused and the gate stays shut until the end.
    wrong = client.post(reverse("dispatch:pack-scan", args=[session.pk]), {"code": "0000000000017"}, **HX)
    assert wrong.context["feedback"].result == "unknown"
    for sku, barcode, _, qty in (MUG, SCARF):
        for _ in range(qty):
            scanned = client.post(reverse("dispatch:pack-scan", args=[session.pk]), {"code": barcode}, **HX)
            assert scanned.status_code == 200
            assert scanned.context["feedback"].ok, scanned.context["feedback"].message
            assert sku in scanned.context["feedback"].message
    assert scanned.context["ready"]
    assert list(PackScan.objects.filter(session=session).values_list("result", flat=True)) == [
        "unknown",
        "ok",
        "ok",
        "ok",
    ]

    # --- Packed: the label is bought, stored, printed; tracking goes back to Shopify; the customer is told.
    with capture(execute=True):
        packed = client.post(reverse("dispatch:pack-packed", args=[session.pk]), {"parcels": "1"})
    assert packed.status_code == 303
    assert packed["Location"] == reverse("dispatch:pack-session", args=[session.pk])
    shipment = Shipment.objects.get(order=order)
    assert shipment.status == ShipmentStatus.BOUGHT, shipment.errors
    assert (shipment.carrier_account, shipment.service) == (account, SERVICE)  # the rule's choice
    parcel = shipment.parcels.get()
    assert parcel.weight_grams == 2 * 350 + 120 + 100  # the catalog's weights and the box
    number = parcel.tracking_number

    # USPS: one label, to the customer's address, paid from our account.
    assert usps.shipments_booked == 1
    emulated = usps.label(number)
    assert emulated.request["toAddress"]["ZIPCode"] == remote["shipping_address"]["zip"]
    assert emulated.request["packageDescription"]["mailClass"] == SERVICE
    assert (shipment.cost, shipment.currency) == (Decimal(str(emulated.metadata["postage"])), "USD")

    # S3: the label is an object in the bucket, byte for byte what USPS sent.
    keys = {o["Key"] for o in s3_storage.list_objects_v2(Bucket=BUCKET).get("Contents", [])}
    assert parcel.label.name in keys
    assert parcel.label.name.endswith(f"{number}.pdf")
    assert s3_storage.get_object(Bucket=BUCKET, Key=parcel.label.name)["Body"].read() == emulated.image
    assert slip_job.document.file.name in keys  # the slip was stored there too

    # PrintNode: the label went to the bench's label printer, once.
    [post] = printnode.job_posts()
    assert post.json["printerId"] == printnode.printer_id
    assert post.json["contentType"] == "pdf_base64"
    assert base64.b64decode(post.json["content"]) == emulated.image
    label_job = PrintJob.objects.get(document__kind=Document.Kind.LABEL)
    assert label_job.printer == station.label_printer
    assert label_job.state in (PrintJob.State.SENT, PrintJob.State.DONE)
    assert label_job.external_id == str(post.response)
    assert len(listener.received) == 1  # the label did not go to the slip printer

    # Shopify: the order is fulfilled with the USPS number and its tracking page.
    [fulfillment] = shopify.fulfillments(remote["id"])
    assert fulfillment["tracking_numbers"] == [number]
    assert fulfillment["tracking_company"] == "USPS"
    assert fulfillment["tracking_urls"] == [USPS_TRACKING.replace("{number}", number)]
    shipment.refresh_from_db()
    assert shipment.channel_synced_at is not None

    # The customer: "on its way", in text and in HTML, with the tracking link.
    [shipped_mail] = mail.outbox
    assert isinstance(shipped_mail, EmailMultiAlternatives)
    assert shipped_mail.to == [order.email]
    assert shipped_mail.subject == f"Northwind Goods: your order {order.number} is on its way"
    assert number in shipped_mail.body
    [(html, content_type)] = shipped_mail.alternatives
    assert content_type == "text/html"
    assert isinstance(html, str)
    assert f'href="{USPS_TRACKING.replace("{number}", number)}"' in html

    # Stock: what left in the box is no longer on hand, nor allocated.
    assert on_hand(MUG[0]) == (8, 0)
    assert on_hand(SCARF[0]) == (9, 0)

    # The packer's screen shows the label, and offers the next order.
    done = client.get(reverse("dispatch:pack-session", args=[session.pk])).content.decode()
    assert number in done
    assert "data-next-order" in done
    assert "data-printer-down" not in done

    # --- Days later the tracking poll finds the parcel delivered: the order is delivered, the customer told.
    usps.advance(number, TrackingStatus.DELIVERED)
    polled = tracking_poll()
    assert (polled.shipments, polled.delivered, polled.failed_accounts) == (1, 1, [])
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    shipment.refresh_from_db()
    assert shipment.delivered_at is not None
    assert len(mail.outbox) == 2
    delivered_mail = mail.outbox[1]
    assert delivered_mail.subject == f"Northwind Goods: your order {order.number} has been delivered"
    assert delivered_mail.to == [order.email]

    # --- The trail: the order's timeline, the shipment's events, the audit rows.
    timeline = list(OrderEvent.objects.filter(order=order).order_by("created_at", "pk").values_list("kind", "data"))
    assert timeline[0][0] == "received"
    assert [(data["before"], data["after"]) for kind, data in timeline if kind == "status"] == [
        (OrderStatus.READY, OrderStatus.PICKING),
        (OrderStatus.PICKING, OrderStatus.PACKED),
        (OrderStatus.PACKED, OrderStatus.SHIPPED),
        (OrderStatus.SHIPPED, OrderStatus.DELIVERED),
    ]
    kinds = list(ShipmentEvent.objects.filter(shipment=shipment).order_by("pk").values_list("kind", flat=True))
    assert kinds == ["created", "bought", "channel_synced", "email_sent", "tracking", "email_sent"]
    verbs = list(
        AuditEntry.objects.filter(object_id=str(order.pk), content_type__model="order")
        .order_by("pk")
        .values_list("verb", "actor_label")
    )
    assert verbs == [
        ("order.ingest", "northwind:webhook orders/create"),
        ("order.transition", packer.username),  # taken for packing
        ("pack.scan_refused", packer.username),
        ("order.transition", packer.username),  # packed
        ("order.transition", "dispatch"),  # label bought: shipped
        ("order.transition", "dispatch"),  # delivered
    ]

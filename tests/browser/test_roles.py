"""Each role in a real browser: sign in, walk the screens the role may use, and find the others closed.

Also the live parts: searching the order list, and holding then releasing an order without a page reload.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from channels_adapters.base import ChannelCustomer, ChannelLine
from tests.factories import ingested_order, sales_channel, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NAV = [
    "Dashboard",
    "Orders",
    "Customers",
    "Channels & syncs",
    "Packing",
    "Dispatch",
    "Stock",
    "Catalog import",
    "Alerts",
    "Django admin",
]
HEADINGS = {
    "Dashboard": "Dashboard",
    "Orders": "Orders",
    "Customers": "Customers",
    "Channels & syncs": "Channels & syncs",
    "Packing": "Packing",
    "Dispatch": "Live queue",
    "Stock": "Stock",
    "Catalog import": "Catalog import and export",
    "Alerts": "Alerts",
}


@pytest.fixture
def shop():
    channel = sales_channel(slug="browser-shop", name="Browser Shop")
    ingested_order(
        channel,
        number="#B-1001",
        email="grace@example.com",
        customer=ChannelCustomer(external_id="g1", email="grace@example.com", first_name="Grace", last_name="Hopper"),
        lines=(
            ChannelLine(
                external_id="l1", sku="LAMP-BRASS", title="Brass lamp", quantity=1, unit_price=Decimal("45.00")
            ),
        ),
    )
    ingested_order(
        channel,
        number="#B-1002",
        email="alan@example.com",
        customer=ChannelCustomer(external_id="a1", email="alan@example.com", first_name="Alan", last_name="Turing"),
    )
    return channel


@pytest.mark.parametrize(
    ("role", "username", "landing", "allowed"),
    [
        ("Admin", "ada-admin", "Dashboard", NAV),
        (
            "Manager",
            "max-manager",
            "Dashboard",
            [
                "Dashboard",
                "Orders",
                "Customers",
                "Channels & syncs",
                "Packing",
                "Dispatch",
                "Stock",
                "Catalog import",
                "Alerts",
            ],
        ),
        ("Warehouse", "wim-warehouse", "Dashboard", ["Dashboard", "Orders", "Packing", "Dispatch", "Stock", "Alerts"]),
        ("Packer", "pia-packer", "Packing", ["Packing"]),
    ],
    ids=["admin", "manager", "warehouse", "packer"],
)
def test_role_signs_in_and_walks_its_screens(page, login, screenshot, shop, role, username, landing, allowed):
    staff_user(role, username=username, all_channels=role == "Manager")

    login(page, username)

    expect(page.get_by_role("heading", level=1)).to_have_text(HEADINGS[landing])
    screenshot(page, "landing")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(allowed)
    for item in set(NAV) - set(allowed):
        expect(nav.get_by_role("link", name=item, exact=True)).to_have_count(0)
    expect(page.locator("[data-role]")).to_have_text(role)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()

    for item in allowed:
        if item == "Django admin":
            continue
        nav.get_by_role("link", name=item, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(HEADINGS[item])
        expect(nav.get_by_role("link", name=item, exact=True)).to_have_attribute("aria-current", "page")
        screenshot(page, item)

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    screenshot(page, "logged-out")


def test_packer_typing_the_orders_url_sees_the_403_page(page, login, screenshot, shop):
    staff_user("Packer", username="pia-packer")
    login(page, "pia-packer")

    response = page.goto("/orders/")

    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("You don't have access to this page")
    expect(page.get_by_text("#B-1001")).to_have_count(0)
    screenshot(page, "forbidden")


def test_order_search_finds_by_sku_and_email(page, login, screenshot, shop):
    staff_user("Manager", username="max-manager", channels=[shop])
    login(page, "max-manager")
    page.goto("/orders/")
    expect(page.locator("table.orders-table tbody tr")).to_have_count(2)

    page.get_by_role("searchbox", name="Search").fill("LAMP-BRASS")
    page.get_by_role("button", name="Apply").click()

    rows = page.locator("table.orders-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("#B-1001")
    screenshot(page, "search-sku")

    page.get_by_role("searchbox", name="Search").fill("alan@example")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("#B-1002")
    screenshot(page, "search-email")

    rows.first.get_by_role("link", name="#B-1002").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Order #B-1002")


def test_hold_then_release_without_reloading_the_page(page, login, screenshot, shop):
    staff_user("Manager", username="max-manager", channels=[shop])
    login(page, "max-manager")
    page.goto("/orders/")
    page.get_by_role("link", name="#B-1001").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Order #B-1001")
    status = page.locator("#order-status")
    expect(status).to_have_text("Ready")
    url = page.url
    page.evaluate("window.__notReloaded = 'still here'")
    screenshot(page, "detail")

    page.get_by_text("Hold…").click()
    hold_form = page.locator("form[data-action=hold]")
    hold_form.get_by_label("Reason").select_option(label="Payment review")
    hold_form.get_by_label("Note").fill("Card flagged by the bank")
    hold_form.get_by_role("button", name="Put on hold").click()

    expect(status).to_have_text("On hold")
    expect(page.locator("#order-live")).to_contain_text("Card flagged by the bank")
    expect(page.locator("#order-audit")).to_contain_text("order.hold")
    screenshot(page, "held")

    page.get_by_text("Release…").click()
    release_form = page.locator("form[data-action=release]")
    release_form.get_by_label("Note").fill("Bank confirmed")
    release_form.get_by_role("button", name="Release").click()

    expect(status).to_have_text("Ready")
    expect(page.locator("#order-live")).to_contain_text("Hold released.")
    expect(page.locator("#order-audit")).to_contain_text("order.release")
    assert page.evaluate("window.__notReloaded") == "still here"
    assert page.url == url
    screenshot(page, "released")


def test_a_refused_action_shows_the_reason_then_cancel_works(page, login, screenshot, shop):
    staff_user("Admin", username="ada-admin")
    login(page, "ada-admin")
    page.goto("/orders/")
    page.get_by_role("link", name="#B-1002").click()
    page.evaluate("window.__notReloaded = true")
    page.on("dialog", lambda dialog: dialog.accept())  # the "cannot be undone" confirmation

    page.get_by_text("Cancel order…").click()
    cancel_form = page.locator("form[data-action=cancel]")
    cancel_form.get_by_label("Reason").fill("   ")  # passes the browser's check, not the server's
    cancel_form.get_by_role("button", name="Cancel the order").click()

    expect(page.locator("[data-action-error]")).to_contain_text("Give a reason for the cancellation.")
    expect(page.locator("#order-status")).to_have_text("Ready")
    screenshot(page, "refused")

    cancel_form = page.locator("form[data-action=cancel]")
    cancel_form.get_by_label("Reason").fill("Customer asked")
    cancel_form.get_by_role("button", name="Cancel the order").click()

    expect(page.locator("#order-status")).to_have_text("Cancelled")
    expect(page.locator("#order-live")).to_contain_text("Order cancelled.")
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "cancelled")

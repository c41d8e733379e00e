"""The staff screens of the order domain through the Django test client: access per role, channel scoping,
search and filters, htmx actions with their audit rows, the CSV export, customers, channels and packing."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from channels_adapters.base import ChannelCustomer, ChannelLine, PaymentStatus
from oms.core.models import AuditEntry, InboundEvent
from oms.orders import selectors
from oms.orders.models import HoldReason, Order, OrderStatus, SyncRun
from oms.orders.services import order_hold, order_transition
from tests.emulators.shopify import ShopifyEmulator
from tests.factories import ingested_order, sales_channel

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def order_a(channel):
    return ingested_order(
        channel,
        number="#A-100",
        email="grace@example.com",
        customer=ChannelCustomer(
            external_id="cust-a", email="grace@example.com", first_name="Grace", last_name="Hopper"
        ),
        lines=(
            ChannelLine(
                external_id="la1", sku="LAMP-BRASS", title="Brass lamp", quantity=1, unit_price=Decimal("45.00")
            ),
        ),
    )


@pytest.fixture
def order_b(other_channel):
    return ingested_order(
        other_channel,
        number="#B-200",
        email="bob.secret@example.com",
        customer=ChannelCustomer(
            external_id="cust-b", email="bob.secret@example.com", first_name="Bob", last_name="Hidden"
        ),
        lines=(
            ChannelLine(
                external_id="lb1", sku="SECRET-SKU", title="Secret thing", quantity=1, unit_price=Decimal("10.00")
            ),
        ),
    )


def _audit(order: Order, verb: str) -> list[AuditEntry]:
    ct = ContentType.objects.get_for_model(Order)
    return list(AuditEntry.objects.filter(content_type=ct, object_id=str(order.pk), verb=verb))


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


# ---------------------------------------------------------------------------------------------------------
# Who may open what


PAGES = ["dashboard", "orders", "order", "export", "customers", "customer", "channels", "packing"]
EXPECTED = {
    "admin_user": {
        "dashboard": 200,
        "orders": 200,
        "order": 200,
        "export": 200,
        "customers": 200,
        "customer": 200,
        "channels": 200,
        "packing": 200,
    },
    "manager": {
        "dashboard": 200,
        "orders": 200,
        "order": 200,
        "export": 200,
        "customers": 200,
        "customer": 200,
        "channels": 200,
        "packing": 403,
    },
    "warehouse_user": {
        "dashboard": 200,
        "orders": 200,
        "order": 200,
        "export": 403,
        "customers": 403,
        "customer": 403,
        "channels": 403,
        "packing": 200,
    },
    "packer": {
        "dashboard": 403,
        "orders": 403,
        "order": 403,
        "export": 403,
        "customers": 403,
        "customer": 403,
        "channels": 403,
        "packing": 200,
    },
}


def _url(page: str, order: Order) -> str:
    return {
        "dashboard": reverse("reporting:dashboard"),
        "orders": reverse("orders:order-list"),
        "order": reverse("orders:order-detail", args=[order.pk]),
        "export": reverse("orders:order-export"),
        "customers": reverse("orders:customer-list"),
        "customer": reverse("orders:customer-detail", args=[order.customer_id]),
        "channels": reverse("orders:channel-list"),
        "packing": reverse("orders:packing"),
    }[page]


@pytest.mark.parametrize("role", list(EXPECTED))
def test_each_role_gets_exactly_its_pages(client, request, order_a, role):
    client.force_login(request.getfixturevalue(role))

    got = {page: client.get(_url(page, order_a)).status_code for page in PAGES}

    assert got == EXPECTED[role]


def test_packer_typing_the_order_list_url_gets_the_403_page(client, packer, order_a):
    client.force_login(packer)

    response = client.get("/orders/")

    assert response.status_code == 403
    assert b"have access to this page" in response.content
    assert b"#A-100" not in response.content


@pytest.mark.parametrize("action", ["order-hold", "order-release", "order-cancel"])
def test_packer_cannot_act_on_orders(client, packer, order_a, action):
    client.force_login(packer)

    response = client.post(reverse(f"orders:{action}", args=[order_a.pk]), {"reason": "x"}, **HX)

    assert response.status_code == 403
    assert b"does not allow" in response.content
    # Shown as a toast, so the panel the packer acted on is not replaced by the refusal.
    assert response["HX-Retarget"] == "#toasts"
    order_a.refresh_from_db()
    assert order_a.status == OrderStatus.READY


@pytest.mark.parametrize(("action", "data"), [("order-release", {"note": "ok"}), ("order-cancel", {"reason": "x"})])
def test_warehouse_may_hold_but_not_release_or_cancel(client, warehouse_user, order_a, action, data):
    client.force_login(warehouse_user)
    order_hold(order=order_a, reason=HoldReason.MANUAL, actor=None)

    response = client.post(reverse(f"orders:{action}", args=[order_a.pk]), data, **HX)

    assert response.status_code == 403
    order_a.refresh_from_db()
    assert order_a.status == OrderStatus.ON_HOLD


def test_actions_refuse_get(client, admin_user, order_a):
    client.force_login(admin_user)

    assert client.get(reverse("orders:order-hold", args=[order_a.pk])).status_code == 405


# ---------------------------------------------------------------------------------------------------------
# Channel scoping: a manager limited to channel A


def test_limited_manager_gets_404_for_another_channels_order(client, manager, order_a, order_b):
    client.force_login(manager)

    assert client.get(reverse("orders:order-detail", args=[order_a.pk])).status_code == 200
    assert client.get(reverse("orders:order-detail", args=[order_b.pk])).status_code == 404


def test_limited_manager_cannot_act_on_another_channels_order(client, manager, order_b):
    client.force_login(manager)

    for action, data in (
        ("order-hold", {"reason": "manual"}),
        ("order-release", {}),
        ("order-cancel", {"reason": "x"}),
    ):
        refused = client.post(reverse(f"orders:{action}", args=[order_b.pk]), data, **HX)
        assert refused.status_code == 404
        assert refused["HX-Retarget"] == "#toasts"
        assert client.post(reverse(f"orders:{action}", args=[order_b.pk]), data).status_code == 404
    order_b.refresh_from_db()
    assert order_b.status == OrderStatus.READY


def test_limited_manager_never_sees_other_channels_orders_in_list_or_search(client, manager, order_a, order_b):
    client.force_login(manager)

    listing = client.get(reverse("orders:order-list")).content.decode()
    assert "#A-100" in listing
    assert "#B-200" not in listing
    for q in ("#B-200", "bob.secret@example.com", "Hidden", "SECRET-SKU"):
        response = client.get(reverse("orders:order-list"), {"q": q})
        assert response.status_code == 200
        assert response.context["page"].items == []


def test_limited_manager_cannot_filter_on_another_channel(client, manager, order_a, order_b):
    client.force_login(manager)

    response = client.get(reverse("orders:order-list"), {"channel": order_b.channel_id})

    assert response.status_code == 200
    assert "channel" in response.context["form"].errors
    assert [o.number for o in response.context["page"].items] == ["#A-100"]


def test_limited_manager_export_holds_only_their_channel(client, manager, order_a, order_b):
    client.force_login(manager)

    rows = _csv(client.get(reverse("orders:order-export")))

    numbers = [row[0] for row in rows[1:]]
    assert numbers == ["#A-100"]


def test_an_order_export_is_audited_with_its_filters(client, manager, order_a):
    client.force_login(manager)

    params = {"q": " #A ", "state": "", "channel": order_a.channel_id, "placed_to": "2099-12-31", "junk": "x" * 50}
    rows = _csv(client.get(reverse("orders:order-export"), params))

    assert [row[0] for row in rows[1:]] == ["#A-100"]
    audit = AuditEntry.objects.get(verb="order.export")
    assert audit.actor == manager
    # The filters the export applied, validated; not whatever the query string carried.
    assert audit.after == {
        "filters": {"q": "#A", "channel_id": order_a.channel_id, "placed_to": "2099-12-31", "sort": "-placed"}
    }
    # A HEAD request takes no rows and is not recorded as an export.
    assert client.head(reverse("orders:order-export")).status_code == 200
    assert AuditEntry.objects.filter(verb="order.export").count() == 1


def test_a_refused_or_invalid_export_is_not_audited(client, packer, manager, order_a):
    client.force_login(packer)
    assert client.get(reverse("orders:order-export")).status_code == 403
    client.force_login(manager)
    assert client.get(reverse("orders:order-export"), {"placed_from": "not a date"}).status_code == 302

    assert not AuditEntry.objects.filter(verb="order.export").exists()


def test_limited_manager_customers_are_scoped(client, manager, order_a, order_b):
    client.force_login(manager)

    listing = client.get(reverse("orders:customer-list"))
    names = [row.customer.full_name for row in listing.context["page"].items]
    assert names == ["Grace Hopper"]
    assert client.get(reverse("orders:customer-list"), {"q": "bob.secret"}).context["page"].items == []
    assert client.get(reverse("orders:customer-detail", args=[order_b.customer_id])).status_code == 404
    assert (
        client.post(reverse("orders:customer-note-add", args=[order_b.customer_id]), {"body": "hi"}, **HX).status_code
        == 404
    )


def test_customer_on_two_channels_shows_only_visible_orders_and_value(client, manager, channel, other_channel):
    shared = ChannelCustomer(external_id="", email="both@example.com", first_name="Sam", last_name="Both")
    mine = ingested_order(channel, number="#MINE", customer=shared, email="both@example.com", total=Decimal("58.55"))
    ingested_order(other_channel, number="#THEIRS", customer=shared, email="both@example.com", total=Decimal("999.00"))
    client.force_login(manager)

    response = client.get(reverse("orders:customer-detail", args=[mine.customer_id]))

    assert response.status_code == 200
    detail = response.context["detail"]
    assert [o.number for o in detail.orders] == ["#MINE"]
    assert [(v.currency, v.total) for v in detail.lifetime_value] == [("USD", Decimal("58.550"))]
    assert "#THEIRS" not in response.content.decode()


def test_limited_manager_channel_page_and_sync_are_scoped(client, manager, channel, other_channel):
    client.force_login(manager)

    page = client.get(reverse("orders:channel-list"))
    assert [o.channel.slug for o in page.context["overviews"]] == ["main-shop"]
    assert client.post(reverse("orders:channel-sync", args=[other_channel.pk])).status_code == 404


def test_limited_manager_cannot_retry_another_channels_event(client, manager, other_channel):
    event = InboundEvent.objects.create(
        channel=other_channel,
        event_key="k1",
        topic="orders/create",
        body="{}",
        status=InboundEvent.Status.FAILED,
        last_error="boom",
    )
    client.force_login(manager)

    assert client.post(reverse("orders:inbound-event-retry", args=[event.pk])).status_code == 404
    event.refresh_from_db()
    assert event.status == InboundEvent.Status.FAILED


# ---------------------------------------------------------------------------------------------------------
# Search, filters, sorting, paging


@pytest.mark.parametrize(
    "q",
    [
        "#A-100",
        "A-100",
        "100",
        "grace@example.com",
        "GRACE@EXAMPLE",
        "Grace",
        "hop",
        "hopper grace",
        "LAMP-BRASS",
        "lamp-b",
    ],
)
def test_search_by_number_email_name_and_sku(client, admin_user, order_a, order_b, q):
    client.force_login(admin_user)

    response = client.get(reverse("orders:order-list"), {"q": q})

    assert [o.number for o in response.context["page"].items] == ["#A-100"]


def test_search_does_not_match_the_middle_of_words(client, admin_user, order_a):
    client.force_login(admin_user)

    response = client.get(reverse("orders:order-list"), {"q": "example.com"})

    assert response.status_code == 200
    assert response.context["page"].items == []


def test_a_very_broad_search_says_only_some_orders_are_listed(client, admin_user, channel, monkeypatch):
    monkeypatch.setattr(selectors, "SEARCH_CANDIDATES", 2)
    for i in range(3):
        ingested_order(channel, number=f"#BROAD-{i}")
    client.force_login(admin_user)

    response = client.get(reverse("orders:order-list"), {"q": "#BROAD"})

    assert response.context["page"].truncated
    assert len(response.context["page"].items) == 2
    assert "only some of them are listed" in response.content.decode()


def test_export_of_a_search_is_complete(client, admin_user, channel, monkeypatch):
    monkeypatch.setattr(selectors, "SEARCH_CANDIDATES", 2)
    for i in range(3):
        ingested_order(channel, number=f"#ALL-{i}")
    client.force_login(admin_user)

    rows = _csv(client.get(reverse("orders:order-export"), {"q": "#ALL"}))

    assert sorted(r[0] for r in rows[1:]) == ["#ALL-0", "#ALL-1", "#ALL-2"]


def test_filters_by_channel_state_and_placed_dates(client, admin_user, channel, other_channel):
    now = timezone.now()
    old = ingested_order(channel, number="#OLD", placed_at=now - timedelta(days=20))
    held = ingested_order(channel, number="#HELD", placed_at=now - timedelta(days=2))
    order_hold(order=held, reason=HoldReason.MANUAL, actor=None)
    ingested_order(other_channel, number="#ELSEWHERE", placed_at=now - timedelta(days=2))
    client.force_login(admin_user)
    url = reverse("orders:order-list")

    def numbers(**params):
        response = client.get(url, params)
        assert response.status_code == 200
        assert not response.context["form"].errors
        return [o.number for o in response.context["page"].items]

    assert numbers(channel=channel.pk) == ["#HELD", "#OLD"]
    assert numbers(state="on_hold") == ["#HELD"]
    start = (now - timedelta(days=25)).date().isoformat()
    end = (now - timedelta(days=10)).date().isoformat()
    assert numbers(placed_from=start, placed_to=end) == ["#OLD"]
    assert numbers(placed_from=(now - timedelta(days=3)).date().isoformat(), channel=channel.pk) == ["#HELD"]
    assert numbers(sort="placed", channel=channel.pk) == ["#OLD", "#HELD"]
    assert old.pk


def test_sort_by_total_and_number(client, admin_user, channel):
    ingested_order(channel, number="#2", total=Decimal("10"))
    ingested_order(channel, number="#1", total=Decimal("30"))
    ingested_order(channel, number="#3", total=Decimal("20"))
    client.force_login(admin_user)
    url = reverse("orders:order-list")

    assert [o.number for o in client.get(url, {"sort": "-total"}).context["page"].items] == ["#1", "#3", "#2"]
    assert [o.number for o in client.get(url, {"sort": "number"}).context["page"].items] == ["#1", "#2", "#3"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"placed_from": "2024-13-45"}, "placed_from"),
        ({"placed_to": "yesterday"}, "placed_to"),
        ({"state": "teleported"}, "state"),
        ({"channel": "abc"}, "channel"),
        ({"channel": "999999"}, "channel"),
        ({"sort": "password"}, "sort"),
        ({"page": "-3"}, "page"),
        ({"page": "x"}, "page"),
        ({"per_page": "100000"}, "per_page"),
        ({"placed_from": "2024-05-10", "placed_to": "2024-05-01"}, "placed_to"),
        ({"placed_to": "9999-12-31"}, "placed_to"),
        ({"placed_from": "0001-01-01"}, "placed_from"),
        ({"q": "x" * 300}, "q"),
        ({"q": "nul\x00byte"}, "q"),
    ],
)
def test_bad_filter_input_is_a_form_error_not_a_500(client, admin_user, order_a, params, field):
    client.force_login(admin_user)

    response = client.get(reverse("orders:order-list"), params)

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert b"Some filters were not applied" in response.content
    # The valid part still applies: the order is listed.
    assert [o.number for o in response.context["page"].items] == ["#A-100"]


def test_export_with_bad_filters_goes_back_to_the_list(client, admin_user, order_a):
    client.force_login(admin_user)

    response = client.get(reverse("orders:order-export"), {"placed_from": "nonsense"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("orders:order-list") + "?placed_from=nonsense")


def test_pages_without_counting_and_links_keep_filters(client, admin_user, channel):
    base = timezone.now() - timedelta(days=1)
    for i in range(30):
        ingested_order(channel, number=f"#P{i:03d}", placed_at=base - timedelta(minutes=i))
    client.force_login(admin_user)
    url = reverse("orders:order-list")

    first = client.get(url, {"per_page": 25, "channel": channel.pk})
    second = client.get(url, {"per_page": 25, "channel": channel.pk, "page": 2})
    beyond = client.get(url, {"per_page": 25, "channel": channel.pk, "page": 9})

    assert len(first.context["page"].items) == 25
    assert first.context["page"].has_next
    html = first.content.decode()
    assert f'href="?per_page=25&amp;channel={channel.pk}&amp;page=2"' in html
    assert [o.number for o in second.context["page"].items] == [f"#P{i:03d}" for i in range(25, 30)]
    assert not second.context["page"].has_next
    assert beyond.status_code == 200
    assert beyond.context["page"].items == []


@pytest.mark.parametrize("per_page", [25, 200])
def test_order_list_queries_are_bounded(client, manager, channel, django_assert_max_num_queries, per_page):
    for i in range(60):
        ingested_order(channel, number=f"#Q{i:03d}")
    client.force_login(manager)
    client.get(reverse("orders:order-list"))  # warm the content-type cache, as a running server has it

    with django_assert_max_num_queries(10):
        response = client.get(reverse("orders:order-list"), {"per_page": per_page, "q": "Q0"})

    assert response.status_code == 200
    assert len(response.context["page"].items) == min(per_page, 60)


# ---------------------------------------------------------------------------------------------------------
# CSV export


def test_export_is_streamed_csv_with_formula_cells_neutralised(client, admin_user, channel):
    ingested_order(
        channel,
        number='=HYPERLINK("http://x")',
        email="eve@example.com",
        customer=ChannelCustomer(external_id="evil", email="eve@example.com", first_name="@SUM(A1)", last_name="x"),
        shipping_method="+cmd|' /C calc'!A0",
        lines=(ChannelLine(external_id="e1", sku="-2+3", title="Evil", quantity=1, unit_price=Decimal("1")),),
    )
    client.force_login(admin_user)

    response = client.get(reverse("orders:order-export"))

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    header, row = _csv(response)
    record = dict(zip(header, row, strict=True))
    assert record["Number"] == '\'=HYPERLINK("http://x")'
    assert record["Customer"] == "'@SUM(A1) x"
    assert record["Shipping method"] == "'+cmd|' /C calc'!A0"
    assert record["Items"] == "1 x -2+3"  # does not start with a formula character
    assert record["Total"] == "58.550"


def test_export_follows_the_current_filters(client, admin_user, channel):
    ingested_order(channel, number="#KEEP", email="keep@example.com")
    ingested_order(channel, number="#DROP", email="drop@example.com")
    client.force_login(admin_user)

    rows = _csv(client.get(reverse("orders:order-export"), {"q": "keep@"}))

    assert [r[0] for r in rows[1:]] == ["#KEEP"]


# ---------------------------------------------------------------------------------------------------------
# Order detail and htmx actions


def test_order_detail_shows_lines_totals_addresses_holds_timeline_and_audit(client, admin_user, channel):
    order = ingested_order(
        channel,
        number="#D-1",
        lines=(
            ChannelLine(external_id="d1", sku="", title="Custom engraving", quantity=1, unit_price=Decimal("15.00")),
        ),
    )
    client.force_login(admin_user)

    response = client.get(reverse("orders:order-detail", args=[order.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Order #D-1" in html
    assert "Custom engraving" in html
    assert "no SKU" in html
    assert "Chestnut Street 92" in html
    assert "58.55 USD" in html
    assert "Unknown SKU" in html  # the automatic hold
    assert "Received from Main Shop" in html  # the timeline
    assert "order.ingest" in html  # the audit trail
    assert 'id="order-live"' in html


def test_order_detail_shows_address_problems(client, admin_user, channel):
    from channels_adapters.base import ChannelAddress

    order = ingested_order(
        channel,
        shipping_address=ChannelAddress(
            name="Al", line1="Main St 1", city="Austin", postal_code="ABCDE", country_code="US"
        ),
    )
    client.force_login(admin_user)

    html = client.get(reverse("orders:order-detail", args=[order.pk])).content.decode()

    assert "Address problems" in html
    assert "postal code" in html


def test_hold_then_release_with_htmx(client, manager, order_a):
    client.force_login(manager)

    held = client.post(
        reverse("orders:order-hold", args=[order_a.pk]), {"reason": "payment_review", "note": "check the card"}, **HX
    )

    assert held.status_code == 200
    assert held.templates[0].name == "orders/_order_live.html"
    html = held.content.decode()
    assert 'id="order-status" hx-swap-oob="true"' in html
    assert "Payment review" in html
    assert "check the card" in html
    order_a.refresh_from_db()
    assert order_a.status == OrderStatus.ON_HOLD
    hold_audit = _audit(order_a, "order.hold")
    assert [a.actor for a in hold_audit] == [manager]

    released = client.post(reverse("orders:order-release", args=[order_a.pk]), {"note": "card fine"}, **HX)

    assert released.status_code == 200
    order_a.refresh_from_db()
    assert order_a.status == OrderStatus.READY
    assert [a.actor for a in _audit(order_a, "order.release")] == [manager]
    assert "Hold released." in released.content.decode()


def test_release_one_hold_of_two(client, admin_user, order_a):
    order_hold(order=order_a, reason=HoldReason.MANUAL, note="first", actor=None)
    order_hold(order=order_a, reason=HoldReason.PAYMENT_REVIEW, note="second", actor=None)
    manual = order_a.holds.get(reason=HoldReason.MANUAL)
    client.force_login(admin_user)

    response = client.post(reverse("orders:order-release", args=[order_a.pk]), {"hold": manual.pk}, **HX)

    assert response.status_code == 200
    order_a.refresh_from_db()
    assert order_a.status == OrderStatus.ON_HOLD
    assert list(order_a.holds.filter(released_at__isnull=True).values_list("reason", flat=True)) == [
        HoldReason.PAYMENT_REVIEW
    ]


def test_cancel_with_htmx_needs_a_reason(client, manager, order_a):
    client.force_login(manager)

    missing = client.post(reverse("orders:order-cancel", args=[order_a.pk]), {"reason": "  "}, **HX)

    assert missing.status_code == 422
    assert "Give a reason for the cancellation." in missing.content.decode()
    order_a.refresh_from_db()
    assert order_a.status == OrderStatus.READY

    done = client.post(reverse("orders:order-cancel", args=[order_a.pk]), {"reason": "customer asked"}, **HX)

    assert done.status_code == 200
    order_a.refresh_from_db()
    assert order_a.status == OrderStatus.CANCELLED
    assert order_a.cancel_reason == "customer asked"
    transition = _audit(order_a, "order.transition")[0]
    assert (transition.actor, transition.after, transition.reason) == (
        manager,
        {"status": "cancelled"},
        "customer asked",
    )


def test_cancelling_a_shipped_order_is_a_4xx_partial_in_words(client, admin_user, order_a):
    for step in (OrderStatus.PICKING, OrderStatus.PACKED, OrderStatus.SHIPPED):
        order_transition(order=order_a, to=step, actor=None)
    client.force_login(admin_user)

    response = client.post(reverse("orders:order-cancel", args=[order_a.pk]), {"reason": "too late"}, **HX)

    assert response.status_code == 409
    html = response.content.decode()
    assert 'id="order-live"' in html
    assert "cannot go from Shipped to Cancelled" in html
    order_a.refresh_from_db()
    assert order_a.status == OrderStatus.SHIPPED


def test_releasing_without_a_hold_is_a_4xx_partial(client, admin_user, order_a):
    client.force_login(admin_user)

    response = client.post(reverse("orders:order-release", args=[order_a.pk]), {"note": ""}, **HX)

    assert response.status_code == 409
    assert "no open hold to release" in response.content.decode()


def test_hold_with_an_unknown_reason_is_a_form_error(client, admin_user, order_a):
    client.force_login(admin_user)

    response = client.post(reverse("orders:order-hold", args=[order_a.pk]), {"reason": "because"}, **HX)

    assert response.status_code == 422
    assert "Select a valid choice" in response.content.decode()
    order_a.refresh_from_db()
    assert order_a.status == OrderStatus.READY


def test_plain_post_redirects_back_with_a_message(client, admin_user, order_a):
    client.force_login(admin_user)

    response = client.post(
        reverse("orders:order-hold", args=[order_a.pk]), {"reason": "manual", "note": "x"}, follow=True
    )

    assert response.redirect_chain == [(reverse("orders:order-detail", args=[order_a.pk]), 302)]
    assert "Order put on hold." in response.content.decode()
    order_a.refresh_from_db()
    assert order_a.status == OrderStatus.ON_HOLD

    refused = client.post(reverse("orders:order-cancel", args=[order_a.pk]), {"reason": ""}, follow=True)
    assert "Give a reason for the cancellation." in refused.content.decode()


def test_detail_offers_only_the_actions_the_role_and_state_allow(client, warehouse_user, order_a):
    client.force_login(warehouse_user)

    html = client.get(reverse("orders:order-detail", args=[order_a.pk])).content.decode()

    assert 'data-action="hold"' in html
    assert 'data-action="release"' not in html
    assert 'data-action="cancel"' not in html


# ---------------------------------------------------------------------------------------------------------
# Customers


def test_customer_search_by_name_email_and_phone(client, admin_user, channel):
    ingested_order(
        channel,
        customer=ChannelCustomer(
            external_id="c9",
            email="ada@lovelace.example",
            first_name="Ada",
            last_name="Lovelace",
            phone="+1 502 555 0142",
        ),
    )
    ingested_order(channel)
    client.force_login(admin_user)
    url = reverse("orders:customer-list")

    for q in ("Lovelace", "ada lovelace", "ada@lovelace", "555 0142", "5025550142"):
        rows = client.get(url, {"q": q}).context["page"].items
        assert [r.customer.last_name for r in rows] == ["Lovelace"], q


def test_customer_detail_lists_orders_identities_and_lifetime_value(client, admin_user, channel, other_channel):
    who = ChannelCustomer(external_id="id-1", email="repeat@example.com", first_name="Rae", last_name="Peat")
    first = ingested_order(channel, customer=who, total=Decimal("100.00"), currency="USD")
    ingested_order(channel, customer=who, total=Decimal("50.00"), currency="USD")
    ingested_order(
        other_channel,
        customer=ChannelCustomer(external_id="eu-9", email="repeat@example.com"),
        total=Decimal("70.00"),
        currency="EUR",
    )
    cancelled = ingested_order(channel, customer=who, total=Decimal("999.00"), currency="USD")
    from oms.orders.services import order_cancel

    order_cancel(order=cancelled, actor=None, reason="test")
    client.force_login(admin_user)

    response = client.get(reverse("orders:customer-detail", args=[first.customer_id]))

    detail = response.context["detail"]
    assert len(detail.orders) == 4
    assert [(v.currency, v.total, v.orders) for v in detail.lifetime_value] == [
        ("EUR", Decimal("70.000"), 1),
        ("USD", Decimal("150.000"), 2),
    ]
    assert sorted((i.channel.slug, i.external_id) for i in detail.identities) == [
        ("eu-shop", "eu-9"),
        ("main-shop", "id-1"),
    ]
    html = response.content.decode()
    assert "150.00 USD" in html
    assert "70.00 EUR" in html


def test_customer_note_with_htmx(client, manager, order_a):
    client.force_login(manager)
    url = reverse("orders:customer-note-add", args=[order_a.customer_id])

    empty = client.post(url, {"body": "   "}, **HX)
    added = client.post(url, {"body": "Prefers DHL"}, **HX)

    assert empty.status_code == 422
    assert "A note cannot be empty." in empty.content.decode()
    assert added.status_code == 200
    assert 'id="customer-notes"' in added.content.decode()
    assert "Prefers DHL" in added.content.decode()
    assert order_a.customer.notes.get().author == manager


def test_customer_note_needs_the_permission(client, warehouse_user, order_a):
    client.force_login(warehouse_user)

    response = client.post(reverse("orders:customer-note-add", args=[order_a.customer_id]), {"body": "x"}, **HX)

    assert response.status_code == 403


# ---------------------------------------------------------------------------------------------------------
# Channels and syncs


def test_channel_page_shows_webhook_url_cursor_runs_and_failed_events(client, admin_user, channel):
    channel.orders_synced_until = timezone.now() - timedelta(minutes=5)
    channel.save()
    SyncRun.objects.create(
        channel=channel,
        trigger="schedule",
        status=SyncRun.Status.PARTIAL,
        pages=2,
        records=40,
        created=3,
        updated=5,
        error_count=1,
        errors=["order #9: bad currency"],
        finished_at=timezone.now(),
    )
    InboundEvent.objects.create(
        channel=channel,
        event_key="e-1",
        topic="orders/create",
        body="{}",
        status=InboundEvent.Status.FAILED,
        last_error="InvalidPayload: no line items",
    )
    client.force_login(admin_user)

    response = client.get(reverse("orders:channel-list"))

    html = response.content.decode()
    assert "http://testserver/webhooks/main-shop/" in html
    assert "Finished with errors" in html
    assert "order #9: bad currency" in html
    assert "InvalidPayload: no line items" in html
    assert "Sync now" in html
    assert "Retry" in html


def test_sync_now_enqueues_the_backfill_job_which_pulls_orders(client, admin_user, django_capture_on_commit_callbacks):
    with ShopifyEmulator() as emulator:
        now = timezone.now()
        for i in range(3):
            emulator.add_order(created_at=now - timedelta(hours=i + 1), updated_at=now - timedelta(hours=i))
        shop = sales_channel(
            slug="emulated",
            name="Emulated shop",
            api_base_url=emulator.base_url,
            options={"shop_domain": emulator.shop_domain},
            credentials={"access_token": emulator.access_token},
        )
        client.force_login(admin_user)

        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = client.post(reverse("orders:channel-sync", args=[shop.pk]))

    assert response.status_code == 302
    assert callbacks  # the sync job, then what it set off (alerts for orders of SKUs the catalog lacks)
    run = SyncRun.objects.get(channel=shop)  # one run: the button enqueued one job
    assert (run.trigger, run.status, run.created) == ("button", SyncRun.Status.SUCCEEDED, 3)
    assert Order.objects.filter(channel=shop).count() == 3


def test_sync_now_needs_the_permission(client, warehouse_user, channel):
    client.force_login(warehouse_user)

    assert client.post(reverse("orders:channel-sync", args=[channel.pk])).status_code == 403


def test_retry_puts_a_failed_event_back_in_the_queue(client, manager, channel, django_capture_on_commit_callbacks):
    event = InboundEvent.objects.create(
        channel=channel,
        event_key="e-2",
        topic="orders/create",
        body="{}",
        status=InboundEvent.Status.FAILED,
        attempts=8,
        last_error="boom",
    )
    client.force_login(manager)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("orders:inbound-event-retry", args=[event.pk]), follow=True)

    assert response.status_code == 200
    event.refresh_from_db()
    assert (event.status, event.attempts) == (InboundEvent.Status.PENDING, 0)
    assert len(callbacks) == 1
    assert "queued again" in response.content.decode()
    again = client.post(reverse("orders:inbound-event-retry", args=[event.pk]), follow=True)
    assert again.status_code == 200


def test_retry_of_a_processed_event_is_refused_in_words(client, admin_user, channel):
    event = InboundEvent.objects.create(
        channel=channel, event_key="e-3", topic="orders/create", body="{}", status=InboundEvent.Status.PROCESSED
    )
    client.force_login(admin_user)

    response = client.post(reverse("orders:inbound-event-retry", args=[event.pk]), follow=True)

    assert "Not retried" in response.content.decode()


# ---------------------------------------------------------------------------------------------------------
# Packing


def test_packing_page_counts_ready_orders_and_lists_the_most_urgent(client, packer, channel):
    today = timezone.localdate()
    late = ingested_order(channel, number="#LATE", ship_by=today - timedelta(days=1))
    ingested_order(channel, number="#SOON", ship_by=today + timedelta(days=1))
    ingested_order(channel, number="#UNPAID", payment_status=PaymentStatus.PENDING)
    client.force_login(packer)

    response = client.get(reverse("orders:packing"))

    overview = response.context["overview"]
    assert (overview.ready_count, overview.overdue_count) == (2, 1)
    assert [o.number for o in overview.oldest] == ["#LATE", "#SOON"]
    html = response.content.decode()
    assert f'href="{reverse("dispatch:pack")}" data-start-packing>Start packing</a>' in html
    assert "later release" not in html
    assert reverse("orders:order-detail", args=[late.pk]) not in html  # packers cannot open orders yet

"""The stock screens through the Django test client: access per role, channel scoping of listings and mismatches,
search and filters, bounded queries, receive / adjust / transfer with their errors, and the stock-take flow."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from inventory.models import (
    Bin,
    ChannelListing,
    MismatchKind,
    MovementReason,
    StockLevel,
    StockMismatch,
    StockMovement,
    Variant,
)
from inventory.services import LineRequest, bundle_set_components, stock_allocate
from tests.factories import location, stocked, variant

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
LAMP_BARCODE = "4006381333931"
VASE_BARCODE = "4006381333948"


@pytest.fixture
def catalog(db):
    main = location("main", name="Main warehouse", priority=10)
    shop = location("shop", name="Shop back room", priority=20)
    Bin.objects.create(location=main, code="A-01")
    lamp = stocked("LAMP-BRASS", 20, at=main, barcode=LAMP_BARCODE, low_stock_threshold=3, product_title="Brass lamp")
    StockLevel.objects.filter(variant=lamp, location=main).update(bin=Bin.objects.get(code="A-01"))
    vase = stocked("VASE-TALL", 2, at=main, barcode=VASE_BARCODE, low_stock_threshold=5, product_title="Bud vase")
    cup = variant("CUP-EMPTY", product_title="Espresso cup")
    old = variant("OLD-THING", active=False, product_title="Retired thing")
    kit = variant("KIT-LAMP-VASE", product_title="Gift set")
    bundle_set_components(bundle=kit, components=[(lamp, 1), (vase, 2)], actor=None)
    return SimpleNamespace(main=main, shop=shop, lamp=lamp, vase=vase, cup=cup, old=old, kit=kit)


@pytest.fixture
def listed(catalog, channel, other_channel):
    """The lamp listed on both channels, with an open mismatch on each."""
    now = timezone.now()
    for ch, ext in ((channel, "gid://main/1"), (other_channel, "gid://eu/1")):
        listing = ChannelListing.objects.create(
            channel=ch,
            variant=catalog.lamp,
            external_id=ext,
            channel_sku="LAMP-BRASS",
            buffer=2,
            last_pushed_quantity=18,
            last_pushed_at=now,
            last_seen_quantity=15,
            last_seen_at=now,
            push_failures=1 if ch == other_channel else 0,
            last_error="429 Too Many Requests" if ch == other_channel else "",
        )
        StockMismatch.objects.create(
            channel=ch,
            kind=MismatchKind.QUANTITY_DRIFT,
            listing=listing,
            variant=catalog.lamp,
            sku="LAMP-BRASS",
            external_id=ext,
            master_quantity=18,
            channel_quantity=15 if ch == channel else 11,
            last_pushed_quantity=18,
        )
    return catalog


def _skus(response) -> list[str]:
    return [v.sku for v in response.context["page"].items]


# ---------------------------------------------------------------------------------------------------------
# Who may open what

PAGES = ["list", "detail", "count", "sheet", "mismatches"]
EXPECTED = {
    "admin_user": {"list": 200, "detail": 200, "count": 200, "sheet": 200, "mismatches": 200},
    "manager": {"list": 200, "detail": 200, "count": 200, "sheet": 200, "mismatches": 200},
    "warehouse_user": {"list": 200, "detail": 200, "count": 200, "sheet": 200, "mismatches": 403},
    "packer": {"list": 403, "detail": 403, "count": 403, "sheet": 403, "mismatches": 403},
}


def _url(page: str, catalog) -> str:
    return {
        "list": reverse("inventory:sku-list"),
        "detail": reverse("inventory:sku-detail", args=[catalog.lamp.pk]),
        "count": reverse("inventory:count-start"),
        "sheet": reverse("inventory:count-sheet", args=["main"]),
        "mismatches": reverse("inventory:mismatch-list"),
    }[page]


@pytest.mark.parametrize("role", list(EXPECTED))
def test_each_role_gets_exactly_its_stock_screens(client, request, catalog, role):
    client.force_login(request.getfixturevalue(role))

    got = {page: client.get(_url(page, catalog)).status_code for page in PAGES}

    assert got == EXPECTED[role]


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("sku-receive", {"location": "1", "quantity": "5"}),
        ("sku-adjust", {"location": "1", "delta": "-1", "reason": "damaged"}),
        ("sku-transfer", {"source": "1", "target": "2", "quantity": "1"}),
    ],
)
def test_packer_cannot_move_stock(client, packer, catalog, action, data):
    client.force_login(packer)

    response = client.post(reverse(f"inventory:{action}", args=[catalog.lamp.pk]), data, **HX)

    assert response.status_code == 403
    assert response["HX-Retarget"] == "#toasts"
    assert StockMovement.objects.filter(variant=catalog.lamp).count() == 1  # the opening receipt only


def test_packer_cannot_scan_or_post_a_count(client, packer, catalog):
    client.force_login(packer)

    assert client.post(reverse("inventory:count-scan", args=["main"]), {"code": LAMP_BARCODE}).status_code == 403
    assert client.post(reverse("inventory:count-post", args=["main"])).status_code == 403


def test_stock_views_refuse_get_for_writes(client, admin_user, catalog):
    client.force_login(admin_user)

    assert client.get(reverse("inventory:sku-receive", args=[catalog.lamp.pk])).status_code == 405
    assert client.get(reverse("inventory:count-post", args=["main"])).status_code == 405


def test_unknown_sku_and_location_are_404(client, warehouse_user, catalog):
    client.force_login(warehouse_user)

    assert client.get(reverse("inventory:sku-detail", args=[999999])).status_code == 404
    assert client.get(reverse("inventory:count-sheet", args=["nowhere"])).status_code == 404


# ---------------------------------------------------------------------------------------------------------
# The SKU list: columns, search, filters, sorting, queries


def test_list_shows_totals_and_bundle_kits(client, warehouse_user, catalog):
    stock_allocate(reference="order:1", lines=[LineRequest(line="1", sku="LAMP-BRASS", quantity=4)])
    client.force_login(warehouse_user)

    response = client.get(reverse("inventory:sku-list"))

    rows = {v.sku: v for v in response.context["page"].items}
    assert set(rows) == {"LAMP-BRASS", "VASE-TALL", "CUP-EMPTY", "KIT-LAMP-VASE"}  # active only by default
    lamp = rows["LAMP-BRASS"]
    assert (lamp.on_hand_total, lamp.allocated_total, lamp.available) == (20, 4, 16)
    assert rows["CUP-EMPTY"].available == 0
    assert rows["KIT-LAMP-VASE"].available == 1  # 2 vases, 2 per kit
    html = response.content.decode()
    assert 'data-sku="KIT-LAMP-VASE"' in html
    assert "kits" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "lamp-"}, ["LAMP-BRASS"]),  # SKU prefix, any case
        ({"q": VASE_BARCODE}, ["VASE-TALL"]),  # barcode
        ({"q": "espresso"}, ["CUP-EMPTY"]),  # product title
        ({"stock": "low"}, ["VASE-TALL"]),  # 2 available, line at 5
        ({"stock": "out"}, ["CUP-EMPTY"]),
        ({"kind": "bundles"}, ["KIT-LAMP-VASE"]),
        ({"kind": "inactive"}, ["OLD-THING"]),
        ({"kind": "all", "sort": "-sku"}, ["VASE-TALL", "OLD-THING", "LAMP-BRASS", "KIT-LAMP-VASE", "CUP-EMPTY"]),
        ({"sort": "-available"}, ["LAMP-BRASS", "VASE-TALL", "KIT-LAMP-VASE", "CUP-EMPTY"]),
    ],
)
def test_list_search_and_filters(client, warehouse_user, catalog, query, expected):
    client.force_login(warehouse_user)

    response = client.get(reverse("inventory:sku-list"), query)

    assert response.status_code == 200
    assert _skus(response) == expected


def test_list_filters_mismatched_and_scopes_channels_to_the_manager(client, manager, listed):
    client.force_login(manager)

    response = client.get(reverse("inventory:sku-list"), {"stock": "mismatched"})

    assert _skus(response) == ["LAMP-BRASS"]
    lamp = response.context["page"].items[0]
    assert [c.name for c in lamp.listed_on] == ["Main Shop"]
    assert lamp.open_mismatches == 1  # the EU Shop's mismatch is not this manager's
    assert "EU Shop" not in response.content.decode()


def test_a_bad_filter_is_a_form_error_not_a_crash(client, warehouse_user, catalog):
    client.force_login(warehouse_user)

    response = client.get(reverse("inventory:sku-list"), {"stock": "nonsense", "page": "0", "sort": "drop table"})

    assert response.status_code == 200
    assert b"Some filters were not applied" in response.content
    assert len(_skus(response)) == 4


def test_list_pages_without_counting(client, warehouse_user, catalog):
    for n in range(7):
        variant(f"ZZ-{n:02d}")
    client.force_login(warehouse_user)

    first = client.get(reverse("inventory:sku-list"), {"per_page": 25, "sort": "sku"})
    assert first.context["page"].has_next is False

    with CaptureQueriesContext(connection) as ctx:
        client.get(reverse("inventory:sku-list"), {"per_page": 25})
    assert not any("COUNT(*)" in q["sql"] and "inventory_variant" in q["sql"] for q in ctx.captured_queries)


@pytest.mark.parametrize("extra_skus", [0, 60])
def test_list_queries_are_few_and_constant(
    client, manager, listed, django_assert_max_num_queries, extra_skus, other_channel
):
    for n in range(extra_skus):
        v = stocked(f"BULK-{n:03d}", 3)
        ChannelListing.objects.create(channel=listed.lamp.listings.first().channel, variant=v, external_id=f"b{n}")
    client.force_login(manager)
    client.get(reverse("inventory:sku-list"))  # warm the content-type cache

    with django_assert_max_num_queries(10):
        response = client.get(reverse("inventory:sku-list"), {"per_page": 100})

    assert len(response.context["page"].items) == Variant.objects.filter(active=True).count()


# ---------------------------------------------------------------------------------------------------------
# SKU detail


def test_detail_shows_levels_listings_mismatches_allocations_and_movements(client, manager, listed):
    reference = "order:4242"
    stock_allocate(reference=reference, lines=[LineRequest(line="7", sku="LAMP-BRASS", quantity=3)])
    client.force_login(manager)

    response = client.get(reverse("inventory:sku-detail", args=[listed.lamp.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    detail = response.context["detail"]
    assert [(lv.location.code, lv.on_hand, lv.allocated) for lv in detail.levels] == [("main", 20, 3)]
    assert "A-01" in html  # the bin
    assert [row.listing.channel.name for row in detail.listings] == ["Main Shop"]
    assert detail.listings[0].would_show == 15  # 17 available minus the buffer of 2
    assert "gid://main/1" in html
    assert "gid://eu/1" not in html  # another channel's listing
    assert [m.channel.name for m in detail.mismatches] == ["Main Shop"]
    assert 'href="/orders/4242/"' in html  # the order that holds units
    movements = response.context["movements"].items
    assert [m.reason for m in movements] == [MovementReason.SALE, MovementReason.RECEIVE]  # newest first
    assert "test stock" in html


def test_detail_of_a_bundle_shows_components_and_no_stock_actions(client, warehouse_user, catalog):
    client.force_login(warehouse_user)

    response = client.get(reverse("inventory:sku-detail", args=[catalog.kit.pk]))

    html = response.content.decode()
    assert [(c.component.sku, c.quantity, c.kits) for c in response.context["detail"].components] == [
        ("LAMP-BRASS", 1, 20),
        ("VASE-TALL", 2, 1),
    ]
    assert response.context["can_receive"] is False
    assert "Receive…" not in html
    assert "holds no stock of its own" in html


def test_detail_of_a_component_names_its_bundles(client, warehouse_user, catalog):
    client.force_login(warehouse_user)

    response = client.get(reverse("inventory:sku-detail", args=[catalog.vase.pk]))

    assert [bc.bundle.sku for bc in response.context["detail"].part_of] == ["KIT-LAMP-VASE"]


def test_movement_history_is_paginated_newest_first(client, warehouse_user, catalog, django_assert_max_num_queries):
    client.force_login(warehouse_user)
    for n in range(30):
        client.post(
            reverse("inventory:sku-receive", args=[catalog.lamp.pk]),
            {"location": catalog.main.pk, "quantity": 1, "reference": f"PO-{n}"},
            **HX,
        )

    first = client.get(reverse("inventory:sku-detail", args=[catalog.lamp.pk]))
    with django_assert_max_num_queries(20):
        second = client.get(reverse("inventory:sku-detail", args=[catalog.lamp.pk]), {"page": 2})

    assert [m.reference for m in first.context["movements"].items[:2]] == ["PO-29", "PO-28"]
    assert first.context["movements"].has_next
    assert [m.reference for m in second.context["movements"].items][-1] == ""  # the opening receipt, oldest
    assert not second.context["movements"].has_next


# ---------------------------------------------------------------------------------------------------------
# Receive, adjust, transfer


def test_warehouse_receives_units_with_htmx(client, warehouse_user, catalog):
    client.force_login(warehouse_user)

    response = client.post(
        reverse("inventory:sku-receive", args=[catalog.lamp.pk]),
        {"location": catalog.shop.pk, "quantity": "5", "reference": "PO-77", "note": "pallet 3"},
        **HX,
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "Stock received." in html
    assert 'id="sku-levels" hx-swap-oob="true"' in html
    assert 'id="sku-movements" hx-swap-oob="true"' in html
    level = StockLevel.objects.get(variant=catalog.lamp, location=catalog.shop)
    assert level.on_hand == 5
    movement = StockMovement.objects.filter(variant=catalog.lamp).first()
    assert movement is not None
    assert (movement.reason, movement.delta_on_hand, movement.reference, movement.note) == (
        MovementReason.RECEIVE,
        5,
        "PO-77",
        "pallet 3",
    )
    assert movement.actor == warehouse_user


def test_receive_without_htmx_redirects_with_a_message(client, warehouse_user, catalog):
    client.force_login(warehouse_user)

    response = client.post(
        reverse("inventory:sku-receive", args=[catalog.lamp.pk]), {"location": catalog.main.pk, "quantity": "2"}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("inventory:sku-detail", args=[catalog.lamp.pk])
    assert StockLevel.objects.get(variant=catalog.lamp, location=catalog.main).on_hand == 22


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"quantity": "0"}, "greater than or equal to 1"),
        ({"quantity": "abc"}, "Enter a whole number"),
        ({"quantity": "3", "location": "999"}, "Select a valid choice"),
    ],
)
def test_receive_with_bad_input_is_a_form_error(client, warehouse_user, catalog, data, message):
    client.force_login(warehouse_user)
    payload = {"location": str(catalog.main.pk), **data}

    response = client.post(reverse("inventory:sku-receive", args=[catalog.lamp.pk]), payload, **HX)

    assert response.status_code == 422
    assert message in response.content.decode()
    assert StockMovement.objects.filter(variant=catalog.lamp).count() == 1


def test_adjust_with_a_reason_writes_the_ledger(client, warehouse_user, catalog):
    client.force_login(warehouse_user)

    response = client.post(
        reverse("inventory:sku-adjust", args=[catalog.lamp.pk]),
        {"location": catalog.main.pk, "delta": "-2", "reason": "damaged", "note": "dropped"},
        **HX,
    )

    assert response.status_code == 200
    movement = StockMovement.objects.filter(variant=catalog.lamp).first()
    assert movement is not None
    assert (movement.reason, movement.delta_on_hand, movement.note) == (MovementReason.ADJUST, -2, "Damaged: dropped")
    assert StockLevel.objects.get(variant=catalog.lamp, location=catalog.main).on_hand == 18


def test_adjust_correction_is_booked_as_a_correction(client, warehouse_user, catalog):
    client.force_login(warehouse_user)

    client.post(
        reverse("inventory:sku-adjust", args=[catalog.vase.pk]),
        {"location": catalog.main.pk, "delta": "3", "reason": "correction"},
        **HX,
    )

    movement = StockMovement.objects.filter(variant=catalog.vase).first()
    assert movement is not None
    assert movement.reason == MovementReason.CORRECTION


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"delta": "0", "reason": "found"}, "A change of 0 changes nothing"),
        ({"delta": "4", "reason": "other"}, "Say why the stock changes."),
    ],
)
def test_adjust_with_bad_input_is_a_form_error(client, warehouse_user, catalog, data, message):
    client.force_login(warehouse_user)

    response = client.post(
        reverse("inventory:sku-adjust", args=[catalog.lamp.pk]), {"location": catalog.main.pk, **data}, **HX
    )

    assert response.status_code == 422
    assert message in response.content.decode()


def test_adjust_below_what_orders_hold_is_a_stock_error_not_a_500(client, warehouse_user, catalog):
    stock_allocate(reference="order:9", lines=[LineRequest(line="1", sku="LAMP-BRASS", quantity=15)])
    client.force_login(warehouse_user)

    response = client.post(
        reverse("inventory:sku-adjust", args=[catalog.lamp.pk]),
        {"location": catalog.main.pk, "delta": "-10", "reason": "lost"},
        **HX,
    )

    assert response.status_code == 422
    html = response.content.decode()
    assert "data-action-error" in html
    assert "allocated to open orders" in html
    assert '<details class="action" open>' in html  # the adjust form is re-opened with the error beside it
    assert StockLevel.objects.get(variant=catalog.lamp, location=catalog.main).on_hand == 20


def test_adjusting_a_bundle_is_refused_with_the_reason(client, warehouse_user, catalog):
    client.force_login(warehouse_user)

    response = client.post(
        reverse("inventory:sku-adjust", args=[catalog.kit.pk]),
        {"location": catalog.main.pk, "delta": "1", "reason": "found"},
        **HX,
    )

    assert response.status_code == 422
    assert "is a bundle" in response.content.decode()


def test_transfer_moves_units_between_locations(client, warehouse_user, catalog):
    client.force_login(warehouse_user)

    response = client.post(
        reverse("inventory:sku-transfer", args=[catalog.lamp.pk]),
        {"source": catalog.main.pk, "target": catalog.shop.pk, "quantity": "6"},
        **HX,
    )

    assert response.status_code == 200
    assert StockLevel.objects.get(variant=catalog.lamp, location=catalog.main).on_hand == 14
    assert StockLevel.objects.get(variant=catalog.lamp, location=catalog.shop).on_hand == 6
    rows = StockMovement.objects.filter(variant=catalog.lamp, reason=MovementReason.TRANSFER)
    assert sorted(rows.values_list("delta_on_hand", flat=True)) == [-6, 6]


def test_transfer_of_more_than_is_free_is_a_form_error(client, warehouse_user, catalog):
    client.force_login(warehouse_user)

    response = client.post(
        reverse("inventory:sku-transfer", args=[catalog.lamp.pk]),
        {"source": catalog.main.pk, "target": catalog.shop.pk, "quantity": "21"},
        **HX,
    )

    assert response.status_code == 422
    assert "only 20 free to move" in response.content.decode()
    assert not StockMovement.objects.filter(reason=MovementReason.TRANSFER).exists()


def test_transfer_to_the_same_location_is_a_form_error(client, warehouse_user, catalog):
    client.force_login(warehouse_user)

    response = client.post(
        reverse("inventory:sku-transfer", args=[catalog.lamp.pk]),
        {"source": catalog.main.pk, "target": catalog.main.pk, "quantity": "1"},
        **HX,
    )

    assert response.status_code == 422
    assert "two different locations" in response.content.decode()


# ---------------------------------------------------------------------------------------------------------
# Stock-take by scanner


def _scan(client, code: str, quantity: str = "", where: str = "main"):
    data = {"code": code}
    if quantity:
        data["quantity"] = quantity
    return client.post(reverse("inventory:count-scan", args=[where]), data, **HX)


def _sheet(response) -> dict[str, tuple[int, int, int]]:
    return {r.variant.sku: (r.expected, r.counted, r.difference) for r in response.context["rows"]}


def test_stocktake_scan_count_reload_and_post(client, warehouse_user, catalog):
    client.force_login(warehouse_user)
    client.get(reverse("inventory:count-sheet", args=["main"]))

    first = _scan(client, LAMP_BARCODE)
    assert first.status_code == 200
    assert _sheet(first) == {"LAMP-BRASS": (20, 1, -19)}
    _scan(client, LAMP_BARCODE, quantity="4")  # five lamps now
    third = _scan(client, "vase-tall")  # a typed SKU, any case
    assert _sheet(third) == {"VASE-TALL": (2, 1, -1), "LAMP-BRASS": (20, 5, -15)}
    assert [r.variant.sku for r in third.context["rows"]] == ["VASE-TALL", "LAMP-BRASS"]  # last scanned first

    # A reload keeps the count: it lives on the server.
    reloaded = client.get(reverse("inventory:count-sheet", args=["main"]))
    assert _sheet(reloaded) == {"VASE-TALL": (2, 1, -1), "LAMP-BRASS": (20, 5, -15)}
    assert 'data-sku="LAMP-BRASS"' in reloaded.content.decode()

    # Typed quantity for one row.
    typed = client.post(reverse("inventory:count-set", args=["main", catalog.vase.pk]), {"counted": "3"}, **HX)
    assert _sheet(typed)["VASE-TALL"] == (2, 3, 1)

    posted = client.post(reverse("inventory:count-post", args=["main"]), **HX)

    assert posted.status_code == 200
    assert "Stock-take posted: 2 SKUs counted, 2 corrected" in posted.content.decode()
    counts = StockMovement.objects.filter(reason=MovementReason.COUNT)
    assert sorted(counts.values_list("variant__sku", "delta_on_hand")) == [("LAMP-BRASS", -15), ("VASE-TALL", 1)]
    assert all(m.actor == warehouse_user for m in counts)
    assert StockLevel.objects.get(variant=catalog.lamp, location=catalog.main).on_hand == 5
    assert StockLevel.objects.get(variant=catalog.vase, location=catalog.main).on_hand == 3
    # The ledger still sums to the levels.
    for level in StockLevel.objects.all():
        total = StockMovement.objects.filter(variant=level.variant, location=level.location).aggregate(
            n=Sum("delta_on_hand")
        )["n"]
        assert total == level.on_hand
    # And the count is finished.
    assert _sheet(client.get(reverse("inventory:count-sheet", args=["main"]))) == {}


def test_a_matching_count_posts_no_ledger_row(client, warehouse_user, catalog):
    client.force_login(warehouse_user)
    _scan(client, VASE_BARCODE, quantity="2")

    posted = client.post(reverse("inventory:count-post", args=["main"]), **HX)

    assert "1 matched the books" in posted.content.decode()
    assert not StockMovement.objects.filter(reason=MovementReason.COUNT).exists()


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("0000000000000", "Unknown barcode or SKU"),
        ("KIT-LAMP-VASE", "is a bundle"),
        ("   ", "Nothing was scanned"),
    ],
)
def test_a_refused_scan_is_loud_and_counts_nothing(client, warehouse_user, catalog, code, message):
    client.force_login(warehouse_user)
    _scan(client, LAMP_BARCODE)

    response = _scan(client, code)

    assert response.status_code == 422
    html = response.content.decode()
    assert "data-scan-error" in html
    assert 'role="alert"' in html
    assert message in html
    assert _sheet(response) == {"LAMP-BRASS": (20, 1, -19)}


def test_a_barcode_on_two_skus_is_refused(client, warehouse_user, catalog):
    variant("LAMP-COPY", barcode=LAMP_BARCODE)
    client.force_login(warehouse_user)

    response = _scan(client, LAMP_BARCODE)

    assert response.status_code == 422
    assert "on several SKUs" in response.content.decode()


def test_a_count_below_what_orders_hold_posts_nothing_and_names_the_sku(client, warehouse_user, catalog):
    stock_allocate(reference="order:5", lines=[LineRequest(line="1", sku="LAMP-BRASS", quantity=10)])
    client.force_login(warehouse_user)
    _scan(client, VASE_BARCODE, quantity="7")  # would post fine on its own
    _scan(client, LAMP_BARCODE, quantity="4")  # but 10 lamps are allocated

    response = client.post(reverse("inventory:count-post", args=["main"]), **HX)

    assert response.status_code == 409
    html = response.content.decode()
    assert "Nothing was posted." in html
    assert "LAMP-BRASS" in html
    assert "row-alert" in html
    assert not StockMovement.objects.filter(reason=MovementReason.COUNT).exists()
    assert StockLevel.objects.get(variant=catalog.vase, location=catalog.main).on_hand == 2
    # The count is kept, to be corrected and posted again.
    assert _sheet(response) == {"LAMP-BRASS": (20, 4, -16), "VASE-TALL": (2, 7, 5)}


def test_posting_an_empty_count_is_refused(client, warehouse_user, catalog):
    client.force_login(warehouse_user)

    response = client.post(reverse("inventory:count-post", args=["main"]), **HX)

    assert response.status_code == 422
    assert "Nothing has been counted yet." in response.content.decode()


def test_remove_and_discard(client, warehouse_user, catalog):
    client.force_login(warehouse_user)
    _scan(client, LAMP_BARCODE)
    _scan(client, VASE_BARCODE)

    removed = client.post(reverse("inventory:count-set", args=["main", catalog.lamp.pk]), {"remove": "1"}, **HX)
    assert list(_sheet(removed)) == ["VASE-TALL"]

    discarded = client.post(reverse("inventory:count-discard", args=["main"]), **HX)
    assert _sheet(discarded) == {}
    assert not StockMovement.objects.filter(reason=MovementReason.COUNT).exists()


def test_counts_of_two_locations_are_kept_apart(client, warehouse_user, catalog):
    client.force_login(warehouse_user)
    _scan(client, LAMP_BARCODE, where="main")
    _scan(client, LAMP_BARCODE, quantity="2", where="shop")

    start = client.get(reverse("inventory:count-start"))

    assert {loc.code: n for loc, n in start.context["locations"]} == {"main": 1, "shop": 1}
    shop = client.get(reverse("inventory:count-sheet", args=["shop"]))
    assert _sheet(shop) == {"LAMP-BRASS": (0, 2, 2)}


def test_scan_without_htmx_redirects_back_to_the_sheet(client, warehouse_user, catalog):
    client.force_login(warehouse_user)

    response = client.post(reverse("inventory:count-scan", args=["main"]), {"code": "nope"})

    assert response.status_code == 302
    assert response["Location"] == reverse("inventory:count-sheet", args=["main"])


# ---------------------------------------------------------------------------------------------------------
# Mismatches


def test_mismatch_list_is_scoped_to_the_managers_channels(client, manager, listed):
    client.force_login(manager)

    response = client.get(reverse("inventory:mismatch-list"))

    rows = response.context["page"].items
    assert [(m.channel.name, m.channel_quantity) for m in rows] == [("Main Shop", 15)]
    html = response.content.decode()
    assert "gid://eu/1" not in html
    assert "LAMP-BRASS" in html


def test_mismatch_list_refuses_another_channel_as_a_filter(client, manager, listed, other_channel):
    client.force_login(manager)

    response = client.get(reverse("inventory:mismatch-list"), {"channel": other_channel.pk})

    assert b"Some filters were not applied" in response.content
    assert [m.channel.name for m in response.context["page"].items] == ["Main Shop"]


def test_admin_sees_every_channels_mismatches_and_filters_by_kind(client, admin_user, listed):
    StockMismatch.objects.create(channel=listed.lamp.listings.first().channel, kind=MismatchKind.UNKNOWN_SKU, sku="X")
    client.force_login(admin_user)

    every = client.get(reverse("inventory:mismatch-list"))
    unknown = client.get(reverse("inventory:mismatch-list"), {"kind": MismatchKind.UNKNOWN_SKU})

    assert len(every.context["page"].items) == 3
    assert [m.sku for m in unknown.context["page"].items] == ["X"]


def test_mismatch_list_shows_why_a_mismatch_was_raised(client, admin_user, listed):
    channel = listed.lamp.listings.first().channel
    StockMismatch.objects.create(
        channel=channel, kind=MismatchKind.DUPLICATE_SKU, sku="DUP-1", note="2 items on the channel have this SKU: a, b"
    )
    client.force_login(admin_user)

    response = client.get(reverse("inventory:mismatch-list"), {"kind": MismatchKind.DUPLICATE_SKU})

    assert b'class="sub mismatch-note">2 items on the channel have this SKU: a, b<' in response.content


def test_resolved_mismatches_are_not_listed(client, admin_user, listed):
    StockMismatch.objects.update(resolution=StockMismatch.Resolution.DISMISSED)
    client.force_login(admin_user)

    response = client.get(reverse("inventory:mismatch-list"))

    assert response.context["page"].items == []


def test_correct_from_master_resolves_and_queues_a_push(client, manager, listed):
    mine = StockMismatch.objects.get(channel__slug="main-shop")
    client.force_login(manager)

    response = client.post(
        reverse("inventory:mismatch-resolve", args=[mine.pk, "correct"]), {"back": "kind=quantity_drift&evil=1"}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("inventory:mismatch-list") + "?kind=quantity_drift"
    mine.refresh_from_db()
    assert mine.resolution == StockMismatch.Resolution.CORRECTED
    assert mine.resolved_by == manager
    follow = client.get(response["Location"])
    assert "the master&#x27;s quantity will be pushed" in follow.content.decode()
    assert follow.context["page"].items == []


def test_accept_books_the_channels_quantity_as_a_correction(client, manager, listed):
    mine = StockMismatch.objects.get(channel__slug="main-shop")  # channel shows 15, we last pushed 18
    client.force_login(manager)

    response = client.post(reverse("inventory:mismatch-resolve", args=[mine.pk, "accept"]), **HX)

    assert response.status_code == 204
    assert response["HX-Redirect"] == reverse("inventory:mismatch-list")
    mine.refresh_from_db()
    assert mine.resolution == StockMismatch.Resolution.ACCEPTED
    movement = StockMovement.objects.filter(variant=listed.lamp).first()
    assert movement is not None
    assert (movement.reason, movement.delta_on_hand) == (MovementReason.CORRECTION, -3)


def test_dismiss_closes_without_a_change(client, manager, listed):
    mine = StockMismatch.objects.get(channel__slug="main-shop")
    client.force_login(manager)

    client.post(reverse("inventory:mismatch-resolve", args=[mine.pk, "dismiss"]))

    mine.refresh_from_db()
    assert mine.resolution == StockMismatch.Resolution.DISMISSED
    assert StockMovement.objects.filter(variant=listed.lamp).count() == 1


def test_a_refused_resolution_is_a_message_not_a_500(client, manager, listed, channel):
    unknown = StockMismatch.objects.create(
        channel=channel, kind=MismatchKind.UNKNOWN_SKU, sku="MYSTERY", external_id="x"
    )
    client.force_login(manager)

    response = client.post(reverse("inventory:mismatch-resolve", args=[unknown.pk, "accept"]), follow=True)

    assert response.status_code == 200
    assert "MYSTERY on Main Shop: not possible" in response.content.decode()
    unknown.refresh_from_db()
    assert unknown.resolution == StockMismatch.Resolution.OPEN


def test_mismatch_action_on_another_channel_is_404(client, manager, listed):
    theirs = StockMismatch.objects.get(channel__slug="eu-shop")
    client.force_login(manager)

    response = client.post(reverse("inventory:mismatch-resolve", args=[theirs.pk, "dismiss"]))

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.resolution == StockMismatch.Resolution.OPEN


def test_unknown_mismatch_action_is_404(client, manager, listed):
    mine = StockMismatch.objects.get(channel__slug="main-shop")
    client.force_login(manager)

    assert client.post(reverse("inventory:mismatch-resolve", args=[mine.pk, "explode"])).status_code == 404


def test_warehouse_cannot_resolve_mismatches(client, warehouse_user, listed):
    mine = StockMismatch.objects.get(channel__slug="main-shop")
    client.force_login(warehouse_user)

    response = client.post(reverse("inventory:mismatch-resolve", args=[mine.pk, "dismiss"]))

    assert response.status_code == 403

"""Reconciliation, mismatch handling and catalog import, over real HTTP against the Shopify emulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from inventory import jobs, services_reconcile
from inventory.channels import adapter_for_channel, channel_configure
from inventory.models import (
    ChannelListing,
    MismatchKind,
    MovementReason,
    Product,
    ReconcileRun,
    StockLevel,
    StockMismatch,
    StockMovement,
    Variant,
)
from inventory.selectors import listing_quantities
from inventory.selectors_reconcile import channel_listing_quantities
from inventory.services import LineRequest, bundle_set_components, stock_allocate
from inventory.services_reconcile import (
    MismatchActionError,
    ReconcileAlreadyRunning,
    _channel_lock,
    channel_reconcile,
    import_channel_catalog,
    mismatch_accept,
    mismatch_alert_key,
    mismatch_correct,
    mismatch_dismiss,
    reconciles_due,
)
from oms.core.models import Alert, AuditEntry, DriftPolicy, SalesChannel
from tests.emulators.shopify import ShopifyEmulator
from tests.factories import location, staff_user, stocked, variant

pytestmark = pytest.mark.django_db

OPEN = StockMismatch.Resolution.OPEN
N = 30


@pytest.fixture(autouse=True)
def no_grace(settings):
    # The emulator stamps a level with the time it changed; drift that fresh is normally left for the next run.
    settings.STOCK_DRIFT_GRACE_SECONDS = 0


@pytest.fixture
def shop():
    # A generous bucket keeps the tests quick; throttling itself is covered in tests/channels_adapters.
    with ShopifyEmulator(restore_rate=100_000, maximum_available=100_000) as emulator:
        yield emulator


@pytest.fixture
def shop_channel(shop):
    channel, _ = channel_configure(
        kind="shopify",
        slug="emu-shop",
        name="Emulated shop",
        options={
            "shop_domain": shop.shop_domain,
            "access_token": shop.access_token,
            "webhook_secret": "s",
            "api_base_url": shop.base_url,
            "location_id": shop.location_id,
        },
    )
    return channel


def seed(shop, channel, n=N):
    """n SKUs in the master, each listed on the shop with the quantity the master allows (as if just pushed)."""
    items = {}
    for i in range(n):
        sku = f"SKU-{i:03}"
        v = stocked(sku, 10 + i)
        item = shop.add_product(sku=sku, available=10 + i, title=f"Product {i}")
        ChannelListing.objects.create(
            channel=channel,
            variant=v,
            external_id=item["inventory_item_id"],
            external_ids={k: item[k] for k in ("inventory_item_id", "variant_id", "product_id", "location_id")},
            channel_sku=sku,
            last_pushed_quantity=10 + i,
        )
        items[sku] = item
    return items


def listing(sku, channel):
    return ChannelListing.objects.get(channel=channel, variant__sku=sku)


def open_findings(channel):
    return sorted(
        (m.kind, m.sku) for m in StockMismatch.objects.filter(channel=channel, resolution=OPEN).order_by("pk")
    )


def reconcile(channel, **kwargs):
    return channel_reconcile(channel=SalesChannel.objects.get(pk=channel.pk), trigger="test", **kwargs)


# ---------------------------------------------------------------------------------------------------------
# What a run finds


def test_a_channel_that_agrees_has_no_mismatches_and_every_listing_is_seen(shop, shop_channel):
    seed(shop, shop_channel)
    adapter = adapter_for_channel(shop_channel)
    adapter.stock_page_size = 7  # type: ignore[attr-defined]  # a ShopifyAdapter: several pages, to follow the cursor

    run = reconcile(shop_channel, adapter=adapter)

    assert run.status == ReconcileRun.Status.DONE
    assert run.pages == 5
    assert run.listings_seen == N
    assert run.mismatches == 0
    assert not StockMismatch.objects.exists()
    assert run.summary["items"] == N
    assert run.summary["api_seconds"] > 0
    seen = ChannelListing.objects.filter(channel=shop_channel)
    assert all(li.last_seen_at is not None and li.last_seen_quantity == li.last_pushed_quantity for li in seen)
    assert not Alert.objects.exists()


@pytest.mark.parametrize("whole_catalog", [False, True], ids=["stock-by-id", "stock-in-one-pass"])
def test_reconcile_finds_exactly_the_seeded_drift_and_nothing_else(
    shop, shop_channel, django_capture_on_commit_callbacks, monkeypatch, whole_catalog
):
    if whole_catalog:  # the path a large channel takes
        monkeypatch.setattr(services_reconcile, "WHOLE_CATALOG", 1)
    items = seed(shop, shop_channel)
    manager = staff_user("Manager", channels=[shop_channel])
    manager.email = "manager@example.com"
    manager.save()
    shop.set_available(items["SKU-003"], 2)  # sold elsewhere on Shopify: drift
    shop.add_product(sku="NOT-IN-MASTER", available=4)  # unknown SKU
    no_sku = shop.add_product(sku="", available=1)  # an item without a SKU
    twin = shop.add_product(sku="SKU-005", available=15)  # the same SKU twice
    shop.delete_product(items["SKU-007"])  # a master listing deleted on Shopify
    stocked("SKU-NEW", 6)
    shop.add_product(sku="SKU-NEW", available=6)  # in the master, not linked yet: linked, and agrees
    shop.set_available(items["SKU-009"], 0)  # differs, but a push is pending: explained, not drift
    ChannelListing.objects.filter(pk=listing("SKU-009", shop_channel).pk).update(push_pending=True)
    shop.set_available(items["SKU-011"], 99)  # differs, but the listing is paused: staff set it by hand
    ChannelListing.objects.filter(pk=listing("SKU-011", shop_channel).pk).update(paused=True)
    stocked("SKU-NEVER-LISTED", 3)  # the channel does not sell it: counted, not a mismatch

    with django_capture_on_commit_callbacks() as callbacks:
        run = reconcile(shop_channel)

    assert run.status == ReconcileRun.Status.DONE
    assert open_findings(shop_channel) == [
        (MismatchKind.DUPLICATE_SKU, "SKU-005"),
        (MismatchKind.NOT_LISTED, "SKU-007"),
        (MismatchKind.QUANTITY_DRIFT, "SKU-003"),
        (MismatchKind.UNKNOWN_SKU, ""),
        (MismatchKind.UNKNOWN_SKU, "NOT-IN-MASTER"),
    ]
    assert run.mismatches == 5
    assert run.listings_seen == N - 1 + 4
    drift = StockMismatch.objects.get(kind=MismatchKind.QUANTITY_DRIFT)
    assert (drift.master_quantity, drift.channel_quantity, drift.last_pushed_quantity) == (13, 2, 13)
    assert drift.listing == listing("SKU-003", shop_channel)
    assert drift.run == run
    assert drift.source == "reconcile"
    unknown = StockMismatch.objects.get(kind=MismatchKind.UNKNOWN_SKU, sku="")
    assert unknown.external_id == no_sku["inventory_item_id"]
    assert unknown.channel_quantity == 1
    duplicate = StockMismatch.objects.get(kind=MismatchKind.DUPLICATE_SKU)
    assert twin["inventory_item_id"] in duplicate.external_id
    assert duplicate.variant == Variant.objects.get(sku="SKU-005")
    gone = StockMismatch.objects.get(kind=MismatchKind.NOT_LISTED)
    assert gone.external_id == items["SKU-007"]["inventory_item_id"]

    # The item whose SKU the master has was linked, said so, and compared.
    linked = listing("SKU-NEW", shop_channel)
    assert linked.external_ids["variant_id"]
    assert linked.channel_sku == "SKU-NEW"
    assert linked.last_seen_quantity == 6
    assert run.summary["linked"] == 1
    assert run.summary["linked_skus"] == ["SKU-NEW"]
    assert run.summary["pending_skipped"] == 1
    assert run.summary["paused_skipped"] == 1
    assert run.summary["unlisted_variants"] == 1
    assert run.summary["unlisted_sample"] == ["SKU-NEVER-LISTED"]
    assert listing("SKU-003", shop_channel).last_seen_quantity == 2

    # One alert per mismatch, none of them e-mailed; one summary, e-mailed.
    per_mismatch = Alert.objects.filter(kind="stock.mismatch")
    assert sorted(a.dedupe_key for a in per_mismatch) == sorted(
        mismatch_alert_key(m.pk) for m in StockMismatch.objects.all()
    )
    summary = Alert.objects.get(kind="stock.reconcile")
    assert "5 new mismatch" in summary.title
    assert len(callbacks) == 1  # the summary's e-mail job only
    callbacks[0]()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["manager@example.com"]
    assert "Emulated shop" in mail.outbox[0].subject


def test_a_second_run_adds_no_duplicates_and_resolves_what_disappeared(shop, shop_channel):
    items = seed(shop, shop_channel)
    shop.set_available(items["SKU-003"], 2)
    shop.set_available(items["SKU-004"], 1)
    unknown = shop.add_product(sku="NOT-IN-MASTER", available=4)
    shop.delete_product(items["SKU-007"])
    reconcile(shop_channel)
    first = {(m.kind, m.sku): m.pk for m in StockMismatch.objects.all()}
    assert len(first) == 4

    shop.set_available(items["SKU-003"], 13)  # fixed on Shopify by hand
    shop.set_available(items["SKU-004"], 5)  # drifted further
    shop.delete_product(unknown)
    run = reconcile(shop_channel)

    assert StockMismatch.objects.count() == 4  # updated in place, nothing added
    assert open_findings(shop_channel) == [
        (MismatchKind.NOT_LISTED, "SKU-007"),
        (MismatchKind.QUANTITY_DRIFT, "SKU-004"),
    ]
    again = StockMismatch.objects.get(pk=first[(MismatchKind.QUANTITY_DRIFT, "SKU-004")])
    assert (again.channel_quantity, again.run_id) == (5, run.pk)
    for key in ((MismatchKind.QUANTITY_DRIFT, "SKU-003"), (MismatchKind.UNKNOWN_SKU, "NOT-IN-MASTER")):
        resolved = StockMismatch.objects.get(pk=first[key])
        assert resolved.resolution == StockMismatch.Resolution.GONE
        assert resolved.resolved_at is not None
        assert Alert.objects.get(dedupe_key=mismatch_alert_key(resolved.pk)).resolved_at is not None
    assert (run.summary["new"], run.summary["still_open"], run.summary["gone"]) == (0, 2, 2)
    # Nothing new: no new summary alert (and no e-mail) for the second run.
    assert Alert.objects.filter(kind="stock.reconcile").count() == 1


def test_a_listing_moved_to_a_new_item_with_its_sku_is_relinked_not_reported(shop, shop_channel):
    items = seed(shop, shop_channel, n=3)
    shop.delete_product(items["SKU-001"])
    recreated = shop.add_product(sku="SKU-001", available=11)  # the merchant recreated the product

    run = reconcile(shop_channel)

    assert open_findings(shop_channel) == []
    assert listing("SKU-001", shop_channel).external_id == recreated["inventory_item_id"]
    assert run.summary["relinked"] == 1
    assert AuditEntry.objects.filter(verb="listing.relink").count() == 1


def test_a_second_caller_is_told_a_run_is_going(shop_channel):
    with _channel_lock(shop_channel), pytest.raises(ReconcileAlreadyRunning, match="already running"):
        reconcile(shop_channel)
    assert not ReconcileRun.objects.exists()


def test_a_channel_failure_fails_the_run_and_changes_nothing(shop, shop_channel):
    items = seed(shop, shop_channel, n=3)
    shop.set_available(items["SKU-001"], 0)
    channel_configure(kind="shopify", slug="emu-shop", name="Emulated shop", options={"access_token": "wrong"})

    run = reconcile(shop_channel)

    assert run.status == ReconcileRun.Status.FAILED
    assert "AuthenticationFailed" in run.error
    assert not StockMismatch.objects.exists()
    assert not ChannelListing.objects.filter(last_seen_at__isnull=False).exists()
    assert Alert.objects.get(kind="stock.reconcile").resolved_at is None
    # The next good run clears the failure alert.
    channel_configure(
        kind="shopify", slug="emu-shop", name="Emulated shop", options={"access_token": shop.access_token}
    )
    assert reconcile(shop_channel).status == ReconcileRun.Status.DONE
    assert Alert.objects.get(dedupe_key=f"stock-reconcile-failed:{shop_channel.pk}").resolved_at is not None


def test_an_interrupted_run_is_marked_failed_by_the_next(shop, shop_channel):
    stale = ReconcileRun.objects.create(channel=shop_channel, trigger="schedule")
    reconcile(shop_channel)
    stale.refresh_from_db()
    assert stale.status == ReconcileRun.Status.FAILED
    assert stale.error == "interrupted before it finished"


# ---------------------------------------------------------------------------------------------------------
# The drift policy


def test_policy_correct_pushes_the_master_back_and_resolves(shop, shop_channel):
    SalesChannel.objects.filter(pk=shop_channel.pk).update(stock_drift_policy=DriftPolicy.CORRECT)
    items = seed(shop, shop_channel, n=5)
    shop.set_available(items["SKU-002"], 40)  # shows more than we have: urgent
    shop.set_available(items["SKU-003"], 1)

    run = reconcile(shop_channel)

    assert run.corrected == 2
    assert run.summary["corrected"] == 2
    assert open_findings(shop_channel) == []
    for sku, urgent in (("SKU-002", True), ("SKU-003", False)):
        li = listing(sku, shop_channel)
        assert li.push_pending
        assert li.push_urgent is urgent
        mismatch = StockMismatch.objects.get(listing=li)
        assert mismatch.resolution == StockMismatch.Resolution.CORRECTED
        entry = AuditEntry.objects.get(verb="stock_mismatch.correct", object_id=str(mismatch.pk))
        assert entry.actor is None
        assert entry.actor_label == "reconcile"
    assert not Alert.objects.filter(kind="stock.mismatch").exists()  # corrected at once: nothing to hear about
    assert not StockMovement.objects.filter(reason=MovementReason.CORRECTION).exists()


def test_policy_accept_books_the_channels_change_as_a_correction(shop, shop_channel):
    SalesChannel.objects.filter(pk=shop_channel.pk).update(stock_drift_policy=DriftPolicy.ACCEPT)
    items = seed(shop, shop_channel, n=5)
    shop.set_available(items["SKU-003"], 9)  # we pushed 13; four were sold or lost on the channel's side

    run = reconcile(shop_channel)

    assert run.corrected == 1
    assert run.summary["accepted"] == 1
    mismatch = StockMismatch.objects.get()
    assert mismatch.resolution == StockMismatch.Resolution.ACCEPTED
    movement = StockMovement.objects.get(reason=MovementReason.CORRECTION)
    assert (movement.variant.sku, movement.delta_on_hand, movement.location) == ("SKU-003", -4, location())
    assert "Emulated shop" in movement.note
    assert movement.actor_label == "reconcile"
    assert movement.reference == f"mismatch:{mismatch.pk}"
    assert StockLevel.objects.get(variant__sku="SKU-003").on_hand == 9
    entry = AuditEntry.objects.get(verb="stock_mismatch.accept")
    assert entry.after["delta"] == -4
    assert entry.after["location"] == "main"


def test_policy_accept_refuses_a_bundle_and_too_little_stock_and_says_why(shop, shop_channel):
    SalesChannel.objects.filter(pk=shop_channel.pk).update(stock_drift_policy=DriftPolicy.ACCEPT)
    items = seed(shop, shop_channel, n=3)
    kit = variant("KIT-1")
    bundle_set_components(bundle=kit, components=[(Variant.objects.get(sku="SKU-000"), 2)], actor=None)
    kit_item = shop.add_product(sku="KIT-1", available=1)
    ChannelListing.objects.create(channel=shop_channel, variant=kit, external_id=kit_item["inventory_item_id"])
    # SKU-001: 11 on hand, 8 allocated to an order; we pushed 6, the channel lost 5: only 3 are free to take.
    stock_allocate(reference="order:1", lines=[LineRequest(line="1", sku="SKU-001", quantity=8)])
    ChannelListing.objects.filter(pk=listing("SKU-001", shop_channel).pk).update(last_pushed_quantity=6)
    shop.set_available(items["SKU-001"], 1)

    run = reconcile(shop_channel)

    assert run.summary["refused_count"] == 2
    assert run.corrected == 0
    reasons = {r["sku"]: r["reason"] for r in run.summary["refused"]}
    assert "bundle" in reasons["KIT-1"]
    assert "free" in reasons["SKU-001"]
    left = StockMismatch.objects.filter(resolution=OPEN)
    assert {m.sku for m in left} == {"KIT-1", "SKU-001"}
    assert all(m.note.startswith("not accepted: ") for m in left)
    assert not StockMovement.objects.filter(reason=MovementReason.CORRECTION).exists()
    assert Alert.objects.filter(kind="stock.mismatch").count() == 2  # left open: staff hear of them


def test_policy_accept_pushes_when_the_channel_still_shows_what_we_pushed(shop, shop_channel):
    SalesChannel.objects.filter(pk=shop_channel.pk).update(stock_drift_policy=DriftPolicy.ACCEPT)
    seed(shop, shop_channel, n=3)
    stock_allocate(reference="order:7", lines=[LineRequest(line="1", sku="SKU-002", quantity=2)])
    # The master moved and the push went missing (its outbox was consumed without a push).
    ChannelListing.objects.filter(channel=shop_channel).update(push_pending=False)

    run = reconcile(shop_channel)

    mismatch = StockMismatch.objects.get()
    assert mismatch.resolution == StockMismatch.Resolution.CORRECTED
    assert run.summary["corrected"] == 1
    assert run.summary.get("accepted", 0) == 0
    assert listing("SKU-002", shop_channel).push_pending
    assert not StockMovement.objects.filter(reason=MovementReason.CORRECTION).exists()


# ---------------------------------------------------------------------------------------------------------
# Staff's one-click answers


@pytest.fixture
def found(shop, shop_channel):
    items = seed(shop, shop_channel, n=5)
    shop.set_available(items["SKU-003"], 5)
    shop.add_product(sku="NOT-IN-MASTER", available=4)
    reconcile(shop_channel)
    return {m.kind: m for m in StockMismatch.objects.all()}


def test_staff_correct_a_drift(found, shop_channel):
    manager = staff_user("Manager", channels=[shop_channel])
    mismatch = mismatch_correct(mismatch=found[MismatchKind.QUANTITY_DRIFT], actor=manager)
    assert mismatch.resolution == StockMismatch.Resolution.CORRECTED
    assert mismatch.resolved_by == manager
    assert mismatch.resolved_at is not None
    assert listing("SKU-003", shop_channel).push_pending
    entry = AuditEntry.objects.get(verb="stock_mismatch.correct")
    assert entry.actor == manager
    assert entry.before["channel_quantity"] == 5
    assert Alert.objects.get(dedupe_key=mismatch_alert_key(mismatch.pk)).resolved_at is not None
    with pytest.raises(MismatchActionError, match="already resolved"):
        mismatch_correct(mismatch=mismatch, actor=manager)


def test_staff_accept_a_drift(found, shop_channel):
    manager = staff_user("Manager", channels=[shop_channel])
    mismatch = mismatch_accept(mismatch=found[MismatchKind.QUANTITY_DRIFT], actor=manager)
    assert mismatch.resolution == StockMismatch.Resolution.ACCEPTED
    movement = StockMovement.objects.get(reason=MovementReason.CORRECTION)
    assert movement.delta_on_hand == 5 - 13
    assert movement.actor == manager
    assert AuditEntry.objects.get(verb="stock_mismatch.accept").actor == manager
    assert Alert.objects.get(dedupe_key=mismatch_alert_key(mismatch.pk)).resolved_at is not None


def test_staff_cannot_accept_or_correct_an_unknown_sku(found, shop_channel):
    manager = staff_user("Manager", channels=[shop_channel])
    unknown = found[MismatchKind.UNKNOWN_SKU]
    with pytest.raises(MismatchActionError, match="unknown to the master"):
        mismatch_accept(mismatch=unknown, actor=manager)
    with pytest.raises(MismatchActionError, match="only a quantity drift"):
        mismatch_correct(mismatch=unknown, actor=manager)
    unknown.refresh_from_db()
    assert unknown.resolution == OPEN
    assert not AuditEntry.objects.filter(verb__startswith="stock_mismatch.").exists()


def test_a_dismissed_finding_is_not_reported_again_until_it_changes(shop, found, shop_channel):
    manager = staff_user("Manager", channels=[shop_channel])
    mismatch_dismiss(mismatch=found[MismatchKind.UNKNOWN_SKU], actor=manager, note="gift card, sold by hand")
    mismatch_dismiss(mismatch=found[MismatchKind.QUANTITY_DRIFT], actor=manager)
    dismissed = StockMismatch.objects.get(pk=found[MismatchKind.UNKNOWN_SKU].pk)
    assert dismissed.resolution == StockMismatch.Resolution.DISMISSED
    assert dismissed.note == "gift card, sold by hand"
    assert AuditEntry.objects.filter(verb="stock_mismatch.dismiss").count() == 2

    run = reconcile(shop_channel)
    assert run.summary["dismissed_skipped"] == 2
    assert open_findings(shop_channel) == []

    shop.set_available(listing("SKU-003", shop_channel).external_id, 4)  # the drift changed: news again
    reconcile(shop_channel)
    assert open_findings(shop_channel) == [(MismatchKind.QUANTITY_DRIFT, "SKU-003")]


def test_the_mismatch_screen_resolves_through_these_services(client, found, shop_channel):
    manager = staff_user("Manager", channels=[shop_channel])
    client.force_login(manager)
    unknown = found[MismatchKind.UNKNOWN_SKU]
    response = client.post(reverse("inventory:mismatch-resolve", args=[unknown.pk, "accept"]), follow=True)
    assert "the SKU is unknown to the master" in response.content.decode()
    drift = found[MismatchKind.QUANTITY_DRIFT]
    client.post(reverse("inventory:mismatch-resolve", args=[drift.pk, "correct"]))
    drift.refresh_from_db()
    assert drift.resolution == StockMismatch.Resolution.CORRECTED


# ---------------------------------------------------------------------------------------------------------
# Importing the channel's catalog


def test_import_links_by_sku_and_reports_what_did_not_match(shop, shop_channel):
    for sku in ("TEE-S", "TEE-M", "MUG"):
        variant(sku)
    tee_s = shop.add_product(sku="TEE-S", available=3, title="Tee", variant_title="S")
    shop.add_variant(tee_s["product_id"], sku="TEE-M", available=2, title="M")
    shop.add_product(sku="MUG", available=1)
    shop.add_product(sku="MUG", available=1, title="Second mug")
    shop.add_product(sku="POSTER", available=7, title="Poster", barcode="4006381333931", price="9.50")
    shop.add_product(sku="", available=1, title="Gift card")

    report = import_channel_catalog(channel=shop_channel)

    assert (report.items, report.matched, report.listings_created, report.listings_updated) == (6, 2, 2, 0)
    assert report.unmatched == ["POSTER"]
    assert set(report.duplicates) == {"MUG"}
    assert len(report.duplicates["MUG"]) == 2
    assert report.no_sku == [f"Gift card ({report.no_sku[0].split('(')[1].rstrip(')')})"]
    created = listing("TEE-S", shop_channel)
    assert created.external_id == tee_s["inventory_item_id"]
    assert created.channel_sku == "TEE-S"
    assert created.external_ids == {
        "inventory_item_id": tee_s["inventory_item_id"],
        "variant_id": tee_s["variant_id"],
        "product_id": tee_s["product_id"],
        "location_id": shop.location_id,
    }
    assert not Variant.objects.filter(sku="POSTER").exists()
    assert AuditEntry.objects.get(verb="channel.catalog_import").after["listings_created"] == 2

    again = import_channel_catalog(channel=shop_channel)
    assert (again.matched, again.listings_created, again.listings_updated) == (2, 0, 0)


def test_import_creates_missing_variants_without_stock(shop, shop_channel):
    poster = shop.add_product(
        sku="POSTER-A2", available=7, title="Poster", variant_title="A2", barcode="4006381333931", price="9.50"
    )
    shop.add_variant(poster["product_id"], sku="POSTER-A3", available=2, title="A3", weight_grams=120)

    report = import_channel_catalog(channel=shop_channel, create_missing=True)

    assert (report.products_created, report.variants_created, report.listings_created) == (1, 2, 2)
    a2 = Variant.objects.get(sku="POSTER-A2")
    assert (a2.product.title, a2.title, a2.barcode, str(a2.sale_price)) == ("Poster", "A2", "4006381333931", "9.500")
    assert Variant.objects.get(sku="POSTER-A3").weight_grams == 120
    assert Product.objects.count() == 1
    assert not StockLevel.objects.exists()
    assert listing("POSTER-A3", shop_channel).channel_sku == "POSTER-A3"


# ---------------------------------------------------------------------------------------------------------
# Commands, jobs, schedule


def test_reconcile_command_prints_the_run_and_exits_1_with_mismatches_open(shop, shop_channel, capsys):
    items = seed(shop, shop_channel, n=4)
    shop.set_available(items["SKU-002"], 0)
    with pytest.raises(CommandError) as failed:
        call_command("reconcile", "emu-shop")
    assert failed.value.returncode == 1
    out = capsys.readouterr().out
    assert "emu-shop: Done — 4 item(s) in 1 page(s), 1 mismatch(es)" in out
    assert "quantity_drift SKU-002" in out
    assert "master 12, channel 0, last pushed 12" in out


def test_reconcile_command_exits_0_when_the_channel_agrees_and_2_when_it_cannot_run(shop, shop_channel, capsys):
    seed(shop, shop_channel, n=2)
    call_command("reconcile", "emu-shop")
    assert "0 mismatch(es)" in capsys.readouterr().out
    with pytest.raises(CommandError) as missing:
        call_command("reconcile", "no-such-shop")
    assert missing.value.returncode == 2


def test_import_channel_catalog_command(shop, shop_channel, capsys):
    variant("TEE-S")
    shop.add_product(sku="TEE-S", available=3)
    shop.add_product(sku="POSTER", available=7, title="Poster")
    call_command("import_channel_catalog", "emu-shop")
    out = capsys.readouterr().out
    assert "matched 1 (1 listing(s) created, 0 updated)" in out
    assert "unmatched (not in the master): POSTER" in out
    call_command("import_channel_catalog", "emu-shop", "--create-missing")
    out = capsys.readouterr().out
    assert "created 1 variant(s) in 1 product(s)" in out
    assert "created: POSTER" in out


def test_the_job_runs_a_reconciliation_and_skips_a_running_one(shop, shop_channel):
    seed(shop, shop_channel, n=2)
    run_id = jobs.channel_reconcile(shop_channel.pk, "test")
    assert ReconcileRun.objects.get(pk=int(run_id or 0)).status == ReconcileRun.Status.DONE
    with _channel_lock(shop_channel):
        assert jobs.channel_reconcile(shop_channel.pk) is None


def test_reconciles_due_enqueues_each_channel_whose_interval_passed(shop_channel):
    now = timezone.now()
    on_demand = SalesChannel.objects.create(kind="shopify", name="On demand", slug="on-demand")
    SalesChannel.objects.filter(pk=on_demand.pk).update(reconcile_every_minutes=0)

    assert reconciles_due(now=now) == [shop_channel.pk]  # never reconciled; on demand only: never due
    run = ReconcileRun.objects.get()  # jobs run inline in tests: the enqueued reconciliation ran
    assert (run.channel, run.trigger, run.status) == (shop_channel, "schedule", ReconcileRun.Status.DONE)

    ReconcileRun.objects.update(started_at=now - timedelta(minutes=30))
    assert reconciles_due(now=now) == []  # hourly, half an hour ago
    assert reconciles_due(now=now + timedelta(minutes=31)) == [shop_channel.pk]
    assert ReconcileRun.objects.filter(channel=on_demand).count() == 0


# ---------------------------------------------------------------------------------------------------------
# The button and the status


def test_reconcile_now_enqueues_the_job_for_managers(client, shop, shop_channel, django_capture_on_commit_callbacks):
    seed(shop, shop_channel, n=2)
    manager = staff_user("Manager", channels=[shop_channel])
    client.force_login(manager)
    page = client.get(reverse("orders:channel-list"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Reconcile now" in body
    assert reverse("inventory:channel-reconcile", args=[shop_channel.pk]) in body

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(reverse("inventory:channel-reconcile", args=[shop_channel.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("inventory:channel-stock", args=[shop_channel.pk])
    assert len(callbacks) == 1
    run = ReconcileRun.objects.get()  # jobs run inline in tests: the button's job has run
    assert (run.trigger, run.status) == ("button", ReconcileRun.Status.DONE)

    status = client.get(reverse("inventory:channel-stock", args=[shop_channel.pk]))
    assert status.status_code == 200
    assert "Last reconciliation" in status.content.decode()


def test_stock_status_shows_open_mismatches_and_failing_pushes(client, found, shop_channel):
    ChannelListing.objects.filter(pk=listing("SKU-001", shop_channel).pk).update(
        push_pending=True, push_failures=2, last_error="Throttled: try later"
    )
    manager = staff_user("Manager", channels=[shop_channel])
    client.force_login(manager)
    body = client.get(reverse("inventory:channel-stock", args=[shop_channel.pk])).content.decode()
    assert "1 quantity drift" in body
    assert "1 sku on the channel unknown to the master" in body
    assert "1 pending" in body
    assert "1 failing" in body
    assert "Throttled: try later" in body


def test_packers_may_not_reconcile_nor_see_other_channels(client, shop_channel, django_capture_on_commit_callbacks):
    packer = staff_user("Packer", channels=[shop_channel])
    client.force_login(packer)
    with django_capture_on_commit_callbacks() as callbacks:
        assert client.post(reverse("inventory:channel-reconcile", args=[shop_channel.pk])).status_code == 403
    assert not callbacks
    assert client.get(reverse("inventory:channel-stock", args=[shop_channel.pk])).status_code == 403
    other = SalesChannel.objects.create(kind="shopify", name="Other", slug="other")
    client.force_login(staff_user("Manager", channels=[shop_channel]))
    assert client.post(reverse("inventory:channel-reconcile", args=[other.pk])).status_code == 404


def test_a_whole_channels_quantities_agree_with_listing_quantities(shop_channel):
    other = SalesChannel.objects.create(kind="shopify", name="Other", slug="other")
    shelf = location("shelf")
    closed = location("closed", active=False)
    a = stocked("A", 20)
    stocked("A", 5, at=closed)  # an inactive location's units are not available
    b = stocked("B", 7, at=shelf)
    c = stocked("C", 3)
    kit = variant("KIT")
    bundle_set_components(bundle=kit, components=[(a, 2), (b, 1)], actor=None)
    empty = variant("EMPTY")
    rows = [
        ChannelListing.objects.create(channel=shop_channel, variant=a, external_id="a", buffer=2, percentage=50),
        ChannelListing.objects.create(channel=shop_channel, variant=b, external_id="b", maximum=4),
        ChannelListing.objects.create(channel=shop_channel, variant=c, external_id="c"),
        ChannelListing.objects.create(channel=shop_channel, variant=kit, external_id="kit"),
        ChannelListing.objects.create(channel=shop_channel, variant=empty, external_id="empty"),
        ChannelListing.objects.create(channel=other, variant=c, external_id="c-other", exclusive=True),
    ]
    expected = listing_quantities(rows)
    assert channel_listing_quantities(rows) == expected
    assert expected[rows[0].pk] == 9  # (20 - 2) * 50%
    assert expected[rows[2].pk] == 0  # exclusive to the other channel
    assert expected[rows[3].pk] == 7  # min(20 // 2, 7 // 1) kits

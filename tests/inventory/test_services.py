"""The stock services: every change keeps levels equal to the ledger, never oversells, and feeds the outbox."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory.models import Allocation, StockChange, StockLevel, StockMovement, Variant
from inventory.selectors import available_for, listing_quantities
from inventory.services import (
    LineRequest,
    StockError,
    bundle_set_components,
    stock_adjust,
    stock_allocate,
    stock_count,
    stock_receive,
    stock_release,
    stock_return,
    stock_ship,
    stock_transfer,
)
from tests.factories import location, sales_channel, stocked, variant

pytestmark = pytest.mark.django_db


def assert_ledger_matches_levels() -> None:
    """The invariant: every level equals the sum of its movements, and no level breaks the constraints."""
    sums = {
        (row["variant_id"], row["location_id"]): (row["on_hand"], row["allocated"])
        for row in StockMovement.objects.values("variant_id", "location_id").annotate(
            on_hand=Sum("delta_on_hand"), allocated=Sum("delta_allocated")
        )
    }
    for level in StockLevel.objects.all():
        assert sums.get((level.variant_id, level.location_id), (0, 0)) == (level.on_hand, level.allocated), level
        assert 0 <= level.allocated <= level.on_hand
    allocated = dict(Allocation.objects.values("variant_id").annotate(n=Sum("quantity")).values_list("variant_id", "n"))
    by_variant = dict(
        StockLevel.objects.values("variant_id").annotate(n=Sum("allocated")).values_list("variant_id", "n")
    )
    assert {k: v for k, v in by_variant.items() if v} == allocated


def level(v: Variant, code: str = "main") -> StockLevel:
    return StockLevel.objects.get(variant=v, location__code=code)


def test_receive_adjust_count_transfer_write_the_ledger_and_the_outbox():
    mug = stocked("MUG", 10)
    main, shop = location("main"), location("shop", priority=200)
    stock_adjust(variant=mug, location=main, delta=-2, note="broken in transit", actor=None)
    stock_transfer(variant=mug, source=main, target=shop, quantity=3, actor=None)
    movement = stock_count(variant=mug, location=shop, counted=2, actor=None)
    assert movement is not None
    assert movement.delta_on_hand == -1
    assert stock_count(variant=mug, location=shop, counted=2, actor=None) is None  # nothing to post
    assert (level(mug).on_hand, level(mug, "shop").on_hand) == (5, 2)
    assert list(StockMovement.objects.filter(variant=mug).values_list("reason", flat=True).order_by("id")) == [
        "receive",
        "adjust",
        "transfer",
        "transfer",
        "count",
    ]
    assert StockChange.objects.filter(variant=mug).count() == 4  # every service call fed the outbox
    assert_ledger_matches_levels()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda v, loc: stock_receive(variant=v, location=loc, quantity=0, actor=None), "above 0"),
        (lambda v, loc: stock_receive(variant=v, location=loc, quantity=-3, actor=None), "above 0"),
        (lambda v, loc: stock_adjust(variant=v, location=loc, delta=-1, note="", actor=None), "needs a reason"),
        (lambda v, loc: stock_adjust(variant=v, location=loc, delta=-9, note="lost", actor=None), "too few"),
        (lambda v, loc: stock_count(variant=v, location=loc, counted=-1, actor=None), "0 or more"),
        (lambda v, loc: stock_count(variant=v, location=loc, counted=1, actor=None), "allocated"),
        (
            lambda v, loc: stock_transfer(variant=v, source=loc, target=loc, quantity=1, actor=None),
            "two different",
        ),
        (
            lambda v, loc: stock_transfer(variant=v, source=loc, target=location("b"), quantity=4, actor=None),
            "only 3 free",
        ),
    ],
)
def test_bad_changes_are_refused_with_a_clear_error_and_write_nothing(call, message):
    v = stocked("LAMP", 5)
    stock_allocate(reference="order:1", lines=[LineRequest(line="1", sku="LAMP", quantity=2)])
    before = StockMovement.objects.count()
    with pytest.raises(StockError, match=message):
        call(v, location("main"))
    assert StockMovement.objects.count() == before
    assert (level(v).on_hand, level(v).allocated) == (5, 2)
    assert_ledger_matches_levels()


def test_the_database_refuses_a_level_that_breaks_its_constraints():
    v = stocked("CUP", 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        StockLevel.objects.filter(variant=v).update(allocated=2)


def test_allocation_is_whole_per_line_idempotent_and_reports_short_and_unknown():
    stocked("A", 3)
    stocked("B", 1)
    lines = [
        LineRequest(line="1", sku="A", quantity=2),
        LineRequest(line="2", sku="B", quantity=2),
        LineRequest(line="3", sku="NOPE", quantity=1),
    ]
    result = stock_allocate(reference="order:7", lines=lines)
    assert result.allocated == {"1": 2}
    assert result.short == {"2": ("B", 2, 0)}
    assert result.unknown == {"3": "NOPE"}
    assert not result.complete
    again = stock_allocate(reference="order:7", lines=lines)  # a retry takes nothing twice
    assert again.allocated == {"1": 2}
    assert level(Variant.objects.get(sku="A")).allocated == 2
    stock_receive(variant=Variant.objects.get(sku="B"), location=location(), quantity=1, actor=None)
    topped = stock_allocate(reference="order:7", lines=lines[:2])
    assert topped.complete
    assert level(Variant.objects.get(sku="B")).allocated == 2
    assert_ledger_matches_levels()


def test_allocation_takes_from_locations_in_priority_order_and_spans_them():
    v = stocked("RUG", 2, at=location("near", priority=1))
    stock_receive(variant=v, location=location("far", priority=9), quantity=5, actor=None)
    stock_allocate(reference="order:1", lines=[LineRequest(line="1", sku="RUG", quantity=4)])
    assert (level(v, "near").allocated, level(v, "far").allocated) == (2, 2)
    assert sorted(Allocation.objects.values_list("location__code", "quantity")) == [("far", 2), ("near", 2)]
    assert_ledger_matches_levels()


def test_cancel_releases_and_ship_consumes():
    v = stocked("BOWL", 4)
    stock_allocate(reference="order:1", lines=[LineRequest(line="1", sku="BOWL", quantity=3)])
    assert available_for([v.pk]) == {v.pk: 1}
    assert stock_release(reference="order:1") == 3
    assert (level(v).on_hand, level(v).allocated) == (4, 0)
    stock_allocate(reference="order:2", lines=[LineRequest(line="9", sku="BOWL", quantity=3)])
    assert stock_ship(reference="order:2") == 3
    assert (level(v).on_hand, level(v).allocated) == (1, 0)
    assert stock_ship(reference="order:2") == 0  # shipping twice takes nothing twice
    stock_return(variant=v, location=location(), quantity=1, reference="return:1", actor=None)
    assert level(v).on_hand == 2
    assert not Allocation.objects.exists()
    assert_ledger_matches_levels()


def test_bundles_are_available_by_their_scarcest_component_and_allocate_components():
    mug, candle = stocked("MUG-B", 5), stocked("CANDLE-F", 1)
    gift = variant("GIFT")
    bundle_set_components(bundle=gift, components=[(mug, 2), (candle, 1)], actor=None)
    assert available_for([gift.pk]) == {gift.pk: 1}
    result = stock_allocate(reference="order:3", lines=[LineRequest(line="1", sku="GIFT", quantity=1)])
    assert result.complete
    assert (level(mug).allocated, level(candle).allocated) == (2, 1)
    assert available_for([gift.pk, mug.pk]) == {gift.pk: 0, mug.pk: 3}
    short = stock_allocate(reference="order:4", lines=[LineRequest(line="1", sku="GIFT", quantity=1)])
    assert short.short == {"1": ("GIFT", 1, 0)}
    with pytest.raises(StockError, match="bundle"):
        stock_receive(variant=gift, location=location(), quantity=1, actor=None)
    with pytest.raises(StockError, match="itself"):
        bundle_set_components(bundle=mug, components=[(mug, 1)], actor=None)
    # A change to a component puts the bundle in the outbox too.
    StockChange.objects.all().delete()
    stock_receive(variant=candle, location=location(), quantity=1, actor=None)
    assert set(StockChange.objects.values_list("variant__sku", flat=True)) == {"CANDLE-F", "GIFT"}
    assert_ledger_matches_levels()


def test_outbox_marks_changes_to_zero_or_low_stock_urgent():
    v = stocked("ONE-OF-A-KIND", 1)
    low = stocked("LOW", 10, low_stock_threshold=5)
    StockChange.objects.all().delete()
    stock_allocate(reference="order:1", lines=[LineRequest(line="1", sku="ONE-OF-A-KIND", quantity=1)])
    stock_adjust(variant=low, location=location(), delta=-1, note="sample", actor=None)
    assert list(StockChange.objects.filter(variant=v).values_list("urgent", flat=True)) == [True]
    assert list(StockChange.objects.filter(variant=low).values_list("urgent", flat=True)) == [False]
    stock_adjust(variant=low, location=location(), delta=-4, note="samples", actor=None)
    assert StockChange.objects.filter(variant=low, urgent=True).exists()


def test_listing_rules_buffer_percentage_maximum_and_exclusive():
    from inventory.models import ChannelListing

    v = stocked("VASE", 20)
    a, b = sales_channel(slug="a"), sales_channel(slug="b")
    la = ChannelListing.objects.create(channel=a, variant=v, external_id="1", buffer=2, percentage=50, maximum=7)
    lb = ChannelListing.objects.create(channel=b, variant=v, external_id="2")
    assert listing_quantities([la, lb]) == {la.pk: 7, lb.pk: 20}  # (20-2)*50% = 9, capped at 7
    la.maximum = None
    la.save()
    assert listing_quantities([la])[la.pk] == 9
    lb.exclusive = True
    lb.save()
    assert listing_quantities([la, lb]) == {la.pk: 0, lb.pk: 20}
    stock_adjust(variant=v, location=location(), delta=-19, note="sold at a fair", actor=None)
    lb.exclusive = False
    lb.save()
    la.buffer = 5
    la.save()
    assert listing_quantities([la, lb]) == {la.pk: 0, lb.pk: 1}  # never below zero


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["receive", "allocate", "cancel", "ship", "return", "adjust", "transfer", "count"]),
        st.integers(min_value=0, max_value=3),  # which order / which location
        st.integers(min_value=-4, max_value=6),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPERATIONS)
def test_invariants_hold_after_every_step_of_any_sequence(ops):
    with transaction.atomic():
        v = stocked("PROP", 3)
        locations = [location("main"), location("p2", priority=50)]
        for op, k, n in ops:
            loc = locations[k % 2]
            try:
                if op == "receive":
                    stock_receive(variant=v, location=loc, quantity=n, actor=None)
                elif op == "allocate":
                    stock_allocate(reference=f"order:{k}", lines=[LineRequest(line="1", sku="PROP", quantity=n)])
                elif op == "cancel":
                    stock_release(reference=f"order:{k}")
                elif op == "ship":
                    stock_ship(reference=f"order:{k}")
                elif op == "return":
                    stock_return(variant=v, location=loc, quantity=n, reference=f"rma:{k}", actor=None)
                elif op == "adjust":
                    stock_adjust(variant=v, location=loc, delta=n, note="prop", actor=None)
                elif op == "transfer":
                    stock_transfer(variant=v, source=loc, target=locations[(k + 1) % 2], quantity=n, actor=None)
                else:
                    stock_count(variant=v, location=loc, counted=n, actor=None)
            except StockError:
                pass
            assert_ledger_matches_levels()
        transaction.set_rollback(True)

"""stock_set_on_hand_bulk: many levels at once, with the same guarantees as the one-level services."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from inventory.models import MovementReason, StockChange, StockLevel, StockMovement
from inventory.services import (
    LineRequest,
    StockError,
    bundle_set_components,
    bundle_set_components_many,
    stock_allocate,
    stock_set_on_hand_bulk,
)
from tests.factories import location, stocked, variant

pytestmark = pytest.mark.django_db


def test_sets_levels_posts_one_movement_per_change_and_fills_the_outbox():
    main, back = location("main"), location("back")
    a = stocked("A", 10, at=main)
    b = variant("B")
    c = stocked("C", 4, at=main)
    kit = variant("KIT")
    bundle_set_components(bundle=kit, components=[(a, 1)], actor=None)
    StockChange.objects.all().delete()
    movements = StockMovement.objects.count()

    changed = stock_set_on_hand_bulk(
        targets=[(a.pk, main.pk, 7), (a.pk, back.pk, 5), (b.pk, main.pk, 0), (b.pk, back.pk, 9), (c.pk, main.pk, 4)],
        actor=None,
        reference="import:1",
        note="catalog import",
    )

    assert changed == 3
    assert StockLevel.objects.get(variant=a, location=main).on_hand == 7
    assert StockLevel.objects.get(variant=a, location=back).on_hand == 5
    assert StockLevel.objects.get(variant=b, location=back).on_hand == 9
    assert not StockLevel.objects.filter(variant=b, location=main).exists()  # 0 where there was nothing
    new = StockMovement.objects.order_by("id")[movements:]
    assert sorted((m.variant.sku, m.location.code, m.delta_on_hand) for m in new) == [
        ("A", "back", 5),
        ("A", "main", -3),
        ("B", "back", 9),
    ]
    assert {m.reason for m in new} == {MovementReason.COUNT}
    assert {m.reference for m in new} == {"import:1"}
    assert set(StockChange.objects.values_list("variant__sku", flat=True)) == {"A", "B", "KIT"}
    for level in StockLevel.objects.all():
        total = StockMovement.objects.filter(variant=level.variant, location=level.location).aggregate(
            s=Sum("delta_on_hand")
        )["s"]
        assert total == level.on_hand


@pytest.mark.parametrize(
    ("make_targets", "message"),
    [
        (lambda a, kit, loc: [(a.pk, loc.pk, -1)], "whole number of 0 or more"),
        (lambda a, kit, loc: [(a.pk, loc.pk, 1), (a.pk, loc.pk, 2)], "given twice"),
        (lambda a, kit, loc: [(kit.pk, loc.pk, 1)], "is a bundle"),
        (
            lambda a, kit, loc: [(a.pk, loc.pk, 1)],
            "below what is allocated to open orders: A at main: 1 wanted, 3 allocated",
        ),
    ],
)
def test_refuses_and_changes_nothing(make_targets, message):
    main = location("main")
    a = stocked("A", 5, at=main)
    kit = variant("KIT")
    bundle_set_components(bundle=kit, components=[(a, 1)], actor=None)
    stock_allocate(reference="order:1", lines=[LineRequest(line="1", sku="A", quantity=3)])
    movements = StockMovement.objects.count()

    with pytest.raises(StockError, match=message):
        stock_set_on_hand_bulk(targets=make_targets(a, kit, main), actor=None)

    assert StockLevel.objects.get(variant=a).on_hand == 5
    assert StockMovement.objects.count() == movements


def test_nothing_to_do():
    assert stock_set_on_hand_bulk(targets=[], actor=None) == 0


def test_bundles_many_sets_changes_and_unsets_in_one_pass():
    a, b, c = variant("A"), variant("B"), variant("C")
    old_kit, new_kit = variant("OLD-KIT"), variant("NEW-KIT")
    bundle_set_components(bundle=old_kit, components=[(a, 1)], actor=None)
    StockChange.objects.all().delete()

    # OLD-KIT stops using A and becomes B*2; A itself becomes a bundle of C: legal once both apply.
    changed = bundle_set_components_many(
        changes=[(old_kit, [(b, 2)]), (a, [(c, 1)]), (new_kit, [(b, 1), (c, 3)])], actor=None
    )

    assert changed == 3
    assert list(old_kit.components.values_list("component__sku", "quantity")) == [("B", 2)]
    assert list(a.components.values_list("component__sku", "quantity")) == [("C", 1)]
    a.refresh_from_db()
    assert a.is_bundle
    assert set(StockChange.objects.values_list("variant__sku", flat=True)) == {"A", "OLD-KIT", "NEW-KIT"}

    bundle_set_components_many(changes=[(a, [])], actor=None)
    a.refresh_from_db()
    assert not a.is_bundle
    assert not a.components.exists()


@pytest.mark.parametrize(
    ("make_changes", "message"),
    [
        (lambda a, b, kit: [(b, [(kit, 1)])], "KIT is itself a bundle"),
        (lambda a, b, kit: [(a, [(b, 1)])], "A is a component of another bundle"),
        (lambda a, b, kit: [(b, [(a, 1)]), (b, [(a, 2)])], "given twice"),
        (lambda a, b, kit: [(b, [(a, 1), (a, 1)])], "listed twice"),
        (lambda a, b, kit: [(b, [(b, 1)])], "component of itself"),
        (lambda a, b, kit: [(b, [(a, 0)])], "above 0"),
    ],
)
def test_bundles_many_refuses_and_changes_nothing(make_changes, message):
    a, b, kit = variant("A"), variant("B"), variant("KIT")
    bundle_set_components(bundle=kit, components=[(a, 1)], actor=None)
    with pytest.raises(StockError, match=message):
        bundle_set_components_many(changes=make_changes(a, b, kit), actor=None)
    assert list(kit.components.values_list("component__sku", flat=True)) == ["A"]
    assert not b.components.exists()


def test_bundles_many_refuses_a_variant_that_holds_stock():
    held = stocked("HELD", 2, at=location("main"))
    part = variant("PART")
    with pytest.raises(StockError, match="HELD holds stock of its own"):
        bundle_set_components_many(changes=[(held, [(part, 1)])], actor=None)

"""stock_set_on_hand_bulk: many levels at once, with the same guarantees as the one-level services."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from inventory.models import MovementReason, StockChange, StockLevel, StockMovement
from inventory.services import LineRequest, StockError, bundle_set_components, stock_allocate, stock_set_on_hand_bulk
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

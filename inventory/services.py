"""Every write to stock: receive, adjust, count, transfer, allocate, release, ship, return.

Each function owns its transaction, locks the levels it changes in primary-key order (`select_for_update`),
changes them with F() expressions, and writes one StockMovement per level change and one StockChange (the
fan-out outbox) per variant whose availability moved, all in that transaction. Nothing reads a count,
changes it in Python and writes it back. The database's check constraints (on_hand >= 0, allocated >= 0,
allocated <= on_hand) are the last line of defence; the checks here give the clear error first.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.db import connection, models, transaction
from django.db.models import F
from django.db.models.constants import OnConflict
from django.utils import timezone

from inventory.models import (
    Allocation,
    BundleComponent,
    Location,
    MovementReason,
    StockChange,
    StockLevel,
    StockMovement,
    Variant,
)
from oms.core.services import Actor, acting_user, actor_label_for

logger = logging.getLogger(__name__)


class StockError(ValueError):
    """A stock change that cannot be made as asked; the message is for staff."""


@dataclass(frozen=True, slots=True)
class LineRequest:
    """One line of a reference (an order) that needs stock: `line` is the reference's own key for it."""

    line: str
    sku: str
    quantity: int


@dataclass(slots=True)
class AllocationResult:
    allocated: dict[str, int] = field(default_factory=dict)  # line -> units now allocated (bundles: kits)
    short: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # line -> (sku, wanted, allocated)
    unknown: dict[str, str] = field(default_factory=dict)  # line -> sku not in the catalog

    @property
    def complete(self) -> bool:
        return not self.short and not self.unknown


def _actor(actor: Actor, system: str) -> dict[str, object]:
    return {"actor": acting_user(actor), "actor_label": actor_label_for(actor, system=system)}


def _locked_levels(pairs: Iterable[tuple[int, int]], *, create: bool = True) -> dict[tuple[int, int], StockLevel]:
    """Lock the levels of (variant, location) pairs in primary-key order, creating missing ones if `create`."""
    pairs = set(pairs)
    variant_ids = {v for v, _ in pairs}
    location_ids = {loc for _, loc in pairs}

    def lock() -> dict[tuple[int, int], StockLevel]:
        rows = StockLevel.objects.select_for_update().filter(variant_id__in=variant_ids, location_id__in=location_ids)
        return {(r.variant_id, r.location_id): r for r in rows.order_by("pk") if (r.variant_id, r.location_id) in pairs}

    levels = lock()
    missing = pairs - set(levels)
    if missing and create:
        StockLevel.objects.bulk_create(
            [StockLevel(variant_id=v, location_id=loc) for v, loc in sorted(missing)], ignore_conflicts=True
        )
        levels = lock()
    return levels


def _move(
    level: StockLevel,
    *,
    on_hand: int = 0,
    allocated: int = 0,
    reason: str,
    reference: str = "",
    note: str = "",
    who: dict[str, object],
) -> StockMovement:
    """Apply a delta to a locked level with F() expressions and write its ledger row."""
    updated = StockLevel.objects.filter(pk=level.pk).update(
        on_hand=F("on_hand") + on_hand, allocated=F("allocated") + allocated
    )
    if updated != 1:  # pragma: no cover - the row is locked by the caller
        raise StockError(f"stock level {level.pk} vanished")
    level.on_hand += on_hand
    level.allocated += allocated
    return StockMovement.objects.create(
        variant_id=level.variant_id,
        location_id=level.location_id,
        delta_on_hand=on_hand,
        delta_allocated=allocated,
        reason=reason,
        reference=reference[:100],
        note=note[:255],
        **who,
    )


def _outbox(variant_ids: Iterable[int]) -> None:
    """Record that these variants' availability moved (bundles made of them too), and wake the fan-out."""
    ids = set(variant_ids)
    if not ids:
        return
    ids |= set(BundleComponent.objects.filter(component_id__in=ids).values_list("bundle_id", flat=True))
    from inventory.selectors import available_for  # reads live with the reads

    available = available_for(ids)
    thresholds = dict(Variant.objects.filter(pk__in=ids).values_list("pk", "low_stock_threshold"))
    changes = [StockChange(variant_id=v, urgent=available.get(v, 0) <= thresholds.get(v, 0)) for v in sorted(ids)]
    StockChange.objects.bulk_create(changes)
    from inventory.services_fanout import fanout_signal

    fanout_signal(urgent=any(c.urgent for c in changes))


def _variant_for_stock(variant: Variant) -> Variant:
    # Asked of the database: the caller's instance may predate the variant becoming a bundle.
    if Variant.objects.filter(pk=variant.pk, is_bundle=True).exists():
        raise StockError(f"{variant.sku} is a bundle: it holds no stock of its own; change its components")
    return variant


def _positive(quantity: int, what: str) -> int:
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        raise StockError(f"{what} must be a whole number above 0, not {quantity!r}")
    return quantity


# ---------------------------------------------------------------------------------------------------------
# Stock staff move by hand


@transaction.atomic
def stock_receive(
    *,
    variant: Variant,
    location: Location,
    quantity: int,
    actor: Actor,
    reference: str = "",
    note: str = "",
    reason: str = MovementReason.RECEIVE,
    system: str = "system",
) -> StockLevel:
    """Units arrived (a delivery, a return put back on the shelf)."""
    _positive(quantity, "the quantity received")
    _variant_for_stock(variant)
    level = _locked_levels([(variant.pk, location.pk)])[(variant.pk, location.pk)]
    _move(level, on_hand=quantity, reason=reason, reference=reference, note=note, who=_actor(actor, system))
    _outbox([variant.pk])
    return level


@transaction.atomic
def stock_adjust(
    *,
    variant: Variant,
    location: Location,
    delta: int,
    note: str,
    actor: Actor,
    reason: str = MovementReason.ADJUST,
    reference: str = "",
    system: str = "system",
) -> StockLevel:
    """Add or remove units for a stated reason (damage, loss, found, correction)."""
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
        raise StockError(f"an adjustment must change the quantity by a whole number, not {delta!r}")
    if not note.strip():
        raise StockError("an adjustment needs a reason")
    _variant_for_stock(variant)
    level = _locked_levels([(variant.pk, location.pk)])[(variant.pk, location.pk)]
    if level.on_hand + delta < level.allocated:
        raise StockError(
            f"{variant.sku} at {location.code}: {level.on_hand} on hand, {level.allocated} allocated to open "
            f"orders; taking {-delta} would leave too few for them"
        )
    _move(level, on_hand=delta, reason=reason, reference=reference, note=note.strip(), who=_actor(actor, system))
    _outbox([variant.pk])
    return level


@transaction.atomic
def stock_count(
    *, variant: Variant, location: Location, counted: int, actor: Actor, note: str = "", system: str = "system"
) -> StockMovement | None:
    """A stock-take: the shelf holds `counted`. Posts the difference as a ledger row (None when it matched)."""
    if not isinstance(counted, int) or isinstance(counted, bool) or counted < 0:
        raise StockError(f"a count must be a whole number of 0 or more, not {counted!r}")
    _variant_for_stock(variant)
    level = _locked_levels([(variant.pk, location.pk)])[(variant.pk, location.pk)]
    delta = counted - level.on_hand
    if delta == 0:
        return None
    if counted < level.allocated:
        raise StockError(
            f"{variant.sku} at {location.code}: counted {counted} but {level.allocated} are allocated to open "
            "orders; cancel or move those orders first"
        )
    movement = _move(
        level, on_hand=delta, reason=MovementReason.COUNT, note=note or f"counted {counted}", who=_actor(actor, system)
    )
    _outbox([variant.pk])
    return movement


@transaction.atomic
def stock_transfer(
    *,
    variant: Variant,
    source: Location,
    target: Location,
    quantity: int,
    actor: Actor,
    note: str = "",
    system: str = "system",
) -> tuple[StockLevel, StockLevel]:
    """Move free units from one location to another: two ledger rows, one reference."""
    _positive(quantity, "the quantity to transfer")
    _variant_for_stock(variant)
    if source.pk == target.pk:
        raise StockError("a transfer needs two different locations")
    levels = _locked_levels([(variant.pk, source.pk), (variant.pk, target.pk)])
    out, into = levels[(variant.pk, source.pk)], levels[(variant.pk, target.pk)]
    if out.available < quantity:
        raise StockError(f"{variant.sku} at {source.code}: only {out.available} free to move, not {quantity}")
    who = _actor(actor, system)
    reference = f"transfer:{source.code}>{target.code}"
    _move(out, on_hand=-quantity, reason=MovementReason.TRANSFER, reference=reference, note=note, who=who)
    _move(into, on_hand=quantity, reason=MovementReason.TRANSFER, reference=reference, note=note, who=who)
    _outbox([variant.pk])
    return out, into


# ---------------------------------------------------------------------------------------------------------
# Stock promised to orders


def _needs(lines: Sequence[LineRequest]) -> tuple[dict[str, list[tuple[int, int]]], dict[str, str]]:
    """line -> [(component variant id, units per line unit)], and the lines whose SKU is unknown."""
    skus = {line.sku for line in lines}
    variants = {v.sku: v for v in Variant.objects.filter(sku__in=skus, active=True)}
    bundles = [v.pk for v in variants.values() if v.is_bundle]
    parts: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for bc in BundleComponent.objects.filter(bundle_id__in=bundles).order_by("component_id"):
        parts[bc.bundle_id].append((bc.component_id, bc.quantity))
    needs: dict[str, list[tuple[int, int]]] = {}
    unknown: dict[str, str] = {}
    for line in lines:
        variant = variants.get(line.sku)
        if variant is None or (variant.is_bundle and not parts.get(variant.pk)):
            unknown[line.line] = line.sku
        else:
            needs[line.line] = parts[variant.pk] if variant.is_bundle else [(variant.pk, 1)]
    return needs, unknown


@transaction.atomic
def stock_allocate(
    *, reference: str, lines: Sequence[LineRequest], actor: Actor = None, system: str = "system"
) -> AllocationResult:
    """Promise stock to a reference's lines, topping up what is already allocated; never more than is free.

    Idempotent: running it again for the same lines allocates only what is still missing. A line is
    allocated whole or not at all (for a bundle: whole kits), from the locations in priority order; what
    cannot be covered is reported as short and keeps whatever earlier units it already holds.
    """
    result = AllocationResult()
    lines = [line for line in lines if line.quantity > 0]
    if not lines:
        return result
    needs, result.unknown = _needs(lines)
    if not needs:
        return result
    variant_ids = {v for parts in needs.values() for v, _ in parts}
    locations = list(Location.objects.filter(active=True).order_by("priority", "pk").values_list("pk", flat=True))
    levels = _locked_levels(((v, loc) for v in variant_ids for loc in locations), create=False)
    # Read under the level locks: an allocation of this reference made a moment ago is seen, not repeated.
    already: dict[tuple[str, int], int] = defaultdict(int)
    existing: dict[tuple[str, int, int], int] = {}
    for a in Allocation.objects.filter(reference=reference, line__in=list(needs)):
        already[(a.line, a.variant_id)] += a.quantity
        existing[(a.line, a.variant_id, a.location_id)] = a.pk
    empty = StockLevel(on_hand=0, allocated=0)
    who = _actor(actor, system)
    touched: set[int] = set()
    for req in lines:
        parts = needs.get(req.line)
        if parts is None:
            continue
        missing = {v: per * req.quantity - already[(req.line, v)] for v, per in parts}
        missing = {v: m for v, m in missing.items() if m > 0}
        free = {v: sum(levels.get((v, loc), empty).available for loc in locations) for v in missing}
        if any(free[v] < m for v, m in missing.items()):
            held = min(already[(req.line, v)] // per for v, per in parts)
            result.short[req.line] = (req.sku, req.quantity, held)
            continue
        for v, m in missing.items():
            for loc in locations:
                level = levels.get((v, loc), empty)
                take = min(m, level.available)
                if take <= 0:
                    continue
                _move(level, allocated=take, reason=MovementReason.SALE, reference=reference, who=who)
                row_pk = existing.get((req.line, v, loc))
                if row_pk is None:
                    Allocation.objects.create(
                        reference=reference, line=req.line, variant_id=v, location_id=loc, quantity=take
                    )
                else:
                    Allocation.objects.filter(pk=row_pk).update(quantity=F("quantity") + take)
                m -= take
                touched.add(v)
                if m == 0:
                    break
        result.allocated[req.line] = req.quantity
    _outbox(touched)
    return result


def _settle(reference: str, lines: Iterable[str] | None, *, ship: bool, actor: Actor, system: str, note: str) -> int:
    allocations = Allocation.objects.filter(reference=reference)
    if lines is not None:
        allocations = allocations.filter(line__in=list(lines))
    rows = list(allocations.select_for_update().order_by("pk"))
    if not rows:
        return 0
    levels = _locked_levels((a.variant_id, a.location_id) for a in rows)
    who = _actor(actor, system)
    units = 0
    for a in rows:
        level = levels[(a.variant_id, a.location_id)]
        if ship:
            _move(
                level,
                on_hand=-a.quantity,
                allocated=-a.quantity,
                reason=MovementReason.SHIP,
                reference=reference,
                note=note,
                who=who,
            )
        else:
            _move(level, allocated=-a.quantity, reason=MovementReason.CANCEL, reference=reference, note=note, who=who)
        units += a.quantity
    Allocation.objects.filter(pk__in=[a.pk for a in rows]).delete()
    if not ship:  # shipping takes units that were already not available: channels show the same
        _outbox({a.variant_id for a in rows})
    return units


@transaction.atomic
def stock_release(
    *, reference: str, lines: Iterable[str] | None = None, actor: Actor = None, note: str = "", system: str = "system"
) -> int:
    """Give back what a reference (or some of its lines) holds: a cancellation. Returns the units released."""
    return _settle(reference, lines, ship=False, actor=actor, system=system, note=note)


@transaction.atomic
def stock_ship(
    *, reference: str, lines: Iterable[str] | None = None, actor: Actor = None, note: str = "", system: str = "system"
) -> int:
    """The allocated units left the building: on_hand and allocated both fall. Returns the units shipped."""
    return _settle(reference, lines, ship=True, actor=actor, system=system, note=note)


@transaction.atomic
def stock_return(
    *,
    variant: Variant,
    location: Location,
    quantity: int,
    reference: str,
    actor: Actor,
    note: str = "",
    system: str = "system",
) -> StockLevel:
    """Returned units put back as sellable."""
    return stock_receive(
        variant=variant,
        location=location,
        quantity=quantity,
        actor=actor,
        reference=reference,
        note=note,
        reason=MovementReason.RETURN,
        system=system,
    )


# ---------------------------------------------------------------------------------------------------------
# The catalog


@transaction.atomic
def bundle_set_components(
    *, bundle: Variant, components: Sequence[tuple[Variant, int]], actor: Actor, system: str = "system"
) -> Variant:
    """Make `bundle` a kit of these components (an empty list makes it an ordinary variant again)."""
    from oms.core.services import audit_record

    seen: set[int] = set()
    for component, quantity in components:
        _positive(quantity, f"the quantity of {component.sku} in {bundle.sku}")
        if component.pk == bundle.pk:
            raise StockError(f"{bundle.sku} cannot be a component of itself")
        if component.is_bundle:
            raise StockError(f"{component.sku} is itself a bundle; nest components one level only")
        if component.pk in seen:
            raise StockError(f"{component.sku} is listed twice in {bundle.sku}")
        seen.add(component.pk)
    bundle = Variant.objects.select_for_update().get(pk=bundle.pk)
    if components and StockLevel.objects.filter(variant=bundle).exclude(on_hand=0).exists():
        raise StockError(f"{bundle.sku} holds stock of its own; move it out before making it a bundle")
    if components and BundleComponent.objects.filter(component=bundle).exists():
        raise StockError(f"{bundle.sku} is a component of another bundle")
    before = list(bundle.components.values_list("component__sku", "quantity"))
    BundleComponent.objects.filter(bundle=bundle).delete()
    BundleComponent.objects.bulk_create(
        [BundleComponent(bundle=bundle, component=c, quantity=q) for c, q in components]
    )
    bundle.is_bundle = bool(components)
    bundle.save(update_fields=["is_bundle", "updated_at"])
    audit_record(
        actor=actor,
        verb="variant.bundle",
        obj=bundle,
        before={"components": before},
        after={"components": [(c.sku, q) for c, q in components]},
        system=system,
    )
    _outbox([bundle.pk])
    return bundle


# ---------------------------------------------------------------------------------------------------------
# Many levels at once (a catalog import, a full stock-take)

_BULK_BATCH = 1000


def _batches(items: Sequence[int], size: int = _BULK_BATCH) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert_rows(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
) -> None:
    """INSERT plain rows (values ready for the database) with executemany, in batches: for the tens of thousands of
    ledger, outbox and level rows of an import, about three times faster than bulk_create, which builds a model
    instance and compiles every value of every row in Python."""
    meta = model._meta
    quote = connection.ops.quote_name
    concrete = [cast("models.Field[Any, Any]", meta.get_field(name)) for name in fields]
    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    sql = "{} {} ({}) VALUES ({}) {}".format(
        connection.ops.insert_statement(on_conflict=on_conflict),
        quote(meta.db_table),
        ", ".join(quote(f.column) for f in concrete),
        ", ".join(["%s"] * len(concrete)),
        connection.ops.on_conflict_suffix_sql(concrete, on_conflict, None, None) or "",
    ).strip()
    with connection.cursor() as cursor:
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == _BULK_BATCH:
                cursor.executemany(sql, batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)


def _now_for_db() -> Any:
    return connection.ops.adapt_datetimefield_value(timezone.now())


def _outbox_many(variant_ids: Iterable[int]) -> None:
    """`_outbox` for thousands of variants: the same rows, read and written in batches, and one wake-up."""
    ids = sorted(set(variant_ids))
    if not ids:
        return
    from inventory.selectors import available_for  # reads live with the reads

    bundles: set[int] = set()
    for batch in _batches(ids):
        bundles.update(
            BundleComponent.objects.filter(component_id__in=batch).order_by().values_list("bundle_id", flat=True)
        )
    ids = sorted(set(ids) | bundles)
    urgent = False
    now = _now_for_db()
    for batch in _batches(ids):
        available = available_for(batch)
        thresholds = dict(Variant.objects.filter(pk__in=batch).order_by().values_list("pk", "low_stock_threshold"))
        changes = [(v, available.get(v, 0) <= thresholds.get(v, 0), now) for v in batch]
        _insert_rows(StockChange, ("variant", "urgent", "created_at"), changes)
        urgent = urgent or any(flag for _, flag, _ in changes)
    from inventory.services_fanout import fanout_signal

    fanout_signal(urgent=urgent)


def _lock_pairs(
    pairs: set[tuple[int, int]], *, create: set[tuple[int, int]]
) -> dict[tuple[int, int], tuple[int, int, int]]:
    """Lock the levels of many (variant, location) pairs, creating the missing ones that are in `create`;
    (variant, location) -> (pk, on hand, allocated). Existing levels are locked first, in one primary-key order
    across all batches; the levels created here come after them (an INSERT holds its new row's lock until
    commit)."""
    variant_ids = sorted({v for v, _ in pairs})
    location_ids = sorted({loc for _, loc in pairs})

    def find(among: Sequence[int]) -> dict[tuple[int, int], int]:
        found: dict[tuple[int, int], int] = {}
        for batch in _batches(among):
            rows = StockLevel.objects.filter(variant_id__in=batch, location_id__in=location_ids).order_by()
            for pk, v, loc in rows.values_list("pk", "variant_id", "location_id"):
                if (v, loc) in pairs:
                    found[(v, loc)] = pk
        return found

    def lock(pks: Sequence[int]) -> dict[tuple[int, int], tuple[int, int, int]]:
        locked: dict[tuple[int, int], tuple[int, int, int]] = {}
        for batch in _batches(sorted(pks)):
            rows = StockLevel.objects.select_for_update().filter(pk__in=batch).order_by("pk")
            for pk, v, loc, on_hand, allocated in rows.values_list(
                "pk", "variant_id", "location_id", "on_hand", "allocated"
            ):
                locked[(v, loc)] = (pk, on_hand, allocated)
        return locked

    levels = lock(list(find(variant_ids).values()))
    missing = (pairs - set(levels)) & create
    if missing:
        now = _now_for_db()
        _insert_rows(
            StockLevel,
            ("variant", "location", "on_hand", "allocated", "updated_at"),
            ((v, loc, 0, 0, now) for v, loc in sorted(missing)),
            ignore_conflicts=True,
        )
        created = find(sorted({v for v, _ in missing}))
        levels.update(lock([pk for pair, pk in created.items() if pair in missing]))
    return levels


@transaction.atomic
def stock_set_on_hand_bulk(
    *,
    targets: Sequence[tuple[int, int, int]],
    actor: Actor,
    reason: str = MovementReason.COUNT,
    reference: str = "",
    note: str = "",
    system: str = "system",
    progress: Callable[[int, int], None] | None = None,  # (stages done, stages): locked, moved, ledger, outbox
) -> int:
    """Set the on-hand quantity of many levels, given as (variant id, location id, on hand): a catalog import or
    a full stock-take. Each difference is posted as one ledger row; returns how many levels changed.

    All or nothing: a target below 0 or below what is allocated to open orders, a bundle, or a level named twice
    raises StockError and changes nothing. Levels are locked in primary-key order and moved with F() updates
    (one UPDATE per batch of levels that move by the same amount), in this one transaction with their ledger
    and outbox rows.
    """
    wanted: dict[tuple[int, int], int] = {}
    for variant_id, location_id, on_hand in targets:
        if not isinstance(on_hand, int) or isinstance(on_hand, bool) or on_hand < 0:
            raise StockError(f"an on-hand quantity must be a whole number of 0 or more, not {on_hand!r}")
        if (variant_id, location_id) in wanted:
            raise StockError(f"variant {variant_id} at location {location_id} is given twice")
        wanted[(variant_id, location_id)] = on_hand
    if not wanted:
        return 0
    variant_ids = sorted({v for v, _ in wanted})
    for batch in _batches(variant_ids):
        bundle = Variant.objects.filter(pk__in=batch, is_bundle=True).values_list("sku", flat=True).first()
        if bundle is not None:
            raise StockError(f"{bundle} is a bundle: it holds no stock of its own; change its components")

    # A missing level that should hold 0 already does, as far as the ledger is concerned: no row for it.
    levels = _lock_pairs(set(wanted), create={pair for pair, on_hand in wanted.items() if on_hand})
    if progress is not None:
        progress(1, 4)
    by_delta: dict[int, list[int]] = defaultdict(list)
    moves: list[tuple[int, int, int, int]] = []  # (level pk, variant, location, delta)
    short: list[tuple[int, int, int, int]] = []  # (variant, location, wanted, allocated)
    for (variant_id, location_id), (pk, on_hand, allocated) in sorted(levels.items(), key=lambda item: item[1][0]):
        target = wanted[(variant_id, location_id)]
        if target < allocated:
            short.append((variant_id, location_id, target, allocated))
        elif target != on_hand:
            by_delta[target - on_hand].append(pk)
            moves.append((pk, variant_id, location_id, target - on_hand))
    if short:
        skus = dict(Variant.objects.filter(pk__in=[s[0] for s in short[:5]]).values_list("pk", "sku"))
        codes = dict(Location.objects.filter(pk__in=[s[1] for s in short[:5]]).values_list("pk", "code"))
        listed = "; ".join(
            f"{skus[v]} at {codes[loc]}: {want} wanted, {alloc} allocated" for v, loc, want, alloc in short[:5]
        )
        more = f" and {len(short) - 5} more" if len(short) > 5 else ""
        raise StockError(f"on hand cannot go below what is allocated to open orders: {listed}{more}")

    total = len(moves)
    now = timezone.now()
    for delta, pks in sorted(by_delta.items()):
        for batch in _batches(pks):
            StockLevel.objects.filter(pk__in=batch).update(on_hand=F("on_hand") + delta, updated_at=now)
    if progress is not None:
        progress(2, 4)
    who = _actor(actor, system)
    actor_id = who["actor"].pk if who["actor"] is not None else None  # type: ignore[attr-defined]
    created = _now_for_db()
    _insert_rows(
        StockMovement,
        (
            "variant",
            "location",
            "delta_on_hand",
            "delta_allocated",
            "reason",
            "reference",
            "note",
            "actor",
            "actor_label",
            "created_at",
        ),
        (
            (
                variant_id,
                location_id,
                delta,
                0,
                reason,
                reference[:100],
                note[:255],
                actor_id,
                who["actor_label"],
                created,
            )
            for _, variant_id, location_id, delta in moves
        ),
    )
    if progress is not None:
        progress(3, 4)
    _outbox_many(variant_id for _, variant_id, _, _ in moves)
    if progress is not None:
        progress(4, 4)
    return total


@transaction.atomic
def bundle_set_components_many(
    *, changes: Sequence[tuple[Variant, Sequence[tuple[Variant, int]]]], actor: Actor, system: str = "system"
) -> int:
    """`bundle_set_components` for many bundles at once (a catalog import): the same rules, judged on the state
    after all of `changes`, one audit row per bundle, the bundles locked in primary-key order and one outbox
    pass. All or nothing: any broken rule raises StockError and changes nothing. Returns how many changed."""
    from oms.core.services import audit_record

    new: dict[int, list[tuple[int, int]]] = {}
    skus: dict[int, str] = {}
    for bundle, components in changes:
        if bundle.pk in new:
            raise StockError(f"{bundle.sku} is given twice")
        seen: set[int] = set()
        for component, quantity in components:
            _positive(quantity, f"the quantity of {component.sku} in {bundle.sku}")
            if component.pk == bundle.pk:
                raise StockError(f"{bundle.sku} cannot be a component of itself")
            if component.pk in seen:
                raise StockError(f"{component.sku} is listed twice in {bundle.sku}")
            seen.add(component.pk)
            skus[component.pk] = component.sku
        new[bundle.pk] = [(c.pk, q) for c, q in components]
        skus[bundle.pk] = bundle.sku
    if not new:
        return 0
    ids = sorted(new)
    for batch in _batches(ids):
        list(Variant.objects.select_for_update().filter(pk__in=batch).order_by("pk").values_list("pk", flat=True))

    # The state after the change: the new lists, and every other bundle as it is.
    component_ids = sorted({c for parts in new.values() for c, _ in parts})
    bundles_now: set[int] = set()
    used_by: dict[int, set[int]] = defaultdict(set)  # component -> bundles, outside `changes`
    for batch in _batches(sorted(set(ids) | set(component_ids))):
        bundles_now.update(Variant.objects.filter(pk__in=batch, is_bundle=True).order_by().values_list("pk", flat=True))
        for bundle_id, component_id in (
            BundleComponent.objects.filter(component_id__in=batch).order_by().values_list("bundle_id", "component_id")
        ):
            if bundle_id not in new:
                used_by[component_id].add(bundle_id)
    for bundle_id, parts in new.items():
        for component_id, _ in parts:
            used_by[component_id].add(bundle_id)
    making = [pk for pk in ids if new[pk]]
    for pk in making:
        for component_id, _ in new[pk]:
            if bool(new[component_id]) if component_id in new else component_id in bundles_now:
                raise StockError(f"{skus[component_id]} is itself a bundle; nest components one level only")
        if used_by.get(pk):
            raise StockError(f"{skus[pk]} is a component of another bundle")
    for batch in _batches(making):
        holding = (
            StockLevel.objects.filter(variant_id__in=batch).exclude(on_hand=0).order_by().values_list("variant_id")
        )
        for (pk,) in holding[:1]:
            raise StockError(f"{skus[pk]} holds stock of its own; move it out before making it a bundle")

    before: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for batch in _batches(ids):
        rows = BundleComponent.objects.filter(bundle_id__in=batch).order_by("bundle_id", "component_id")
        for bundle_id, sku, quantity in rows.values_list("bundle_id", "component__sku", "quantity"):
            before[bundle_id].append((sku, quantity))
        BundleComponent.objects.filter(bundle_id__in=batch).delete()
    BundleComponent.objects.bulk_create(
        [BundleComponent(bundle_id=b, component_id=c, quantity=q) for b in ids for c, q in new[b]],
        batch_size=_BULK_BATCH,
    )
    now = timezone.now()
    unmaking = [pk for pk in ids if not new[pk]]
    for flag, pks in ((True, making), (False, unmaking)):
        for batch in _batches(pks):
            Variant.objects.filter(pk__in=batch).update(is_bundle=flag, updated_at=now)
    for bundle, components in changes:
        audit_record(
            actor=actor,
            verb="variant.bundle",
            obj=bundle,
            before={"components": [list(p) for p in before.get(bundle.pk, [])]},
            after={"components": [(c.sku, q) for c, q in components]},
            system=system,
        )
    _outbox_many(ids)
    return len(ids)

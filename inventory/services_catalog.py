"""Catalog import: check a catalog file against the catalog (a dry run that writes nothing), import it in one
transaction, and move the CatalogImport records of the staff screen through their states.

Stock is set only through inventory.services.stock_set_on_hand_bulk and bundles only through
bundle_set_components_many, so the ledger, the levels and the fan-out outbox stay in step. An import is all or
nothing: any row error, or any failure while writing, rolls the whole file back.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from inventory.catalog_format import (
    CatalogFile,
    CatalogFileError,
    CellError,
    open_catalog,
    parse_bool,
    parse_components,
    parse_money,
    parse_whole,
)
from inventory.models import BundleComponent, CatalogImport, Location, MovementReason, Product, StockLevel, Variant
from inventory.services import StockError, bundle_set_components_many, stock_set_on_hand_bulk
from oms.core.queue import enqueue_after_commit
from oms.core.services import Actor, acting_user, audit_record

logger = logging.getLogger(__name__)

CHECK_JOB = "inventory.jobs_catalog.catalog_import_check"
RUN_JOB = "inventory.jobs_catalog.catalog_import_run"
JOB_TIMEOUT = 1800
SYSTEM = "catalog import"
MAX_STORED_ERRORS = 1000
PROGRESS_TTL = 6 * 3600
_BATCH = 1000

Progress = Callable[[str, float], None]  # (what is happening, share done from 0 to 1)

# column -> Variant field, and the longest text each column takes
VARIANT_FIELDS = {
    "barcode": "barcode",
    "variant_title": "title",
    "weight_grams": "weight_grams",
    "hs_code": "hs_code",
    "cost_price": "cost_price",
    "sale_price": "sale_price",
    "low_stock_threshold": "low_stock_threshold",
    "active": "active",
}
_TEXT_LIMITS = {"product_title": 255, "vendor": 120, "sku": 100, "barcode": 64, "variant_title": 255, "hs_code": 16}
_PARSERS: dict[str, Callable[[str], Any]] = {
    "weight_grams": parse_whole,
    "low_stock_threshold": lambda text: parse_whole(text, empty=0),
    "cost_price": parse_money,
    "sale_price": parse_money,
    "active": parse_bool,
}


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem: `row` as a spreadsheet numbers it (1 is the header, 0 the file as a whole)."""

    row: int
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        where = "file" if self.row == 0 else "header" if self.row == 1 else f"row {self.row}"
        return f"{where}, {self.column}: {self.message}" if self.column else f"{where}: {self.message}"


class CatalogImportError(Exception):
    """The file was not imported (nothing was written); `errors` say why."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        super().__init__(f"{len(errors)} error(s); nothing imported")
        self.errors = list(errors)


class CatalogImportStateError(ValueError):
    """The import record is not in a state that allows this step; the message is for staff."""


@dataclass(slots=True)
class _Current:
    """A variant as stored."""

    pk: int
    sku: str
    product_id: int
    product_title: str
    product_vendor: str
    values: dict[str, Any]
    is_bundle: bool


@dataclass(slots=True)
class _Line:
    """One valid row as the import applies it."""

    row: int
    sku: str  # the stored SKU when the variant exists
    title: str
    vendor: str | None  # None: no vendor column
    values: dict[str, Any]  # Variant field -> value, for the columns the file has
    components: dict[str, int] | None  # component SKU -> quantity; None: no bundle_components column
    stock: dict[int, int]  # location id -> on hand, for the non-empty stock cells
    current: _Current | None = None
    product_id: int | None = None  # an existing product
    product_key: tuple[str, str] | None = None  # a product to create
    changed: list[str] = field(default_factory=list)  # Variant fields that differ from what is stored


@dataclass(slots=True)
class CatalogPlan:
    """What importing a file would do, or the errors that stop it."""

    rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    lines: list[_Line] = field(default_factory=list)
    new_products: list[tuple[str, str]] = field(default_factory=list)
    stock_targets: list[tuple[str, int, int]] = field(default_factory=list)  # (sku, location id, on hand)
    bundle_changes: dict[str, dict[str, int]] = field(default_factory=dict)  # bundle SKU -> components ({}: none)
    other_variants: dict[str, int] = field(default_factory=dict)  # SKU -> id of stored components not in the file

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> dict[str, int]:
        if self.errors:  # nothing would change: only what was read
            return {"rows": self.rows}
        created = sum(1 for line in self.lines if line.current is None)
        updated = sum(
            1
            for line in self.lines
            if line.current is not None and (line.changed or line.product_id != line.current.product_id)
        )
        return {
            "rows": self.rows,
            "products_created": len(self.new_products),
            "variants_created": created,
            "variants_updated": updated,
            "variants_unchanged": len(self.lines) - created - updated,
            "stock_levels_changed": len(self.stock_targets),
            "bundles_changed": len(self.bundle_changes),
        }


SUMMARY_LABELS = {
    "rows": "rows read",
    "products_created": "products created",
    "variants_created": "variants created",
    "variants_updated": "variants updated",
    "variants_unchanged": "variants unchanged",
    "stock_levels_changed": "stock levels set",
    "bundles_changed": "bundles changed",
}


def summary_text(summary: dict[str, int]) -> str:
    """'33,000 rows read, 1 product created, ...' for the command line."""
    parts = []
    for key, label in SUMMARY_LABELS.items():
        count = summary.get(key, 0)
        noun, _, rest = label.partition(" ")
        parts.append(f"{count:,} {noun[:-1] if count == 1 else noun} {rest}")
    return ", ".join(parts)


def _batches(items: Sequence[Any], size: int = _BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _scaled(progress: Progress | None, start: float, end: float) -> Progress | None:
    if progress is None:
        return None
    return lambda label, share: progress(label, start + (end - start) * min(max(share, 0.0), 1.0))


class _Resolver:
    """SKUs (or location codes) as stored: the exact text first, else the one stored value that differs only in
    case (MariaDB's collation treats those as equal, so the file cannot mean another one)."""

    def __init__(self, values: Iterable[str]) -> None:
        self.exact = set(values)
        folded: dict[str, list[str]] = defaultdict(list)
        for value in self.exact:
            folded[value.casefold()].append(value)
        self.folded = folded

    def add(self, value: str) -> None:
        if value not in self.exact:
            self.exact.add(value)
            self.folded[value.casefold()].append(value)

    def get(self, value: str) -> str | None:
        if value in self.exact:
            return value
        candidates = self.folded.get(value.casefold(), [])
        return candidates[0] if len(candidates) == 1 else None


# ---------------------------------------------------------------------------------------------------------
# The check (a dry run): reads only


class _Checker:
    def __init__(self, catalog: CatalogFile, progress: Progress | None) -> None:
        self.catalog = catalog
        self.progress = progress
        self.plan = CatalogPlan()

    def error(self, row: int, column: str, message: str) -> None:
        self.plan.errors.append(RowError(row, column, message))

    def run(self) -> CatalogPlan:
        locations = self._locations()
        lines = self._parse(locations)
        self._report("Comparing with the catalog", 0.6)
        variants = self._load_variants([line.sku for line in lines])
        for line in lines:
            line.current = variants.get(line.sku)
            if line.current is not None:
                line.sku = line.current.sku
        components = self._resolve_components(lines)
        self.plan.other_variants = {v.sku: v.pk for v in components.values()}
        self._products(lines)
        self._report("Checking bundles and stock", 0.8)
        self._bundles_and_stock(lines, components)
        self.plan.errors.sort(key=lambda e: (e.row, e.column))
        if not self.plan.errors:
            self.plan.lines = lines
        self._report("Checked", 1.0)
        return self.plan

    def _report(self, label: str, share: float) -> None:
        if self.progress is not None:
            self.progress(label, share)

    def _locations(self) -> dict[str, int]:
        """stock column code -> location id; unknown codes are errors of the header."""
        stored = dict(Location.objects.values_list("code", "pk"))
        resolver = _Resolver(stored)
        found = {}
        for code in self.catalog.stock_codes:
            match = resolver.get(code)
            if match is None:
                self.error(1, f"stock:{code}", f"unknown location code '{code}': add the location first")
            else:
                found[code] = stored[match]
        return found

    def _parse(self, locations: dict[str, int]) -> list[_Line]:
        catalog = self.catalog
        columns = [c for c in VARIANT_FIELDS if catalog.has(c)]
        has_vendor = catalog.has("vendor")
        has_components = catalog.has("bundle_components")
        stock_columns = [(f"stock:{code}", locations.get(code)) for code in catalog.stock_codes]
        first_row: dict[str, int] = {}
        lines: list[_Line] = []
        estimate = catalog.row_estimate
        for row in catalog.rows():
            self.plan.rows += 1
            if self.plan.rows % 2000 == 0:
                self._report("Reading rows", 0.6 * min(self.plan.rows / estimate, 1.0))
            cells = row.cells
            n = row.number
            errors_before = len(self.plan.errors)
            if row.extra_cells:
                self.error(n, "", "more cells than the header has columns")
            for column, limit in _TEXT_LIMITS.items():
                if len(cells.get(column, "")) > limit:
                    self.error(n, column, f"longer than {limit} characters")
            sku, title = cells["sku"], cells["product_title"]
            if not sku:
                self.error(n, "sku", "required")
            if not title:
                self.error(n, "product_title", "required")
            if sku:
                key = sku.casefold()
                if key in first_row:
                    self.error(n, "sku", f"duplicate SKU {sku}: also on row {first_row[key]}")
                else:
                    first_row[key] = n
            values: dict[str, Any] = {}
            for column in columns:
                text = cells[column]
                parser = _PARSERS.get(column)
                try:
                    values[VARIANT_FIELDS[column]] = parser(text) if parser else text
                except CellError as exc:
                    self.error(n, column, str(exc))
            components: dict[str, int] | None = None
            if has_components:
                try:
                    parsed = parse_components(cells["bundle_components"])
                except CellError as exc:
                    self.error(n, "bundle_components", str(exc))
                else:
                    components = {}
                    for component, quantity in parsed:
                        if component.casefold() in {c.casefold() for c in components}:
                            self.error(n, "bundle_components", f"{component} is listed twice")
                        components[component] = quantity
            stock: dict[int, int] = {}
            for column, location_id in stock_columns:
                text = cells[column]
                try:
                    on_hand = parse_whole(text)
                except CellError as exc:
                    self.error(n, column, str(exc).replace("must not be negative", "stock must not be negative"))
                    continue
                if on_hand is not None and location_id is not None:
                    stock[location_id] = on_hand
            if len(self.plan.errors) == errors_before:
                lines.append(
                    _Line(
                        row=n,
                        sku=sku,
                        title=title,
                        vendor=cells["vendor"] if has_vendor else None,
                        values=values,
                        components=components,
                        stock=stock,
                    )
                )
            elif sku and first_row.get(sku.casefold()) == n:
                # A row with errors still names its SKU: bundles that use it must not also report it unknown.
                lines.append(_Line(row=-n, sku=sku, title=title, vendor=None, values={}, components=None, stock={}))
        return lines

    def _load_variants(self, skus: Sequence[str]) -> dict[str, _Current]:
        """file SKU -> the stored variant it names (exact, else differing only in case)."""
        fields = list(VARIANT_FIELDS.values())
        stored: dict[str, _Current] = {}
        wanted = sorted(set(skus))
        for batch in _batches(wanted):
            rows = (
                Variant.objects.filter(sku__in=batch)
                .order_by()
                .values("pk", "sku", "product_id", "product__title", "product__vendor", "is_bundle", *fields)
            )
            for r in rows:
                stored[r["sku"]] = _Current(
                    pk=r["pk"],
                    sku=r["sku"],
                    product_id=r["product_id"],
                    product_title=r["product__title"],
                    product_vendor=r["product__vendor"],
                    values={f: r[f] for f in fields},
                    is_bundle=r["is_bundle"],
                )
        resolver = _Resolver(stored)
        found = {}
        for sku in wanted:
            match = resolver.get(sku)
            if match is not None:
                found[sku] = stored[match]
        return found

    def _resolve_components(self, lines: list[_Line]) -> dict[str, _Current]:
        """Resolve the SKUs named in bundle_components to file rows or stored variants; returns the stored
        component variants that are not rows of the file."""
        in_file = _Resolver(line.sku for line in lines)
        named = {c for line in lines if line.components for c in line.components}
        outside = self._load_variants(sorted(c for c in named if in_file.get(c) is None))
        for line in lines:
            if not line.components or line.row < 0:
                continue
            resolved: dict[str, int] = {}
            for component, quantity in line.components.items():
                sku = in_file.get(component)
                if sku is None and component in outside:
                    sku = outside[component].sku
                if sku is None:
                    self.error(line.row, "bundle_components", f"unknown component SKU {component}")
                    continue
                if sku.casefold() == line.sku.casefold():
                    self.error(line.row, "bundle_components", f"{line.sku} cannot be a component of itself")
                    continue
                resolved[sku] = quantity
            line.components = resolved
        return {v.sku: v for v in outside.values()}

    def _products(self, lines: list[_Line]) -> None:
        titles = sorted({line.title for line in lines if line.row > 0})
        by_key: dict[tuple[str, str], int] = {}
        by_title: dict[str, int] = {}
        for batch in _batches(titles):
            for pk, title, vendor in (
                Product.objects.filter(title__in=batch).order_by("pk").values_list("pk", "title", "vendor")
            ):
                by_key.setdefault((title, vendor), pk)
                by_title.setdefault(title, pk)
        new: dict[tuple[str, str], None] = {}
        for line in lines:
            if line.row < 0:
                continue
            current = line.current
            if (
                current is not None
                and current.product_title == line.title
                and (line.vendor is None or current.product_vendor == line.vendor)
            ):
                line.product_id = current.product_id
                continue
            found = by_title.get(line.title) if line.vendor is None else by_key.get((line.title, line.vendor))
            if found is not None:
                line.product_id = found
            else:
                line.product_key = (line.title, line.vendor or "")
                new[line.product_key] = None
        self.plan.new_products = list(new)

    def _bundles_and_stock(self, lines: list[_Line], outside: dict[str, _Current]) -> None:
        plan = self.plan
        stored_ids = {line.current.pk: line.current.sku for line in lines if line.current is not None}
        stored_ids.update({v.pk: v.sku for v in outside.values()})
        ids = sorted(stored_ids)
        # Components as stored: whole lists for the bundles among these variants, and the bundles that use them.
        stored: dict[str, dict[str, int]] = defaultdict(dict)
        for batch in _batches(ids):
            for lookup in ("bundle_id__in", "component_id__in"):
                for bundle, component, quantity in (
                    BundleComponent.objects.filter(**{lookup: batch})
                    .order_by()
                    .values_list("bundle__sku", "component__sku", "quantity")
                ):
                    stored[bundle][component] = quantity
        levels: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)  # variant -> location -> (on hand, alloc)
        for batch in _batches(ids):
            for v, loc, on_hand, allocated in (
                StockLevel.objects.filter(variant_id__in=batch)
                .order_by()
                .values_list("variant_id", "location_id", "on_hand", "allocated")
            ):
                levels[v][loc] = (on_hand, allocated)

        final: dict[str, dict[str, int]] = {sku: dict(parts) for sku, parts in stored.items()}
        for line in lines:
            if line.components is not None and line.row > 0:
                final[line.sku] = line.components
        used_in: dict[str, list[str]] = defaultdict(list)
        for bundle, parts in final.items():
            for component in parts:
                used_in[component].append(bundle)
        codes = {pk: code for code, pk in Location.objects.values_list("code", "pk")}

        for line in lines:
            if line.row < 0:
                continue
            current = line.current
            held = levels.get(current.pk, {}) if current is not None else {}
            if line.components is not None and line.components != stored.get(line.sku, {}):
                plan.bundle_changes[line.sku] = line.components
            if final.get(line.sku):
                self._check_bundle(line, final, used_in, held, codes)
            else:
                for location_id, on_hand in line.stock.items():
                    before, allocated = held.get(location_id, (0, 0))
                    if on_hand < allocated:
                        self.error(
                            line.row,
                            f"stock:{codes[location_id]}",
                            f"stock below what is allocated: {allocated} units are allocated to open orders "
                            f"(on hand {before}); set at least {allocated}",
                        )
                    elif on_hand != before:
                        plan.stock_targets.append((line.sku, location_id, on_hand))
            if current is not None:
                line.changed = [f for f, value in line.values.items() if current.values[f] != value]

    def _check_bundle(
        self,
        line: _Line,
        final: dict[str, dict[str, int]],
        used_in: dict[str, list[str]],
        held: dict[int, tuple[int, int]],
        codes: dict[int, str],
    ) -> None:
        for component in final[line.sku]:
            if final.get(component):
                self.error(
                    line.row, "bundle_components", f"{component} is itself a bundle; bundles nest one level only"
                )
        if used_in.get(line.sku):
            self.error(
                line.row,
                "bundle_components",
                f"{line.sku} is a component of bundle {', '.join(sorted(used_in[line.sku]))}, so it cannot be a bundle",
            )
        for location_id, on_hand in line.stock.items():
            if on_hand != 0:
                self.error(
                    line.row,
                    f"stock:{codes[location_id]}",
                    "a bundle holds no stock of its own: leave the cell empty (its stock is its components')",
                )
        after = {loc: line.stock.get(loc, before) for loc, (before, _) in held.items()}
        holding = {loc: n for loc, n in after.items() if n}
        if holding:
            where = ", ".join(f"{n} at {codes[loc]}" for loc, n in sorted(holding.items()))
            self.error(
                line.row,
                "bundle_components",
                f"{line.sku} holds stock of its own ({where}): set those stock cells to 0 to make it a bundle",
            )
        for location_id, on_hand in line.stock.items():
            if on_hand == 0 and held.get(location_id, (0, 0))[0] != 0:
                self.plan.stock_targets.append((line.sku, location_id, 0))


def catalog_check(*, catalog: CatalogFile, progress: Progress | None = None) -> CatalogPlan:
    """What importing `catalog` would do, or every row error that stops it. Reads only: the dry run."""
    return _Checker(catalog, progress).run()


# ---------------------------------------------------------------------------------------------------------
# The import: one transaction


def _apply(plan: CatalogPlan, *, actor: Actor, reference: str, note: str, progress: Progress | None) -> None:
    def report(label: str, share: float) -> None:
        if progress is not None:
            progress(label, share)

    report("Creating products", 0.0)
    products = [Product(title=title, vendor=vendor) for title, vendor in plan.new_products]
    if connection.features.can_return_rows_from_bulk_insert:
        Product.objects.bulk_create(products, batch_size=_BATCH)
    else:  # MySQL returns no ids from a bulk insert, and titles are not unique: insert one by one
        for product in products:
            product.save()
    product_ids = {(p.title, p.vendor): p.pk for p in products}

    lines = plan.lines
    product_of = {
        line.sku: line.product_id or product_ids[line.product_key or ("", "")] for line in lines if line.row > 0
    }
    # Changed variants: one upsert per set of changed fields (far fewer statements than an UPDATE per row).
    by_fields: dict[tuple[str, ...], list[Variant]] = defaultdict(list)
    for line in lines:
        current = line.current
        if current is None:
            by_fields[()].append(Variant(product_id=product_of[line.sku], sku=line.sku, **line.values))
            continue
        fields = [*line.changed, *(["product_id"] if product_of[line.sku] != current.product_id else [])]
        if fields:
            values = {**current.values, **line.values}
            by_fields[(*sorted(fields), "updated_at")].append(
                Variant(pk=current.pk, product_id=product_of[line.sku], sku=current.sku, **values)
            )
    target = ["pk"] if connection.features.supports_update_conflicts_with_target else None
    todo = sum(len(variants) for variants in by_fields.values())
    done = 0
    created: list[Variant] = []
    for names, variants in by_fields.items():
        for batch in _batches(variants):
            if names:
                Variant.objects.bulk_create(batch, update_conflicts=True, unique_fields=target, update_fields=names)
            else:
                created += Variant.objects.bulk_create(batch)
            done += len(batch)
            report("Creating and updating variants", 0.05 + 0.2 * done / todo)
    variant_ids = dict(plan.other_variants)
    variant_ids.update({line.current.sku: line.current.pk for line in lines if line.current is not None})
    variant_ids.update({v.sku: v.pk for v in created if v.pk is not None})
    missing = [v.sku for v in created if v.pk is None]  # MySQL returns no ids from a bulk insert
    for batch in _batches(missing):
        variant_ids.update(Variant.objects.filter(sku__in=batch).order_by().values_list("sku", "pk"))

    def variants_by_sku(skus: Iterable[str]) -> dict[str, Variant]:
        pks = sorted({variant_ids[s] for s in skus})
        found: dict[str, Variant] = {}
        for batch in _batches(pks):
            found.update({v.sku: v for v in Variant.objects.filter(pk__in=batch)})
        return found

    def set_bundles(skus: list[str]) -> None:
        instances = variants_by_sku({*skus, *(c for sku in skus for c in plan.bundle_changes[sku])})
        bundle_set_components_many(
            changes=[
                (instances[sku], [(instances[c], q) for c, q in plan.bundle_changes[sku].items()]) for sku in skus
            ],
            actor=actor,
            system=SYSTEM,
        )

    # Bundles that stop being bundles first: they may take stock in this file.
    report("Updating bundles", 0.25)
    set_bundles(sorted(sku for sku, parts in plan.bundle_changes.items() if not parts))

    report("Setting stock", 0.3)
    stock_progress = _scaled(progress, 0.3, 0.9)
    stock_set_on_hand_bulk(
        targets=[(variant_ids[sku], location_id, on_hand) for sku, location_id, on_hand in plan.stock_targets],
        actor=actor,
        reason=MovementReason.COUNT,
        reference=reference,
        note=note,
        system=SYSTEM,
        progress=(lambda done, total: stock_progress("Setting stock", done / total)) if stock_progress else None,
    )

    # Then the new and changed bundles: a variant that becomes one had its stock set to 0 just now.
    report("Updating bundles", 0.9)
    set_bundles(sorted(sku for sku, parts in plan.bundle_changes.items() if parts))
    report("Finishing", 1.0)


@transaction.atomic
def _import_atomic(
    *, catalog: CatalogFile, actor: Actor, reference: str, record: CatalogImport | None, progress: Progress | None
) -> CatalogPlan:
    plan = catalog_check(catalog=catalog, progress=_scaled(progress, 0.0, 0.35))
    if not plan.ok:
        raise CatalogImportError(plan.errors)
    _apply(
        plan,
        actor=actor,
        reference=reference,
        note=f"catalog import of {catalog.name}"[:255],
        progress=_scaled(progress, 0.35, 1.0),
    )
    audit_record(
        actor=actor,
        verb="catalog.import",
        obj=record,
        after=plan.summary(),
        reason=catalog.name[:200],
        system=SYSTEM,
    )
    return plan


def catalog_import(
    *,
    catalog: CatalogFile,
    actor: Actor,
    reference: str = "catalog-import",
    record: CatalogImport | None = None,
    progress: Progress | None = None,
) -> CatalogPlan:
    """Check and import a catalog file in one transaction: all of it, or (CatalogImportError) none of it."""
    try:
        return _import_atomic(catalog=catalog, actor=actor, reference=reference, record=record, progress=progress)
    except StockError as exc:  # the catalog changed after the check (an order took stock meanwhile)
        raise CatalogImportError([RowError(0, "", f"{exc}. Nothing was imported.")]) from exc
    except IntegrityError as exc:
        logger.warning("catalog import %s: integrity error %s", reference, exc)
        raise CatalogImportError(
            [
                RowError(
                    0,
                    "",
                    "The catalog changed while the file was imported (another import or edit added the same SKU?). "
                    "Nothing was imported: check the file again.",
                )
            ]
        ) from exc


# ---------------------------------------------------------------------------------------------------------
# Import records: the staff screen's upload, check, confirm and run


def progress_key(import_id: int) -> str:
    return f"inventory:catalog-import:{import_id}:progress"


def _progress_writer(import_id: int) -> Progress:
    """Progress into the cache (the import's transaction hides everything else), at most a few times a second."""
    last = [0.0]

    def write(label: str, share: float) -> None:
        now = time.monotonic()
        if share < 1.0 and now - last[0] < 0.3:
            return
        last[0] = now
        cache.set(progress_key(import_id), {"label": label, "percent": round(share * 100)}, PROGRESS_TTL)

    return write


def catalog_import_content(record: CatalogImport) -> bytes:
    return zlib.decompress(bytes(record.content))


@transaction.atomic
def catalog_import_create(*, file_name: str, content: bytes, file_format: str, actor: Actor) -> CatalogImport:
    """Store an uploaded file (its header already checked) and start its dry run as a job."""
    record = CatalogImport.objects.create(
        file_name=file_name[:255],
        file_format=file_format,
        content=zlib.compress(content, 6),
        status=CatalogImport.Status.CHECKING,
        created_by=acting_user(actor),
    )
    enqueue_after_commit(CHECK_JOB, record.pk, queue="low", job_timeout=JOB_TIMEOUT)
    return record


def _errors_json(errors: Sequence[RowError]) -> list[dict[str, Any]]:
    return [e.as_dict() for e in errors[:MAX_STORED_ERRORS]]


def catalog_import_check_run(*, import_id: int) -> CatalogImport | None:
    """The dry run of a stored upload (the job): row errors or what the import would do, on the record."""
    record = CatalogImport.objects.filter(pk=import_id).first()
    if record is None or record.status != CatalogImport.Status.CHECKING:
        return record
    CatalogImport.objects.filter(pk=import_id).update(started_at=timezone.now())
    progress = _progress_writer(import_id)
    summary: dict[str, int] = {}
    try:
        catalog = open_catalog(catalog_import_content(record), record.file_name)
        plan = catalog_check(catalog=catalog, progress=progress)
        errors, summary = plan.errors, plan.summary()
    except CatalogFileError as exc:
        errors = [RowError(0, "", str(exc))]
    status = CatalogImport.Status.INVALID if errors else CatalogImport.Status.CHECKED
    CatalogImport.objects.filter(pk=import_id, status=CatalogImport.Status.CHECKING).update(
        status=status,
        rows=summary.get("rows", 0),
        error_count=len(errors),
        errors=_errors_json(errors),
        summary=summary,
        finished_at=timezone.now(),
    )
    progress("Checked", 1.0)
    record.refresh_from_db()
    return record


@transaction.atomic
def catalog_import_confirm(*, catalog_import: CatalogImport, actor: Actor) -> CatalogImport:
    """Import a checked file (as a job): only once, and only if its dry run found no errors."""
    claimed = CatalogImport.objects.filter(pk=catalog_import.pk, status=CatalogImport.Status.CHECKED).update(
        status=CatalogImport.Status.QUEUED, confirmed_by=acting_user(actor)
    )
    if not claimed:
        raise CatalogImportStateError("This file cannot be imported now: it has errors, or it was imported already.")
    cache.set(progress_key(catalog_import.pk), {"label": "Waiting for a worker", "percent": 0}, PROGRESS_TTL)
    enqueue_after_commit(RUN_JOB, catalog_import.pk, queue="low", job_timeout=JOB_TIMEOUT)
    catalog_import.refresh_from_db()
    return catalog_import


def catalog_import_execute(*, import_id: int) -> CatalogImport | None:
    """The import of a confirmed file (the job): run once, record the result or every error (nothing written)."""
    claimed = CatalogImport.objects.filter(pk=import_id, status=CatalogImport.Status.QUEUED).update(
        status=CatalogImport.Status.IMPORTING, started_at=timezone.now(), finished_at=None
    )
    record = CatalogImport.objects.filter(pk=import_id).select_related("confirmed_by").first()
    if not claimed or record is None:
        return record
    progress = _progress_writer(import_id)
    errors: list[RowError] = []
    summary: dict[str, int] = {}
    try:
        catalog = open_catalog(catalog_import_content(record), record.file_name)
        plan = catalog_import(
            catalog=catalog,
            actor=record.confirmed_by,
            reference=f"catalog-import:{import_id}",
            record=record,
            progress=progress,
        )
        summary = plan.summary()
    except CatalogFileError as exc:
        errors = [RowError(0, "", str(exc))]
    except CatalogImportError as exc:
        errors = exc.errors
    except DatabaseError as exc:
        logger.exception("catalog import %s: database error", import_id)
        errors = [RowError(0, "", f"The database refused the import ({type(exc).__name__}); nothing was imported.")]
    except Exception:
        CatalogImport.objects.filter(pk=import_id).update(
            status=CatalogImport.Status.FAILED,
            error_count=1,
            errors=[RowError(0, "", "The import stopped on an unexpected error; nothing was imported.").as_dict()],
            finished_at=timezone.now(),
        )
        raise
    CatalogImport.objects.filter(pk=import_id).update(
        status=CatalogImport.Status.FAILED if errors else CatalogImport.Status.DONE,
        error_count=len(errors),
        errors=_errors_json(errors),
        summary=summary or record.summary,
        rows=summary.get("rows", record.rows),
        finished_at=timezone.now(),
    )
    progress("Imported" if not errors else "Failed", 1.0)
    record.refresh_from_db()
    return record

"""The catalog import and export engine: the file format, the dry run, all-or-nothing imports, every row error,
stock through the ledger, bundles, round trips in CSV and XLSX, formula neutralisation."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.db.models import Sum

from inventory.catalog_format import CatalogFileError, csv_stream, open_catalog, xlsx_write
from inventory.models import (
    BundleComponent,
    MovementReason,
    Product,
    StockChange,
    StockLevel,
    StockMovement,
    Variant,
)
from inventory.selectors_catalog import catalog_export_header, catalog_export_locations, catalog_export_rows
from inventory.services import LineRequest, stock_allocate
from inventory.services_catalog import CatalogImportError, catalog_check, catalog_import
from oms.core.models import AuditEntry
from tests.factories import location, stocked, variant
from tests.inventory.catalog_files import HEADER, catalog, csv_bytes, read_csv, row, xlsx_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def main(db):
    return location("main", priority=10)


@pytest.fixture
def backroom(db):
    return location("backroom", priority=20)


def snapshot() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Product, Variant, StockLevel, StockMovement, StockChange, BundleComponent, AuditEntry)
    }


def assert_ledger_equals_levels() -> None:
    for level in StockLevel.objects.all():
        moved = StockMovement.objects.filter(variant_id=level.variant_id, location_id=level.location_id).aggregate(
            on_hand=Sum("delta_on_hand"), allocated=Sum("delta_allocated")
        )
        assert (moved["on_hand"] or 0, moved["allocated"] or 0) == (level.on_hand, level.allocated), level


def errors_of(rows, header=HEADER) -> list[tuple[int, str, str]]:
    plan = catalog_check(catalog=catalog(rows, header))
    return [(e.row, e.column, e.message) for e in plan.errors]


def export_csv() -> str:
    locations = catalog_export_locations()
    return "".join(csv_stream(catalog_export_header(locations), catalog_export_rows(locations=locations)))


def export_xlsx() -> bytes:
    locations = catalog_export_locations()
    out = io.BytesIO()
    xlsx_write(catalog_export_header(locations), catalog_export_rows(locations=locations), out)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------------
# Importing


def test_import_creates_products_variants_and_stock_through_the_ledger(main):
    rows = [
        row("MUG-BLUE", product_title="Mug", variant_title="Blue", stock_main="12"),
        row("MUG-RED", product_title="Mug", variant_title="Red", stock_main="0", barcode="0123456789012"),
        row("CANDLE-FIG", product_title="Candle", vendor="Wax & Co", cost_price="3.125", sale_price=""),
    ]

    plan = catalog_import(catalog=catalog(rows), actor=None)

    assert plan.summary() == {
        "rows": 3,
        "products_created": 2,
        "variants_created": 3,
        "variants_updated": 0,
        "variants_unchanged": 0,
        "stock_levels_changed": 2,
        "bundles_changed": 0,
    }
    blue = Variant.objects.select_related("product").get(sku="MUG-BLUE")
    red = Variant.objects.get(sku="MUG-RED")
    candle = Variant.objects.select_related("product").get(sku="CANDLE-FIG")
    assert blue.product_id == red.product_id
    assert (blue.product.title, blue.product.vendor, blue.title) == ("Mug", "Acme", "Blue")
    assert red.barcode == "0123456789012"
    assert (candle.product.vendor, candle.cost_price, candle.sale_price) == ("Wax & Co", Decimal("3.125"), None)
    assert (blue.weight_grams, blue.low_stock_threshold, blue.active) == (250, 2, True)
    assert StockLevel.objects.get(variant=blue, location=main).on_hand == 12
    assert not StockLevel.objects.filter(variant=red).exists()  # 0 where nothing was: no change, no level
    movement = StockMovement.objects.get(variant=blue)
    assert (movement.delta_on_hand, movement.reason, movement.actor_label) == (
        12,
        MovementReason.COUNT,
        "catalog import",
    )
    assert StockChange.objects.filter(variant=blue).exists()
    assert AuditEntry.objects.filter(verb="catalog.import").count() == 1
    assert_ledger_equals_levels()


def test_import_updates_by_sku_and_posts_only_the_stock_difference(main, backroom):
    existing = stocked("MUG-BLUE", 10, at=main, product_title="Mug")
    stocked("MUG-BLUE", 3, at=backroom)
    header = [*HEADER, "stock:backroom"]
    rows = [
        row("MUG-BLUE", product_title="Mug", vendor="", sale_price="14.00", stock_main="4", **{"stock:backroom": ""})
    ]

    plan = catalog_import(catalog=catalog(rows, header), actor=None)

    assert plan.summary()["variants_updated"] == 1
    assert plan.summary()["stock_levels_changed"] == 1
    existing.refresh_from_db()
    assert existing.sale_price == Decimal("14.000")
    assert Product.objects.count() == 1  # matched by title and vendor
    assert StockLevel.objects.get(variant=existing, location=main).on_hand == 4
    assert StockLevel.objects.get(variant=existing, location=backroom).on_hand == 3  # empty cell: unchanged
    last = StockMovement.objects.filter(variant=existing, location=main)[0]
    assert (last.delta_on_hand, last.reason) == (-6, MovementReason.COUNT)
    assert_ledger_equals_levels()


def test_importing_the_same_file_twice_changes_nothing_the_second_time(main):
    rows = [row("A-1", stock_main="5"), row("B-1", bundle_components="A-1*2", stock_main="")]
    catalog_import(catalog=catalog(rows), actor=None)
    before = snapshot()

    plan = catalog_import(catalog=catalog(rows), actor=None)

    assert plan.summary()["variants_unchanged"] == 2
    assert plan.summary()["stock_levels_changed"] == 0
    assert plan.summary()["bundles_changed"] == 0
    after = snapshot()
    assert after.pop("AuditEntry") == before.pop("AuditEntry") + 1  # the import itself is audited
    assert after == before


def test_a_missing_optional_column_leaves_that_field_as_it_is(main):
    kept = variant("KEEP-1", product_title="Lamp", weight_grams=900, sale_price=Decimal("30"))
    header = ["sku", "product_title", "barcode"]

    catalog_import(catalog=catalog([{"sku": "KEEP-1", "product_title": "Lamp", "barcode": "999"}], header), actor=None)

    kept.refresh_from_db()
    assert (kept.barcode, kept.weight_grams, kept.sale_price) == ("999", 900, Decimal("30.000"))


def test_a_new_title_moves_the_variant_to_a_matching_or_new_product(main):
    moved = variant("MOVE-1", product_title="Old name")
    catalog_import(catalog=catalog([row("MOVE-1", product_title="New name", vendor="")]), actor=None)
    moved.refresh_from_db()
    assert moved.product.title == "New name"
    assert Product.objects.filter(title="Old name").exists()


def test_bundles_are_set_changed_and_unset_through_the_service(main):
    catalog_import(
        catalog=catalog(
            [
                row("MUG-BLUE", stock_main="10"),
                row("CANDLE-FIG", stock_main="10"),
                row("GIFT-SET", bundle_components="MUG-BLUE*2;CANDLE-FIG*1", stock_main=""),
            ]
        ),
        actor=None,
    )
    gift = Variant.objects.get(sku="GIFT-SET")
    assert gift.is_bundle
    assert sorted(gift.components.values_list("component__sku", "quantity")) == [("CANDLE-FIG", 1), ("MUG-BLUE", 2)]
    assert AuditEntry.objects.filter(verb="variant.bundle", object_id=str(gift.pk)).count() == 1

    catalog_import(catalog=catalog([row("GIFT-SET", bundle_components="MUG-BLUE*3", stock_main="")]), actor=None)
    assert list(gift.components.values_list("component__sku", "quantity")) == [("MUG-BLUE", 3)]

    catalog_import(catalog=catalog([row("GIFT-SET", bundle_components="", stock_main="2")]), actor=None)
    gift.refresh_from_db()
    assert not gift.is_bundle
    assert StockLevel.objects.get(variant=gift).on_hand == 2
    assert_ledger_equals_levels()


def test_stock_cell_of_zero_empties_a_variant_that_becomes_a_bundle(main):
    stocked("MUG-BLUE", 4, at=main)
    stocked("KIT", 2, at=main)
    catalog_import(catalog=catalog([row("KIT", bundle_components="MUG-BLUE*1", stock_main="0")]), actor=None)
    kit = Variant.objects.get(sku="KIT")
    assert kit.is_bundle
    assert StockLevel.objects.get(variant=kit).on_hand == 0
    assert_ledger_equals_levels()


def test_a_sku_differing_only_in_case_is_the_stored_one_where_the_database_says_so(main, needs_server_db):
    # MariaDB/MySQL compare SKUs without case (the unique index too): the file's MUG-BLUE is the stored Mug-Blue.
    mug = variant("Mug-Blue", product_title="Mug")
    catalog_import(catalog=catalog([row("MUG-BLUE", product_title="Mug", vendor="", stock_main="3")]), actor=None)
    assert Variant.objects.count() == 1
    assert StockLevel.objects.get(variant=mug).on_hand == 3


def test_semicolon_separated_files_are_read(main):
    data = csv_bytes([row("SEMI-1", sale_price="9.50")], delimiter=";")
    catalog_import(catalog=open_catalog(data, "catalog.csv"), actor=None)
    assert Variant.objects.get(sku="SEMI-1").sale_price == Decimal("9.5")


# ---------------------------------------------------------------------------------------------------------
# Dry run and all or nothing


def test_dry_run_writes_nothing(main):
    stocked("MUG-BLUE", 5, at=main)
    before = snapshot()
    rows = [row("MUG-BLUE", stock_main="9"), row("NEW-1"), row("KIT-1", bundle_components="NEW-1*2", stock_main="")]

    plan = catalog_check(catalog=catalog(rows))

    assert plan.ok
    assert plan.summary()["variants_created"] == 2
    assert plan.summary()["stock_levels_changed"] == 2
    assert plan.summary()["bundles_changed"] == 1
    assert snapshot() == before


def test_one_bad_row_imports_nothing_and_names_the_row(main):
    before = snapshot()
    rows = [row("GOOD-1"), row("GOOD-2"), row("BAD-3", weight_grams="heavy"), row("GOOD-4")]

    with pytest.raises(CatalogImportError) as caught:
        catalog_import(catalog=catalog(rows), actor=None)

    assert [(e.row, e.column) for e in caught.value.errors] == [(4, "weight_grams")]
    assert snapshot() == before


def test_a_failure_while_writing_rolls_everything_back(main, monkeypatch):
    before = snapshot()

    def explode(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("inventory.services_catalog.bundle_set_components_many", explode)
    rows = [row("PART-1"), row("KIT-1", bundle_components="PART-1*1", stock_main="")]
    with pytest.raises(RuntimeError):
        catalog_import(catalog=catalog(rows), actor=None)
    assert snapshot() == before


def test_stock_taken_by_an_order_after_the_check_fails_the_import_cleanly(main, monkeypatch):
    mug = stocked("MUG-BLUE", 5, at=main)
    real_check = catalog_check

    def check_then_order(**kwargs):
        plan = real_check(**kwargs)
        stock_allocate(reference="order:race", lines=[LineRequest(line="1", sku="MUG-BLUE", quantity=4)])
        return plan

    monkeypatch.setattr("inventory.services_catalog.catalog_check", check_then_order)
    with pytest.raises(CatalogImportError) as caught:
        catalog_import(catalog=catalog([row("MUG-BLUE", stock_main="1")]), actor=None)
    assert "allocated" in caught.value.errors[0].message
    assert StockLevel.objects.get(variant=mug).on_hand == 5


# ---------------------------------------------------------------------------------------------------------
# Row errors, one kind each


@pytest.mark.parametrize(
    ("cells", "column", "message"),
    [
        ({"weight_grams": "heavy"}, "weight_grams", "not a whole number"),
        ({"weight_grams": "2.5"}, "weight_grams", "not a whole number"),
        ({"low_stock_threshold": "-1"}, "low_stock_threshold", "must not be negative"),
        ({"cost_price": "12,50"}, "cost_price", "not a number"),
        ({"sale_price": "1.2345"}, "sale_price", "at most 3 decimals"),
        ({"sale_price": "-3"}, "sale_price", "must not be negative"),
        ({"active": "maybe"}, "active", "not true or false"),
        ({"stock_main": "-4"}, "stock:main", "stock must not be negative"),
        ({"stock_main": "lots"}, "stock:main", "not a whole number"),
        ({"sku": ""}, "sku", "required"),
        ({"product_title": ""}, "product_title", "required"),
        ({"hs_code": "1" * 17}, "hs_code", "longer than 16"),
        ({"bundle_components": "MUG*two"}, "bundle_components", "whole number"),
        ({"bundle_components": "*2"}, "bundle_components", "has no SKU"),
        ({"bundle_components": "NOPE*1"}, "bundle_components", "unknown component SKU NOPE"),
        ({"bundle_components": "ROW-1*1"}, "bundle_components", "cannot be a component of itself"),
    ],
)
def test_each_bad_cell_is_reported_with_row_and_column(main, cells, column, message):
    errors = errors_of([row("OK-0"), row("ROW-1", **cells)])
    assert len(errors) == 1, errors
    assert errors[0][:2] == (3, column)
    assert message in errors[0][2]


def test_duplicate_sku_in_the_file(main):
    assert errors_of([row("DUP-1"), row("OTHER"), row("dup-1")]) == [(4, "sku", "duplicate SKU dup-1: also on row 2")]


def test_unknown_location_is_an_error_of_the_header(main):
    header = [*HEADER, "stock:attic"]
    assert errors_of([row("A-1", **{"stock:attic": "3"})], header) == [
        (1, "stock:attic", "unknown location code 'attic': add the location first")
    ]


def test_stock_below_what_is_allocated(main):
    stocked("MUG-BLUE", 5, at=main)
    stock_allocate(reference="order:1", lines=[LineRequest(line="1", sku="MUG-BLUE", quantity=3)])
    errors = errors_of([row("MUG-BLUE", stock_main="2")])
    assert [(r, c) for r, c, _ in errors] == [(2, "stock:main")]
    assert "3 units are allocated to open orders" in errors[0][2]


def test_more_cells_than_columns(main):
    data = csv_bytes([row("A-1")]) + b"Lamp,,B-1,,,,,,,,,,1,surplus\n"
    plan = catalog_check(catalog=open_catalog(data, "x.csv"))
    assert [(e.row, e.message) for e in plan.errors] == [(3, "more cells than the header has columns")]


@pytest.mark.parametrize(
    ("bundle_row", "column", "message"),
    [
        (
            row("NESTED", bundle_components="OLD-KIT*1", stock_main=""),
            "bundle_components",
            "OLD-KIT is itself a bundle",
        ),
        (
            row("PART-1", bundle_components="PLAIN-1*1", stock_main=""),
            "bundle_components",
            "PART-1 is a component of bundle OLD-KIT, so it cannot be a bundle",
        ),
        (
            row("HELD-1", bundle_components="PLAIN-1*1", stock_main=""),
            "bundle_components",
            "holds stock of its own (2 at main)",
        ),
        (
            row("NEW-KIT", bundle_components="PLAIN-1*1", stock_main="4"),
            "stock:main",
            "a bundle holds no stock of its own",
        ),
        (row("NEW-KIT", bundle_components="PLAIN-1*1;plain-1*2", stock_main=""), "bundle_components", "listed twice"),
    ],
)
def test_bundle_errors(main, bundle_row, column, message):
    stocked("HELD-1", 2, at=main)
    variant("PART-1")
    variant("PLAIN-1")
    catalog_import(catalog=catalog([row("OLD-KIT", bundle_components="PART-1*1", stock_main="")]), actor=None)

    errors = errors_of([bundle_row])

    assert [(r, c) for r, c, _ in errors] == [(2, column)], errors
    assert message in errors[0][2]


def test_a_row_with_errors_still_counts_as_in_the_file_for_bundles(main):
    errors = errors_of([row("PART-9", weight_grams="x"), row("KIT-9", bundle_components="PART-9*1", stock_main="")])
    assert [(r, c) for r, c, _ in errors] == [(2, "weight_grams")]


# ---------------------------------------------------------------------------------------------------------
# Bad files


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "catalog.csv", "empty"),
        (b"%PDF-1.7 ...", "catalog.pdf", "Upload a .csv or .xlsx file"),
        ("product_title,sku\nCafé,A-1\n".encode("latin-1"), "catalog.csv", "not UTF-8"),
        (b"title,sku\nLamp,A-1\n", "catalog.csv", "missing required column product_title"),
        (b"product_title,sku,colour\nLamp,A-1,red\n", "catalog.csv", "unknown column 'colour'"),
        (b"product_title,sku,sku\nLamp,A-1,A-1\n", "catalog.csv", "appears twice"),
        (b"product_title,sku,stock:\nLamp,A-1,1\n", "catalog.csv", "needs a location code"),
        (b"product_title,sku\n", "catalog.csv", "no rows"),
        (b"\n\n", "catalog.csv", "must name the columns"),
        (b"PK\x03\x04not really a zip", "catalog.xlsx", "not a readable Excel workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1old", "catalog.xls", "old Excel (.xls)"),
        (b"plain text", "catalog.xlsx", "not an Excel workbook"),
        (b"product_title,sku\x00\n", "catalog.csv", "binary data"),
    ],
)
def test_bad_files_are_refused_with_a_clear_message(data, name, message):
    with pytest.raises(CatalogFileError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        open_catalog(data, name)


def test_header_names_are_forgiving_about_case_spaces_and_bom(main):
    data = "\ufeff Product_Title , SKU ,Stock: main\nLamp,L-1,4\n".encode()
    catalog_import(catalog=open_catalog(data, "c.csv"), actor=None)
    assert StockLevel.objects.get(variant__sku="L-1").on_hand == 4


# ---------------------------------------------------------------------------------------------------------
# Export and round trips


def _build_catalog(main, backroom):
    header = [*HEADER, "stock:backroom"]
    rows = [
        row("MUG-BLUE", product_title="Mug", variant_title="Blue", stock_main="12", **{"stock:backroom": "3"}),
        row("MUG-RED", product_title="Mug", variant_title="Red", barcode="0012345", stock_main="0"),
        row("CANDLE-FIG", product_title="Candle", vendor="", cost_price="3.125", sale_price="", weight_grams=""),
        row("GIFT-SET", product_title="Gift set", bundle_components="CANDLE-FIG*1;MUG-BLUE*2", stock_main=""),
        row("OLD-1", product_title="Retired", active="false", low_stock_threshold="0", hs_code="6912.00"),
        row("EVIL-1", product_title='=HYPERLINK("http://x")', variant_title="+1 bonus", vendor="@acme"),
    ]
    for r in rows:
        r.setdefault("stock:backroom", "")
    catalog_import(catalog=catalog(rows, header), actor=None)


def test_csv_round_trip(main, backroom):
    _build_catalog(main, backroom)
    first = export_csv()
    before = snapshot()

    plan = catalog_import(catalog=open_catalog(first.encode(), "export.csv"), actor=None)

    assert plan.summary()["variants_unchanged"] == 6
    assert plan.summary()["stock_levels_changed"] == 0
    after = snapshot()
    assert after.pop("AuditEntry") == before.pop("AuditEntry") + 1
    assert after == before
    assert export_csv() == first
    rows = {r[2]: r for r in read_csv(first)}
    assert read_csv(first)[0] == [*HEADER, "stock:backroom"]
    assert rows["MUG-BLUE"][-2:] == ["12", "3"]
    assert rows["GIFT-SET"][11:] == ["CANDLE-FIG*1;MUG-BLUE*2", "", ""]
    assert rows["CANDLE-FIG"][7:9] == ["3.125", ""]
    assert rows["MUG-BLUE"][7:9] == ["4.00", "12.50"]
    assert rows["MUG-RED"][3] == "0012345"
    assert rows["OLD-1"][10] == "false"


def test_xlsx_round_trip(main, backroom):
    from openpyxl import load_workbook

    _build_catalog(main, backroom)
    data = export_xlsx()
    before = snapshot()

    plan = catalog_import(catalog=open_catalog(data, "export.xlsx"), actor=None)

    assert plan.summary()["variants_unchanged"] == 6
    after = snapshot()
    assert after.pop("AuditEntry") == before.pop("AuditEntry") + 1
    assert after == before
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    values = {r[2]: r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert values["MUG-BLUE"][-2:] == (12, 3)  # numbers stay numbers
    assert values["MUG-RED"][3] == "0012345"  # a barcode stays text, leading zeros and all


def test_xlsx_import_reads_numbers_written_as_numbers(main):
    rows = [["Lamp", "", "L-1", 12345678, "", 250.0, "", 4.5, 12.99, 2, True, "", 7]]
    catalog_import(catalog=open_catalog(xlsx_bytes(rows), "c.xlsx"), actor=None)
    lamp = Variant.objects.get(sku="L-1")
    assert (lamp.barcode, lamp.weight_grams, lamp.cost_price, lamp.sale_price) == (
        "12345678",
        250,
        Decimal("4.5"),
        Decimal("12.99"),
    )
    assert StockLevel.objects.get(variant=lamp).on_hand == 7


def test_xlsx_row_errors_use_spreadsheet_row_numbers(main):
    rows: list[list[object]] = [
        ["Lamp", "", "L-1", *[""] * 9, 1],
        [None] * 13,
        ["Lamp", "", "L-2", *[""] * 9, -1],
    ]
    plan = catalog_check(catalog=open_catalog(xlsx_bytes(rows), "c.xlsx"))
    assert [(e.row, e.column) for e in plan.errors] == [(4, "stock:main")]


def test_export_neutralises_formulas_in_csv_and_xlsx(main, backroom):
    from openpyxl import load_workbook

    _build_catalog(main, backroom)

    rows = {r[2]: r for r in read_csv(export_csv())}
    evil = rows["EVIL-1"]
    assert evil[0] == '\'=HYPERLINK("http://x")'
    assert evil[1] == "'@acme"
    assert evil[4] == "'+1 bonus"

    sheet = load_workbook(io.BytesIO(export_xlsx())).worksheets[0]
    cells = {r[2].value: r for r in sheet.iter_rows(min_row=2)}
    title = cells["EVIL-1"][0]
    assert title.data_type == "s"
    assert title.value == '\'=HYPERLINK("http://x")'
    # And the import gives the original text back.
    assert Variant.objects.select_related("product").get(sku="EVIL-1").product.title == '=HYPERLINK("http://x")'

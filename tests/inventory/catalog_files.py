"""Catalog files for the import tests: CSV and XLSX bytes from rows of cells."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from inventory.catalog_format import CatalogFile, open_catalog

HEADER = [
    "product_title",
    "vendor",
    "sku",
    "barcode",
    "variant_title",
    "weight_grams",
    "hs_code",
    "cost_price",
    "sale_price",
    "low_stock_threshold",
    "active",
    "bundle_components",
    "stock:main",
]


def row(sku: str, /, **cells: Any) -> dict[str, Any]:
    """A full row with sensible values; `cells` override (use stock_main for stock:main)."""
    values: dict[str, Any] = {
        "product_title": f"Product {sku}",
        "vendor": "Acme",
        "sku": sku,
        "barcode": "",
        "variant_title": "",
        "weight_grams": "250",
        "hs_code": "",
        "cost_price": "4.00",
        "sale_price": "12.50",
        "low_stock_threshold": "2",
        "active": "true",
        "bundle_components": "",
        "stock:main": "10",
    }
    for key, value in cells.items():
        values["stock:" + key[len("stock_") :] if key.startswith("stock_") else key] = value
    return values


def csv_bytes(rows: Sequence[dict[str, Any]], header: Sequence[str] = HEADER, *, delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(header)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else r.get(c) for c in header])
    return out.getvalue().encode("utf-8")


def xlsx_bytes(rows: Sequence[Sequence[Any]], header: Sequence[str] = HEADER) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(list(header))
    for r in rows:
        sheet.append(list(r))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def catalog(rows: Sequence[dict[str, Any]], header: Sequence[str] = HEADER) -> CatalogFile:
    return open_catalog(csv_bytes(rows, header), "catalog.csv")


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))

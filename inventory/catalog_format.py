"""The catalog file (CSV or XLSX), one format for the staff screen and the commands: its columns, reading a file
into rows of text cells, parsing cells, and writing rows. No database access here; README "Catalog import and
export" documents the format.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from oms.core.spreadsheet import EchoWriter, csv_safe, unneutralise

COLUMNS: tuple[str, ...] = (
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
)
REQUIRED_COLUMNS: tuple[str, ...] = ("product_title", "sku")
STOCK_PREFIX = "stock:"
FORMATS = ("csv", "xlsx")
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_ROWS = 100_000
MAX_WHOLE = 2_147_483_647  # the largest on-hand quantity a level holds
MAX_MONEY = Decimal("99999999999.999")  # money fields: 14 digits, 3 of them decimals

_TRUE = {"true", "yes", "y", "1", "active", "on"}
_FALSE = {"false", "no", "n", "0", "inactive", "off"}
# Characters an XLSX cell cannot hold (openpyxl refuses them): control characters but tab, newline, CR.
_XLSX_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")


class CatalogFileError(ValueError):
    """The file as a whole cannot be read as a catalog (format, encoding, header); the message is for staff."""


class CellError(ValueError):
    """One cell holds something its column does not take; the message is for staff."""


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: its number as a spreadsheet shows it (the header is row 1) and its cells as stripped text."""

    number: int
    cells: dict[str, str]
    extra_cells: bool = False  # non-empty cells beyond the last column


@dataclass(frozen=True)
class CatalogFile:
    """A catalog file whose header is valid. `rows()` reads the data rows (again on every call)."""

    name: str
    format: str
    columns: tuple[str, ...]  # as in the header, normalised: field columns and stock:CODE columns
    row_estimate: int
    _read: Callable[[], Iterator[list[Any]]]

    @property
    def stock_codes(self) -> tuple[str, ...]:
        """The location codes of the stock columns, in header order."""
        return tuple(c[len(STOCK_PREFIX) :] for c in self.columns if c.startswith(STOCK_PREFIX))

    def has(self, column: str) -> bool:
        return column in self.columns

    def rows(self) -> Iterator[Row]:
        raw = self._read()
        next(raw, None)  # the header
        width = len(self.columns)
        count = 0
        for number, values in enumerate(raw, start=2):
            texts = [_cell_text(v) for v in values]
            if not any(texts):
                continue
            count += 1
            if count > MAX_ROWS:
                raise CatalogFileError(f"The file has more than {MAX_ROWS:,} rows: split it into smaller files.")
            texts += [""] * (width - len(texts))
            yield Row(number, dict(zip(self.columns, texts, strict=False)), extra_cells=any(texts[width:]))


def _cell_text(value: Any) -> str:
    """A cell as text: XLSX numbers without a spurious '.0', booleans as true/false, spaces stripped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return unneutralise(str(value).strip())


def _normalise_header(cells: list[Any]) -> tuple[str, ...]:
    names = []
    for cell in cells:
        name = "" if cell is None else str(cell).strip().lstrip("\ufeff").strip()
        if name.lower().startswith(STOCK_PREFIX):
            name = STOCK_PREFIX + name[len(STOCK_PREFIX) :].strip()
        else:
            name = name.lower()
        names.append(name)
    while names and not names[-1]:  # spreadsheets often carry empty trailing columns
        names.pop()
    return tuple(names)


def _check_header(columns: tuple[str, ...]) -> None:
    if not columns:
        raise CatalogFileError("The first row must name the columns; it is empty.")
    problems = []
    seen: set[str] = set()
    for position, name in enumerate(columns, start=1):
        if not name:
            problems.append(f"column {position} has no name")
        elif name.startswith(STOCK_PREFIX) and not name[len(STOCK_PREFIX) :]:
            problems.append(f"column {position}: 'stock:' needs a location code, e.g. stock:main")
        elif not name.startswith(STOCK_PREFIX) and name not in COLUMNS:
            problems.append(f"unknown column '{name}'")
        if name and name.lower() in seen:
            problems.append(f"column '{name}' appears twice")
        seen.add(name.lower())
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        problems.insert(0, "missing required column" + ("s " if len(missing) > 1 else " ") + ", ".join(missing))
    if problems:
        raise CatalogFileError(
            "The header row is not a catalog header: "
            + "; ".join(problems)
            + ". Columns are: "
            + ", ".join(COLUMNS)
            + ", and stock:CODE per location."
        )


def detect_format(data: bytes, name: str) -> str:
    lower = name.lower()
    if data[:4] == b"PK\x03\x04":
        return "xlsx"
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise CatalogFileError("This is an old Excel (.xls) file: save it as .xlsx or as CSV UTF-8.")
    if lower.endswith((".xlsx", ".xlsm")):
        raise CatalogFileError("The file is named .xlsx but is not an Excel workbook.")
    if lower.endswith((".csv", ".txt")):
        return "csv"
    raise CatalogFileError("Upload a .csv or .xlsx file.")


def _open_csv(data: bytes, name: str) -> CatalogFile:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogFileError(
            f"The file is not UTF-8 text (a byte that does not fit at position {exc.start}): "
            "save it as 'CSV UTF-8' and upload it again."
        ) from None
    if "\x00" in text:
        raise CatalogFileError("The file holds binary data, not CSV text.")
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)

    def read() -> Iterator[list[Any]]:
        try:
            yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
        except csv.Error as exc:
            raise CatalogFileError(f"The CSV cannot be read: {exc}.") from None

    header = next(read(), None)
    columns = _normalise_header(header or [])
    _check_header(columns)
    return CatalogFile(name, "csv", columns, max(text.count("\n"), 1), read)


def _open_xlsx(data: bytes, name: str) -> CatalogFile:
    """The first sheet, read with calamine (openpyxl takes some 20 s for 33,000 rows; calamine under one)."""
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not book.sheet_names:
            raise CatalogFileError("The workbook has no sheet.")
        # skip_empty_area=False: leading empty rows stay, so row numbers are the ones the spreadsheet shows.
        values: list[list[Any]] = book.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except CatalogFileError:
        raise
    except Exception as exc:  # calamine's errors name the broken part of the file
        raise CatalogFileError(f"The file is not a readable Excel workbook (.xlsx): {exc}.") from None

    def read() -> Iterator[list[Any]]:
        yield from values

    columns = _normalise_header(values[0] if values else [])
    _check_header(columns)
    return CatalogFile(name, "xlsx", columns, max(len(values) - 1, 1), read)


def open_catalog(data: bytes, name: str) -> CatalogFile:
    """Check a file's format, encoding and header and that it has a data row; CatalogFileError says what is wrong."""
    if not data:
        raise CatalogFileError("The file is empty.")
    if len(data) > MAX_FILE_BYTES:
        raise CatalogFileError(f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB: split it.")
    kind = detect_format(data, name)
    catalog = _open_csv(data, name) if kind == "csv" else _open_xlsx(data, name)
    if next(catalog.rows(), None) is None:
        raise CatalogFileError("The file has a header but no rows.")
    return catalog


# ---------------------------------------------------------------------------------------------------------
# Cells


def parse_whole(text: str, *, empty: int | None = None) -> int | None:
    """A whole number of 0 or more ('12', or '12.0' as spreadsheets write it); `empty` for an empty cell."""
    if text == "":
        return empty
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise CellError(f"not a whole number: {text!r}") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise CellError(f"not a whole number: {text!r}")
    if number < 0:
        raise CellError(f"must not be negative: {text}")
    if number > MAX_WHOLE:
        raise CellError(f"too large: {text}")
    return int(number)


def parse_money(text: str) -> Decimal | None:
    """An amount of 0 or more with at most 3 decimals ('12.50'); None for an empty cell."""
    if text == "":
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise CellError(f"not a number: {text!r} (use a point for decimals, no currency sign)") from None
    if not amount.is_finite():
        raise CellError(f"not a number: {text!r}")
    if amount < 0:
        raise CellError(f"must not be negative: {text}")
    if amount > MAX_MONEY:
        raise CellError(f"too large: {text}")
    if amount != amount.quantize(Decimal("0.001")):
        raise CellError(f"at most 3 decimals: {text}")
    return amount.quantize(Decimal("0.001"))


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered == "" or lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise CellError(f"not true or false: {text!r}")


def parse_components(text: str) -> list[tuple[str, int]]:
    """'MUG-BLUE*2;CANDLE-FIG*1' -> [('MUG-BLUE', 2), ('CANDLE-FIG', 1)]; a SKU alone means 1."""
    parts: list[tuple[str, int]] = []
    for raw in re.split(r"[;\n]", text):
        part = raw.strip()
        if not part:
            continue
        sku, star, quantity = part.rpartition("*")
        if not star:
            sku, quantity = part, "1"
        sku = sku.strip()
        if not sku:
            raise CellError(f"{part!r} has no SKU; write SKU*QUANTITY, e.g. MUG-BLUE*2")
        try:
            count = int(quantity.strip())
        except ValueError:
            raise CellError(f"{part!r}: the quantity after * must be a whole number") from None
        if count <= 0:
            raise CellError(f"{part!r}: the quantity must be above 0")
        parts.append((sku, count))
    return parts


def format_components(components: Iterable[tuple[str, int]]) -> str:
    return ";".join(f"{sku}*{quantity}" for sku, quantity in components)


def format_money(amount: Decimal | None) -> str:
    """12.500 -> '12.50', 12.345 -> '12.345': at least two decimals, no trailing zeros beyond them."""
    if amount is None:
        return ""
    text = f"{amount:.3f}"
    return text[:-1] if text.endswith("0") else text


# ---------------------------------------------------------------------------------------------------------
# Writing


def header_for(location_codes: Iterable[str]) -> list[str]:
    return [*COLUMNS, *(f"{STOCK_PREFIX}{code}" for code in location_codes)]


def csv_stream(header: list[str], rows: Iterable[list[Any]]) -> Iterator[str]:
    """The CSV export, row by row (for a streaming response): UTF-8 with a BOM, every cell formula-safe."""
    writer = csv.writer(EchoWriter())
    yield "\ufeff"  # so that spreadsheets read the file as UTF-8
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([csv_safe(cell) for cell in row])


def _xlsx_cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return value
    return _XLSX_ILLEGAL.sub("", csv_safe(value))


def xlsx_write(header: list[str], rows: Iterable[list[Any]], out: IO[bytes]) -> None:
    """The XLSX export into `out`: numbers as numbers, text formula-safe (a text cell never becomes a formula)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("catalog")
    sheet.append(header)
    for row in rows:
        sheet.append([_xlsx_cell(cell) for cell in row])
    book.save(out)

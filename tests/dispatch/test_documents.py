"""Packing slips, pick lists and manifests, read back with pypdf: text, page sizes, page breaks, barcode."""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader
from reportlab.graphics.barcode.code128 import Code128

from dispatch import documents
from dispatch.documents import (
    ManifestData,
    ManifestRow,
    PickListData,
    PickRow,
    SlipData,
    SlipLine,
    fold_to_winansi,
    render_manifest,
    render_packing_slip,
    render_pick_list,
    select_fonts,
)

A4_POINTS = (595.28, 841.89)
FOUR_BY_SIX_POINTS = (288.0, 432.0)
NOTE = (
    "Please leave the parcel with the neighbour at number 14 if nobody is home, and do not fold the "
    "poster inside: it is a birthday present. Děkuji moc!"
)


def make_slip(line_count: int = 3, **overrides: object) -> SlipData:
    fields: dict[str, object] = {
        "order_number": "SO-100234",
        "channel_name": "Zásilkovna Žluťoučký",
        "placed": datetime(2026, 3, 1, 10, 5, tzinfo=UTC),
        "ship_to": ["Jana Nováková", "Dlouhá 12", "110 00 Praha 1", "Czechia"],
        "lines": [
            SlipLine(
                sku=f"SKU-{n:04d}",
                title=f"Enamel mug number {n}",
                qty=n % 3 + 1,
                bin_code=f"A-{n:03d}",
                variant="Blue / 350 ml",
            )
            for n in range(1, line_count + 1)
        ],
        "shop_name": "Main Shop",
        "return_address": ["Main Shop returns", "Skladová 3", "602 00 Brno"],
        "customer_note": NOTE,
    }
    fields.update(overrides)
    return SlipData(**fields)  # type: ignore[arg-type]


def read(pdf: bytes) -> PdfReader:
    assert pdf.startswith(b"%PDF-")
    return PdfReader(io.BytesIO(pdf))


def page_texts(reader: PdfReader) -> list[str]:
    return [page.extract_text() for page in reader.pages]


def page_size(reader: PdfReader, index: int = 0) -> tuple[float, float]:
    box = reader.pages[index].mediabox
    return round(float(box.width), 2), round(float(box.height), 2)


def base_fonts(reader: PdfReader, index: int = 0) -> set[str]:
    resources: Any = reader.pages[index]["/Resources"]
    return {str(font.get_object()["/BaseFont"]) for font in resources["/Font"].values()}


def drawn_bars(reader: PdfReader, index: int = 0) -> list[float]:
    """Widths of the most common family of filled rectangles of one height on a page: a barcode's bars."""
    content = reader.pages[index].get_contents()
    assert content is not None
    rects = [
        (float(w), float(h)) for w, h in re.findall(rb"[-\d.]+ [-\d.]+ ([-\d.]+) ([-\d.]+) re f", content.get_data())
    ]
    height, _count = Counter(h for _w, h in rects).most_common(1)[0]
    return [w for w, h in rects if h == height]


def code128_modules(value: str) -> list[int]:
    """The bar widths, in modules, that Code128 gives `value` (reportlab's own encoding)."""
    code = Code128(value)
    code.validate()
    code.encode()
    code.decompose()
    return [ord(c) - ord("A") + 1 for c in code.decomposed if c.isupper()]


@pytest.fixture
def helvetica_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(documents, "FONT_CANDIDATES", (("/nonexistent/Sans.ttf", "/nonexistent/Sans-Bold.ttf"),))
    select_fonts.cache_clear()
    yield
    select_fonts.cache_clear()


# ------------------------------------------------------------------------------------------ packing slip


def test_packing_slip_a4_holds_the_order_and_its_lines() -> None:
    reader = read(render_packing_slip(make_slip()))

    assert page_size(reader) == A4_POINTS
    [text] = page_texts(reader)
    for expected in (
        "Main Shop",
        "Order SO-100234",
        "Placed: 2026-03-01 10:05",
        "Jana Nováková",
        "110 00 Praha 1",
        "Note from the customer",
        "SKU-0001",
        "A-003",
        "Enamel mug number 2",
        "Blue / 350 ml",
        "Total: 6 items",
        "Page 1 of 1",
    ):
        assert expected in text
    assert reader.metadata is not None
    assert reader.metadata.title == "Packing slip SO-100234"


def test_packing_slip_4x6_is_four_by_six_inches() -> None:
    reader = read(render_packing_slip(make_slip(), page="4x6"))

    assert page_size(reader) == FOUR_BY_SIX_POINTS
    assert "SO-100234" in page_texts(reader)[0]


def test_packing_slip_page_must_be_known() -> None:
    with pytest.raises(ValueError, match="unknown page size"):
        render_packing_slip(make_slip(), page="a5")  # type: ignore[arg-type]


def test_packing_slip_draws_a_code128_of_the_order_number() -> None:
    reader = read(render_packing_slip(make_slip()))

    bars = drawn_bars(reader)
    module = min(bars)
    assert [round(width / module) for width in bars] == code128_modules("SO-100234")


def test_packing_slip_barcode_value_can_differ_from_the_order_number() -> None:
    reader = read(render_packing_slip(make_slip(barcode_value="ORD-77")))

    bars = drawn_bars(reader)
    assert [round(width / min(bars)) for width in bars] == code128_modules("ORD-77")


def test_long_order_breaks_pages_and_repeats_the_table_header() -> None:
    reader = read(render_packing_slip(make_slip(line_count=120)))

    texts = page_texts(reader)
    assert len(texts) >= 3
    for number, text in enumerate(texts, start=1):
        assert "Bin" in text
        assert "SKU" in text
        assert "Qty" in text
        assert "order SO-100234" in text  # the running head
        assert f"Page {number} of {len(texts)}" in text
    skus = re.findall(r"SKU-\d{4}", "\n".join(texts))
    assert skus == [f"SKU-{n:04d}" for n in range(1, 121)]  # every line once, in order
    assert "Total: 240 items" in texts[-1]


def test_long_order_on_4x6_also_breaks_pages() -> None:
    reader = read(render_packing_slip(make_slip(line_count=120), page="4x6"))

    assert len(reader.pages) > 3
    assert all(page_size(reader, i) == FOUR_BY_SIX_POINTS for i in range(len(reader.pages)))
    assert len(re.findall(r"SKU-\d{4}", "\n".join(page_texts(reader)))) == 120


def test_customer_note_is_wrapped_not_cut() -> None:
    text = page_texts(read(render_packing_slip(make_slip())))[0]

    note_lines = [line for line in text.splitlines() if any(w in line for w in ("neighbour", "poster", "Děkuji"))]
    assert len(note_lines) >= 2
    flattened = " ".join(text.split())
    assert " ".join(NOTE.split()) in flattened


def test_non_latin_text_survives_in_dejavu() -> None:
    fonts = select_fonts()
    assert fonts.unicode, "DejaVu Sans is missing: install the Debian package fonts-dejavu-core"

    reader = read(render_packing_slip(make_slip(ship_to=["Алёна Петрова", "Οδός Ερμού 5", "Łódź"])))

    text = page_texts(reader)[0]
    assert "Zásilkovna Žluťoučký" in text
    assert "Алёна Петрова" in text
    assert "Οδός Ερμού 5" in text
    assert "Łódź" in text
    fonts_used = base_fonts(reader)
    assert any(name.endswith("+DejaVuSans") for name in fonts_used)


def test_without_dejavu_text_is_folded_for_helvetica(helvetica_only: None) -> None:
    reader = read(render_packing_slip(make_slip(ship_to=["Łódź", "Алёна"])))

    text = page_texts(reader)[0]
    assert "Zásilkovna Žlutoucký" in text  # á and Ž are in WinAnsi; ť and č are not
    assert "Lódz" in text
    assert "?????" in text
    fonts_used = base_fonts(reader)
    assert not any("DejaVu" in name for name in fonts_used)


def test_fold_to_winansi_keeps_what_cp1252_holds() -> None:
    assert fold_to_winansi("Zásilkovna Žluťoučký kůň, Łódź, Straße, €5") == "Zásilkovna Žlutoucký kun, Lódz, Straße, €5"


# --------------------------------------------------------------------------------------------- pick list


def test_pick_list_is_sorted_by_bin_as_a_picker_walks() -> None:
    picks = PickListData(
        batch_name="B-2026-03-01-07",
        created=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        carrier="DPD",
        rows=[
            PickRow("", "GIFT-CARD", "Gift card", 1, ["SO-5"]),
            PickRow("B-1", "TEA-EARL", "Earl Grey 100 g", 4, ["SO-3", "SO-4"]),
            PickRow("A-10", "MUG-RED", "Red mug", 1, ["SO-1"]),
            PickRow("A-2", "MUG-BLUE", "Blue mug", 3, ["SO-1", "SO-2"]),
        ],
    )

    reader = read(render_pick_list(picks))

    assert page_size(reader) == A4_POINTS
    text = page_texts(reader)[0]
    assert text.index("MUG-BLUE") < text.index("MUG-RED") < text.index("TEA-EARL") < text.index("GIFT-CARD")
    assert "no bin" in text
    assert "Pick list B-2026-03-01-07" in text
    assert "Carrier: DPD" in text
    assert "4 picks, 9 units, 5 orders" in text
    assert "SO-3, SO-4" in text
    bars = drawn_bars(reader)
    assert [round(w / min(bars)) for w in bars] == code128_modules("B-2026-03-01-07")


def test_long_pick_list_repeats_its_header() -> None:
    rows = [PickRow(f"R-{n}", f"SKU-{n:04d}", f"Item {n}", 1, [f"SO-{n}"]) for n in range(1, 151)]

    reader = read(render_pick_list(PickListData("B-1", datetime(2026, 3, 1, 9, 0, tzinfo=UTC), "GLS", rows)))

    texts = page_texts(reader)
    assert len(texts) >= 2
    assert all("Picked" in t and "Bin" in t for t in texts)
    assert re.findall(r"SKU-\d{4}", "\n".join(texts)) == [f"SKU-{n:04d}" for n in range(1, 151)]


# ---------------------------------------------------------------------------------------------- manifest


def make_manifest(count: int) -> ManifestData:
    return ManifestData(
        carrier_name="DPD",
        account="CZ-123456",
        date=date(2026, 3, 1),
        rows=[
            ManifestRow(
                tracking_number=f"0150{n:010d}",
                order_number=f"SO-{n}",
                recipient=f"Jiří Dvořák {n}",
                postal_code="602 00",
                country="CZ",
                parcels=1 + n % 2,
                weight_kg=Decimal("1.250"),
            )
            for n in range(1, count + 1)
        ],
        shipper_name="Main Shop",
        shipper_address=["Skladová 3", "602 00 Brno"],
    )


def test_manifest_lists_shipments_with_totals_and_a_signature_line() -> None:
    reader = read(render_manifest(make_manifest(3)))

    assert page_size(reader) == A4_POINTS
    text = page_texts(reader)[0]
    for expected in (
        "DPD manifest",
        "Account: CZ-123456",
        "Date: 2026-03-01",
        "01500000000001",
        "Jiří Dvořák 3",
        "Total: 3 shipments",
        "3.750",
        "Collected by (driver)",
        "Signature:",
        "Received 3 shipments, 5 parcels, 3.750 kg",
    ):
        assert expected in text


def test_long_manifest_keeps_the_signature_block_whole_on_the_last_page() -> None:
    reader = read(render_manifest(make_manifest(80)))

    texts = page_texts(reader)
    assert len(texts) >= 2
    assert all("Tracking number" in t for t in texts)
    assert "Collected by (driver)" in texts[-1]
    assert "Signature:" in texts[-1]
    assert "Total: 80 shipments" in "\n".join(texts)
    assert "100.000" in "\n".join(texts)

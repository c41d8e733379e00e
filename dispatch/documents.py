"""Dispatch paperwork as PDF: packing slips, pick lists and end-of-day carrier manifests (reportlab).

Plain dataclasses in, PDF bytes out: nothing here knows Django or the database. Text is set in DejaVu Sans
when it is installed (Debian package fonts-dejavu-core), so Czech, Polish, Cyrillic or Greek names print as
written; without it, in Helvetica with what Helvetica lacks folded to plain letters ("ť" prints as "t").
"""

from __future__ import annotations

import functools
import io
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from xml.sax.saxutils import escape

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, LETTER, inch
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

PageName = Literal["a4", "letter", "4x6"]
PAGE_SIZES: dict[str, tuple[float, float]] = {"a4": A4, "letter": LETTER, "4x6": (4 * inch, 6 * inch)}

# (regular, bold) TrueType pairs, first found wins.
FONT_CANDIDATES: tuple[tuple[str, str], ...] = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
)


# ------------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class SlipLine:
    sku: str
    title: str
    qty: int
    bin_code: str = ""
    variant: str = ""


@dataclass(frozen=True, slots=True)
class SlipData:
    order_number: str
    channel_name: str
    placed: date | datetime  # printed as given: convert to the warehouse's zone first
    ship_to: Sequence[str]  # address lines, name first
    lines: Sequence[SlipLine]
    shop_name: str
    return_address: Sequence[str] = ()
    customer_note: str = ""
    barcode_value: str = ""  # what the Code128 holds; the order number when empty


@dataclass(frozen=True, slots=True)
class PickRow:
    bin_code: str
    sku: str
    title: str
    total_qty: int
    order_numbers: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class PickListData:
    batch_name: str
    created: datetime  # printed as given: convert to the warehouse's zone first
    carrier: str
    rows: Sequence[PickRow]


@dataclass(frozen=True, slots=True)
class ManifestRow:
    tracking_number: str
    order_number: str
    recipient: str
    postal_code: str
    country: str  # ISO 3166 alpha-2
    parcels: int
    weight_kg: Decimal


@dataclass(frozen=True, slots=True)
class ManifestData:
    carrier_name: str
    account: str
    date: date
    rows: Sequence[ManifestRow]
    shipper_name: str = ""
    shipper_address: Sequence[str] = ()


# -------------------------------------------------------------------------------------------------- fonts


@dataclass(frozen=True, slots=True)
class FontSet:
    regular: str
    bold: str
    unicode: bool  # False: Helvetica, text is folded to what WinAnsi (cp1252) holds


@functools.cache
def select_fonts() -> FontSet:
    """Register the first TrueType pair of FONT_CANDIDATES that exists; Helvetica if none does."""
    for regular, bold in FONT_CANDIDATES:
        if os.path.exists(regular) and os.path.exists(bold):
            pdfmetrics.registerFont(TTFont("OMS-Sans", regular))
            pdfmetrics.registerFont(TTFont("OMS-Sans-Bold", bold))
            pdfmetrics.registerFontFamily("OMS-Sans", normal="OMS-Sans", bold="OMS-Sans-Bold")
            return FontSet("OMS-Sans", "OMS-Sans-Bold", unicode=True)
    return FontSet("Helvetica", "Helvetica-Bold", unicode=False)


# Letters NFKD does not take apart but that have an obvious plain form.
_FOLDS = str.maketrans({"ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ħ": "h", "Ħ": "H", "\u0131": "i", "ŀ": "l", "Ŀ": "L"})


def fold_to_winansi(text: str) -> str:
    """`text` with every character Helvetica cannot show replaced by its plain letter, or "?"."""
    out: list[str] = []
    for char in text.translate(_FOLDS):
        for candidate in (
            char,
            "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)),
        ):
            try:
                candidate.encode("cp1252")
            except UnicodeEncodeError:
                continue
            out.append(candidate)
            break
        else:
            out.append("?")
    return "".join(out)


# -------------------------------------------------------------------------------------------- typesetting


class _Kit:
    """Fonts, sizes and paragraph styles for one page size."""

    def __init__(self, page: str) -> None:
        if page not in PAGE_SIZES:
            raise ValueError(f"unknown page size {page!r}; expected one of {', '.join(PAGE_SIZES)}")
        self.small_page = page == "4x6"
        self.pagesize = PAGE_SIZES[page]
        self.margin = 0.2 * inch if self.small_page else 15 * 72 / 25.4  # 15 mm
        self.fonts = select_fonts()
        size = 7.5 if self.small_page else 9.5
        self.size = size
        self.body = ParagraphStyle("body", fontName=self.fonts.regular, fontSize=size, leading=size * 1.25)
        self.bold = ParagraphStyle("bold", parent=self.body, fontName=self.fonts.bold)
        self.muted = ParagraphStyle("muted", parent=self.body, fontSize=size - 1, textColor=colors.HexColor("#555555"))
        self.right = ParagraphStyle("right", parent=self.body, alignment=TA_RIGHT)
        self.right_bold = ParagraphStyle("right_bold", parent=self.bold, alignment=TA_RIGHT)
        self.heading = ParagraphStyle(
            "heading", parent=self.bold, fontSize=size + (3 if self.small_page else 6), leading=(size + 6) * 1.25
        )

    @property
    def width(self) -> float:
        return self.pagesize[0] - 2 * self.margin

    def text(self, value: object) -> str:
        text = str(value)
        return text if self.fonts.unicode else fold_to_winansi(text)

    def para(self, value: object, style: ParagraphStyle | None = None) -> Paragraph:
        return Paragraph(escape(self.text(value)).replace("\n", "<br/>"), style or self.body)

    def lines(self, values: Sequence[str], style: ParagraphStyle | None = None) -> Paragraph:
        return self.para("\n".join(v for v in values if v), style)

    def table(
        self, rows: list[list[Any]], fractions: Sequence[float], *, header: bool = True, ruled: bool = True
    ) -> Table:
        widths = [self.width * f / sum(fractions) for f in fractions]
        table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
        pad = 2 if self.small_page else 4
        style: list[tuple[Any, ...]] = [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), pad),
            ("BOTTOMPADDING", (0, 0), (-1, -1), pad),
            ("LEFTPADDING", (0, 0), (-1, -1), pad),
            ("RIGHTPADDING", (0, 0), (-1, -1), pad),
        ]
        if ruled:
            style.append(("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#999999")))
        if header:
            style += [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6e6e6")),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
            ]
        table.setStyle(TableStyle(style))
        return table

    def barcode(self, value: str, *, height: float, max_width: float) -> Flowable | None:
        """A Code128 of `value` with the value printed under it; None when there is nothing ASCII to encode."""
        data = fold_to_winansi(value).encode("ascii", "ignore").decode()
        if not data:
            return None
        bar_width = 1.2 if not self.small_page else 1.0
        code = Code128(data, barWidth=bar_width, barHeight=height, humanReadable=True, fontName="Helvetica")
        if code.width > max_width:
            # Narrower bars still scan down to about 0.25 mm (0.7 pt); below that the value must be shorter.
            bar_width = max(0.7, bar_width * max_width / code.width)
            code = Code128(data, barWidth=bar_width, barHeight=height, humanReadable=True, fontName="Helvetica")
        code.hAlign = "RIGHT"
        return code

    def build(
        self, story: list[Flowable], *, title: str, author: str, running_head: str, footer_left: str = ""
    ) -> bytes:
        buffer = io.BytesIO()
        doc = SimpleDocTemplate(
            buffer,
            pagesize=self.pagesize,
            leftMargin=self.margin,
            rightMargin=self.margin,
            topMargin=self.margin + (self.size * 1.6),
            bottomMargin=self.margin + (self.size * 1.6),
            title=self.text(title),
            author=self.text(author),
            creator="OMS",
            invariant=True,  # the same input gives the same bytes: stored copies can be compared
        )
        doc.build(story, canvasmaker=_numbered_canvas(self, self.text(running_head), self.text(footer_left)))
        return buffer.getvalue()


def _numbered_canvas(kit: _Kit, running_head: str, footer_left: str) -> Callable[..., Canvas]:
    """A canvas that holds its pages back until the end, to stamp each with the running head and "Page n of N"."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._held_pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._held_pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._held_pages)
            for number, state in enumerate(self._held_pages, start=1):
                self.__dict__.update(state)
                self._stamp(number, total)
                super().showPage()
            super().save()

        def _stamp(self, number: int, total: int) -> None:
            width, height = kit.pagesize
            size = kit.size - 1
            self.saveState()
            self.setFont(kit.fonts.regular, size)
            self.setFillColor(colors.HexColor("#555555"))
            self.drawString(kit.margin, height - kit.margin - size, running_head)
            self.drawRightString(width - kit.margin, kit.margin, kit.text(f"Page {number} of {total}"))
            if footer_left:
                self.drawString(kit.margin, kit.margin, footer_left)
            self.restoreState()

    return NumberedCanvas


def _when(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def _natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort bins as a picker walks them: A-2 before A-10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part.lower()) for part in re.split(r"(\d+)", text) if part)


# ------------------------------------------------------------------------------------------ packing slip


def render_packing_slip(slip: SlipData, *, page: PageName = "a4") -> bytes:
    """A packing slip: shop and order barcode, ship-to, the customer's note, the lines with their bins."""
    kit = _Kit(page)
    story: list[Flowable] = []
    barcode = kit.barcode(
        slip.barcode_value or slip.order_number,
        height=28 if kit.small_page else 40,
        max_width=kit.width * (0.55 if kit.small_page else 0.5),
    )
    shop = [kit.para(slip.shop_name, kit.heading)]
    if slip.return_address and not kit.small_page:
        shop.append(kit.lines(slip.return_address, kit.muted))
    story.append(kit.table([[shop, barcode or ""]], (1, 1), header=False, ruled=False))
    story.append(Spacer(1, kit.size * 0.8))

    units = sum(line.qty for line in slip.lines)
    details = [
        kit.para(f"Order {slip.order_number}", kit.bold),
        kit.para(f"Channel: {slip.channel_name}"),
        kit.para(f"Placed: {_when(slip.placed)}"),
        kit.para(f"Items: {units} in {len(slip.lines)} lines"),
    ]
    ship_to = [kit.para("Ship to", kit.bold), kit.lines(slip.ship_to)]
    story.append(kit.table([[ship_to, details]], (1, 1), header=False, ruled=False))
    story.append(Spacer(1, kit.size * 0.8))

    if slip.customer_note.strip():
        note = kit.table(
            [[[kit.para("Note from the customer", kit.bold), kit.para(slip.customer_note.strip())]]],
            (1,),
            header=False,
            ruled=False,
        )
        note.setStyle(
            TableStyle(
                [
                    ("BOX", (0, 0), (-1, -1), 0.8, colors.black),
                    ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#f3f3f3")),
                ]
            )
        )
        story.append(note)
        story.append(Spacer(1, kit.size * 0.8))

    def item(line: SlipLine, *, with_sku: bool) -> list[Paragraph]:
        cell = [kit.para(line.title)]
        if line.variant:
            cell.append(kit.para(line.variant, kit.muted))
        if with_sku:
            cell.insert(0, kit.para(line.sku, kit.bold))
        return cell

    if kit.small_page:
        rows: list[list[Any]] = [
            [kit.para("Bin", kit.bold), kit.para("Item", kit.bold), kit.para("Qty", kit.right_bold)]
        ]
        rows += [
            [kit.para(line.bin_code, kit.bold), item(line, with_sku=True), kit.para(line.qty, kit.right_bold)]
            for line in slip.lines
        ]
        story.append(kit.table(rows, (1.1, 3.5, 0.7)))
    else:
        rows = [
            [
                kit.para("Bin", kit.bold),
                kit.para("SKU", kit.bold),
                kit.para("Item", kit.bold),
                kit.para("Qty", kit.right_bold),
                kit.para("Packed", kit.bold),
            ]
        ]
        rows += [
            [
                kit.para(line.bin_code, kit.bold),
                kit.para(line.sku),
                item(line, with_sku=False),
                kit.para(line.qty, kit.right_bold),
                "",
            ]
            for line in slip.lines
        ]
        story.append(kit.table(rows, (1.2, 1.6, 4.4, 0.6, 1.0)))
    story.append(Spacer(1, kit.size))
    story.append(kit.para(f"Total: {units} items", kit.right_bold))
    if slip.return_address and kit.small_page:
        story.append(Spacer(1, kit.size))
        story.append(kit.para("Returns: " + ", ".join(a for a in slip.return_address if a), kit.muted))

    return kit.build(
        story,
        title=f"Packing slip {slip.order_number}",
        author=slip.shop_name,
        running_head=f"{slip.shop_name} · order {slip.order_number}",
    )


# --------------------------------------------------------------------------------------------- pick list


def render_pick_list(picks: PickListData, *, page: PageName = "a4") -> bytes:
    """A batch's pick list, one row per SKU and bin, in walking order (bins sorted naturally, rows without a
    bin last, marked "no bin")."""
    kit = _Kit(page)
    rows_in_order = sorted(picks.rows, key=lambda r: (not r.bin_code, _natural_key(r.bin_code), r.sku))
    units = sum(r.total_qty for r in rows_in_order)
    orders = {number for r in rows_in_order for number in r.order_numbers}
    story: list[Flowable] = []
    summary = [
        kit.para(f"Pick list {picks.batch_name}", kit.heading),
        kit.para(f"Created: {_when(picks.created)}"),
        kit.para(f"Carrier: {picks.carrier}"),
        kit.para(f"{len(rows_in_order)} picks, {units} units, {len(orders)} orders", kit.bold),
    ]
    barcode = kit.barcode(picks.batch_name, height=32, max_width=kit.width * 0.45)
    story += [kit.table([[summary, barcode or ""]], (1, 1), header=False, ruled=False), Spacer(1, kit.size)]
    rows: list[list[Any]] = [
        [
            kit.para("Bin", kit.bold),
            kit.para("SKU", kit.bold),
            kit.para("Item", kit.bold),
            kit.para("Qty", kit.right_bold),
            kit.para("Orders", kit.bold),
            kit.para("Picked", kit.bold),
        ]
    ]
    rows += [
        [
            kit.para(r.bin_code, kit.bold) if r.bin_code else kit.para("no bin", kit.muted),
            kit.para(r.sku),
            kit.para(r.title),
            kit.para(r.total_qty, kit.right_bold),
            kit.para(", ".join(r.order_numbers), kit.muted),
            "",
        ]
        for r in rows_in_order
    ]
    story.append(kit.table(rows, (1.1, 1.5, 3.2, 0.6, 2.0, 0.8)))
    return kit.build(
        story, title=f"Pick list {picks.batch_name}", author="OMS", running_head=f"Pick list {picks.batch_name}"
    )


# ---------------------------------------------------------------------------------------------- manifest


def render_manifest(manifest: ManifestData, *, page: PageName = "a4") -> bytes:
    """The end-of-day manifest the driver signs: every shipment handed over, totals, signature lines."""
    kit = _Kit(page)
    story: list[Flowable] = []
    parcels = sum(r.parcels for r in manifest.rows)
    weight = sum((r.weight_kg for r in manifest.rows), Decimal(0))
    head_left = [
        kit.para(f"{manifest.carrier_name} manifest", kit.heading),
        kit.para(f"Account: {manifest.account}"),
        kit.para(f"Date: {manifest.date.isoformat()}"),
    ]
    shipper = [kit.para(manifest.shipper_name, kit.bold), kit.lines(manifest.shipper_address)]
    head = kit.table([[head_left, shipper if manifest.shipper_name else ""]], (1, 1), header=False, ruled=False)
    story += [head, Spacer(1, kit.size)]

    rows: list[list[Any]] = [
        [
            kit.para("#", kit.bold),
            kit.para("Tracking number", kit.bold),
            kit.para("Order", kit.bold),
            kit.para("Recipient", kit.bold),
            kit.para("Postcode", kit.bold),
            kit.para("Country", kit.bold),
            kit.para("Parcels", kit.right_bold),
            kit.para("Weight kg", kit.right_bold),
        ]
    ]
    rows += [
        [
            kit.para(number),
            kit.para(r.tracking_number),
            kit.para(r.order_number),
            kit.para(r.recipient),
            kit.para(r.postal_code),
            kit.para(r.country),
            kit.para(r.parcels, kit.right),
            kit.para(f"{r.weight_kg:.3f}", kit.right),
        ]
        for number, r in enumerate(manifest.rows, start=1)
    ]
    rows.append(
        [
            "",
            kit.para(f"Total: {len(manifest.rows)} shipments", kit.bold),
            "",
            "",
            "",
            "",
            kit.para(parcels, kit.right_bold),
            kit.para(f"{weight:.3f}", kit.right_bold),
        ]
    )
    table = kit.table(rows, (0.5, 2.4, 1.3, 2.4, 1.0, 0.8, 0.8, 1.0))
    table.setStyle(TableStyle([("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black), ("SPAN", (1, -1), (5, -1))]))
    story += [table, Spacer(1, kit.size * 3)]

    sign = kit.table(
        [
            [kit.para("Handed over by (warehouse)", kit.bold), kit.para("Collected by (driver)", kit.bold)],
            [kit.para("Name:"), kit.para("Name:")],
            [kit.para("Signature:"), kit.para("Signature:")],
            [kit.para("Date and time:"), kit.para("Date and time:")],
        ],
        (1, 1),
        header=False,
        ruled=False,
    )
    sign.setStyle(
        TableStyle(
            [
                ("TOPPADDING", (0, 1), (-1, -1), kit.size * 1.6),
                ("LINEBELOW", (0, 1), (-1, -1), 0.5, colors.black),
            ]
        )
    )
    story.append(
        KeepTogether(
            [
                kit.para(
                    f"Received {len(manifest.rows)} shipments, {parcels} parcels, {weight:.3f} kg "
                    f"in good order by {manifest.carrier_name}."
                ),
                Spacer(1, kit.size),
                sign,
            ]
        )
    )
    return kit.build(
        story,
        title=f"{manifest.carrier_name} manifest {manifest.date.isoformat()}",
        author=manifest.shipper_name or "OMS",
        running_head=f"{manifest.carrier_name} · account {manifest.account} · {manifest.date.isoformat()}",
    )

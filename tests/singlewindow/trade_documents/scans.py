"""Invoices rendered as images and PDFs with Pillow, so the OCR tests need no files from outside."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
)

ENGLISH = [
    "COMMERCIAL INVOICE",
    "Invoice No: INV-2026-0042",
    "Date: 2026-11-02",
    "Seller: Shenzhen Phones Ltd",
    "Buyer: Formosa Trading Co.",
    "Currency: USD",
    "Terms: FOB Shenzhen",
    "",
    "No  Description                 Qty   Unit Price   Amount",
    "1   Smartphones 128 GB           50     120.00    6,000.00",
    "2   Men's cotton T-shirts      1000       4.00    4,000.00",
    "",
    "TOTAL USD 10,000.00",
]

CHINESE = [
    "商業發票",
    "發票號碼: TW-INV-7788",
    "日期: 2026-11-05",
    "賣方: Shenzhen Phones Ltd",
    "買方: Formosa Trading Co.",
    "幣別: USD",
    "",
    "1   Smartphones 128 GB           50     120.00    6,000.00",
    "2   Cotton T-shirts            1000       4.00    4,000.00",
    "",
    "總計 USD 10,000.00",
]


def font(paths: tuple[str, ...], size: int = 30) -> ImageFont.FreeTypeFont | None:
    for p in paths:
        if Path(p).is_file():
            return ImageFont.truetype(p, size)
    return None


def render(lines: list[str], fonts: tuple[str, ...] = LATIN_FONTS) -> Image.Image:
    f = font(fonts)
    assert f is not None, "no font"
    img = Image.new("L", (1500, 60 + 48 * len(lines)), 255)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((40, 30 + 48 * i), line, fill=0, font=f)
    return img


def png(lines: list[str], fonts: tuple[str, ...] = LATIN_FONTS) -> bytes:
    buf = io.BytesIO()
    render(lines, fonts).save(buf, format="PNG")
    return buf.getvalue()


def pdf(lines: list[str]) -> bytes:
    """A scanned PDF: the page is an image, there is no text layer."""
    buf = io.BytesIO()
    render(lines).convert("RGB").save(buf, format="PDF", resolution=150)
    return buf.getvalue()

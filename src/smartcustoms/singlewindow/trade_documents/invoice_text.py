"""Reading an invoice's fields from its text (as OCR or a PDF's text layer gives it), English or Chinese labels.

Pure: text in, the invoice's JSON form out (what `model.parse_document('invoice', ...)` reads) with the
list of fields that could not be read, so the comparison reports them as not compared, never as guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from smartcustoms.platform.i18n import t_plain
from smartcustoms.singlewindow.trade_documents.model import parse_amount, parse_date

_SEP = r"\s*[:：]?\s*"
_LABELS = {
    "number": r"(?:invoice\s*(?:no\.?|number|num|#)|inv\.?\s*no\.?|發票號碼|發票編號|發票號)",
    "date": r"(?:invoice\s*date|date\s*of\s*issue|date|日期|開立日期|發票日期)",
    "seller": r"(?:seller|exporter|shipper|vendor|sold\s*by|賣方|出口商|賣方名稱)",
    "buyer": r"(?:buyer|importer|consignee|sold\s*to|bill\s*to|買方|進口商|買方名稱)",
    "currency": r"(?:currency|幣別|幣值|貨幣)",
    "total": r"(?:\b(?:grand\s*total|total\s*amount|amount\s*due|invoice\s*total|total)\b|總計|合計|總金額|總額)",
    "incoterm": r"(?:incoterms?|terms?\s*of\s*delivery|交貨條件|貿易條件)",
}
_INCOTERMS = ("EXW", "FCA", "FAS", "FOB", "CFR", "CIF", "CPT", "CIP", "DAP", "DPU", "DDP")
_CURRENCIES = ("USD", "EUR", "JPY", "CNY", "RMB", "TWD", "NTD", "HKD", "GBP", "KRW", "SGD", "AUD", "CAD", "CHF")
_NUM = r"[+]?\d[\d,.']*\d|\d"
_LINE = re.compile(
    rf"^\s*(?:(?P<no>\d{{1,3}})[.)]?\s+)?(?P<desc>.*?[^\W\d_].*?)\s+(?P<qty>{_NUM})\s*(?P<unit>[A-Za-z]{{1,5}}|[件個台箱組雙打公斤]{{1,2}})?"
    rf"\s+(?:[A-Z]{{3}}\s*)?(?P<price>{_NUM})\s+(?:[A-Z]{{3}}\s*)?(?P<amount>{_NUM})\s*$"
)


@dataclass
class ReadInvoice:
    data: dict[str, Any]
    unread: list[str] = field(default_factory=list)
    """Fields that could not be read, or read but doubtful, in words."""


def _label_value(text: str, key: str) -> str | None:
    m = re.search(rf"(?im)^\W*{_LABELS[key]}{_SEP}(?P<v>\S.*?)\s*$", text)
    if m:
        return m["v"]
    m = re.search(rf"(?i){_LABELS[key]}{_SEP}(?P<v>[^\n|]+?)(?:\s{{2,}}|\s*\||\s*$)", text, re.M)
    return m["v"] if m else None


def _amount(text: str | None) -> Decimal | None:
    if not text:
        return None
    m = re.search(_NUM, text)
    if not m:
        return None
    try:
        return parse_amount(m[0])
    except ValueError:
        return None


def read_invoice(text: str) -> ReadInvoice:
    """The invoice fields found in `text`, and what could not be read."""
    clean = text.replace("\f", "\n")
    clean = re.sub(r"(?<=[\u3400-\u9fff])[ \t]+(?=[\u3400-\u9fff：:])", "", clean)  # OCR spaces out CJK
    data: dict[str, Any] = {}
    unread: list[str] = []
    number = _label_value(clean, "number")
    if number:
        m = re.search(r"[A-Za-z0-9][A-Za-z0-9\-/.]{2,34}", number)
        if m:
            data["number"] = m[0].rstrip(".")
    day = _label_value(clean, "date")
    parsed_day = parse_date(day) if day else None
    if parsed_day:
        data["date"] = parsed_day.isoformat()
    for key in ("seller", "buyer"):
        value = _label_value(clean, key)
        if value:
            name = re.split(r"\s{2,}|\s+\|\s+", value)[0].strip(" .,;")
            ident = re.search(r"\((?:ID|TIN|BAN|統編|統一編號)?[:：]?\s*([A-Z0-9]{6,17})\)", value)
            if ident:
                name = name.replace(ident[0], "").strip(" .,;")
            if name:
                data[key] = {"name": name, "id": ident[1] if ident else None}
    currency = _label_value(clean, "currency")
    found_currency = re.search(rf"\b({'|'.join(_CURRENCIES)})\b", currency or "") if currency else None
    total_line = None
    for line in clean.splitlines():
        if re.search(rf"(?i){_LABELS['total']}", line) and re.search(r"\d", line):
            total_line = line  # the last one wins: sub-totals come first
    if not found_currency:
        found_currency = re.search(rf"\b({'|'.join(_CURRENCIES)})\b", total_line or "") or re.search(
            rf"\b({'|'.join(_CURRENCIES)})\b", clean
        )
    if found_currency:
        code = found_currency[1].upper()
        data["currency"] = {"RMB": "CNY", "NTD": "TWD"}.get(code, code)
    if total_line:
        after = re.split(rf"(?i){_LABELS['total']}", total_line)[-1]
        total = _amount(after)
        if total is not None:
            data["total"] = str(total)
    incoterm = _label_value(clean, "incoterm")
    m = re.search(rf"\b({'|'.join(_INCOTERMS)})\b", incoterm or clean)
    if m:
        data["incoterm"] = m[1]
    lines = []
    for raw_line in clean.splitlines():
        if (total_line and raw_line == total_line) or re.search(rf"(?i){_LABELS['total']}", raw_line):
            continue
        m = _LINE.match(raw_line)
        if not m:
            continue
        try:
            qty, price, amount = parse_amount(m["qty"]), parse_amount(m["price"]), parse_amount(m["amount"])
        except ValueError:
            continue
        desc = re.sub(r"\s+", " ", m["desc"]).strip(" |")
        if re.fullmatch(r"(?i)(description|item|品名|貨品名稱).*", desc):
            continue
        lines.append(
            {
                "description": desc,
                "quantity": str(qty),
                "unit": m["unit"],
                "unit_price": str(price),
                "amount": str(amount),
            }
        )
        if abs(qty * price - amount) > max(Decimal("0.01") * amount, Decimal("0.05")):
            unread.append(
                t_plain(
                    "line {line}: quantity × unit price ({quantity} × {price}) is not the amount {amount}",
                    line=len(lines),
                    quantity=qty,
                    price=price,
                    amount=amount,
                )
            )
    if lines:
        data["lines"] = lines
        if "total" in data:
            added = sum((Decimal(ln["amount"]) for ln in lines), Decimal(0))
            if abs(added - Decimal(data["total"])) > Decimal("0.05"):
                unread.append(
                    t_plain("line amounts add up to {added}, the total reads {total}", added=added, total=data["total"])
                )
    for key, words in (
        ("number", "invoice number"),
        ("date", "invoice date"),
        ("seller", "seller"),
        ("buyer", "buyer"),
        ("currency", "currency"),
        ("total", "total"),
        ("lines", "invoice lines (description, quantity, unit price, amount)"),
    ):
        if key not in data:
            unread.append(t_plain("{what}: not found", what=words))
    return ReadInvoice(data, unread)

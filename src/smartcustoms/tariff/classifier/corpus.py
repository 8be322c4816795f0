"""What the classifier indexes: one document per declarable line (its text plus its parents' text, so a
subheading is found by words that only its heading or chapter carries), and the project's knowledge file of
trader words mapped to headings."""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t
from smartcustoms.tariff.model import TariffError, TariffLine

TERMS_PATH = Path(__file__).resolve().parent.parent / "data" / "product_terms.csv"
TERM_KINDS = ("term", "category", "brand", "example")


@dataclass(frozen=True)
class LeafDoc:
    """A declarable line with its path (codes and texts from the chapter down) ready for indexing."""

    code: str
    own: str  # the line's own description(s), en and zh
    parents: str  # heading and chapter descriptions
    path: tuple[tuple[str, str], ...]  # (code, description) from section down to the line


@dataclass(frozen=True)
class Term:
    """One trader word (or example description) pointing at a heading or subheading."""

    code: str
    lang: str
    kind: str
    text: str


def leaf_documents(lines: Iterable[TariffLine], zh: Mapping[str, str] | None = None) -> list[LeafDoc]:
    """Leaf documents of a schedule. `zh` adds Chinese descriptions by code (e.g. from the Taiwan tariff)
    to lines that have none."""
    by_code = {line.code: line for line in lines}
    zh = zh or {}

    def text(line: TariffLine) -> str:
        parts = [
            drop_negations(line.description_en or ""),
            drop_negations(line.description_zh or zh.get(line.code, "")),
        ]
        return " ".join(p for p in parts if p)

    docs: list[LeafDoc] = []
    for line in by_code.values():
        if not line.is_leaf or line.code.startswith("S") or line.code.startswith("99"):
            continue
        chain: list[TariffLine] = []
        cur: TariffLine | None = line
        seen: set[str] = set()
        while cur is not None and cur.code not in seen:
            seen.add(cur.code)
            chain.append(cur)
            cur = by_code.get(cur.parent) if cur.parent else None
        chain.reverse()
        parents = " ".join(text(p) for p in chain[:-1] if not p.code.startswith("S"))
        docs.append(LeafDoc(line.code, text(line), parents, tuple((p.code, text(p)) for p in chain)))
    docs.sort(key=lambda d: d.code)
    return docs


_NEGATION = re.compile(r"\b(?:not|other than|excluding|except)\b[^;:)]*", re.IGNORECASE)


def drop_negations(text: str) -> str:
    """Remove negated clauses ("Shirts (not knitted or crocheted)" -> "Shirts ()"): otherwise a query saying
    "knitted" matches the woven chapter on the very words that exclude it."""
    text = re.sub(r"\bnot knitted or crocheted\b", "woven", text, flags=re.IGNORECASE)
    text = re.sub(r"非針織或鉤針織", "梭織", text)
    return _NEGATION.sub(" ", text)


def load_terms(path: Path | None = None) -> list[Term]:
    """The knowledge file (`code,lang,kind,terms`, terms separated by ';'), one Term per term."""
    p = path or TERMS_PATH
    out: list[Term] = []
    with p.open(encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            code, kind = (row.get("code") or "").strip(), (row.get("kind") or "").strip()
            if not code.isdigit() or len(code) not in (2, 4, 6) or kind not in TERM_KINDS:
                raise TariffError(
                    Problem(
                        "bad_terms_row",
                        ("terms", n),
                        t("{file}:{n}: bad code or kind: {row}", file=str(p), n=n, row=str(row)),
                    )
                )
            texts = [row["terms"]] if kind == "example" else (row.get("terms") or "").split(";")
            out.extend(Term(code, row.get("lang") or "en", kind, t.strip()) for t in texts if t.strip())
    return out


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_hash(path: Path) -> str:
    """SHA-256 prefix of a file, kept per (path, mtime, size): the classifier's cache key asks for the knowledge
    file's hash on every request."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _FILE_HASHES:
        _FILE_HASHES[key] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return _FILE_HASHES[key]


def taiwan_zh_by_code(folder: Path, digits: tuple[int, ...] = (4, 6)) -> dict[str, str]:
    """Chinese descriptions of the Taiwan tariff at HS levels (headings, subheadings), for build time only."""
    from smartcustoms.tariff.importers import read_taiwan

    schedule = read_taiwan(folder).schedule
    return {line.code: line.description_zh for line in schedule.lines if line.digits in digits and line.description_zh}

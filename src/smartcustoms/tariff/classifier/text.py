"""Text normalisation shared by indexing and queries, and the checks on a query text.

Tokens are lower-cased ASCII words with a crude plural fold (traders write "shirts", the nomenclature
"shirt" or "shirts") and single CJK characters (Chinese has no spaces; bigrams are formed by the
vectoriser), so one analyser serves both languages.
"""

from __future__ import annotations

import re
import unicodedata

from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t
from smartcustoms.tariff.model import TariffError

MAX_QUERY_CHARS = 2000
_TOKEN = re.compile(r"[a-z0-9]+|[\u3400-\u9fff\uf900-\ufaff]")
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "or",
        "of",
        "the",
        "for",
        "with",
        "in",
        "on",
        "to",
        "by",
        "from",
        "as",
        "at",
        "than",
        "be",
        "is",
        "are",
        "not",
        "other",
        "others",
        "nes",
        "nec",
        "n",
        "e",
        "c",
        "whether",
        "their",
        "its",
        "this",
        "that",
        "such",
        "which",
        "but",
        "excluding",
        "including",
        "heading",
        "headings",
        "subheading",
        "subheadings",
        "chapter",
        "kind",
        "kinds",
        "used",
        "mainly",
        "solely",
        "principally",
        "thereof",
        "therefor",
        "like",
        "similar",
        "etc",
        "put",
        "up",
        "no",
    ]
)


def fold(text: str) -> str:
    """NFKC (full-width to ASCII), case-folded, apostrophes dropped ("men's" -> "mens")."""
    return unicodedata.normalize("NFKC", text).casefold().replace("'", "").replace("\u2019", "")


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Analyser for the word vectoriser: folded, stop words removed, plurals folded, CJK per character."""
    return [_stem(t) for t in _TOKEN.findall(fold(text)) if t not in STOP_WORDS]


def check_query(text: object, path: tuple[str | int, ...] = ("text",)) -> str:
    """The query text, stripped, or a TariffError: not a string, empty, overlong, or binary."""
    if not isinstance(text, str):
        raise TariffError(Problem("invalid_text", path, t("Text must be a string")))
    stripped = text.strip()
    if not stripped:
        raise TariffError(Problem("empty_text", path, t("Text is empty")))
    if len(stripped) > MAX_QUERY_CHARS:
        raise TariffError(
            Problem(
                "text_too_long",
                path,
                t(
                    "Text has {count} characters; at most {most}",
                    count=f"{len(stripped):,}",
                    most=f"{MAX_QUERY_CHARS:,}",
                ),
            )
        )
    controls = sum(1 for ch in stripped if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") and ch not in "\t\n\r")
    if controls or "\ufffd" in stripped:
        raise TariffError(Problem("binary_text", path, t("Text contains control or undecodable characters")))
    if not _TOKEN.search(fold(stripped)):
        raise TariffError(Problem("no_words", path, t("Text has no letters, digits or Chinese characters")))
    return stripped

"""Finds English a person reads that a page rendered in Traditional Chinese left untranslated.

Data (names, references, goods descriptions typed by traders) stays as typed, so the check cannot be
"no Latin letters": it flags every text node, and every `title`/`placeholder`/`alt`/`aria-label`, that the
catalogue knows as an English message (exactly, or through a `{placeholder}` template) but that the page
shows in English: a `{{ x }}` that needed `|tr`, a `_(variable)` whose value has no msgid, a message made in
Python without `t()`.
"""

from __future__ import annotations

import html as htmllib
import re

from smartcustoms.platform.i18n import translate, translations
from smartcustoms.platform.i18n.messages import PLACEHOLDER, _patterns

_RAW = re.compile(r"<(script|style|template)\b.*?</\1>", re.S | re.I)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_TAG = re.compile(r"<[^>]*>", re.S)
_ATTR = re.compile(r'\b(?:title|placeholder|alt|aria-label)\s*=\s*"([^"]*)"', re.I)
_LETTERS = re.compile(r"[A-Za-z]{2}")
_SEPARATORS = re.compile(r"\s*(?:·|—|\||;)\s*")


def _candidates(page: str) -> list[str]:
    body = _COMMENT.sub(" ", _RAW.sub(" ", page))
    out = [htmllib.unescape(v) for v in _ATTR.findall(body)]
    for node in _TAG.split(body):
        text = " ".join(htmllib.unescape(node).split())
        if not text:
            continue
        out.append(text)
        out += [part for part in _SEPARATORS.split(text) if part and part != text]
    return out


def _known(text: str, lang: str) -> bool:
    """Whether `text` is a catalogue message: a msgid, or a template whose own words make up much of it.

    A short template such as "{shown} of {total}" matches any data with " of " in it (a goods description,
    a statute's title); data is shown as typed, so such a match is not English left untranslated.
    """
    if str(translations(lang).gettext(text)) != text:
        return True
    if translate(text, lang) == text:
        return False
    for pattern in _patterns(lang):
        if text.startswith(pattern.prefix) and text.endswith(pattern.suffix) and pattern.regex.match(text):
            words = sum(len(w) for w in PLACEHOLDER.sub(" ", pattern.template).split())
            return words >= 0.3 * len(text.replace(" ", ""))
    return False


def leftover_english(page: str, lang: str = "zh-Hant") -> list[str]:
    """Texts on the page that the catalogue would translate but the page shows in English."""
    return sorted({text for text in _candidates(page) if _LETTERS.search(text) and _known(text, lang)})


def test_the_checker_finds_known_english_and_leaves_data_alone() -> None:
    page = (
        '<main><h1>許可證</h1><p title="Permits">Permits</p><td>Chilled boneless beef</td>'
        "<td>Item 1: permit NOPE-9 is not known</td><td>TW10000001 · Done.</td>"
        "<script>const x = 'Permits';</script></main>"
    )
    assert leftover_english(page) == ["Done.", "Item 1: permit NOPE-9 is not known", "Permits"]
    assert leftover_english("<p>第 1 項:查無許可證 NOPE-9</p><td>EGLV000123456</td>") == []
    assert leftover_english("<td>Men's T-shirts of cotton, knitted</td>") == [], "data that looks like a template"

"""Every word of the console goes through gettext, and both catalogues translate every message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from smartcustoms.clearance import pages
from smartcustoms.platform import i18n
from smartcustoms.platform.i18n.extract import messages

TEMPLATES = sorted(Path(pages.TEMPLATES).glob("**/*.html"))
_TRANS = re.compile(r"{%-?\s*trans\b.*?%}.*?{%-?\s*endtrans\s*-?%}", re.S)
_JINJA = re.compile(r"{#.*?#}|{{.*?}}|{%.*?%}", re.S)
_RAW = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)
_TAG = re.compile(r"<[^>]*>", re.S)
_ENTITY = re.compile(r"&#?\w+;")
_LETTER = re.compile(r"[^\W\d_]")
_TEXT_ATTR = re.compile(r'\b(title|placeholder|alt|aria-label)\s*=\s*"([^"]*)"', re.I)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def untranslated(source: str) -> list[str]:
    """Literal words a reader would see that do not go through gettext."""
    found: list[str] = []
    for _name, value in _TEXT_ATTR.findall(source):
        rest = _JINJA.sub(" ", value)
        if _LETTER.search(rest):
            found.append(rest.strip())
    text = _TAG.sub(" ", _RAW.sub(" ", _JINJA.sub(" ", _TRANS.sub(" ", source))))
    text = _ENTITY.sub(" ", text)
    found += [w for w in text.split() if _LETTER.search(w)]
    return found


def test_the_checker_catches_literal_text() -> None:
    assert untranslated("<p>Hello {{ name }}</p>") == ["Hello"]
    assert untranslated('<input placeholder="Search">') == ["Search"]
    assert untranslated("<p title=\"{{ _('Hi') }}\">{% trans n=1 %}Hello {{ n }}{% endtrans %}</p>") == []
    assert untranslated("<!doctype html><p>{{ _('Hi') }} · 12 &amp; –</p>") == []


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_have_no_literal_text(template: Path) -> None:
    assert untranslated(template.read_text(encoding="utf-8")) == []


def _catalogue(lang: str) -> dict[str, str]:
    with i18n.catalogue_path(lang).open("rb") as fh:
        return {m.id: str(m.string or "") for m in read_po(fh) if m.id and isinstance(m.id, str)}


def test_every_message_is_in_both_catalogues_and_translated() -> None:
    used = messages()
    assert len(used) > 100
    en, zh = _catalogue("en"), _catalogue("zh-Hant")
    assert sorted(set(used) - set(en)) == [], "run python -m smartcustoms.platform.i18n.extract"
    assert sorted(set(used) - set(zh)) == [], "run python -m smartcustoms.platform.i18n.extract"
    assert sorted(m for m in used if not zh[m]) == [], "messages without a Traditional Chinese translation"
    for msgid, text in zh.items():
        assert sorted(_PLACEHOLDER.findall(text)) == sorted(_PLACEHOLDER.findall(msgid)), msgid
        assert not _LETTER.search(re.sub(r"%\(\w+\)s|[A-Za-z0-9]+", "", text)) or re.search(r"[\u4e00-\u9fff]", text)


def test_formatting_follows_the_locale() -> None:
    en, zh = i18n.Formatter("en"), i18n.Formatter("zh-Hant")
    assert en.money("1234.5", "TWD") == "NT$1,234.50"
    assert zh.duration(3 * 3600) == "3 小時"
    assert en.duration(90 * 60) == "1.5 hours" or en.duration(90 * 60).endswith("hours")
    assert i18n.translations("zh-Hant").gettext("Released") == "已放行"
    assert i18n.from_accept_language("fr;q=1, zh-TW;q=0.8, en;q=0.5") == "zh-Hant"
    assert i18n.from_accept_language("de") is None

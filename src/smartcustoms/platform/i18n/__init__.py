"""Translations and locale formatting for web pages: gettext catalogues compiled from `.po` at first use.

Catalogues live next to this file as `<locale>.po` (`en.po`, `zh_Hant.po`); no build step is needed
because Babel compiles them in memory the first time a locale is asked for.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

HERE = Path(__file__).resolve().parent
DEFAULT = "en"
LANGUAGES: dict[str, str] = {"en": "English", "zh-Hant": "中文"}
"""Language tags offered in the console, each with its own name (shown untranslated in the switch)."""
_BABEL = {"en": "en", "zh-Hant": "zh_Hant_TW"}
_CATALOGUE = {"en": "en", "zh-Hant": "zh_Hant"}


def catalogue_path(lang: str) -> Path:
    return HERE / f"{_CATALOGUE[lang]}.po"


@lru_cache(maxsize=8)
def translations(lang: str) -> Translations:
    """The compiled catalogue of a language tag (falls back to the msgid where a msgstr is empty)."""
    lang = normalise(lang) or DEFAULT
    with catalogue_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=_CATALOGUE[lang])
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(fp=buf, domain="messages")


def normalise(tag: str | None) -> str | None:
    """Map a language tag (`zh-TW`, `zh_Hant`, `en-GB`...) to one the console offers, or None."""
    if not tag:
        return None
    t = tag.strip().replace("_", "-").lower()
    if t.startswith("zh"):
        return "zh-Hant"
    if t == "en" or t.startswith("en-"):
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    """The best offered language in an `Accept-Language` header, honouring q-values."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for pos, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            ranked.append((-q, pos, tag))
    for _q, _pos, tag in sorted(ranked):
        found = normalise(tag)
        if found:
            return found
    return None


def choose(candidates: Iterable[str | None]) -> str:
    """The first candidate that names an offered language, else English."""
    for c in candidates:
        found = normalise(c)
        if found:
            return found
    return DEFAULT


class Formatter:
    """Dates, numbers, money and durations written the way readers of `lang` expect."""

    def __init__(self, lang: str, tz: str = "UTC") -> None:
        self.lang = normalise(lang) or DEFAULT
        self.locale = Locale.parse(_BABEL[self.lang])
        self.tz = dates.get_timezone(tz)
        self.tz_label = "UTC" if tz == "UTC" else dates.get_timezone_name(self.tz, "short", locale=self.locale)

    def datetime(self, value: dt.datetime | str | None, fmt: str = "medium") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        text = dates.format_datetime(value, fmt, tzinfo=self.tz, locale=self.locale)
        return text if fmt in ("long", "full") else f"{text} {self.tz_label}"

    def date(self, value: dt.datetime | dt.date | str | None, fmt: str = "medium") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return dates.format_date(value, fmt, locale=self.locale)

    def number(self, value: Decimal | float | int | str | None, digits: int | None = None) -> str:
        if value is None or value == "":
            return ""
        amount = Decimal(str(value))
        if digits is not None:
            fmt = "#,##0." + "0" * digits if digits else "#,##0"
            return numbers.format_decimal(amount, format=fmt, locale=self.locale, decimal_quantization=True)
        return numbers.format_decimal(amount, locale=self.locale, decimal_quantization=False)

    def money(self, value: Decimal | float | int | str | None, currency: str | None) -> str:
        if value is None or value == "":
            return ""
        if not currency:
            return self.number(value, 2)
        return numbers.format_currency(Decimal(str(value)), currency, locale=self.locale)

    def percent(self, value: float | None) -> str:
        if value is None:
            return ""
        return numbers.format_percent(value, format="#,##0.0%", locale=self.locale)

    def duration(self, seconds: float | None) -> str:
        """A human-readable span (`3 hours`, `3 小時`), precise enough for a Time Release Study table."""
        if seconds is None:
            return ""
        return dates.format_timedelta(
            dt.timedelta(seconds=seconds), threshold=1.5, granularity="minute", locale=self.locale
        )


def environment_language(asked: str | None = None) -> str:
    """The language of command-line output: `--lang`, else `SMARTCUSTOMS_LANG`, else `LANG`, else English."""
    import os

    return choose([asked, os.environ.get("SMARTCUSTOMS_LANG"), os.environ.get("LANG")])


def say(message: str) -> str:
    """A message (or label) of a command's output in the reader's language, `environment_language()`."""
    return translate(message, environment_language())


@lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes known to CLDR (via Babel): what a declaration's countries are checked against,
    and what a country placeholder of a message may hold."""
    codes = (str(code) for code in Locale("en").territories)
    return frozenset(c for c in codes if len(c) == 2 and c.isalpha() and c != "ZZ")


from smartcustoms.platform.i18n.messages import Msg, joined, t, t_plain, translate, translate_all  # noqa: E402

__all__ = [
    "DEFAULT",
    "LANGUAGES",
    "Formatter",
    "Msg",
    "choose",
    "environment_language",
    "from_accept_language",
    "joined",
    "normalise",
    "say",
    "t",
    "t_plain",
    "translate",
    "translate_all",
    "translations",
]

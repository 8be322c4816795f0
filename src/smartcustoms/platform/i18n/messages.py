"""Messages a person reads that are made far from any request: problems, lane reasons, assessment steps.

`t("Unknown currency {currency}", currency=x)` returns a `Msg`: a `str` holding the English text (so
every existing caller, JSON encoder and database column keeps working) that also carries its template
and parameters. Making one costs a `str.format`, never a catalogue look-up: the filing path stays cheap.

Translation happens where the text is shown, in the reader's language:
- a `Msg` is rendered from the catalogue entry of its template, its parameters filled in (nested `Msg`
  parameters translated too);
- plain English text (what the database holds for reasons and steps, or a `Msg` that went through
  `"; ".join(...)`) is matched back against the catalogue's templates, so stored rows, old ones included,
  translate without a schema change. Parameters named like `message`/`reason` are translated in turn.

Templates use `{name}` placeholders only (no format specs): callers format numbers before passing them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, cast

from smartcustoms.platform.i18n import DEFAULT, normalise, translations

PLACEHOLDER = re.compile(r"{(\w*)([^{}]*)}")
"""A `{name}` placeholder (group 2 catches format specs and conversions, which templates must not use)."""
NESTED = re.compile(r"(^|_)(message|reason|refusal|text|error)s?$")
"""Parameter names whose values are themselves messages and are translated recursively."""
VERBATIM = re.compile(r"(^|_)(description|name|rate)s?$|^written_")
"""Parameter names whose values are data, shown as written and never translated: words the filer wrote
(goods descriptions, party names), a schedule's rate text, and anything a person typed (`written_reason`:
an analyst's rule reason, an issuer's revocation reason). A free text that happens to equal a catalogue
entry ("Used", "Office") must not come back translated; VERBATIM wins over NESTED."""


class Msg(str):
    """English text of a translatable message, with the template and parameters it was made from."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, params: Mapping[str, Any] | None = None) -> Msg:
        values = dict(params or {})
        obj = super().__new__(cls, template.format_map(values))
        obj.template = template
        obj.params = values
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (Msg, (self.template, self.params))

    def as_json(self) -> dict[str, Any]:
        """A JSON form (`{"t": template, "p": {name: text}}`) for storing beside the English text."""
        return {
            "t": self.template,
            "p": {k: v.as_json() if isinstance(v, Msg) else str(v) for k, v in self.params.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Msg:
        params = {k: cls.from_json(v) if isinstance(v, Mapping) else v for k, v in (data.get("p") or {}).items()}
        return cls(str(data["t"]), params)


def t(template: str, /, **params: Any) -> Msg:
    """A translatable message: the English text now, translatable on display (extracted by `extract`).

    On the filing path: the template compiled once (as fast as an f-string), one small object, no copy
    and no catalogue look-up.
    """
    render = _COMPILED.get(template)
    if render is None:
        render = _compile(template)
        if len(_COMPILED) < 4096:
            _COMPILED[template] = render
    obj = _new_str(Msg, render(params))
    obj.template = template
    obj.params = params
    return obj


_COMPILED: dict[str, Callable[[Mapping[str, Any]], str]] = {}


def joined(messages: Sequence[str], separator: str = "; ") -> Msg:
    """Several messages as one, each translated on display in its own right (a plain `"; ".join` would be one
    English text no template explains). The joining template is not a catalogue entry, so plain-text
    matching never reads free text as a list of messages."""
    names = [f"part{i}_message" for i in range(len(messages))]
    template = separator.join("{" + name + "}" for name in names)
    return Msg(template, dict(zip(names, messages, strict=True)))


def _compile(template: str) -> Callable[[Mapping[str, Any]], str]:
    """`template` as a function of its parameters, built from string literals and `{p[name]}` f-strings.

    Only `repr()` literals and `\\w+` names reach the compiler, so no template text can run as code;
    anything unusual (format specs, positional or escaped braces) falls back to `str.format_map`.
    """
    parts = PLACEHOLDER.split(template)
    names = parts[1::3]
    if any(parts[2::3]) or any(not n or n.isdigit() for n in names) or "{{" in template or "}}" in template:
        return template.format_map
    pieces: list[str] = []
    for i, literal in enumerate(parts[0::3]):
        if literal:
            pieces.append(repr(literal))
        if i < len(names):
            pieces.append('f"{p[' + repr(names[i]) + ']}"')
    code = "lambda p: " + (" ".join(pieces) or "''")
    return cast(Callable[[Mapping[str, Any]], str], eval(code, {"__builtins__": {}}))


_new_str = str.__new__


def translate(text: str, lang: str | None) -> str:
    """`text` in `lang`: through its template when it is a `Msg`, else matched against the catalogue."""
    lang = normalise(lang) or DEFAULT
    if lang == DEFAULT or not text:
        return str(text)
    if isinstance(text, Msg):
        return _render(text.template, {k: _param(k, v, lang) for k, v in text.params.items()}, lang)
    return _translate_text(str(text), lang)


def translate_all(texts: Iterable[str], lang: str | None) -> list[str]:
    return [translate(x, lang) for x in texts]


def _param(name: str, value: Any, lang: str) -> str:
    if isinstance(value, BaseException):  # `error=exc`: the exception's message, a `Msg` when raised with t()
        value = value.args[0] if len(value.args) == 1 and isinstance(value.args[0], str) else str(value)
    if VERBATIM.search(name) and not isinstance(value, Msg):
        return str(value)
    if isinstance(value, Msg) or (isinstance(value, str) and NESTED.search(name)):
        if name.endswith("s") and "; " in value and not isinstance(value, Msg):
            return "；".join(translate(part, lang) for part in value.split("; "))  # messages joined with "; "
        return translate(value, lang)
    return str(value)


def _render(template: str, params: Mapping[str, str], lang: str) -> str:
    translated = str(translations(lang).gettext(template)) or template
    try:
        return translated.format(**params)
    except (KeyError, IndexError, ValueError):
        return template.format(**params)


@lru_cache(maxsize=8192)
def _translate_text(text: str, lang: str) -> str:
    tr = translations(lang)
    exact = str(tr.gettext(text))
    if exact != text:
        return exact
    for pattern in _patterns(lang):
        if not (text.startswith(pattern.prefix) and text.endswith(pattern.suffix)):
            continue
        found = pattern.regex.match(text)
        if found:
            params = {k: _param(k, v, lang) for k, v in found.groupdict().items()}
            if not _explained(pattern, found.groupdict(), params):
                continue
            return _render(pattern.template, params, lang)
    return text


NUMERIC = frozenset(
    [
        "seconds",
        "minutes",
        "hours",
        "days",
        "count",
        "n",
        "total",
        "shown",
        "number",
        "size",
        "size1",
        "size2",
        "limit",
        "percent",
        "km",
        "kg",
        "metres",
        "megabytes",
        "line_no",
        "index",
        "width",
        "height",
        "pixels",
        "share",
        "threshold",
        "auc",
        "precision",
        "recall",
        "speed",
        "lat",
        "lon",
        "latitude",
        "longitude",
        "max_digits",
        "min_length",
        "max_length",
        "actual_length",
        "decimal_places",
        "whole_digits",
        "digit",
        "hits",
        "frauds",
        "filed",
        "failed",
        "checked",
        "inspected",
        "labelled",
        "refused",
    ]
)
"""Placeholders that always hold a number: a text whose value there has no digit is not that message."""

COUNTRY = frozenset(["origin", "country"])
"""Parameter names that hold a country: a match must capture an ISO 3166 alpha-2 code."""


MIN_EVIDENCE = 8
"""Evidence (`_Pattern.evidence`) below which a template's placeholders must hold only numbers and codes."""
_WORD = re.compile(r"[A-Za-z]{3,}")
_CODE_LIKE = re.compile(r"[\d_./\[\]@#$]|^[A-Z0-9-]+$|^[a-z0-9]+(?:-[a-z0-9]+)+$")
"""Tokens that are data (numbers, codes, paths, identifiers), not English words."""


def foreign_letters(value: str, *, strict: bool = False) -> int:
    """Letters of English words in a captured value, leaving out numbers, codes, paths and identifiers, and
    (unless `strict`) short lower-case tokens such as units (`kg`, `pcs`) and small words (`on`, `per`)."""
    n = 0
    for token in value.split():
        if _CODE_LIKE.search(token):
            continue
        if strict:
            n += sum(c.isalpha() for c in token)
        elif not (len(token) <= 3 and token.islower()):
            n += sum(len(w) for w in _WORD.findall(token) if not w.isupper())
    return n


def _country_codes() -> frozenset[str]:
    from smartcustoms.platform.i18n import country_codes  # the package imports this module

    return country_codes()


def _explained(pattern: _Pattern, captured: Mapping[str, str], translated: Mapping[str, str]) -> bool:
    """Whether a template explains a plain text well enough to translate it (free text must pass unchanged).

    A short template (`"{shown} of {total}"`) matches much prose: "Men's T-shirts of cotton, knitted" would
    read back as a count. A match is kept only when the English words the placeholders swallowed (outside
    parameters that are messages themselves) are fewer than the template's own literal characters; a
    template with under `MIN_EVIDENCE` of them (`"{minutes} min"`, `"HS {hs6}"`) may swallow no letter
    outside numbers and codes at all. A nested parameter that
    the catalogue translates (a known message) counts as the template's own text. Parameters named for
    what the filer wrote (`VERBATIM`: descriptions, names, rate texts) are data, not evidence against a
    template with enough text of its own ("toys / phones; chapters 95, 85"); a `written_*` parameter (a
    person's free-text reason after the template's words) is never evidence against it, like a nested message.
    """
    if any(k in NUMERIC and not any(c.isdigit() for c in v) for k, v in captured.items()):
        return False  # "{seconds} s" does not explain "HS s": a quantity placeholder holds a number
    if any(k in COUNTRY and v not in _country_codes() for k, v in captured.items()):
        return False  # "origin {origin}" does not explain "origin HS": a country placeholder holds an ISO code
    own = pattern.evidence
    nested = {k for k in captured if NESTED.search(k) and not VERBATIM.search(k)}
    own += sum(len(captured[k]) for k in nested if translated[k] != captured[k])
    strict = own < MIN_EVIDENCE
    foreign = sum(
        foreign_letters(v, strict=strict)
        for k, v in captured.items()
        if k not in nested and not k.startswith("written_") and (strict or not VERBATIM.search(k))
    )
    return foreign == 0 or (not strict and foreign < own)


class _Pattern:
    __slots__ = ("evidence", "prefix", "regex", "suffix", "template", "weight")

    def __init__(self, template: str) -> None:
        self.template = template
        parts = PLACEHOLDER.split(template)
        literals = parts[0::3]
        self.prefix, self.suffix = literals[0], literals[-1]
        self.weight = sum(len(x) for x in literals)
        self.evidence = sum(1 if c.isalnum() else 2 for c in "".join(literals) if not c.isspace())
        """How much the template's own text says: letters count 1, symbols (`=`, `[`, `:`, `×`) 2 (rarer in prose)."""
        seen: set[str] = set()
        out = [re.escape(literals[0])]
        for i, name in enumerate(parts[1::3]):
            out.append(f"(?P={name})" if name in seen else f"(?P<{name}>.*?)")
            seen.add(name)
            out.append(re.escape(literals[i + 1]))
        self.regex = re.compile("".join(out) + r"\Z", re.S)


@lru_cache(maxsize=4)
def _patterns(lang: str) -> list[_Pattern]:
    """Every brace template of the catalogue that has a translation, most literal text first."""
    tr = translations(lang)
    found = []
    for msgid in getattr(tr, "_catalog", {}):
        if isinstance(msgid, str) and msgid and PLACEHOLDER.search(msgid) and "%(" not in msgid:
            found.append(_Pattern(msgid))
    return sorted(found, key=lambda p: -p.weight)


def template_problems(template: str) -> list[str]:
    """Why a `t()` template would not round-trip (format specs, positional fields); empty when fine."""
    out = []
    for name, rest in PLACEHOLDER.findall(template):
        if not name or name.isdigit():
            out.append(f"positional placeholder in {template!r}")
        if rest:
            out.append(f"format spec or conversion {rest!r} in {template!r}: format the value before passing it")
    return out


def t_plain(template: str, /, **params: Any) -> str:
    """The English text of a message as a plain `str`, for text made in bulk on the filing path.

    Lane reasons and assessment steps are stored as English text and translated on display by matching
    the catalogue's templates, so they need no `Msg`: a plain `str` is not tracked by the garbage
    collector, and thousands of `Msg` objects per batch made its collections (over the large in-memory
    tariff index) cost about a sixth of the batch filing time. Extracted like `t()`.
    """
    render = _COMPILED.get(template)
    if render is None:
        render = _compile(template)
        if len(_COMPILED) < 4096:
            _COMPILED[template] = render
    return render(params)

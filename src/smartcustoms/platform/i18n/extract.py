"""Refresh the catalogues from the sources: `python -m smartcustoms.platform.i18n.extract`.

Collects every message of the slices' templates (`{% trans %}`, `_()`), pages (`_()`, `N_()`) and
modules that import the message helpers (`t()`, `N_()`: problems, lane reasons, steps, CLI output),
adds new msgids to each `.po` with an empty translation, drops ones no longer used and keeps the
rest; translators then fill the empty msgstr entries.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po, write_po

from smartcustoms.platform.i18n import _CATALOGUE, HERE, LANGUAGES, catalogue_path

PACKAGE = HERE.parent.parent
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2), "t": None, "t_plain": None}
MODULE_KEYWORDS = {"t": None, "t_plain": None, "N_": None}
"""Outside pages only `t()`, `t_plain()` and `N_()` are messages (`_` is too common a name there)."""
_USES_MESSAGES = ("i18n import", "i18n.messages import")


def sources() -> Iterator[tuple[Path, str]]:
    """Each template, page module and message-making module of every slice, with its extraction method."""
    for path in sorted(PACKAGE.glob("**/templates/**/*.html")):
        yield path, "jinja2.ext:babel_extract"
    pages = sorted(PACKAGE.glob("**/pages.py")) + sorted(PACKAGE.glob("**/pages/*.py"))
    for path in pages:
        yield path, "python"
    for path in sorted(PACKAGE.glob("**/*.py")):
        if path in pages or path.name == "extract.py":
            continue
        if path.parent == HERE or any(marker in path.read_text(encoding="utf-8") for marker in _USES_MESSAGES):
            yield path, "module"


def messages() -> dict[str, list[str]]:
    """msgid → the source files using it (plural entries keyed by the singular)."""
    found: dict[str, list[str]] = {}
    for path, method in sources():
        options = {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"} if method.startswith("jinja") else {}
        keywords = MODULE_KEYWORDS if method == "module" else KEYWORDS
        for lineno, message, _comments, _context in extract_from_file(
            "python" if method == "module" else method, str(path), keywords=keywords, options=options
        ):
            msgid = message[0] if isinstance(message, tuple) else message
            if msgid:
                found.setdefault(msgid, []).append(f"{path.relative_to(PACKAGE)}:{lineno}")
    return found


def update() -> dict[str, int]:
    """Bring every catalogue in line with the sources; returns the count of untranslated messages per language."""
    wanted = messages()
    missing: dict[str, int] = {}
    for lang in LANGUAGES:
        path = catalogue_path(lang)
        old: Catalog
        if path.exists():
            with path.open("rb") as fh:
                old = read_po(fh, locale=_CATALOGUE[lang])
        else:
            old = Catalog(locale=_CATALOGUE[lang])
        new = Catalog(locale=_CATALOGUE[lang], project="smartcustoms", version="0.1", charset="utf-8")
        for msgid, where in sorted(wanted.items()):
            previous = old.get(msgid)
            text = previous.string if previous is not None else ""
            if lang == "en":
                text = text or ""
            new.add(msgid, text, locations=[(w.rsplit(":", 1)[0], int(w.rsplit(":", 1)[1])) for w in where])
        with path.open("wb") as fh:
            new.fuzzy = False
            write_po(fh, new, width=120, sort_output=True, include_lineno=False)
        missing[lang] = sum(1 for m in new if m.id and not m.string)
    return missing


if __name__ == "__main__":
    result = update()
    print(", ".join(f"{lang}: {n} untranslated" for lang, n in result.items()))
    sys.exit(0)

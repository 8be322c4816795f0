"""The `smartcustoms` command: mounts each slice's Typer app as a sub-command."""

from __future__ import annotations

import os
import sys

import typer

from smartcustoms.platform.errors import DomainError
from smartcustoms.platform.i18n import environment_language
from smartcustoms.platform.i18n.messages import translate
from smartcustoms.platform.slices import SLICES, slice_module

app = typer.Typer(
    no_args_is_help=True, pretty_exceptions_enable=False, help="Smart Customs: customs clearance platform."
)

_NAMES = {"platform": None, "clearance": "declarations"}


def _mount() -> None:
    for name in SLICES:
        module = slice_module(name, "cli")
        if module is None:
            continue
        if hasattr(module, "register"):
            module.register(app)
        elif hasattr(module, "app"):
            app.add_typer(module.app, name=_NAMES.get(name, name))


_mount()


@app.callback()
def _language(
    ctx: typer.Context,
    lang: str | None = typer.Option(
        None, "--lang", help="Language of the output: en or zh-Hant (default: SMARTCUSTOMS_LANG, then LANG)"
    ),
) -> None:
    """Smart Customs: customs clearance platform."""
    if not lang:
        return
    before = os.environ.get("SMARTCUSTOMS_LANG")
    os.environ["SMARTCUSTOMS_LANG"] = lang  # every command reads the output language from here

    def restore() -> None:
        if before is None:
            os.environ.pop("SMARTCUSTOMS_LANG", None)
        else:
            os.environ["SMARTCUSTOMS_LANG"] = before

    ctx.call_on_close(restore)


def _asked_language(argv: list[str]) -> str | None:
    """The `--lang` given anywhere on the command line (errors are printed after the command has ended)."""
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return None


def main() -> None:
    try:
        app()
    except DomainError as exc:
        lang = environment_language(_asked_language(sys.argv[1:]))
        for p in exc.problems:
            loc = ".".join(str(x) for x in p.path) or "-"
            typer.echo(f"error [{p.code}] {loc}: {translate(p.message, lang)}", err=True)
        sys.exit(2)

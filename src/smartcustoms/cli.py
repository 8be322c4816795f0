"""The `smartcustoms` command: mounts each slice's Typer app as a sub-command."""

from __future__ import annotations

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


def main() -> None:
    try:
        app()
    except DomainError as exc:
        lang = environment_language()
        for p in exc.problems:
            loc = ".".join(str(x) for x in p.path) or "-"
            typer.echo(f"error [{p.code}] {loc}: {translate(p.message, lang)}", err=True)
        sys.exit(2)

"""`smartcustoms singlewindow ...`: each part's commands as a sub-command group."""

from __future__ import annotations

import typer

from smartcustoms.singlewindow.parts import modules

app = typer.Typer(no_args_is_help=True, help="Single window: permits, manifests, trade documents.")
for _module in modules("cli"):
    app.add_typer(_module.app, name=_module.__name__.split(".")[-2].replace("_", "-"))

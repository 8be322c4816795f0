"""`smartcustoms singlewindow permits ...`: load the requirements registry, list, issue and revoke permits.

Output for people is in the reader's language: `SMARTCUSTOMS_LANG` (or `smartcustoms --lang`), then `LANG`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from smartcustoms.clearance.lifecycle import TYPE_WORDS
from smartcustoms.platform import auth, i18n
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.singlewindow.permits import service
from smartcustoms.singlewindow.permits.model import PermitInput

app = typer.Typer(no_args_is_help=True, help="Permits: requirements registry and permits issued by agencies.")
console = Console()
err = Console(stderr=True)
USER = typer.Option(None, "--user", "-u", help="Act as this user (default: the system administrator)")


@contextmanager
def _problems() -> Iterator[None]:
    """Print every problem with its path and exit 2, like the platform CLI does."""
    try:
        yield
    except DomainError as exc:
        for p in exc.problems:
            err.print(escape(f"error [{p.code}] {p.as_dict()['loc']}: {i18n.say(p.message)}"))
        raise typer.Exit(2) from exc


def _who(user: str | None) -> auth.Principal:
    return auth.acting_user(user) if user else auth.SYSTEM


@app.command("import-requirements")
def import_requirements(
    path: Path = typer.Argument(
        ..., help="CSV: code_prefix,direction,agency,permit_type,title,valid_from,valid_to[,legal_basis]"
    ),
    replace: bool = typer.Option(False, help="Remove requirements not in the file"),
    user: str | None = USER,
) -> None:
    """Load the regulatory requirements registry; malformed rows are reported by line and nothing is written."""
    with _problems():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DomainError(
                Problem("unreadable_file", ("file",), t("Cannot read {path}: {error}", path=path, error=exc))
            ) from exc
        who = _who(user)
        with unit_of_work() as session:
            report = service.import_requirements(session, who, text, replace=replace, source=path.name)
    done = t(
        "✓ {rows} requirement(s): {added} added, {updated} updated, {removed} removed; registry version {version}",
        rows=report["rows"],
        added=report["added"],
        updated=report["updated"],
        removed=report["removed"],
        version=report["version"],
    )
    console.print(escape(i18n.say(done)))


@app.command("requirements")
def requirements(
    code: str | None = typer.Option(None, help="Only those applying to this tariff code (today)"),
    direction: str | None = typer.Option(None, help="import or export"),
) -> None:
    """Print the requirements registry."""
    with _problems(), unit_of_work() as session:
        reqs = service.list_requirements(session, code=code, direction=direction)
    table = Table(
        "id",
        *(
            i18n.say(h)
            for h in (t("Code prefix"), t("Direction"), t("Agency"), t("Permit type"), t("Title"), t("Valid"))
        ),
    )
    for r in reqs:
        table.add_row(
            str(r.id),
            r.code_prefix,
            i18n.say(TYPE_WORDS.get(r.direction, r.direction)),
            r.agency,
            r.permit_type,
            r.title,
            f"{r.valid_from}..{r.valid_to or ''}",
        )
    console.print(table)
    console.print(i18n.say(t("{count} requirement(s)", count=len(reqs))))


@app.command("list")
def list_(
    user: str | None = USER,
    agency: str | None = None,
    holder: str | None = None,
    limit: int = 50,
) -> None:
    """Permits visible to a user, with what is left of each allowance."""
    with _problems():
        who = _who(user)
    with _problems(), unit_of_work() as session:
        rows, total = service.list_permits(session, who, agency=agency, holder=holder, limit=limit)
        views = [service.permit_view(r) for r in rows]
    table = Table(
        *(
            i18n.say(h)
            for h in (
                t("Number"),
                t("Agency"),
                t("Permit type"),
                t("Holder"),
                t("Codes"),
                t("Left"),
                t("Valid to"),
                t("Status"),
            )
        )
    )
    for v in views:
        left = ", ".join(
            x
            for x in (
                f"{v['quantity_left']} {v['quantity_unit']}" if v["quantity_left"] is not None else "",
                f"{v['value_currency']} {v['value_left']}" if v["value_left"] is not None else "",
            )
            if x
        )
        table.add_row(
            v["number"],
            v["agency"],
            v["permit_type"],
            v["holder"],
            " ".join(v["codes"]),
            left or "-",
            v["valid_to"],
            i18n.say(t("Revoked") if v["status"] == "revoked" else t("Active")),
        )
    console.print(table)
    console.print(i18n.say(t("{shown} of {total}", shown=len(views), total=total)))


@app.command("show")
def show(number: str, user: str | None = USER) -> None:
    """A permit with its history and usage, as JSON."""
    with _problems():
        who = _who(user)
    with _problems(), unit_of_work() as session:
        row = service.get_permit(session, who, number)
        out = service.permit_view(row) | {
            "history": service.history(session, row),
            "usage": service.usage(session, row),
        }
    console.print_json(json.dumps(out, default=str))


def _decimal(text: str | None, field: str) -> Decimal | None:
    if text is None or text == "":
        return None
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise DomainError(Problem("not_a_number", (field,), t("'{value}' is not a number", value=text))) from exc


@app.command("issue")
def issue(
    number: str = typer.Argument(...),
    permit_type: str = typer.Option(..., "--type"),
    holder: str = typer.Option(...),
    codes: str = typer.Option(..., help="Covered code prefixes, comma-separated"),
    valid_from: str = typer.Option(..., "--from"),
    valid_to: str = typer.Option(..., "--to"),
    direction: str = typer.Option("import"),
    quantity: str | None = typer.Option(None, help="Quantity allowance"),
    unit: str | None = typer.Option(None, help="Unit of the quantity allowance (e.g. kg)"),
    value: str | None = typer.Option(None, help="Value allowance"),
    currency: str | None = typer.Option(None),
    conditions: str | None = None,
    agency: str | None = typer.Option(None, help="Issuing agency (when acting as administrator)"),
    user: str | None = USER,
) -> None:
    """Issue a permit (as an agency user, or as administrator naming the agency)."""
    with _problems():
        try:
            start, end = date.fromisoformat(valid_from), date.fromisoformat(valid_to)
        except ValueError as exc:
            raise DomainError(Problem("invalid_date", ("valid_from",), str(exc))) from exc
        p = PermitInput(
            number,
            permit_type,
            direction,
            holder,
            [c for c in codes.split(",") if c.strip()],
            start,
            end,
            _decimal(quantity, "quantity_allowance"),
            unit,
            _decimal(value, "value_allowance"),
            currency,
            conditions=conditions,
        )
        who = _who(user)
        with unit_of_work() as session:
            row = service.issue_permit(session, who, p, agency=agency)
            console.print(
                escape(
                    i18n.say(
                        t(
                            "✓ issued {permit} ({agency} {permit_type}) to {holder}",
                            permit=row.number,
                            agency=row.agency,
                            permit_type=row.permit_type,
                            holder=row.holder,
                        )
                    )
                )
            )


@app.command("revoke")
def revoke(number: str, reason: str = typer.Option(...), user: str | None = USER) -> None:
    """Revoke a permit: declarations citing it are held from now on."""
    with _problems():
        who = _who(user)
    with _problems(), unit_of_work() as session:
        row = service.revoke_permit(session, who, number, reason)
        console.print(escape(i18n.say(t("✓ revoked {permit}", permit=row.number))))


@app.command("seed-demo")
def seed_demo() -> None:
    """Load the illustrative registry and permits for the demo importers (idempotent)."""
    with _problems(), unit_of_work() as session:
        report = service.seed_demo(session)
    console.print(
        i18n.say(
            t(
                "✓ {requirements} requirement(s), {permits} permit(s) issued",
                requirements=report["requirements"],
                permits=report["permits_issued"],
            )
        )
    )

"""`smartcustoms singlewindow manifests ...`: file manifests from JSON or CSV, list, follow up, sweep."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from smartcustoms.platform import auth, i18n
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.singlewindow.manifests import service
from smartcustoms.singlewindow.manifests.model import lines_from_csv_rows

app = typer.Typer(no_args_is_help=True, help="Advance cargo information: manifests and their matching.")
console = Console()
err = Console(stderr=True)


MANIFEST_COLUMNS = (
    t("Reference"),
    t("Carrier"),
    t("Voyage"),
    t("Port"),
    t("Expected arrival"),
    t("Lines"),
    t("Undeclared"),
)
FOLLOW_UP_COLUMNS = (
    t("Manifest"),
    t("Voyage"),
    t("Port"),
    t("Days"),
    t("Document"),
    t("Consignee"),
    t("Description"),
    t("Packages"),
)
"""Column headers of the list and follow-up tables, translated when printed."""


def read_manifest_file(
    path: Path,
    *,
    voyage: str | None = None,
    mode: str | None = None,
    port: str | None = None,
    arrival: str | None = None,
    means_id: str | None = None,
) -> dict[str, Any]:
    """A manifest from a JSON file (the API's body) or a CSV of lines (header fields as options)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DomainError(
            Problem("unreadable_file", ("file",), t("Cannot read {path}: {error}", path=path, error=exc))
        ) from exc
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        head = {"voyage": voyage, "mode": mode, "port": port, "expected_arrival": arrival, "means_id": means_id}
        return {**{k: v for k, v in head.items() if v is not None}, "lines": lines_from_csv_rows(rows)}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DomainError(
            Problem(
                "malformed_json",
                ("file",),
                t("{path}: line {line}: {error}", path=path, line=exc.lineno, error=exc.msg),
            )
        ) from exc
    if not isinstance(data, dict):
        raise DomainError(Problem("not_object", ("file",), t("{path}: a manifest is a JSON object", path=path)))
    for key, value in (("voyage", voyage), ("mode", mode), ("port", port), ("expected_arrival", arrival)):
        if value is not None:
            data[key] = value
    return data


def _fail(exc: DomainError) -> typer.Exit:
    for p in exc.problems:
        err.print(escape(f"error [{p.code}] {p.as_dict()['loc']}: {i18n.say(p.message)}"))
    return typer.Exit(2)


@app.command("file")
def file_cmd(
    path: Path = typer.Argument(..., help="Manifest as JSON, or its lines as CSV"),
    user: str = typer.Option(..., "--user", "-u", help="File as this carrier (or admin) user"),
    carrier: str | None = typer.Option(None, help="Carrier code (an admin filing for a carrier)"),
    voyage: str | None = typer.Option(None, help="Voyage or flight (CSV files)"),
    mode: str | None = typer.Option(None, help="Transport mode (CSV files)"),
    port: str | None = typer.Option(None, help="UN/LOCODE of arrival (CSV files)"),
    arrival: str | None = typer.Option(None, help="Expected arrival, ISO 8601 (CSV files)"),
    means_id: str | None = typer.Option(None, "--means", help="Vessel or aircraft (CSV files)"),
    replace: str | None = typer.Option(None, help="Replace this manifest reference instead of filing a new one"),
) -> None:
    """File (or replace) a manifest; prints its reference and how its lines matched declarations."""
    try:
        who = auth.acting_user(user)
        body = read_manifest_file(path, voyage=voyage, mode=mode, port=port, arrival=arrival, means_id=means_id)
        with unit_of_work() as session:
            if replace:
                row, summary = service.replace_manifest(session, who, replace, body, reason=f"file {path.name}")
            else:
                row, summary = service.file_manifest(session, who, body, carrier=carrier)
            ref, version = row.reference, row.version
    except DomainError as exc:
        raise _fail(exc) from None
    s = summary.as_dict()
    filed = t(
        "manifest {reference} v{version}: {lines} lines, {matched} declared, {unmatched} not yet; "
        "{discrepancies} discrepancies",
        reference=ref,
        version=version,
        lines=s["lines"],
        matched=s["matched_lines"],
        unmatched=s["unmatched_lines"],
        discrepancies=len(s["discrepancies"]),
    )
    console.print("[green]✓[/green] " + escape(i18n.say(filed)))
    for d in s["discrepancies"][:50]:
        console.print(escape(f"  {d['declaration']} [{d['code']}] {i18n.say(d['message'])}"))


@app.command("list")
def list_cmd(user: str = typer.Option("admin", "--user", "-u"), port: str | None = None) -> None:
    """Manifests with their undeclared lines."""
    try:
        who = auth.acting_user(user)
        with unit_of_work() as session:
            rows, total = service.list_manifests(session, who, port=port, limit=500)
            table = Table(*map(i18n.say, MANIFEST_COLUMNS))
            for r, n in rows:
                table.add_row(
                    r.reference, r.carrier, r.voyage, r.port, str(r.expected_arrival)[:16], str(r.line_count), str(n)
                )
    except DomainError as exc:
        raise _fail(exc) from None
    console.print(table)
    console.print(i18n.say(t("{count} manifests", count=total)))


@app.command("follow-up")
def follow_up_cmd(
    user: str = typer.Option("admin", "--user", "-u"),
    days: int | None = typer.Option(None, help="Days after arrival (default: the rules' follow_up_days)"),
) -> None:
    """Manifest lines still undeclared some days after arrival."""
    try:
        who = auth.acting_user(user)
        with unit_of_work() as session:
            found = service.follow_up(session, who, days=days)
            table = Table(*map(i18n.say, FOLLOW_UP_COLUMNS))
            for m, ln, age in found:
                table.add_row(
                    m.reference,
                    m.voyage,
                    m.port,
                    str(age),
                    ln.doc_ref,
                    ln.consignee_name,
                    ln.description[:40],
                    str(ln.packages),
                )
    except DomainError as exc:
        raise _fail(exc) from None
    console.print(table)
    console.print(i18n.say(t("{count} lines to follow up", count=len(found))))


@app.command("sweep")
def sweep_cmd() -> None:
    """Flag sea/air imports whose arrival is past without any manifest line."""
    with unit_of_work() as session:
        flagged = service.flag_missing(session)
    if flagged:
        console.print(
            i18n.say(t("{count} declarations flagged: {references}", count=len(flagged), references=", ".join(flagged)))
        )
    else:
        console.print(i18n.say(t("{count} declarations flagged", count=0)))


@app.command("rules")
def rules_cmd(
    set_file: Path | None = typer.Option(None, "--set", help="JSON file with new rules (admin)"),
    user: str = typer.Option("admin", "--user", "-u"),
) -> None:
    """Show the matching rules, or replace them from a JSON file."""
    try:
        with unit_of_work() as session:
            if set_file is not None:
                raw = json.loads(set_file.read_text(encoding="utf-8"))
                rules = service.set_rules(session, auth.acting_user(user), raw)
            else:
                rules = service.current_rules(session)
    except (OSError, json.JSONDecodeError) as exc:
        raise _fail(DomainError(Problem("unreadable_file", ("set",), str(exc)))) from None
    except DomainError as exc:
        raise _fail(exc) from None
    console.print_json(json.dumps({"version": rules.label, **rules.as_dict()}))

"""Clearance commands: file declarations from files, list and show them, load exchange rates, demo data.

What they print for people is in the reader's language: `--lang`, else `SMARTCUSTOMS_LANG`, else `LANG`
(`zh_TW.UTF-8` gives Traditional Chinese), else English. Problem codes and paths never change.
"""

from __future__ import annotations

import csv
import functools
import json
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, track
from rich.table import Table

from smartcustoms.clearance import ingest, service, views
from smartcustoms.clearance.schema import DeclarationIn
from smartcustoms.platform import auth, i18n
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.i18n.validation import validation_problems

declarations_app = typer.Typer(no_args_is_help=True, help="File and inspect customs declarations.")
fx_app = typer.Typer(no_args_is_help=True, help="Exchange rates used for the customs value.")
demo_app = typer.Typer(no_args_is_help=True, help="Demo data: users, rates, tariff, realistic declarations.")
console = Console()
err = Console(stderr=True)
LANG_HELP = "Language of the output: en or zh-Hant (default: SMARTCUSTOMS_LANG, then LANG)"
_lang = i18n.DEFAULT


def _use_language(asked: str | None) -> str:
    """Fix the output language of this command run."""
    global _lang
    _lang = i18n.environment_language(asked)
    return _lang


def _say(message: str) -> str:
    """A message in the output language."""
    return i18n.translate(message, _lang)


def _in_language(command: Callable[..., None]) -> Callable[..., None]:
    """Problems escaping a command are re-raised with their messages in the output language (same type,
    codes and paths), for the top-level `main()` to print."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except DomainError as exc:
            if _lang == i18n.DEFAULT:
                raise
            problems = [Problem(p.code, p.path, _say(p.message)) for p in exc.problems]
            raise type(exc)(problems, status=exc.status) from exc

    return run


def _status(value: str) -> str:
    from smartcustoms.clearance.pages import LABELS

    msg = LABELS["status"].get(value)
    return str(i18n.translations(_lang).gettext(msg)) if msg else value


def _read_declarations(path: Path) -> list[tuple[str, Any]]:
    """A file holds one declaration (JSON object), a JSON list of them, or JSON Lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DomainError(Problem("unreadable_file", (str(path),), str(exc))) from exc
    try:
        data = json.loads(text)
        docs = data if isinstance(data, list) else [data]
        return [(f"{path}[{i}]" if isinstance(data, list) else str(path), d) for i, d in enumerate(docs)]
    except json.JSONDecodeError:
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append((f"{path}:{n}", json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise DomainError(
                        Problem("malformed_json", (str(path), n), t("line {line}: {error}", line=n, error=exc.msg))
                    ) from exc
        return out


def _print_problems(label: str, problems: list[Problem]) -> None:
    err.print(f"[red]✗ {label}[/red]")
    for p in problems:
        loc = p.as_dict()["loc"]
        err.print(escape(f"   [{p.code}] {loc}: {_say(p.message)}"))


@declarations_app.command("submit")
@_in_language
def submit(
    files: list[Path] = typer.Argument(..., help="JSON file(s): one declaration, a list, or JSON Lines"),
    user: str = typer.Option("admin", "--user", "-u", help="File as this user (trader, broker or admin)"),
    lang: str | None = typer.Option(None, "--lang", help=LANG_HELP),
) -> None:
    """File declarations; prints each one's reference, lane and amount due, or every problem found."""
    _use_language(lang)
    who = auth.acting_user(user)
    failed = 0
    docs = [doc for f in files for doc in _read_declarations(f)]
    for label, doc in track(docs, description="Filing", console=err, disable=len(docs) < 20):
        try:
            decl = DeclarationIn.model_validate(doc)
        except ValidationError as exc:
            failed += 1
            _print_problems(label, validation_problems(exc.errors(), _lang))
            continue
        try:
            with unit_of_work() as session:
                row, created = service.submit(session, who, decl)
                out = views.summary(row)
        except DomainError as exc:
            failed += 1
            _print_problems(label, exc.problems)
            continue
        mark = "✓" if created else _say(t("= (already filed)"))
        filed = t(
            "{mark} {label}: {reference} lane {lane} status {status} due {currency} {amount}",
            mark=mark,
            label=label,
            reference=out["reference"],
            lane=out["lane"],
            status=_status(out["status"]),
            currency=out["currency"],
            amount=out["total_due"],
        )
        console.print(escape(_say(filed)))
    if failed:
        err.print(_say(t("{failed} of {total} declaration(s) refused", failed=failed, total=len(docs))))
        raise typer.Exit(1)


def _read_sources(path: Path) -> list[tuple[str, ingest.Source]]:
    """Raw filings from a file: a JSON list or object (decoded), or JSON Lines (each line kept as text)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DomainError(Problem("unreadable_file", (str(path),), str(exc))) from exc
    try:
        whole = orjson.loads(data)
    except orjson.JSONDecodeError:
        lines = [(n, line) for n, line in enumerate(data.splitlines(), 1) if line.strip()]
        return [(f"{path}:{n}", line) for n, line in lines]
    if isinstance(whole, list):
        return [(f"{path}[{i}]", d) for i, d in enumerate(whole)]
    return [(str(path), whole)]


@declarations_app.command("ingest")
@_in_language
def ingest_(
    files: list[Path] = typer.Argument(..., help="JSON Lines file(s), or JSON lists of declarations"),
    user: str = typer.Option("admin", "--user", "-u", help="File as this user (trader, broker or admin)"),
    workers: int = typer.Option(0, help="Worker processes (0: one per core)", min=0, max=64),
    chunk: int = typer.Option(500, help="Filings stored per transaction", min=1, max=10_000),
    lang: str | None = typer.Option(None, "--lang", help=LANG_HELP),
) -> None:
    """Batch ingest: file many declarations in parallel; prints totals and every refused filing."""
    _use_language(lang)
    labelled = [item for f in files for item in _read_sources(f)]
    labels = [label for label, _ in labelled]
    started = time.perf_counter()
    with Progress(console=err, disable=len(labelled) < 1000) as bar:
        task = bar.add_task("Ingesting", total=len(labelled))
        report = ingest.ingest(
            [source for _, source in labelled],
            user,
            workers=workers or None,
            chunk=chunk,
            progress=lambda n: bar.advance(task, n),
        )
    elapsed = time.perf_counter() - started
    for i, problems in report.rejected:
        _print_problems(labels[i], problems)
    summary = t(
        "{filed} filed, {duplicates} already filed, {refused} refused of {total} in {seconds} s ({rate}/s)",
        filed=len(report.accepted),
        duplicates=len(report.duplicates),
        refused=len(report.rejected),
        total=len(labelled),
        seconds=f"{elapsed:.1f}",
        rate=f"{len(labelled) / max(elapsed, 1e-9):,.0f}",
    )
    console.print(_say(summary))
    if report.rejected:
        raise typer.Exit(1)


@declarations_app.command("list")
@_in_language
def list_(
    user: str = typer.Option("admin", "--user", "-u"),
    status: str | None = None,
    lane: str | None = None,
    limit: int = 20,
    lang: str | None = typer.Option(None, "--lang", help=LANG_HELP),
) -> None:
    """List declarations visible to a user, newest first."""
    _use_language(lang)
    who = auth.acting_user(user)
    with unit_of_work() as session:
        rows, total = service.list_rows(session, who, service.Filters(status=status, lane=lane), limit=limit)
        table = Table(
            *(
                _say(h)
                for h in (
                    t("reference"),
                    t("lrn"),
                    t("importer"),
                    t("lane"),
                    t("status"),
                    t("due"),
                    t("submitted"),
                )
            )
        )
        for r in rows:
            table.add_row(
                r.reference,
                r.lrn,
                r.importer_id,
                r.lane or "",
                _status(r.status),
                str(r.total),
                f"{r.submitted_at:%Y-%m-%d %H:%M}",
            )
    console.print(table)
    console.print(_say(t("{shown} of {total}", shown=len(rows), total=total)))


@declarations_app.command("show")
@_in_language
def show(
    reference: str,
    user: str = typer.Option("admin", "--user", "-u"),
    lang: str | None = typer.Option(None, "--lang", help=LANG_HELP),
) -> None:
    """Print a declaration with its assessment, lane reasons and timeline as JSON."""
    _use_language(lang)
    who = auth.acting_user(user)
    with unit_of_work() as session:
        row, events, inspections, _ = service.timeline(session, who, reference)
        out = views.detail(row) | {
            "timeline": [views.event(e) for e in events],
            "inspections": [views.inspection(i) for i in inspections],
        }
    if _lang != i18n.DEFAULT:
        from smartcustoms.clearance.views import localised_view

        out["localized"] = localised_view(out, _lang)
    console.print_json(json.dumps(out, default=str))


@fx_app.command("import")
@_in_language
def fx_import(
    path: Path,
    user: str = typer.Option("admin", "--user", "-u"),
    source: str | None = None,
    lang: str | None = typer.Option(None, "--lang", help=LANG_HELP),
) -> None:
    """Load exchange rates from a CSV with columns currency,valid_from,rate (national currency per unit)."""
    _use_language(lang)
    who = auth.acting_user(user)
    rows: list[tuple[str, date, Decimal]] = []
    problems: list[Problem] = []
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"currency", "valid_from", "rate"} - set(reader.fieldnames or [])
            if missing:
                raise DomainError(
                    Problem(
                        "missing_columns",
                        (str(path),),
                        t("Missing column(s): {columns}", columns=", ".join(sorted(missing))),
                    )
                )
            for n, rec in enumerate(reader, 2):
                try:
                    rows.append(
                        (
                            rec["currency"].strip().upper(),
                            date.fromisoformat(rec["valid_from"].strip()),
                            Decimal(rec["rate"].strip()),
                        )
                    )
                except (ValueError, InvalidOperation) as exc:
                    problems.append(
                        Problem("invalid_row", (str(path), n), t("line {line}: {error}", line=n, error=exc))
                    )
    except OSError as exc:
        raise DomainError(Problem("unreadable_file", (str(path),), str(exc))) from exc
    if problems:
        raise DomainError(problems)
    with unit_of_work() as session:
        n = service.load_fx_rates(session, who, rows, source or path.name)
    console.print(_say(t("{count} exchange rate(s) loaded", count=n)))


@demo_app.command("load")
def demo_load(
    count: int = typer.Option(600, help="Declarations to generate"),
    seed: int = typer.Option(7, help="Random seed (same seed, same data)"),
    days: int = typer.Option(30, help="Spread over this many past days"),
    if_empty: bool = typer.Option(False, "--if-empty", help="Do nothing if declarations exist already"),
) -> None:
    """Load demo users, exchange rates, the tariff schedule and realistic declarations with histories."""
    from smartcustoms.clearance import demo

    report = demo.load(count=count, seed=seed, days=days, if_empty=if_empty, progress=True)
    console.print(report.summary())


def register(app: typer.Typer) -> None:
    app.add_typer(declarations_app, name="declarations")
    app.add_typer(fx_app, name="fx")
    app.add_typer(demo_app, name="demo")

"""`smartcustoms singlewindow trade-documents ...`: attach documents or scans, show reports, read a scan."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from smartcustoms.platform import auth, i18n
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.singlewindow.trade_documents import service

app = typer.Typer(no_args_is_help=True, help="Invoices, packing lists and B/Ls cross-checked with declarations.")
console = Console()
err = Console(stderr=True)


NOT_READ = t("not read:")
RESULTS = {"match": t("match"), "mismatch": t("mismatch"), "not_compared": t("not compared")}


def _fail(exc: DomainError) -> typer.Exit:
    for p in exc.problems:
        err.print(escape(f"error [{p.code}] {p.as_dict()['loc']}: {i18n.say(p.message)}"))
    return typer.Exit(2)


def _print_report(view: dict[str, object]) -> None:
    table = Table(
        *(
            i18n.say(h)
            for h in (
                t("Document"),
                t("Field"),
                t("Declared"),
                t("On the document"),
                t("Tolerance"),
                t("Result"),
                t("Severity"),
            )
        )
    )
    checks = view["checks"]
    assert isinstance(checks, list)
    for c in sorted(checks, key=lambda c: c["result"] != "mismatch"):
        table.add_row(
            i18n.say(c["document"].replace("_", " ")),
            i18n.say(c["field"]),
            str(c["declared"]),
            str(c["documented"]),
            i18n.say(c["tolerance"] or ""),
            i18n.say(RESULTS.get(c["result"], c["result"])),
            i18n.say(c["severity"]) if c["result"] == "mismatch" else "",
        )
    console.print(table)
    s = view["summary"]
    assert isinstance(s, dict)
    line = t(
        "report v{version} ({rules}): {mismatch} mismatches, {match} agree, {not_compared} not compared",
        version=view["version"],
        rules=view["rules_version"],
        mismatch=s.get("mismatch", 0),
        match=s.get("match", 0),
        not_compared=s.get("not_compared", 0),
    )
    console.print(escape(i18n.say(line)))


@app.command("attach")
def attach_cmd(
    reference: str = typer.Argument(..., help="Declaration reference"),
    doc_type: str = typer.Argument(..., help="invoice, packing_list or bill_of_lading"),
    path: Path = typer.Argument(..., help="The document's fields as JSON"),
    user: str = typer.Option(..., "--user", "-u", help="Attach as this user (the filer or an officer)"),
) -> None:
    """Attach a structured document and print the comparison report."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(
            DomainError(Problem("unreadable_file", ("file",), t("Cannot read {path}: {error}", path=path, error=exc)))
        ) from None
    try:
        with unit_of_work() as session:
            _, report = service.attach(session, auth.acting_user(user), reference, doc_type, raw)
            view = service.report_view(report)
    except DomainError as exc:
        raise _fail(exc) from None
    _print_report(view)


@app.command("scan")
def scan_cmd(
    reference: str = typer.Argument(..., help="Declaration reference"),
    path: Path = typer.Argument(..., help="Scanned invoice: PDF, PNG, JPEG or TIFF"),
    user: str = typer.Option(..., "--user", "-u"),
    languages: str | None = typer.Option(None, help="Tesseract languages (default eng+chi_tra)"),
) -> None:
    """OCR a scanned invoice, attach what was read, and print the report and what could not be read."""
    try:
        who = auth.acting_user(user)
        with unit_of_work() as session:
            service.check_access(session, who, reference, attach=True)
        scan = service.read_scan(path.read_bytes(), languages)
        with unit_of_work() as session:
            _, report = service.attach(
                session,
                who,
                reference,
                "invoice",
                scan.data,
                source="ocr",
                file_name=path.name,
                text=scan.text,
                unread=scan.unread,
            )
            view = service.report_view(report)
    except OSError as exc:
        raise _fail(
            DomainError(Problem("unreadable_file", ("file",), t("Cannot read {path}: {error}", path=path, error=exc)))
        ) from None
    except DomainError as exc:
        raise _fail(exc) from None
    console.print_json(json.dumps(scan.data))
    for u in scan.unread:
        console.print(f"[yellow]{escape(i18n.say(NOT_READ))}[/yellow] {escape(i18n.say(u))}")
    _print_report(view)


@app.command("read")
def read_cmd(path: Path = typer.Argument(...), languages: str | None = typer.Option(None)) -> None:
    """Only read a scanned invoice (nothing stored): the fields found and what could not be read."""
    try:
        scan = service.read_scan(path.read_bytes(), languages)
    except OSError as exc:
        raise _fail(
            DomainError(Problem("unreadable_file", ("file",), t("Cannot read {path}: {error}", path=path, error=exc)))
        ) from None
    except DomainError as exc:
        raise _fail(exc) from None
    console.print(f"{scan.format} via {scan.method}")
    console.print_json(json.dumps(scan.data))
    for u in scan.unread:
        console.print(f"[yellow]{escape(i18n.say(NOT_READ))}[/yellow] {escape(i18n.say(u))}")


@app.command("report")
def report_cmd(
    reference: str = typer.Argument(...),
    user: str = typer.Option("admin", "--user", "-u"),
    version: int | None = typer.Option(None),
) -> None:
    """Show the comparison report of a declaration."""
    try:
        with unit_of_work() as session:
            view = service.report_view(service.report(session, auth.acting_user(user), reference, version))
    except DomainError as exc:
        raise _fail(exc) from None
    _print_report(view)

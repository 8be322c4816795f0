"""`smartcustoms tariff ...`: import schedules, look codes up, search."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from smartcustoms.platform import i18n
from smartcustoms.platform.auth import SYSTEM
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.tariff import service
from smartcustoms.tariff.importers import FORMATS
from smartcustoms.tariff.model import DutyRate, TariffError

app = typer.Typer(no_args_is_help=True, help="Tariff schedules: import, look up, search.")
console = Console()


def _fail(exc: DomainError) -> typer.Exit:
    for p in exc.problems:
        loc = ".".join(str(x) for x in p.path) or "-"
        text = f"[{p.code}] {loc}: {i18n.say(p.message)}"
        label = i18n.say(t("error"))
        console.print(f"[red]{escape(label)}[/red] {escape(text)}", highlight=False)
    return typer.Exit(2)


def _date(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise TariffError(
            Problem("invalid_date", (field,), t("Not a date (YYYY-MM-DD): {value}", value=repr(value)))
        ) from None


def _rate(rate: DutyRate | None) -> str:
    if rate is None:
        return "-"
    if not rate.reference:
        return rate.text
    refers = i18n.say(t("refers to {reference}", reference=rate.reference))
    return f"{rate.text}  [dim]({escape(refers)})[/dim]"


@app.command("import")
def import_cmd(
    path: Path | None = typer.Argument(None, help="File (us-hts CSV) or folder (tw); none for hs2022"),
    format: str = typer.Option(..., "--format", "-f", help=f"One of {', '.join(FORMATS)}"),
    version: str | None = typer.Option(None, "--version", help="Schedule version (default per format)"),
    valid_from: str | None = typer.Option(None, "--valid-from", help="First day of validity, YYYY-MM-DD"),
    valid_to: str | None = typer.Option(None, "--valid-to", help="Last day of validity, YYYY-MM-DD"),
    name: str | None = typer.Option(None, "--name", help="Schedule name (default: the format)"),
    show_failures: int = typer.Option(10, "--show-failures", help="How many unparsed rates to list"),
) -> None:
    """Import a nomenclature or national schedule as one version (re-importing a version replaces it)."""
    try:
        with unit_of_work() as session:
            report = service.import_schedule(
                session,
                format,
                path,
                version,
                _date(valid_from, "valid_from"),
                _date(valid_to, "valid_to"),
                name=name,
                principal=SYSTEM,
            )
    except DomainError as exc:
        raise _fail(exc) from None
    s = report.schedule
    title = i18n.say(t("Tariff import: {name} {version}", name=s.name, version=s.version))
    table = Table(title=escape(title), show_header=False)
    until = s.valid_to or i18n.say(t("open-ended"))
    table.add_row(i18n.say(t("valid")), f"{s.valid_from} .. {until}")
    table.add_row(i18n.say(t("currency")), s.currency)
    table.add_row(i18n.say(t("source")), escape(s.source or "-"))
    table.add_row(i18n.say(t("lines")), f"{report.lines:,}")
    table.add_row(i18n.say(t("leaves")), f"{report.leaves:,}")
    table.add_row(i18n.say(t("rates parsed")), f"{report.rates_parsed:,}")
    table.add_row(i18n.say(t("rates not parsed")), f"{len(report.rates_failed):,} ({1 - report.parse_share:.2%})")
    table.add_row(
        i18n.say(t("replaced existing version")), i18n.say(t("yes")) if report.replaced else i18n.say(t("no"))
    )
    table.add_row(i18n.say(t("seconds")), f"{report.seconds:.2f}")
    console.print(table)
    for failure in report.rates_failed[:show_failures]:
        label = i18n.say(t("not parsed"))
        console.print(f"  {label}: {failure.code} {failure.column}: {failure.text!r}", markup=False)


@app.command("lookup")
def lookup_cmd(
    code: str,
    on: str | None = typer.Option(None, "--date", help="Declaration date, YYYY-MM-DD (default today)"),
    schedule: str | None = typer.Option(
        None, "--schedule", help="Schedule name (default SMARTCUSTOMS_TARIFF_SCHEDULE)"
    ),
) -> None:
    """Show a tariff line: path, descriptions, rates, unit."""
    try:
        day = _date(on, "date") or date.today()
        index = service.get_index(schedule, day)
    except DomainError as exc:
        raise _fail(exc) from None
    line = index.get(code)
    s = index.schedule
    if line is None:
        message = t(
            "Unknown code {code} in {name} {version} (valid on {day})",
            code=code,
            name=s.name,
            version=s.version,
            day=day.isoformat(),
        )
        console.print(f"[red]{escape(i18n.say(message))}[/red]")
        raise typer.Exit(1)
    title = t(
        "{code} in {name} {version} ({currency})", code=line.code, name=s.name, version=s.version, currency=s.currency
    )
    table = Table(title=escape(i18n.say(title)), show_header=False)
    for step in index.path(line.code)[:-1]:
        table.add_row(step.code, escape(step.description_en or step.description_zh or ""))
    table.add_row(i18n.say(t("description")), escape(line.description_en or "-"))
    if line.description_zh:
        table.add_row("說明", escape(line.description_zh))
    leaf = t("yes (declarable)") if line.is_leaf else t("no (declare a line under it)")
    table.add_row(i18n.say(t("leaf")), i18n.say(leaf))
    table.add_row(i18n.say(t("general rate")), _rate(line.general_rate))
    by_text: dict[str, list[str]] = {}
    for programme, rate in line.preferential.items():
        by_text.setdefault(rate.text, []).append(programme)
    for text, programmes in by_text.items():
        table.add_row(i18n.say(t("preferential")), escape(f"{text} ({', '.join(programmes)})"))
    if line.column2_rate is not None:
        table.add_row(i18n.say(t("column 2")), _rate(line.column2_rate))
    for column, text in line.raw_rates.items():
        parsed = {"general": line.general_rate, "column2": line.column2_rate}.get(column)
        if column != "preferential" and parsed is None:
            table.add_row(i18n.say(t("{column} (not parsed)", column=column)), escape(text))
    table.add_row(i18n.say(t("unit")), line.unit or "-")
    if line.requirements:
        table.add_row(i18n.say(t("requirements")), escape(", ".join(line.requirements)))
    console.print(table)


@app.command("search")
def search_cmd(
    text: str,
    lang: str | None = typer.Option(None, "--lang", help="en or zh"),
    schedule: str | None = typer.Option(None, "--schedule"),
    limit: int = typer.Option(20, "--limit"),
    on: str | None = typer.Option(None, "--date"),
) -> None:
    """Search by code prefix or by words (English or Chinese)."""
    try:
        with unit_of_work() as session:
            lines = service.search(session, text, lang, schedule, limit, _date(on, "date"))
    except DomainError as exc:
        raise _fail(exc) from None
    table = Table(*map(i18n.say, (t("code"), t("leaf"), t("description"), t("general rate"))))
    for line in lines:
        desc = escape(line.description(lang or "en") or "")
        table.add_row(line.code, "•" if line.is_leaf else "", desc, line.general_rate.text if line.general_rate else "")
    console.print(table)
    if not lines:
        console.print(i18n.say(t("no match")))


def _read_queries(path: Path) -> list[tuple[object, str]]:
    """(id, text) per JSONL line; a malformed line raises naming its number."""
    import orjson

    from smartcustoms.tariff.classifier.text import check_query

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TariffError(
            Problem("bad_path", ("input",), t("Cannot read {path}: {error}", path=str(path), error=str(exc.strerror)))
        ) from None
    out: list[tuple[object, str]] = []
    for n, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise TariffError(
                Problem("bad_jsonl", ("input", n), t("Line {n}: not JSON ({error})", n=n, error=str(exc)))
            ) from None
        if not isinstance(obj, dict) or "id" not in obj or "text" not in obj:
            raise TariffError(
                Problem("bad_jsonl", ("input", n), t("Line {n}: expected an object with id and text", n=n))
            )
        try:
            text = check_query(obj["text"], ("input", n, "text"))
        except TariffError as exc:
            p = exc.problems[0]
            raise TariffError(Problem(p.code, p.path, t("Line {n}: {message}", n=n, message=p.message))) from None
        out.append((obj["id"], text))
    if not out:
        raise TariffError(Problem("empty_input", ("input",), t("{path} has no queries", path=str(path))))
    return out


@app.command("classify")
def classify_cmd(
    text: str | None = typer.Argument(None, help="Goods description, English or Chinese"),
    input: Path | None = typer.Option(None, "--input", help='JSONL, one {"id": ..., "text": ...} per line'),
    output: Path | None = typer.Option(None, "--output", help="JSONL of ranked candidates (default stdout)"),
    top: int = typer.Option(5, "--top", help="How many candidates"),
    schedule: str = typer.Option("hs", "--schedule", help="hs (HS 2022 6-digit), us or tw (imported schedule)"),
    zh: Path | None = typer.Option(
        None, "--zh", help="Taiwan tariff folder: index its Chinese heading/subheading texts too (build time only)"
    ),
) -> None:
    """Ranked tariff codes for a goods description, or for every line of a JSONL file."""
    import orjson

    from smartcustoms.tariff.classifier import service as classifier
    from smartcustoms.tariff.classifier.model import MODEL_VERSION

    try:
        if (text is None) == (input is None):
            raise TariffError(Problem("bad_arguments", ("text",), t("Give either a TEXT or --input FILE")))
        if input is None:
            assert text is not None
            cands = classifier.classify([text], top, schedule, explain=True, zh_folder=zh)[0]
            needs = _permits_needed([c.code for c in cands])
            table = Table("#", "code", "confidence", "path", "matched", "permits needed")
            for i, c in enumerate(cands, start=1):
                path = " > ".join(f"{code} {desc[:40]}" for code, desc in c.path[-3:])
                words = ", ".join(c.matched + tuple(f"[{t}]" for t in c.terms[:2]))
                table.add_row(
                    str(i), c.code, f"{c.confidence:.3f}", escape(path), escape(words), escape(needs.get(c.code, ""))
                )
            console.print(table)
            source = classifier.get_classifier(schedule, zh_folder=zh)
            console.print(t("confidence: {source}", source=source.confidence_source))
            return
        queries = _read_queries(input)
        lines: list[bytes] = []
        served = classifier.get_classifier(schedule, zh_folder=zh)
        # The JSONL lines keep the evaluated contract ({"id", "candidates"}) exactly; the versions go to stderr.
        versions = t("model {model}, confidence {confidence}", model=MODEL_VERSION, confidence=served.confidence_source)
        for start in range(0, len(queries), 256):
            chunk = queries[start : start + 256]
            ranked = classifier.classify([t for _, t in chunk], top, schedule, zh_folder=zh)
            for (qid, _), cands in zip(chunk, ranked, strict=True):
                row = {"id": qid, "candidates": [{"code": c.code, "score": c.confidence} for c in cands]}
                lines.append(orjson.dumps(row))
        data = b"\n".join(lines) + b"\n"
        if output is None or str(output) == "-":
            typer.echo(data.decode(), nl=False)
        else:
            output.write_bytes(data)
            console.print(t("{n} queries classified -> {output}", n=f"{len(lines):,}", output=str(output)))
        typer.echo(versions, err=True)
    except DomainError as exc:
        raise _fail(exc) from None


def _permits_needed(codes: list[str]) -> dict[str, str]:
    """Per code, the other agencies' permits the requirements registry names ("" when none, or when this
    command runs without a migrated database: classification itself needs none)."""
    try:
        found = service.permit_requirements(codes)
    except SQLAlchemyError:
        return {}
    out: dict[str, list[str]] = {}
    for req in found:
        out.setdefault(req["code"], []).append(f"{req['direction']}: {req['agency']} {req['title']}")
    return {code: "; ".join(texts) for code, texts in out.items()}


@app.command("ask")
def ask_cmd(
    text: str = typer.Argument("", help="Goods description (omit with --session)"),
    schedule: str = typer.Option("hs", "--schedule"),
    resume: str | None = typer.Option(None, "--session", help="Continue a stored session (from any process)"),
) -> None:
    """Classify with progressive questions: answer by option number until one code is clearly ahead.
    Sessions are stored in the database; `--session ID` continues one started elsewhere (web page, API)."""
    from smartcustoms.tariff.classifier import service as classifier

    try:
        with unit_of_work() as session:
            st = (
                classifier.session_result(session, resume)
                if resume
                else classifier.start_session(session, text, schedule)
            )
        console.print(f"[dim]session {st.id}[/dim]")
        while st.question is not None:
            q = st.question
            console.print(f"[bold]{escape(q.prompt)}[/bold] [dim]({q.gain:.2f} bits)[/dim]")
            for i, o in enumerate(q.options):
                console.print(f"  {i}. {escape(o.label)}")
            choice = typer.prompt("answer", type=int)
            with unit_of_work() as session:
                st = classifier.answer_session(session, st.id, q.id, choice)
    except DomainError as exc:
        raise _fail(exc) from None
    for code, p in st.ranked[:5]:
        console.print(f"{code}  {p:.3f}")
    for qtext, ans in st.trail:
        console.print(f"[dim]{escape(qtext)} -> {escape(ans)}[/dim]")


@app.command("confirm")
def confirm_cmd(
    code: str,
    description: str,
    schedule: str = typer.Option("hs", "--schedule"),
    reason: str | None = typer.Option(None, "--reason"),
) -> None:
    """Record a confirmed classification (training data for `tariff train`)."""
    from smartcustoms.tariff.classifier import service as classifier

    try:
        with unit_of_work() as session:
            rid = classifier.confirm(session, SYSTEM, description, code, schedule, reason)
    except DomainError as exc:
        raise _fail(exc) from None
    console.print(i18n.say(t("confirmed #{number}", number=rid)))


@app.command("train")
def train_cmd(schedule: str = typer.Option("hs", "--schedule")) -> None:
    """Retrain the classifier with every confirmed classification; prints held-out accuracy before/after."""
    from smartcustoms.tariff.classifier import service as classifier

    try:
        with unit_of_work() as session:
            metrics = classifier.train(session, schedule)
    except DomainError as exc:
        raise _fail(exc) from None
    for k, v in metrics.items():
        console.print(f"{k}: {v}")


@app.command("schedules")
def schedules_cmd() -> None:
    """List the schedule versions in the database."""
    with unit_of_work() as session:
        rows = service.list_schedules(session)
    headers = (t("name"), t("version"), t("valid from"), t("valid to"), t("currency"), t("imported at"), t("source"))
    table = Table(*map(i18n.say, headers))
    for s in rows:
        table.add_row(
            s.name,
            s.version,
            str(s.valid_from),
            str(s.valid_to or ""),
            s.currency,
            f"{s.imported_at:%Y-%m-%d %H:%M}" if s.imported_at else "",
            s.source or "",
        )
    console.print(table)

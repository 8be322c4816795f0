"""`smartcustoms risk ...`: train, score, backtest rules, and the model registry.

Summaries for people are in the reader's language (`SMARTCUSTOMS_LANG` or `smartcustoms --lang`, then `LANG`);
the files written (CSV columns, reasons) stay in English.

The train / score commands are a contract used by evaluations; keep their options and output columns.
Bad input raises `RiskInputError` (a DomainError): the platform CLI prints each problem and exits 2.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import typer

from smartcustoms.platform import i18n
from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t
from smartcustoms.risk.kcs import FORMATS, RiskInputError, read_kcs
from smartcustoms.risk.lanes import LanePolicy
from smartcustoms.risk.selectivity import SelectivityModel

app = typer.Typer(no_args_is_help=True, help="Risk engine: selectivity model, targeting rules, model registry.")
models_app = typer.Typer(no_args_is_help=True, help="Model registry: saved versions, the active one, rollback.")
app.add_typer(models_app, name="models")


REGISTRY_HELP = "Registry directory (default: $SMARTCUSTOMS_RISK_REGISTRY, else var/risk/models)"


def registry_dir() -> Path:
    """The registry the API and the clearance core use, so `models register` lands where filing looks."""
    return Path(os.environ.get("SMARTCUSTOMS_RISK_REGISTRY", "var/risk/models"))


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise RiskInputError(
            Problem(
                "unknown_format",
                ("format",),
                t("unknown format {format}; expected one of {allowed}", format=repr(fmt), allowed=", ".join(FORMATS)),
            )
        )


def _read(fmt: str, paths: list[Path], *, require_labels: bool) -> pd.DataFrame:
    """KCS CSVs, or label exports of the platform's own declarations (`risk export-labels`)."""
    if fmt == "platform":
        from smartcustoms.risk.labels import read_platform

        return read_platform(paths, require_labels=require_labels)
    return read_kcs(paths, require_labels=require_labels)


@app.command("train")
def train(
    data: list[Path] = typer.Option(..., "--data", help="Training CSV (repeatable)"),
    fmt: str = typer.Option("kcs", "--format", help="Column layout of the CSV: kcs, or platform (risk export-labels)"),
    out: Path = typer.Option(..., "--out", help="Model directory to write"),
    budget: float = typer.Option(0.10, help="Share of declarations inspected by score (C2 + C3)"),
    c3_share: float = typer.Option(0.03, help="Share sent to physical inspection (C3)"),
    exploration: float = typer.Option(0.01, help="Extra share chosen at random among would-be-C1 declarations"),
    aeo_relief: float = typer.Option(0.5, help="AEO traders' score multiplier before thresholds"),
    n_estimators: int = typer.Option(150, help="Boosting rounds"),
    seed: int = typer.Option(7, help="Random seed"),
    compare: Path | None = typer.Option(
        None, "--compare", help="Also score the same time-later slice with this model directory (e.g. the active one)"
    ),
) -> None:
    """Train the selectivity model from labelled declarations (labels in `Fraud`)."""
    _check_format(fmt)
    for name, v in (
        ("budget", budget),
        ("c3-share", c3_share),
        ("exploration", exploration),
        ("aeo-relief", aeo_relief),
    ):
        if not 0 <= v <= 1:
            raise RiskInputError(
                Problem(
                    "out_of_range", (name,), t("--{option} must be between 0 and 1, got {value}", option=name, value=v)
                )
            )
    t0 = time.perf_counter()
    frame = _read(fmt, data, require_labels=True)
    policy = LanePolicy(budget=budget, c3_share=min(c3_share, budget), exploration=exploration, aeo_relief=aeo_relief)
    model = SelectivityModel(n_estimators=n_estimators, policy=policy, data_format=fmt, seed=seed).fit(frame)
    model.save(out)
    v = model.manifest["validation"]
    typer.echo(
        i18n.say(
            t(
                "model {version} written to {path} ({count} declarations, {seconds} s); time-later slice "
                "{start}..{end}: AUC {auc}, precision@10% {precision}, recall@10% {recall}",
                version=model.version,
                path=out,
                count=len(frame),
                seconds=f"{time.perf_counter() - t0:.1f}",
                start=v["window"]["from"],
                end=v["window"]["to"],
                auc=f"{v['auc']:.3f}",
                precision=f"{v['precision@10%']:.3f}",
                recall=f"{v['recall@10%']:.3f}",
            )
        )
    )
    b = v.get("baseline")
    if b:
        typer.echo(
            i18n.say(
                t(
                    "baseline ({method_text}) on the same slice: AUC {auc}, precision@10% {precision}, "
                    "recall@10% {recall}",
                    method_text=BASELINE_METHODS.get(b["method"], b["method"]),
                    auc=_metric(b.get("auc")),
                    precision=f"{b['precision@10%']:.3f}",
                    recall=f"{b['recall@10%']:.3f}",
                )
            )
        )
    if compare is not None:
        from smartcustoms.risk.selectivity import metrics_at_k

        other = SelectivityModel.load(compare)
        window = frame[(frame["date"] >= v["window"]["from"]) & frame["fraud"].notna()]
        m = metrics_at_k(window["fraud"].to_numpy(), other.score(window))
        typer.echo(
            i18n.say(
                t(
                    "model {version} on the same slice: AUC {auc}, precision@10% {precision}, recall@10% {recall} "
                    "(optimistic if its training window covers the slice)",
                    version=other.version,
                    auc=_metric(m.get("auc")),
                    precision=f"{m['precision@10%']:.3f}",
                    recall=f"{m['recall@10%']:.3f}",
                )
            )
        )


BASELINE_METHODS = {"HS chapter past fraud rate": t("HS chapter past fraud rate")}
"""The baselines `risk train` reports beside the model, as words in the reader's language."""


def _metric(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else i18n.say(t("n/a"))


@app.command("export-labels")
def export_labels(
    out: Path = typer.Option(..., "--out", help="CSV to write (format 'platform' for `risk train`)"),
    since: str | None = typer.Option(None, help="First filing day YYYY-MM-DD"),
    until: str | None = typer.Option(None, help="Last filing day YYYY-MM-DD"),
) -> None:
    """Export the platform's declarations with inspection outcomes as labels (fraud, additional_duty)."""
    from datetime import date

    from smartcustoms.platform.db import unit_of_work
    from smartcustoms.risk.labels import export_labels as export

    days = {}
    for name, value in (("since", since), ("until", until)):
        if value:
            try:
                days[name] = date.fromisoformat(value)
            except ValueError:
                raise RiskInputError(
                    Problem(
                        "invalid",
                        (name,),
                        t("--{option} must be YYYY-MM-DD, got {value}", option=name, value=repr(value)),
                    )
                ) from None
    with unit_of_work() as session:
        frame = export(session, **days)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    per_decl = frame.drop_duplicates("declaration_id")
    labelled = per_decl["fraud"].notna()
    typer.echo(
        i18n.say(
            t(
                "{declarations} declarations ({items} items) -> {path}; {inspected} inspected, {found} with findings, "
                "additional duty {duty}",
                declarations=len(per_decl),
                items=len(frame),
                path=out,
                inspected=int(labelled.sum()),
                found=int((per_decl["fraud"] == 1).sum()),
                duty=f"{per_decl['additional_duty'].sum():,.2f}",
            )
        )
    )


@app.command("score")
def score(
    model: Path = typer.Option(..., "--model", help="Model directory written by `risk train`"),
    data: Path = typer.Option(..., "--data", help="CSV of declarations to score (labels not needed)"),
    fmt: str = typer.Option("kcs", "--format", help="Column layout of the CSV: kcs, or platform (risk export-labels)"),
    out: Path = typer.Option(..., "--out", help="Scores CSV: Declaration ID,score,lane,reasons"),
    explain: str = typer.Option("selected", help="Reasons for: all rows, selected (C2/C3) rows, or none"),
    rules: Path | None = typer.Option(None, "--rules", help="Targeting rules (YAML/JSON) applied on top of the model"),
) -> None:
    """Score declarations: one output row per input row, in input order."""
    if explain not in ("all", "selected", "none"):
        raise RiskInputError(Problem("invalid", ("explain",), t("--explain must be all, selected or none")))
    _check_format(fmt)
    m = SelectivityModel.load(model, expected_format=fmt)
    ruleset = None
    if rules is not None:
        from smartcustoms.risk.rules import load_rules_file

        ruleset = load_rules_file(rules)
    frame = _read(fmt, [data], require_labels=False)
    t0 = time.perf_counter()
    result = m.assess(frame, explain=explain, rules=ruleset)
    if "reasons" not in result.columns:
        result["reasons"] = ""
    table = result[["declaration_id", "score", "lane", "reasons"]].rename(columns={"declaration_id": "Declaration ID"})
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False, float_format="%.6f")
    counts = result["lane"].value_counts().to_dict()
    summary = t(
        "{count} declarations scored with {version} in {seconds} s -> {path}; {lanes}",
        count=len(result),
        version=m.version,
        seconds=f"{time.perf_counter() - t0:.2f}",
        path=out,
        lanes=", ".join(f"{lane} {counts.get(lane, 0)}" for lane in ("C1", "C2", "C3")),
    )
    typer.echo(i18n.say(summary))


@app.command("backtest")
def backtest(
    rules: Path = typer.Option(..., "--rules", help="Rules file (YAML or JSON)"),
    data: Path = typer.Option(..., "--data", help="Past declarations CSV (with `Fraud` for hit rates)"),
    fmt: str = typer.Option("kcs", "--format", help="Column layout of the CSV: kcs, or platform (risk export-labels)"),
) -> None:
    """Run targeting rules over past declarations: hits and frauds among hits, per rule."""
    from smartcustoms.risk.rules import backtest as run_backtest
    from smartcustoms.risk.rules import load_rules_file

    _check_format(fmt)
    ruleset = load_rules_file(rules)
    frame = _read(fmt, [data], require_labels=False)
    result = run_backtest(ruleset, frame)
    labelled = int(frame["fraud"].notna().sum()) if "fraud" in frame.columns else 0
    frauds = int((frame["fraud"] == 1).sum()) if "fraud" in frame.columns else 0
    headers = {name: i18n.say(word) for name, word in BACKTEST_COLUMNS.items()}
    with pd.option_context("display.unicode.east_asian_width", True):
        typer.echo(result.rename(columns=headers).to_string(index=False))
    typer.echo(
        i18n.say(
            t(
                "{rules} rule(s) over {declarations} declarations ({labelled} with inspection outcomes, "
                "{frauds} frauds)",
                rules=len(result),
                declarations=len(frame),
                labelled=labelled,
                frauds=frauds,
            )
        )
    )


BACKTEST_COLUMNS = {
    "rule": t("rule"),
    "version": t("version"),
    "hits": t("hits"),
    "hit_share": t("hit_share"),
    "frauds": t("frauds"),
    "precision": t("precision"),
    "fraud_share": t("fraud_share"),
}
"""Column headings of the backtest table: the column names in English, words in other languages."""


@models_app.command("list")
def models_list(registry: Path | None = typer.Option(None, help=REGISTRY_HELP)) -> None:
    """Saved model versions, newest first; the active one is marked with *."""
    from smartcustoms.risk.registry import ModelRegistry

    reg = ModelRegistry(registry or registry_dir())
    active = reg.active_version()
    for entry in reg.versions():
        mark = "*" if entry["version"] == active else " "
        v = entry.get("validation", {})
        auc = v.get("auc")
        typer.echo(
            i18n.say(
                t(
                    "{mark} {version}  trained {start}..{end}  AUC {auc}",
                    mark=mark,
                    version=entry["version"],
                    start=entry["training_window"]["from"],
                    end=entry["training_window"]["to"],
                    auc=f"{auc:.3f}",
                )
            )
            if auc is not None
            else f"{mark} {entry['version']}"
        )


@models_app.command("register")
def models_register(
    model: Path = typer.Argument(..., help="Model directory written by `risk train`"),
    registry: Path | None = typer.Option(None, help=REGISTRY_HELP),
    activate: bool = typer.Option(True, help="Make it the active version"),
) -> None:
    """Copy a trained model directory into the registry."""
    from smartcustoms.risk.registry import ModelRegistry

    version = ModelRegistry(registry or registry_dir()).register(model, activate=activate)
    typer.echo(
        i18n.say(
            t("registered {version} (active)", version=version)
            if activate
            else t("registered {version}", version=version)
        )
    )


@models_app.command("rollback")
def models_rollback(
    version: str = typer.Argument(..., help="Version to make active again"),
    registry: Path | None = typer.Option(None, help=REGISTRY_HELP),
) -> None:
    """Make an earlier model version the active one (the lane assessor uses the active version)."""
    from smartcustoms.risk.registry import ModelRegistry

    ModelRegistry(registry or registry_dir()).activate(version)
    typer.echo(i18n.say(t("active model is now {version}", version=version)))


@app.command("retrain")
def retrain(
    data: list[Path] = typer.Option(..., "--data", help="Labelled declarations CSV (repeatable)"),
    fmt: str = typer.Option("kcs", "--format", help="Column layout of the CSV: kcs, or platform (risk export-labels)"),
    window_days: int = typer.Option(365, help="Rolling window: train on the last N days of the data"),
    registry: Path | None = typer.Option(None, help=REGISTRY_HELP),
) -> None:
    """Retrain on a rolling window and register the new version as active."""
    from smartcustoms.risk.registry import ModelRegistry

    _check_format(fmt)
    frame = _read(fmt, data, require_labels=True)
    start = frame["date"].max() - pd.Timedelta(days=window_days)
    frame = frame[frame["date"] > start].reset_index(drop=True)
    reg = ModelRegistry(registry or registry_dir())
    active = reg.active_version()
    params = reg.load(active).get_params() if active else {}
    policy = LanePolicy(**params.pop("policy")) if params else LanePolicy()
    model = SelectivityModel(**{**params, "policy": policy}).fit(frame)
    version = reg.save_and_register(model)
    typer.echo(json.dumps({"version": version, "window": model.manifest["training_window"]}))


@app.command("audit")
def audit(
    model: Path = typer.Option(..., "--model", help="Model directory written by `risk train`"),
    data: Path = typer.Option(..., "--data", help="Declaration history CSV (cleared declarations)"),
    fmt: str = typer.Option("kcs", "--format", help="Column layout of the CSV: kcs, or platform (risk export-labels)"),
    out: Path = typer.Option(..., "--out", help="Audit list CSV"),
    top: int = typer.Option(50, help="Number of companies to list"),
) -> None:
    """Post-clearance audit list: importers ranked by expected unpaid revenue, with reasons."""
    from smartcustoms.risk.audit import rank_companies

    _check_format(fmt)
    m = SelectivityModel.load(model, expected_format=fmt)
    frame = _read(fmt, [data], require_labels=False)
    ranked = rank_companies(frame, m.assess(frame, explain="none"), top=top)
    out.parent.mkdir(parents=True, exist_ok=True)
    ranked.to_csv(out, index=False, float_format="%.4f")
    typer.echo(i18n.say(t("{count} companies ranked -> {path}", count=len(ranked), path=out)))


@app.command("audit-refresh")
def audit_refresh(
    user: str = typer.Option(..., "--user", "-u", help="Compute as this user (analyst or admin)"),
    top: int = typer.Option(50, help="Number of companies to list"),
    check_codes: bool = typer.Option(True, help="Check declared codes against goods descriptions (classifier)"),
) -> None:
    """Rank importers with the active model and store the list the console's audit page shows (for a
    scheduler, e.g. nightly)."""
    from smartcustoms.platform import auth
    from smartcustoms.platform.db import unit_of_work
    from smartcustoms.risk.postclearance import refresh_audit_list

    with unit_of_work() as session:
        who = auth.acting_principal(session, user)
        stored = refresh_audit_list(session, who, top=max(1, min(top, 500)), check_codes=check_codes)
    done = t(
        "Audit list: {count} importer(s) ranked with model {version} at {at}",
        count=len(stored["rows"]),
        version=stored["model_version"],
        at=stored["computed_at"],
    )
    typer.echo(i18n.say(done))

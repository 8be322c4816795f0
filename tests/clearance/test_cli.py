"""The `smartcustoms` clearance commands: filing from files, exchange rates, listing, demo data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from smartcustoms.clearance import demo
from smartcustoms.clearance.store import DeclarationRow
from smartcustoms.cli import app
from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError, Forbidden
from tests.clearance.conftest import Env, declaration

runner = CliRunner()


def test_submit_files_json_list_and_jsonl(env_sqlite: Env, tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps(declaration(lrn="CLI-1")))
    many = tmp_path / "many.jsonl"
    many.write_text("\n".join(json.dumps(declaration(lrn=f"CLI-{i}")) for i in (2, 3)))
    r = runner.invoke(app, ["declarations", "submit", str(one), str(many), "--user", "trader"])
    assert r.exit_code == 0, r.output
    assert r.output.count("lane C1") == 3
    r = runner.invoke(app, ["declarations", "submit", str(one), "--user", "trader"])
    assert r.exit_code == 0 and "already filed" in r.output
    r = runner.invoke(app, ["declarations", "list", "--user", "trader"])
    assert r.exit_code == 0 and "3 of 3" in r.output


def test_submit_reports_every_problem_and_exits_non_zero(env_sqlite: Env, tmp_path: Path) -> None:
    bad = declaration(lrn="CLI-BAD", currency="XYZ")
    bad["items"][0]["tariff_code"] = "770100"
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(bad))
    r = runner.invoke(app, ["declarations", "submit", str(f), "--user", "trader"])
    assert r.exit_code == 1
    assert "unknown_currency" in r.output and "$.items[0].tariff_code" in r.output
    f.write_text("{not json")
    r = runner.invoke(app, ["declarations", "submit", str(f), "--user", "trader"])
    assert r.exit_code != 0


def test_fx_import(env_sqlite: Env, tmp_path: Path) -> None:
    f = tmp_path / "fx.csv"
    f.write_text("currency,valid_from,rate\nEUR,2026-01-01,35.2\nGBP,2026-01-01,40.1\n")
    r = runner.invoke(app, ["fx", "import", str(f)])
    assert r.exit_code == 0 and "2 exchange rate(s)" in r.output
    f.write_text("currency,rate\nEUR,1\n")
    r = runner.invoke(app, ["fx", "import", str(f)])
    assert r.exit_code != 0 and isinstance(r.exception, DomainError)
    assert r.exception.problems[0].code == "missing_columns"


def test_main_prints_problems_and_exits_2(tmp_path: Path) -> None:
    env = os.environ | {"SMARTCUSTOMS_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "from smartcustoms.cli import main; main()",
            "users",
            "add",
            "bad name!",
            "--role",
            "king",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "invalid_username" in r.stderr and "invalid_role" in r.stderr


def test_demo_load_is_seeded_and_idempotent(sqlite_url: str) -> None:
    r = runner.invoke(app, ["demo", "load", "--count", "40", "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert "40 declaration(s)" in r.output and "; 0 refused" in r.output, r.output
    r = runner.invoke(app, ["demo", "load", "--if-empty"])
    assert "already present" in r.output


def test_make_runs_demo_files_every_declaration_it_generates(sqlite_url: str) -> None:
    """The demo `make run` loads (the defaults): a misdeclaring importer's line is still declared in the unit
    its declared code's rate needs, so none is refused (one was: a litre rate declared in units)."""
    report = demo.load()
    assert report.refused == 0 and report.declarations == 600
    assert set(report.by_lane) == {"C1", "C2", "C3"}


def test_a_deactivated_user_files_nothing_from_the_command_line(env_sqlite: Env, tmp_path: Path) -> None:
    """The API refuses a deactivated user's tokens; `--user` must not be a way around that."""
    with unit_of_work() as s:
        auth.update_user(s, "trader", active=False)
    one = tmp_path / "one.json"
    one.write_text(json.dumps(declaration(lrn="CLI-OFF-1")))
    night = tmp_path / "night.jsonl"
    night.write_text("\n".join(json.dumps(declaration(lrn=f"CLI-OFF-{i}")) for i in range(2, 5)))
    for args in (["declarations", "submit", str(one)], ["declarations", "ingest", str(night)]):
        r = runner.invoke(app, [*args, "--user", "trader"])
        assert r.exit_code != 0 and isinstance(r.exception, Forbidden), r.output
        assert [p.code for p in r.exception.problems] == ["inactive_user"]
    with unit_of_work(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(DeclarationRow)) == 0
    with unit_of_work() as s:
        auth.update_user(s, "trader", active=True)
    assert runner.invoke(app, ["declarations", "submit", str(one), "--user", "trader"]).exit_code == 0

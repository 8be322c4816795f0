"""CLI: import the registry (malformed rows reported by line, nothing written), issue, list, revoke, seed demo."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from smartcustoms.platform.db import unit_of_work
from smartcustoms.singlewindow.permits import service
from smartcustoms.singlewindow.permits.cli import app
from tests.clearance.conftest import prepare_database

runner = CliRunner()


def test_import_issue_list_revoke_and_demo(sqlite_url: str, tmp_path: Path) -> None:
    prepare_database()
    service.forget_caches()
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "code_prefix,direction,agency,permit_type,title,valid_from,valid_to\n"
        "0201,import,BAPHIQ,quarantine_certificate,Beef,2024-01-01,\n"
        "0201,sideways,BAPHIQ,quarantine_certificate,Beef,2024-01-01,\n"
        "7701,import,BAPHIQ,quarantine_certificate,Beef,2024-01-01,2023-01-01\n",
        encoding="utf-8",
    )
    r = runner.invoke(app, ["import-requirements", str(bad)])
    assert r.exit_code == 2
    assert "$.line[3].direction" in r.output and "$.line[4].code_prefix" in r.output
    assert "$.line[4].valid_to" in r.output
    with unit_of_work() as s:
        assert service.list_requirements(s) == [], "nothing half-written"
    r = runner.invoke(app, ["import-requirements", str(service.DEMO_REQUIREMENTS)])
    assert r.exit_code == 0, r.output
    assert "added" in r.output
    r = runner.invoke(app, ["requirements", "--code", "020130"])
    assert "BAPHIQ" in r.output and "TFDA" in r.output
    args = [
        "issue",
        "QC-9",
        "--type",
        "quarantine_certificate",
        "--holder",
        "TW10000001",
        "--codes",
        "0201,0202",
        "--from",
        "2026-01-01",
        "--to",
        "2027-12-31",
        "--quantity",
        "500",
        "--unit",
        "kg",
        "--agency",
        "BAPHIQ",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "duplicate_number" in r.output
    r = runner.invoke(app, ["list"])
    assert "QC-9" in r.output and "500 kg" in r.output
    r = runner.invoke(app, ["revoke", "QC-9", "--reason", "plant delisted"])
    assert r.exit_code == 0
    r = runner.invoke(app, ["seed-demo"])
    assert r.exit_code == 0, r.output
    with unit_of_work() as s:
        _rows, total = service.list_permits(s, service.SYSTEM, holder="TW10000001")
    assert total > 5
    assert service.demo_permits_for("TW10000002", "020130") == [
        "BAPHIQ-QC-TW10000002",
        "TFDA-FI-TW10000002",
    ]
    r = runner.invoke(app, ["seed-demo"])
    assert r.exit_code == 0 and "0 permit(s) issued" in r.output

"""`smartcustoms singlewindow manifests|trade-documents ...`: filing from JSON and CSV, follow-up, reports."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from smartcustoms.cli import app
from tests.clearance.conftest import Env, declaration
from tests.singlewindow.manifests.conftest import manifest
from tests.singlewindow.trade_documents.conftest import doc

runner = CliRunner()


def test_file_json_and_csv_manifests_follow_up_and_errors(env_sqlite: Env, tmp_path: Path) -> None:
    env = env_sqlite
    body = manifest(expected_arrival=(datetime.now(UTC) - timedelta(days=8)).isoformat())
    (tmp_path / "m.json").write_text(json.dumps(body))
    r = runner.invoke(app, ["singlewindow", "manifests", "file", str(tmp_path / "m.json"), "--user", "carrier"])
    assert r.exit_code == 0, r.output
    assert "2 lines, 0 declared, 2 not yet" in r.output

    with (tmp_path / "lines.csv").open("w", newline="") as f:
        w = csv.DictWriter(
            f,
            fieldnames=[
                "doc_ref",
                "doc_type",
                "shipper_name",
                "consignee_name",
                "consignee_id",
                "description",
                "packages",
                "gross_weight_kg",
            ],
        )
        w.writeheader()
        w.writerow(
            {
                "doc_ref": "297-1",
                "doc_type": "AWB",
                "shipper_name": "S",
                "consignee_name": "Formosa",
                "consignee_id": "TW10000001",
                "description": "phones",
                "packages": "3",
                "gross_weight_kg": "9",
            }
        )
        w.writerow(
            {
                "doc_ref": "297-1",
                "doc_type": "AWB",
                "shipper_name": "S",
                "consignee_name": "F",
                "description": "x",
                "packages": "-1",
                "gross_weight_kg": "9",
            }
        )
    args = [
        "singlewindow",
        "manifests",
        "file",
        str(tmp_path / "lines.csv"),
        "--user",
        "carrier",
        "--voyage",
        "CI0061",
        "--mode",
        "air",
        "--port",
        "TWTPE",
        "--arrival",
        "2030-01-01T08:00",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert "$.lines[1].doc_ref" in r.output and "$.lines[1].packages" in r.output

    env.client.post("/declarations", json=declaration(), headers=env.h("trader"))
    r = runner.invoke(app, ["singlewindow", "manifests", "follow-up", "--user", "officer"])
    assert r.exit_code == 0 and "1 lines to follow up" in r.output
    r = runner.invoke(app, ["singlewindow", "manifests", "list", "--user", "carrier"])
    assert r.exit_code == 0 and "1 manifests" in r.output


def test_attach_and_report_from_the_command_line(env_sqlite: Env, tmp_path: Path) -> None:
    env = env_sqlite
    ref = env.client.post("/declarations", json=declaration(), headers=env.h("trader")).json()["reference"]
    (tmp_path / "pl.json").write_text(json.dumps(doc("packing_list", gross_weight_kg="500")))
    r = runner.invoke(
        app,
        ["singlewindow", "trade-documents", "attach", ref, "packing_list", str(tmp_path / "pl.json"), "-u", "trader"],
    )
    assert r.exit_code == 0, r.output
    assert "mismatch" in r.output and "1 mismatches, 5 agree" in r.output
    r = runner.invoke(app, ["singlewindow", "trade-documents", "report", ref, "-u", "officer"])
    assert r.exit_code == 0 and "report v1" in r.output
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01junk")
    r = runner.invoke(app, ["singlewindow", "trade-documents", "read", str(tmp_path / "junk.bin")])
    assert r.exit_code == 2 and "unsupported_format" in r.output

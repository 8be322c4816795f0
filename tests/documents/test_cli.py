"""The command-line contract evaluations rely on: `smartcustoms documents issue|verify|redact|log-proof`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smartcustoms.documents import signing, store
from smartcustoms.documents.cli import app
from smartcustoms.platform.errors import DomainError
from tests.conftest import shared_data

from .test_service import coo

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src"


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_issue_verify_redact_log_proof(sqlite_url: str, tmp_path: Path) -> None:
    store.forget_trees()
    assert _cli("issuer-add", "chamber-tw", "--name", "Taiwan Chamber", "--kind", "chamber_of_commerce")[0] == 0
    (tmp_path / "batch.json").write_text(json.dumps([coo(1), coo(2)]))
    code, out = _cli(
        "issue",
        str(tmp_path / "batch.json"),
        "--issuer",
        "chamber-tw",
        "--type",
        "certificate_of_origin",
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 0, out
    wrapped = tmp_path / "out" / "batch-1.wrapped.json"
    code, out = _cli("verify", str(wrapped))
    verdict = json.loads(out)
    assert code == 0 and verdict["checks"]["status"]["status"] == "valid", out
    code, out = _cli("redact", str(wrapped), "--field", "goods.0.price", "--out", str(tmp_path / "red.json"))
    assert code == 0, out
    assert _cli("verify", str(tmp_path / "red.json"))[0] == 0
    code, out = _cli("log-proof", "--issuer", "chamber-tw", "--document", str(wrapped), "--from", "1")
    proof = json.loads(out)
    assert code == 0 and proof["treeSize"] == 2 and proof["leafIndex"] == 1 and "consistencyProof" in proof
    code, out = _cli("registry")
    assert code == 0 and json.loads(out)["keys"][0]["issuer"] == "chamber-tw"
    doc = json.loads(wrapped.read_text())
    doc["data"]["fta"] = doc["data"]["fta"] + "X"
    (tmp_path / "tampered.json").write_text(json.dumps(doc))
    code, out = _cli("verify", str(tmp_path / "tampered.json"))
    assert code == 1 and json.loads(out)["checks"]["integrity"]["status"] == "invalid"


def _run(*args: str, env_db: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SMARTCUSTOMS_DATABASE_URL"}
    env["PYTHONPATH"] = str(SRC)
    env["SMARTCUSTOMS_DATABASE_URL"] = env_db or "sqlite:////nonexistent-dir/never.db"
    return subprocess.run(
        [sys.executable, "-c", "from smartcustoms.cli import main; main()", "documents", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("v2_documentMainnetValid.json", 0),
    ],
)
def test_verify_foreign_documents_without_database(name: str, code: int) -> None:
    path = shared_data("docverify", "oa_verify_fixtures") / name
    result = _run("verify", str(path))
    assert result.returncode == code, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["checks"]["status"]["status"] == "unknown"
    assert verdict["checks"]["identity"]["status"] == "unknown"
    assert set(verdict["checks"]) == {"integrity", "status", "identity"}


def test_verify_invalid_foreign_documents_in_process() -> None:
    base = shared_data("docverify", "oa_verify_fixtures")
    code, out = _cli("verify", "--no-db", str(base / "v2_documentMainnetInvalidWithIncorrectMerkleRoot.json"))
    assert code == 1 and "merkleRoot" in json.loads(out)["checks"]["integrity"]["reason"]
    code, out = _cli("verify", "--no-db", str(base / "v2_tamperedDocument.tamperedDocument.json"))
    verdict = json.loads(out)
    assert code == 1 and "target hash" in verdict["checks"]["integrity"]["reason"]
    assert verdict["checks"]["status"]["status"] == "unknown"


def test_verify_malformed_and_unknown(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    result = _run("verify", str(tmp_path / "bad.json"))
    assert result.returncode == 2 and "malformed_json" in result.stderr
    (tmp_path / "other.json").write_text('{"hello": "world"}')
    code, out = _cli("verify", "--no-db", str(tmp_path / "other.json"))
    assert code == 1 and "not an OpenAttestation" in json.loads(out)["checks"]["integrity"]["reason"]


def test_issuer_held_key_flow_on_the_command_line(sqlite_url: str, tmp_path: Path) -> None:
    from smartcustoms.documents import signing

    store.forget_trees()
    private = signing.generate_private_key()
    public = signing.b64(signing.public_key_of(private))
    args = ["issuer-add", "chamber-nz", "--name", "NZ Chamber", "--kind", "chamber_of_commerce", "--public-key", public]
    assert _cli(*args)[0] == 0
    (tmp_path / "coo.json").write_text(json.dumps(coo(5)))
    prepared = tmp_path / "batch.json"
    code, out = _cli(
        "issue-prepare",
        str(tmp_path / "coo.json"),
        "--issuer",
        "chamber-nz",
        "--type",
        "certificate_of_origin",
        "--out",
        str(prepared),
    )
    assert code == 0, out
    assert _cli("issue-sign", str(prepared), "--private-key", signing.b64(private))[0] == 0
    code, out = _cli("issue-finalize", str(prepared), "--out", str(tmp_path / "out"))
    assert code == 0, out
    code, out = _cli("verify", str(tmp_path / "out" / "batch-0.wrapped.json"))
    assert code == 0 and json.loads(out)["checks"]["identity"]["status"] == "valid", out


def test_partner_commands(sqlite_url: str, tmp_path: Path) -> None:
    store.forget_trees()
    assert _cli("partner-follow", "customs-nz")[0] == 2  # neither --registry nor --url
    key = signing.generate_private_key()
    reg = signing.KeyRegistry()
    reg.rotate("customs-nz", signing.public_key_of(key), datetime(2026, 1, 1, tzinfo=UTC))
    (tmp_path / "nz.json").write_text(json.dumps(reg.as_dict()))
    code, out = _cli(
        "partner-follow", "customs-nz", "--registry", str(tmp_path / "nz.json"), "--url", "http://127.0.0.1:9"
    )
    assert code == 0 and json.loads(out)["baseUrl"] == "http://127.0.0.1:9", out
    code, out = _cli("sync", "--partner", "http://127.0.0.1:9/")  # nobody listens on port 9
    assert code == 1 and json.loads(out)["errors"][0]["issuer"] == "customs-nz", out
    code, out = _cli("alarms")
    assert code == 0 and json.loads(out) == []
    for args in (
        ("sync", "--partner", "http://127.0.0.1:8"),  # no issuer followed there
        ("push", "ab" * 32, "--to", "http://127.0.0.1:9", "--token", "t"),  # not issued here
    ):
        result = runner.invoke(app, list(args))
        assert isinstance(result.exception, DomainError) and result.exception.status == 404  # the CLI exits 2

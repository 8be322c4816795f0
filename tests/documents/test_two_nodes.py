"""Two nodes as real servers on loopback (uvicorn processes), each with its own database and issuer keys.

Node A (exporting side, a documents node: `smartcustoms.documents.node`) issues a certificate of origin and pushes it to node B's inbox with a token B
issued to A. B follows A by URL (A's key registry fetched over HTTP), mirrors A's log (on arrival and
by its background sync), verifies the certificate, stores it and links it to the declaration that
cites it; B's clearance grants the FTA rate only to a declaration citing that verified certificate.
Then a clone of A that signs a different history (a split view) is caught by B's consistency check.
"""

from __future__ import annotations

import base64
import copy
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smartcustoms.api import create_app
from smartcustoms.clearance import config
from smartcustoms.documents import service
from smartcustoms.documents.cli import app as documents_cli
from smartcustoms.platform import auth
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.migrate import upgrade
from tests.clearance.conftest import declaration, prepare_database

from .test_service import coo

SRC = Path(__file__).resolve().parents[2] / "src"
ISSUER = "chamber-tw"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(*nodes: tuple[str, str, str, Path, dict[str, str]]) -> Iterator[list[str]]:
    """Nodes `(app factory, db url, master key, var dir, extra env)`: each served by uvicorn in its own
    process, all started at once; yields their base URLs once every one answers."""
    procs, bases = [], []
    try:
        for factory, db_url, master_key, var_dir, extra in nodes:
            cmd = [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1"]
            port = _free_port()
            env = {
                **os.environ,
                "PYTHONPATH": str(SRC),
                "SMARTCUSTOMS_DATABASE_URL": db_url,
                "SMARTCUSTOMS_DOCUMENTS_MASTER_KEY": master_key,
                "SMARTCUSTOMS_VAR_DIR": str(var_dir),
                **extra,
            }
            procs.append(subprocess.Popen([*cmd, "--port", str(port), "--log-level", "warning"], env=env))
            bases.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        for proc, base in zip(procs, bases, strict=True):
            while True:
                try:
                    if httpx.get(f"{base}/documents/registry", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"node on {base} did not start")
                time.sleep(0.1)
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _user(url: str | None, name: str, role: str, party: str | None = None) -> dict[str, str]:
    with unit_of_work(url) as s:
        token = auth.issue_token(s, auth.create_user(s, name, role, party_id=party))
    return {"Authorization": f"Bearer {token}"}


def _claiming(lrn: str, proof_ref: str) -> dict[str, Any]:
    d = declaration(lrn=lrn)
    d["items"][1]["tariff_code"] = "020130"
    d["items"][1]["preference"] = {"fta": "ANZTEC", "proof_of_origin_ref": proof_ref}
    return d


def _wait(check: Any, what: str, seconds: float = 15) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_certificate_pushed_from_a_gives_the_preference_at_b_and_a_fork_is_caught(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # node B (importing side) is this test's configured database: tariff, users, and certificates required
    b_tokens = prepare_database()
    with unit_of_work() as s:
        config.put(s, auth.SYSTEM, "tax_rules", {"preference_requires_certificate": True})
    b_admin = {"Authorization": f"Bearer {b_tokens['admin']}"}
    b_trader = {"Authorization": f"Bearer {b_tokens['trader']}"}
    token_for_a = _user(None, "node-tw", "partner", "chamber-tw")["Authorization"].split()[1]
    # node A: its own database and its own master key (so its own platform-held issuer keys)
    a_url = f"sqlite:///{tmp_path / 'node-a.db'}"
    upgrade(a_url)
    a_officer = _user(a_url, "a-officer", "officer")
    a_key = _key()
    monkeypatch.setenv("SMARTCUSTOMS_DOCUMENTS_MASTER_KEY", a_key)  # A's issuer key is sealed under A's master key
    service.register_issuer(auth.SYSTEM, ISSUER, "Taiwan Chamber of Commerce", "chamber_of_commerce", url=a_url)
    # the same operator also runs a clone of A (same keys) that will sign a different history: a split view
    clone_url = f"sqlite:///{tmp_path / 'node-a-clone.db'}"
    with sqlite3.connect(tmp_path / "node-a.db") as src, sqlite3.connect(tmp_path / "node-a-clone.db") as dst:
        src.backup(dst)

    # A and its clone issue and publish only: the documents node; B clears goods: the whole platform
    issuing, platform = "smartcustoms.documents.node:create_app", "smartcustoms.api:create_app"
    http_refs: dict[str, str] = {}
    nodes = [
        (issuing, a_url, a_key, tmp_path / "a", {}),
        (platform, sqlite_url, _key(), tmp_path / "b", {"SMARTCUSTOMS_DOCUMENTS_SYNC_INTERVAL": "0.3"}),
        (issuing, clone_url, a_key, tmp_path / "a2", {}),
    ]
    with serve(*nodes) as (a, b, clone), httpx.Client(timeout=30) as http:
        assert http.get(f"{a}/documents/registry", params={"issuer": ISSUER}).json()["keys"], "A publishes its key"
        cert = {**coo(7), "goods": [{**coo(7)["goods"][0], "hsCode": "0201.30", "description": "Beef"}]}
        r = http.post(
            f"{a}/documents/issue",
            json={"issuer": ISSUER, "type": "certificate_of_origin", "documents": [cert, coo(8)]},
            headers=a_officer,
        )
        assert r.status_code == 201, r.text
        issued = r.json()["documents"]
        number, target = cert["certificateNumber"], issued[0]["signature"]["targetHash"]

        # B follows A by URL: A's key registry is fetched from A, not handed over by the test
        r = http.post(f"{b}/documents/partners", json={"id": ISSUER, "base_url": a}, headers=b_admin)
        assert r.status_code == 201 and r.json()["baseUrl"] == a, r.text

        # A pushes the certificate to B's inbox (role partner, B's token); B mirrors A's log and verifies
        r = http.post(
            f"{a}/documents/{target}/push",
            json={"base_url": b, "token": token_for_a, "declaration_ref": "LRN-PREF-1"},
            headers=a_officer,
        )
        assert r.status_code == 200, r.text
        checks = r.json()["verdict"]["checks"]
        assert {name: c["status"] for name, c in checks.items()} == {
            "integrity": "valid",
            "status": "valid",
            "identity": "valid",
        }, checks
        assert (
            "chamber-tw's log" in checks["status"]["reason"] and "signed by chamber-tw" in checks["identity"]["reason"]
        )

        # a tampered copy (its number changed) is refused at B's inbox with the reason, nothing stored
        forged = copy.deepcopy(issued[0])
        forged["data"]["certificateNumber"] = forged["data"]["certificateNumber"].replace(number, "CO-FORGED-1")
        r = http.post(
            f"{b}/documents/inbox",
            json={"document": forged, "declaration_ref": "LRN-PREF-3"},
            headers={"Authorization": f"Bearer {token_for_a}"},
        )
        assert r.status_code == 422 and r.json()["problems"][0]["code"] == "integrity_invalid", r.text

        # B's clearance: the declaration citing the verified certificate gets the ANZTEC rate ...
        filed = http.post(f"{b}/declarations", json=_claiming("LRN-PREF-1", number), headers=b_trader)
        assert filed.status_code == 201, filed.text
        line = filed.json()["assessment"]["items"][1]
        assert line["rate_basis"] == "preferential ANZTEC", line
        reference = filed.json()["reference"]
        claims = http.get(f"{b}/documents/declarations/{reference}/claims", headers=b_admin).json()["claims"]
        assert claims[0]["proofRef"] == number and claims[0]["receivedId"] is not None
        # ... the ones citing an unknown or the forged certificate do not
        for lrn, ref in (("LRN-PREF-2", "CO-UNKNOWN-9"), ("LRN-PREF-3", "CO-FORGED-1")):
            body = http.post(f"{b}/declarations", json=_claiming(lrn, ref), headers=b_trader).json()
            http_refs[lrn] = body["reference"]
            item = body["assessment"]["items"][1]
            assert item["rate_basis"] == "general" and any(
                f"no verified certificate of origin {ref}" in s for s in item["steps"]
            )

        # B's background sync mirrors A's new entries (a revocation at A reaches B without any push)
        r = http.post(
            f"{a}/documents/{issued[1]['signature']['targetHash']}/revoke",
            json={"reason": "wrong origin"},
            headers=a_officer,
        )
        assert r.status_code == 200, r.text
        _wait(
            lambda: http.get(f"{b}/documents/partners", headers=b_admin).json()["partners"][0]["treeSize"] == 3,
            "B's background sync of A's revocation",
        )
        v = http.post(f"{b}/documents/verify", json=issued[1]).json()
        assert not v["valid"] and "wrong origin" in v["checks"]["status"]["reason"]

        # A logs one more certificate; its clone logs a different history of 5 entries from size 1
        r = http.post(
            f"{a}/documents/issue",
            json={"issuer": ISSUER, "type": "certificate_of_origin", "documents": [coo(10)]},
            headers=a_officer,
        )
        assert r.status_code == 201, r.text
        r = http.post(
            f"{clone}/documents/issue",
            json={"issuer": ISSUER, "type": "certificate_of_origin", "documents": [coo(20 + i) for i in range(5)]},
            headers=a_officer,
        )
        assert r.status_code == 201, r.text
        r = http.post(f"{b}/documents/sync", json={"partner": a}, headers=b_admin)
        assert r.status_code == 200 and r.json()["alarms"] == [], r.text
        assert http.get(f"{b}/documents/partners", headers=b_admin).json()["partners"][0]["treeSize"] == 4

        # the CLI, as an operator at B would run it, pointed at the clone: the consistency proof fails
        result = CliRunner().invoke(documents_cli, ["sync", "--partner", clone, "--issuer", ISSUER])
        assert result.exit_code == 2, result.output
        assert "not consistent with 4" in result.output

        alarms = http.get(f"{b}/documents/alarms", headers=b_admin).json()["alarms"]
        assert alarms and alarms[0]["issuer"] == ISSUER and "not consistent" in alarms[0]["reason"]
        audit_log = http.get(f"{b}/admin/audit", params={"entity_id": ISSUER}, headers=b_admin).json()["items"]
        assert any(e["action"] == "partner_log_alarm" for e in audit_log)
        # nothing of the forked history was mirrored: B still holds A's honest 4 entries
        assert http.get(f"{b}/documents/partners", headers=b_admin).json()["partners"][0]["treeSize"] == 4
        assert http.post(f"{b}/documents/verify", json=issued[0]).json()["valid"]

    # B's officer sees the proof of origin with its checks on the declaration page (panel of this slice)
    console = TestClient(create_app())
    console.cookies.set("sc_session", b_tokens["officer"])
    page = console.get(f"/console/declarations/{reference}")
    assert page.status_code == 200 and "Proofs of origin" in page.text and number in page.text
    assert "verified" in page.text and "chamber-tw" in page.text
    other = http_refs["LRN-PREF-2"]
    assert "no certificate received from a partner" in console.get(f"/console/declarations/{other}").text


@pytest.fixture(autouse=True)
def _forget_config() -> Iterator[None]:
    yield
    config.forget()

"""Batch ingest in parallel worker processes: every filing stored once, every bad one reported by position."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from smartcustoms.clearance import ingest, service
from smartcustoms.clearance.store import DeclarationRow, EventRow, ItemRow
from smartcustoms.cli import app
from smartcustoms.platform import auth
from smartcustoms.platform.audit import AuditRow
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError
from tests.clearance.conftest import Env, declaration


def _sources(n: int) -> list[ingest.Source]:
    out: list[ingest.Source] = []
    for i in range(n):
        d = declaration(lrn=f"ING-{i}")
        out.append(orjson.dumps(d) if i % 2 else d)
    return out


def _count(model: type) -> int:
    with unit_of_work(read_only=True) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_parallel_ingest_stores_each_filing_once_and_reports_bad_ones(env: Env) -> None:
    sources = _sources(240)
    bad = declaration(lrn="ING-BAD", currency="XYZ")
    sources[17] = bad  # invalid by business rules
    sources[101] = b'{"lrn": "ING-TYPE", "type": "import"'  # malformed JSON
    sources[150] = orjson.dumps(declaration(lrn="ING-3"))  # repeat of position 3 in another chunk: idempotent
    # same LRN as position 5 with other content, itself valid (so no other refusal hides the clash): refused as
    # a duplicate, whichever chunk is planned or stored first
    sources[230] = declaration(lrn="ING-5", freight="401.00")
    report = ingest.ingest(sources, "trader", workers=2, chunk=40)
    assert len(report.accepted) == 236
    assert len(report.duplicates) == 1
    assert {17, 101} <= {i for i, _ in report.rejected}
    codes = {i: {p.code for p in problems} for i, problems in report.rejected}
    assert "unknown_currency" in codes[17] and codes[101] == {"json_invalid"}
    assert len(report.rejected) == 3 and "duplicate_lrn" in (codes.get(230, set()) | codes.get(5, set())), codes
    assert _count(DeclarationRow) == 236
    assert _count(ItemRow) == 2 * 236 and _count(EventRow) == 3 * 236
    with unit_of_work() as s:
        assert (
            s.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.action == "submit_declaration")) == 236
        )

    again = ingest.ingest(sources[:100], "trader", workers=2, chunk=30)
    refused_again = {i for i, _ in again.rejected}
    assert again.accepted == [] and 17 in refused_again and len(again.duplicates) == 100 - len(refused_again)
    assert _count(DeclarationRow) == 236


def test_ingest_command(env_sqlite: Env, tmp_path: Path) -> None:
    f = tmp_path / "night.jsonl"
    lines = [json.dumps(declaration(lrn=f"NIGHT-{i}")) for i in range(30)]
    lines.insert(7, "")
    lines[12] = '{"broken": '
    f.write_text("\n".join(lines))
    r = CliRunner().invoke(
        app, ["declarations", "ingest", str(f), "--user", "trader", "--workers", "2", "--chunk", "8"]
    )
    assert r.exit_code == 1, r.output
    assert "29 filed, 0 already filed, 1 refused of 30" in r.output
    assert f"{f}:13" in r.output
    r = CliRunner().invoke(app, ["declarations", "ingest", str(f), "--user", "nobody"])
    assert r.exit_code != 0


def test_ingest_refuses_a_chunk_below_one_and_names_the_field() -> None:
    with pytest.raises(DomainError) as exc:
        ingest.ingest([], "trader", chunk=0)
    assert [(p.code, p.path) for p in exc.value.problems] == [("invalid_chunk", ("chunk",))]


@given(st.integers(0, 5000), st.integers(1, 700), st.integers(1, 4))
def test_chunks_cover_every_filing_once_in_order_and_shrink_only_at_the_end(n: int, size: int, workers: int) -> None:
    sources = list(range(n))
    chunks = list(ingest._chunks(sources, size, workers))
    assert [x for _start, part in chunks for x in part] == sources
    assert all(part and part[0] == start for start, part in chunks)
    sizes = [len(part) for _start, part in chunks]
    assert all(s <= size for s in sizes)
    assert sizes[:-1] == sorted(sizes[:-1], reverse=True)  # never growing again
    if workers == 1:
        assert sizes[:-1] == [size] * (len(sizes) - 1)
    else:  # full chunks until about two per worker are left, then no smaller than a quarter chunk (but the last)
        full = [s for s in sizes if s == size]
        assert n - len(full) * size <= 2 * workers * size
        assert all(s >= -(-size // 4) for s in sizes[:-1])


def test_progress_counts_every_filing_once(env: Env) -> None:
    seen: list[int] = []
    report = ingest.ingest(_sources(90), "trader", workers=2, chunk=20, progress=seen.append)
    assert len(report.accepted) == 90 and sum(seen) == 90 and all(seen)


def test_a_planned_chunk_is_not_stored_while_another_writer_holds_the_lock(env_sqlite: Env) -> None:
    who = auth.acting_user("trader")
    planned = ingest._plan_chunk(who, 0, _sources(12), None)
    lock_path = env_sqlite.url.split("///", 1)[1] + "-writer.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process's writer
    try:
        assert ingest._store_planned(who, [planned], wait=False) is False
        assert _count(DeclarationRow) == 0 and planned.report.accepted == []
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert ingest._store_planned(who, [planned], wait=False) is True
    assert len(planned.report.accepted) == 12 and _count(DeclarationRow) == 12


def test_a_plan_whose_lrns_were_filed_since_is_stored_again_with_them_as_duplicates_or_conflicts(env: Env) -> None:
    """The first try writes a plan as made; the unique index refuses it when another filer stored one of its
    LRNs meanwhile, and the next try finds those filings: nothing is written twice, nothing half."""
    who = auth.acting_user("trader")
    sources = [declaration(lrn=f"RACE-{i}") for i in range(6)]
    planned = ingest._plan_chunk(who, 0, sources, None)
    with unit_of_work() as s:  # filed by another process between planning and storing
        service.submit(s, who, ingest.parse(orjson.dumps(sources[1])))
        service.submit(s, who, ingest.parse(orjson.dumps(declaration(lrn="RACE-4", freight="401.00"))))
    assert ingest._store_planned(who, [planned]) is True
    report = planned.report
    assert report.retries >= 1 and len(report.accepted) == 4 and len(report.duplicates) == 1
    assert [(i, [p.code for p in problems]) for i, problems in report.rejected] == [(4, ["duplicate_lrn"])]
    assert _count(DeclarationRow) == 6 and _count(ItemRow) == 12 and _count(EventRow) == 18


def test_a_failing_worker_fails_the_ingest_instead_of_hanging(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("planning failed")

    monkeypatch.setattr(ingest.service, "plan_batch", broken)  # the forked workers inherit it
    with pytest.raises(RuntimeError, match="planning failed"):
        ingest.ingest(_sources(60), "trader", workers=2, chunk=10)
    assert _count(DeclarationRow) == 0


@given(st.lists(st.binary(max_size=40), max_size=60), st.data())
def test_packed_lines_read_as_the_list_they_came_from(lines: list[bytes], data: st.DataObject) -> None:
    packed = ingest._Packed(lines)
    assert len(packed) == len(lines) and list(packed) == lines
    start = data.draw(st.integers(-70, 70) | st.none())
    stop = data.draw(st.integers(-70, 70) | st.none())
    assert packed[start:stop] == lines[start:stop]
    if lines:
        k = data.draw(st.integers(-len(lines), len(lines) - 1))
        assert packed[k] == lines[k]
    with pytest.raises(IndexError):
        packed[len(lines)]


def test_parallel_ingest_of_json_lines_reports_refusals_at_their_lines(env: Env) -> None:
    """JSON Lines text only (what the command reads) goes to the workers packed in one buffer."""
    lines = [orjson.dumps(declaration(lrn=f"PK-{i}")) for i in range(90)]
    lines[5], lines[61] = b'{"lrn": ', orjson.dumps(declaration(lrn="PK-5", invoice_total="-1"))
    report = ingest.ingest(lines, "trader", workers=2, chunk=20)
    assert sorted(i for i, _ in report.rejected) == [5, 61]
    assert len(report.accepted) == 88 and _count(DeclarationRow) == 88


def test_a_chunk_of_only_unreadable_filings_is_reported_and_the_rest_stored(env: Env) -> None:
    sources = _sources(60)
    sources[20:40] = [b"{not json"] * 20
    report = ingest.ingest(sources, "trader", workers=2, chunk=20)
    assert sorted(i for i, _ in report.rejected) == list(range(20, 40))
    assert len(report.accepted) == 40 and _count(DeclarationRow) == 40


def test_two_parallel_ingests_in_one_process_each_get_their_own_filings(env: Env) -> None:
    first = [declaration(lrn=f"TA-{i}") for i in range(40)]
    second = [declaration(lrn=f"TB-{i}") for i in range(40)]
    reports: dict[str, ingest.IngestReport] = {}

    def run(name: str, sources: list[ingest.Source]) -> None:
        reports[name] = ingest.ingest(sources, "trader", workers=2, chunk=10)

    threads = [
        threading.Thread(target=run, args=("a", first)),
        threading.Thread(target=run, args=("b", second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert len(reports["a"].accepted) == len(reports["b"].accepted) == 40
    with unit_of_work(read_only=True) as s:
        lrns = set(s.scalars(select(DeclarationRow.lrn)))
    assert lrns == {f"TA-{i}" for i in range(40)} | {f"TB-{i}" for i in range(40)}


def test_known_filings_finds_exactly_the_pairs_asked_for(env: Env) -> None:
    """One declarant's LRN filed by another declarant is not a repeat, whatever the look-up's shape."""
    ingest.ingest([declaration(lrn=f"KNOWN-{i}") for i in range(5)], "trader", workers=1)
    other = {"id": "TW20000002", "name": "Keelung Imports", "country": "TW"}
    assert ingest.ingest([declaration(lrn="OTHER-0", declarant=other, importer=other)], "trader2", workers=1).accepted
    with unit_of_work(read_only=True) as s:
        mine = s.scalar(select(DeclarationRow.declarant_id).where(DeclarationRow.lrn == "KNOWN-0"))
        theirs = s.scalar(select(DeclarationRow.declarant_id).where(DeclarationRow.lrn == "OTHER-0"))
        assert mine and theirs and mine != theirs
        asked = {(mine, f"KNOWN-{i}") for i in range(0, 10, 2)} | {(theirs, "KNOWN-1"), (mine, "OTHER-0")}
        asked |= {(theirs, "OTHER-0")} | {(mine, f"NEW-{i}") for i in range(300)}
        known = service.known_filings(s, asked)
    assert set(known) == {(mine, "KNOWN-0"), (mine, "KNOWN-2"), (mine, "KNOWN-4"), (theirs, "OTHER-0")}
    assert all(row.declarant_id == d and row.lrn == lrn for (d, lrn), row in known.items())


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_postgres_probes_the_unique_index_for_each_pair_whatever_its_statistics(env: Env) -> None:
    """Planned on an empty, never analysed table, the look-up of 500 pairs must still be one index probe each,
    not a scan of the table (as `IN` lists were planned before the table had statistics)."""
    assert env.url.startswith("postgresql")
    keys = ([f"TW{i % 3}" for i in range(500)], [f"LRN-{i}" for i in range(500)])
    with unit_of_work(read_only=True) as s:
        plan = "\n".join(r[0] for r in s.connection().exec_driver_sql("EXPLAIN " + service._FILINGS_BY_KEYS_PG, keys))
    assert "Index Scan using uq_clearance_declaration_declarant_lrn" in plan, plan
    assert "Seq Scan" not in plan and "Hash" not in plan, plan


def test_each_filings_items_and_events_belong_to_its_own_declaration(env: Env) -> None:
    """On PostgreSQL a group's ids are drawn before its rows are written, on SQLite read back after: either
    way each item and event points to the declaration it was filed with."""
    sources = []
    for i in range(90):
        d = declaration(lrn=f"OWN-{i}")
        for item in d["items"]:
            item["description"] = f"{item['description']} OWN-{i}"
        sources.append(orjson.dumps(d))
    assert len(ingest.ingest(sources, "trader", workers=2, chunk=20).accepted) == 90
    with unit_of_work(read_only=True) as s:
        items = s.execute(
            select(DeclarationRow.lrn, ItemRow.description).join(ItemRow, ItemRow.declaration_id == DeclarationRow.id)
        ).all()
        events = s.execute(
            select(DeclarationRow.id, func.count(EventRow.id))
            .join(EventRow, EventRow.declaration_id == DeclarationRow.id)
            .group_by(DeclarationRow.id)
        ).all()
        ids = s.scalars(select(DeclarationRow.id)).all()
    assert len(items) == 2 * 90 and all(description.endswith(f" {lrn}") for lrn, description in items)
    assert len(ids) == len(set(ids)) == 90 and sorted(n for _id, n in events) == [3] * 90


def test_an_ingest_is_in_the_audit_log_with_its_totals(env: Env) -> None:
    sources = _sources(50)
    sources[7] = b"{not json"
    report = ingest.ingest(sources, "trader", workers=2, chunk=10)
    again = ingest.ingest(sources[:5], "trader", workers=1)
    assert len(report.accepted) == 49 and len(again.duplicates) == 5
    with unit_of_work(read_only=True) as s:
        entries = list(
            s.scalars(select(AuditRow).where(AuditRow.action == "ingest_declarations").order_by(AuditRow.id))
        )
    assert [(e.actor, e.entity) for e in entries] == [("trader", "ingest")] * 2
    assert entries[0].entity_id != entries[1].entity_id
    assert entries[0].detail == {"filings": 50, "filed": 49, "duplicates": 0, "refused": 1, "workers": 2, "chunk": 10}
    assert entries[1].detail == {"filings": 5, "filed": 0, "duplicates": 5, "refused": 0, "workers": 1, "chunk": 500}


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
@pytest.mark.parametrize("workers", [1, 2])
def test_postgres_chunks_are_on_disk_before_the_ingest_reports(env: Env, workers: int) -> None:
    """The chunks commit without waiting for the disk; the ingest returns only after a durable commit, which
    flushed the log through all of them. The log's write position is read once the last chunk is stored (a
    read writes no log) and must be flushed when the report comes back. The log writer is told to wait 10 s
    between flushes meanwhile, so that without the durable commit the check fails."""
    admin = create_engine(env.url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql("ALTER SYSTEM SET wal_writer_delay = '10s'")
    except DBAPIError as exc:  # a server given by SMARTCUSTOMS_TEST_PG_URL to a user who may not
        admin.dispose()
        if getattr(exc.orig, "sqlstate", None) == "42501":
            pytest.skip("slowing the log writer needs a superuser of the test server")
        raise
    try:
        with admin.connect() as c:
            c.exec_driver_sql("ALTER SYSTEM SET wal_writer_flush_after = '1GB'")
            c.exec_driver_sql("SELECT pg_reload_conf()")
        stored: list[int] = []
        written: list[str] = []

        def progress(n: int) -> None:
            stored.append(n)
            if sum(stored) == 60:
                with admin.connect() as c:
                    written.append(str(c.exec_driver_sql("SELECT pg_current_wal_insert_lsn()").scalar()))

        report = ingest.ingest(_sources(60), "trader", workers=workers, chunk=20, progress=progress)
        assert len(report.accepted) == 60 and len(written) == 1
        with admin.connect() as c:
            flushed = c.exec_driver_sql("SELECT pg_current_wal_flush_lsn() >= %(lsn)s::pg_lsn", {"lsn": written[0]})
            assert flushed.scalar() is True
    finally:
        with admin.connect() as c:
            c.exec_driver_sql("ALTER SYSTEM RESET wal_writer_delay")
            c.exec_driver_sql("ALTER SYSTEM RESET wal_writer_flush_after")
            c.exec_driver_sql("SELECT pg_reload_conf()")
        admin.dispose()

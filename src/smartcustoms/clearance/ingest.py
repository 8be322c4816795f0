"""Batch ingest: many filings (a broker's night run, a postal operator's manifest of parcels) in parallel.

The filings are cut into chunks; worker processes (forked, so they share the loaded tariff index and read
the filings from the parent's memory) claim chunks in turn, parse, validate, assess and lane each outside
any write transaction, then store it in one short transaction. A worker that finds SQLite's writer lock
taken plans its next chunk instead of waiting, and stores both together. A chunk that loses a race for an
LRN filed meanwhile by another worker is stored again from its plan: filings stay idempotent and nothing is
half-written.

On PostgreSQL the chunks commit without waiting for the disk; the ingest's own entry in the audit log then
commits durably, which flushes the log through every chunk, before the report says anything was filed. A
server crash mid-ingest can lose the last chunks whole; filing the same file again files just those.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import time
import uuid
from array import array
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from itertools import accumulate
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError

from smartcustoms.clearance import checks, service
from smartcustoms.clearance.schema import DeclarationIn
from smartcustoms.platform import audit, auth, db
from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.i18n.validation import validation_problems
from smartcustoms.platform.runtime import settle_heap

Source = bytes | str | dict[str, Any]
"""One filing: its JSON text (a JSON Lines line) or the decoded object."""

STORE_ATTEMPTS = 50


@dataclass
class IngestReport:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[int, list[Problem]]] = field(default_factory=list)
    retries: int = 0

    @property
    def total(self) -> int:
        return len(self.accepted) + len(self.duplicates) + len(self.rejected)


def problems_of(exc: ValidationError) -> list[Problem]:
    """Pydantic's errors as problems with their JSON paths."""
    return validation_problems(exc.errors(include_url=False), None)


def parse(source: Source) -> DeclarationIn:
    if isinstance(source, dict):
        return DeclarationIn.model_validate(source)
    return DeclarationIn.model_validate_json(source)


@dataclass
class _Planned:
    """A chunk parsed and planned (reading only), waiting to be stored."""

    report: IngestReport
    size: int
    plan: service.BatchPlan | None


def _plan_chunk(who: auth.Principal, first: int, sources: Sequence[Source], on: date | None) -> _Planned:
    report = IngestReport()
    decls: list[DeclarationIn] = []
    positions: list[int] = []
    for i, source in enumerate(sources, first):
        try:
            decls.append(parse(source))
            positions.append(i)
        except ValidationError as exc:
            report.rejected.append((i, problems_of(exc)))
    if not decls:
        return _Planned(report, len(sources), None)
    # planning only reads: it must not take the writer lock, or the workers would plan one at a time
    with db.unit_of_work(read_only=True) as session:
        plan = service.plan_batch(session, who, decls, on=on)
    # plan positions count within `decls`; map them back to positions in the caller's batch
    plan.positions = [positions[i] for i in plan.positions]
    plan.rejected = [(positions[i], problems) for i, problems in plan.rejected]
    return _Planned(report, len(sources), plan)


def _store_planned(who: auth.Principal, planned: Sequence[_Planned], *, wait: bool = True) -> bool:
    """Store planned chunks in one transaction. With `wait` false, return False (nothing written) when another
    worker holds SQLite's writer lock: the caller plans its next chunk meanwhile instead of idling."""
    plans = [(p, p.plan) for p in planned if p.plan is not None]
    if not plans:  # every filing refused by parsing: nothing to write
        return True
    retries = 0
    for attempt in range(STORE_ATTEMPTS):
        try:
            with db.unit_of_work(immediate=True, wait=wait, durable=False) as session:
                # the first try writes the plans as made; a filing stored meanwhile under one of their LRNs
                # makes the unique index refuse it all, and the next try looks for such filings first
                results = [service.store_batch(session, who, plan, recheck=attempt > 0) for _p, plan in plans]
            break
        except db.WriterBusy:
            return False
        except (OperationalError, IntegrityError) as exc:
            if isinstance(exc, OperationalError) and "locked" not in str(exc) and "busy" not in str(exc):
                raise
            retries += 1
            if attempt == STORE_ATTEMPTS - 1:
                raise
            time.sleep(min(0.002 * (attempt + 1), 0.05))
    for (p, _plan), result in zip(plans, results, strict=True):
        p.report.accepted += result.accepted
        p.report.duplicates += result.duplicates
        p.report.rejected += result.rejected  # `ingest` sorts the whole report's once
    plans[0][0].report.retries += retries
    return True


def ingest_chunk(who: auth.Principal, first: int, sources: Sequence[Source], on: date | None) -> IngestReport:
    """Parse, plan and store one chunk; positions in the report count from `first`."""
    planned = _plan_chunk(who, first, sources, on)
    _store_planned(who, [planned])
    return planned.report


MAX_WAITING = 4
"""Chunks a worker plans ahead while another holds the writer lock, before it queues for the lock."""


@dataclass
class _Job:
    """One parallel ingest, as the forked workers inherit it: they claim chunks by number from `claimed`
    and report each stored chunk's size on `done` (for progress), then ("done", 0)."""

    who: auth.Principal
    sources: Sequence[Source]
    chunks: list[tuple[int, int]]
    on: date | None
    claimed: Any
    done: Any

    def claim(self) -> tuple[int, int] | None:
        with self.claimed.get_lock():
            k = self.claimed.value
            self.claimed.value = k + 1
        return self.chunks[k] if k < len(self.chunks) else None


class _Packed(Sequence[bytes]):
    """JSON Lines filings as one buffer and their offsets, for the forked workers.

    A worker that sliced a list of filings raised each filing's reference count, and so copied every page of
    the parent's memory that a filing sits on into the worker: a third of the workers' page faults
    (`perf record -e page-faults`). Slicing this copies only the filings' bytes.
    """

    def __init__(self, lines: Sequence[bytes]) -> None:
        self.blob = b"".join(lines)
        self.offsets = array("q", accumulate(map(len, lines), initial=0))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: Any) -> Any:
        blob, at = self.blob, self.offsets
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            return [blob[at[k] : at[k + 1]] for k in range(start, stop, step)]
        k = range(len(self))[i]  # negative and out-of-range indexes as a list takes them
        return blob[at[k] : at[k + 1]]


def _packed(sources: Sequence[Source]) -> Sequence[Source]:
    """Filings for the workers: packed when all are JSON text (the command's case), else as they are."""
    return _Packed(sources) if all(type(s) is bytes for s in sources) else sources  # type: ignore[arg-type]


_job: _Job | None = None
"""Set in the parent just before the workers fork; they read their sources from this copy of its memory."""


def _work() -> IngestReport:
    """A worker: plan the chunks it claims; store them whenever the writer lock is free, and while it is not,
    plan the next chunk instead of waiting (up to MAX_WAITING chunks)."""
    job = _job
    if job is None:
        raise RuntimeError("ingest worker started without a job")
    total = IngestReport()
    try:
        who = job.who
        waiting: list[_Planned] = []

        def flush(wait: bool) -> None:
            if _store_planned(who, waiting, wait=wait):
                for p in waiting:
                    _merge(total, p.report)
                    job.done.put(("stored", p.size))
                waiting.clear()

        while (chunk := job.claim()) is not None:
            start, size = chunk
            waiting.append(_plan_chunk(who, start, job.sources[start : start + size], job.on))
            flush(wait=len(waiting) >= MAX_WAITING)
        if waiting:
            flush(wait=True)
    finally:
        job.done.put(("done", 0))
    return total


def _merge(into: IngestReport, part: IngestReport) -> None:
    into.accepted += part.accepted
    into.duplicates += part.duplicates
    into.rejected += part.rejected
    into.retries += part.retries


def _after_fork() -> None:
    db.forget_engines_after_fork()


def _chunks(sources: Sequence[Source], size: int, workers: int = 1) -> Iterator[tuple[int, Sequence[Source]]]:
    """Chunks of `size` filings; the last few shrink (to a quarter of `size`) so that the workers finish
    together: with equal chunks one worker idled for about half a chunk at the end while the other
    finished its last one."""
    start, n = 0, len(sources)
    while start < n:
        left = n - start
        step = size if workers == 1 or left > 2 * workers * size else max(-(-left // (2 * workers)), -(-size // 4))
        yield start, sources[start : start + step]
        start += step


def _in_workers(
    sources: Sequence[Source],
    who: auth.Principal,
    workers: int,
    chunk: int,
    on: date | None,
    progress: Callable[[int], None] | None,
) -> list[IngestReport]:
    """Run `_work` in `workers` forked processes; report progress as their chunks are stored (the workers
    find their job in a module global: `ingest` runs one at a time)."""
    global _job
    context = multiprocessing.get_context("fork")
    chunks = [(start, len(part)) for start, part in _chunks(sources, chunk, workers)]
    job = _job = _Job(who, _packed(sources), chunks, on, context.Value("q", 0), context.Queue())
    try:
        return _run_job(job, context, workers, progress)
    finally:
        _job = None


_one_ingest = threading.Lock()
"""One ingest at a time per process, from its first database read to its last report: the forked workers
find their job in a module global, and a fork while another thread of the process is inside SQLite copies
SQLite's held mutexes into the workers, whose first connection then never returns (two ingests on two
threads hung that way, one thread reading while the other forked)."""


def _run_job(job: _Job, context: Any, workers: int, progress: Callable[[int], None] | None) -> list[IngestReport]:
    """The pool of workers for one job: progress as chunks are stored, then each worker's report."""
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_after_fork) as pool:
        futures = [pool.submit(_work) for _ in range(workers)]
        finished = 0
        while finished < workers:
            try:
                kind, size = job.done.get(timeout=1.0)
            except queue.Empty:  # a worker that died without a word: the pool says why
                for future in futures:
                    if future.done() and future.exception() is not None:
                        future.result()
                continue
            if kind == "done":
                finished += 1
            elif progress is not None:
                progress(size)
        return [future.result() for future in futures]


def ingest(
    sources: Sequence[Source],
    username: str,
    *,
    workers: int | None = None,
    chunk: int = 500,
    on: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """File `sources` as `username`, `workers` processes at a time (default: one per core). A second ingest
    in the same process waits for the first (`_one_ingest`)."""
    if chunk < 1:
        raise DomainError(Problem("invalid_chunk", ("chunk",), t("Chunk size must be at least 1")))
    with _one_ingest:
        return _ingest(sources, username, max(1, workers or os.cpu_count() or 1), chunk, on, progress)


def _ingest(
    sources: Sequence[Source],
    username: str,
    workers: int,
    chunk: int,
    on: date | None,
    progress: Callable[[int], None] | None,
) -> IngestReport:
    report = IngestReport()
    # the filer is read once per ingest (a role or party changed since the last one counts) and handed to the
    # forked workers with their job; an unknown or deactivated user fails here, before any work starts
    who = auth.acting_user(username)
    with db.unit_of_work(read_only=True) as session:
        service.Context(session, on or service.now().date())  # tariff index and rules, shared by forked workers
    checks.checks()  # every slice's checks imported once here, not once per forked worker (a second each)
    settle_heap()
    if workers == 1 or len(sources) <= chunk:
        for start, part in _chunks(sources, chunk):
            _merge(report, ingest_chunk(who, start, part, on))
            if progress is not None:
                progress(len(part))
    else:
        # what planning loads on first use (message catalogs, lazily imported modules, the checks' rule sets)
        # is loaded here, once, and inherited by the forked workers: each of them spent 25-30 ms on it in its
        # first chunk. The plan itself is dropped: a worker plans the filing again.
        _plan_chunk(who, 0, sources[:1], on)
        for worker_report in _in_workers(sources, who, workers, chunk, on, progress):
            _merge(report, worker_report)
    report.rejected.sort(key=lambda r: r[0])
    _record(who, report, workers, chunk)
    return report


def _record(who: auth.Principal, report: IngestReport, workers: int, chunk: int) -> None:
    """The ingest's entry in the audit log, committed durably: its commit flushes the database's log through
    every chunk committed before it (on PostgreSQL, without waiting for the disk), so the report that follows
    names only filings that a crash cannot lose."""
    detail = {
        "filings": report.total,
        "filed": len(report.accepted),
        "duplicates": len(report.duplicates),
        "refused": len(report.rejected),
        "workers": workers,
        "chunk": chunk,
    }
    with db.unit_of_work() as session:
        audit.record(session, who, "ingest_declarations", "ingest", uuid.uuid4().hex, detail=detail)

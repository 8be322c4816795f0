"""Batch ingest: many filings (a broker's night run, a postal operator's manifest of parcels) in parallel.

The filings are cut into chunks; worker processes (forked, so they share the loaded tariff index) parse,
validate, assess and lane a chunk outside any write transaction, then store it in one short transaction.
A chunk that loses a race for the write lock, or for an LRN filed meanwhile by another worker, is stored
again from its plan: filings stay idempotent and nothing is half-written.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError

from smartcustoms.clearance import checks, service
from smartcustoms.clearance.schema import DeclarationIn
from smartcustoms.platform import auth, db
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


_principals: dict[str, auth.Principal] = {}


def _principal(username: str) -> auth.Principal:
    if username not in _principals:
        with db.unit_of_work() as session:
            _principals[username] = auth.principal_of(auth.find_user(session, username))
    return _principals[username]


def ingest_chunk(username: str, first: int, sources: Sequence[Source], on: date | None) -> IngestReport:
    """Parse, plan and store one chunk; positions in the report count from `first`."""
    report = IngestReport()
    who = _principal(username)
    decls: list[DeclarationIn] = []
    positions: list[int] = []
    for i, source in enumerate(sources, first):
        try:
            decls.append(parse(source))
            positions.append(i)
        except ValidationError as exc:
            report.rejected.append((i, problems_of(exc)))
    if not decls:
        return report
    # planning only reads: it must not take the writer lock, or the workers would plan one at a time
    with db.unit_of_work(read_only=True) as session:
        plan = service.plan_batch(session, who, decls, on=on)
    # plan positions count within `decls`; map them back to positions in the caller's batch
    plan.positions = [positions[i] for i in plan.positions]
    plan.rejected = [(positions[i], problems) for i, problems in plan.rejected]
    for attempt in range(STORE_ATTEMPTS):
        try:
            with db.unit_of_work(immediate=True) as session:
                result = service.store_batch(session, who, plan)
            break
        except (OperationalError, IntegrityError) as exc:
            if isinstance(exc, OperationalError) and "locked" not in str(exc) and "busy" not in str(exc):
                raise
            report.retries += 1
            if attempt == STORE_ATTEMPTS - 1:
                raise
            time.sleep(min(0.002 * (attempt + 1), 0.05))
    report.accepted += result.accepted
    report.duplicates += result.duplicates
    report.rejected = sorted(report.rejected + result.rejected, key=lambda r: r[0])
    return report


def _after_fork() -> None:
    db.forget_engines_after_fork()
    _principals.clear()


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


def ingest(
    sources: Sequence[Source],
    username: str,
    *,
    workers: int | None = None,
    chunk: int = 500,
    on: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """File `sources` as `username`, `workers` processes at a time (default: one per core)."""
    if chunk < 1:
        raise DomainError(Problem("invalid_chunk", ("chunk",), t("Chunk size must be at least 1")))
    workers = max(1, workers or os.cpu_count() or 1)
    report = IngestReport()

    def merge(part: IngestReport, done: int) -> None:
        report.accepted += part.accepted
        report.duplicates += part.duplicates
        report.rejected += part.rejected
        report.retries += part.retries
        if progress is not None:
            progress(done)

    _principal(username)  # an unknown user fails here, before any work starts
    with db.unit_of_work(read_only=True) as session:
        service.Context(session, on or service.now().date())  # tariff index and rules, shared by forked workers
    checks.checks()  # every slice's checks imported once here, not once per forked worker (a second each)
    settle_heap()
    if workers == 1 or len(sources) <= chunk:
        for start, part in _chunks(sources, chunk):
            merge(ingest_chunk(username, start, part, on), len(part))
    else:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_after_fork) as pool:
            futures: list[tuple[Future[IngestReport], int]] = [
                (pool.submit(ingest_chunk, username, start, part, on), len(part))
                for start, part in _chunks(sources, chunk, workers)
            ]
            for future, size in futures:
                merge(future.result(), size)
    report.rejected.sort(key=lambda r: r[0])
    return report

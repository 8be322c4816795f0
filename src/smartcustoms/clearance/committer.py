"""Group commit for filings over HTTP: concurrent filings are planned together and share one write transaction.

A request thread parses a filing and checks who files it. A planner thread then validates, assesses and
lanes every filing waiting at that moment in one read-only transaction: what a filing looks up (an
earlier filing under its LRN, the manifest lines of its transport documents) is read once for the whole
group, not once per filing (on PostgreSQL each look-up was a round trip, and the read transaction around
it two more). A writer thread stores every planned filing waiting at that moment in one transaction and
answers each request only after that transaction has committed (nothing is acknowledged and then lost);
while one group waits for its commit the next is planned. Committing costs the same for one filing or
fifty (index pages, the write-ahead log, PostgreSQL's flush to disk), so under load each filing pays a
fraction of it. If a group cannot be stored as a whole (another process filed the same LRN meanwhile, a
hook refused one filing), each of its filings is stored on its own, so one filing's problem never fails
another's.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date
from types import SimpleNamespace
from typing import Any, TypeVar, cast

from sqlalchemy.exc import IntegrityError, OperationalError

from smartcustoms.clearance import checks, service, views
from smartcustoms.clearance.checks import CheckContext
from smartcustoms.clearance.schema import DeclarationIn
from smartcustoms.clearance.store import DeclarationRow
from smartcustoms.platform.auth import Principal
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError
from smartcustoms.platform.settings import get_settings

MAX_PLAN = 64
"""Filings planned together at most: one arriving meanwhile waits for the group's planning (~0.3 ms each)."""
MAX_GROUP = 200
"""Filings stored in one transaction at most."""

Answer = tuple[dict[str, Any], bool]


@dataclass
class _Request:
    """A filing waiting to be planned."""

    who: Principal
    decl: DeclarationIn
    remote_addr: str | None
    on: date | None
    answer: Future[Answer] = field(default_factory=Future)

    @property
    def key(self) -> tuple[str, str]:
        return (self.decl.declarant.id, self.decl.lrn)


@dataclass
class _Waiting:
    """A filing planned (validated, assessed, laned), waiting to be stored."""

    filing: service.Filing
    answer: Future[Answer] = field(default_factory=Future)


Item = TypeVar("Item")


def _take(source: queue.SimpleQueue[Item], most: int, size: Callable[[Item], int] = lambda _item: 1) -> list[Item]:
    """What is waiting in `source` (at least one item, blocking until there is one), up to `most` in size."""
    group = [source.get()]
    total = size(group[0])
    while total < most:
        try:
            item = source.get_nowait()
        except queue.Empty:
            break
        group.append(item)
        total += size(item)
    return group


class GroupCommitter:
    """A planner and a writer thread per database URL; `submit` and `begin` are called from request threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._incoming: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._planned: queue.SimpleQueue[list[_Waiting]] = queue.SimpleQueue()
        self._planner = threading.Thread(target=self._plan_run, name=f"group-plan:{url}", daemon=True)
        self._thread = threading.Thread(target=self._run, name=f"group-commit:{url}", daemon=True)
        self._planner.start()
        self._thread.start()

    # ------------------------------------------------------------------ request side

    def submit(
        self, who: Principal, decl: DeclarationIn, *, remote_addr: str | None = None, on: date | None = None
    ) -> Answer:
        """File a declaration: (its detail view, whether it is new); raises with every problem found.

        Same semantics as `service.submit`: the same LRN from the same declarant with the same content
        returns the first filing; with other content it is refused as a duplicate.
        """
        return self.begin(who, decl, remote_addr=remote_addr, on=on).result()

    def begin(
        self, who: Principal, decl: DeclarationIn, *, remote_addr: str | None = None, on: date | None = None
    ) -> Future[Answer]:
        """Queue a filing; the answer comes once the writer has committed it, or with the problems found.

        An asynchronous caller awaits the future (`asyncio.wrap_future`) instead of holding a thread. A
        filer without the right to file is refused here; validation, duplicate and conflict problems come
        as the future's exception (`DomainError`).

        A resubmitted LRN is answered with the first filing (or refused if its content changed) before any
        validation: a resubmission of an accepted filing gets that filing even if today's rules would
        refuse it. The writer looks again, for a filing stored after the group was planned.
        """
        service.check_filer(who, decl)
        request = _Request(who, decl, remote_addr, on)
        self._incoming.put(request)
        return request.answer

    # ------------------------------------------------------------------ planner side

    def _plan_run(self) -> None:
        while True:
            group = _take(self._incoming, MAX_PLAN)
            try:
                ready = self._plan(group)
            except BaseException as exc:  # every waiting request gets an answer
                for request in group:
                    if not request.answer.done():
                        request.answer.set_exception(exc)
                continue
            if ready:
                self._planned.put(ready)

    def _plan(self, group: list[_Request]) -> list[_Waiting]:
        """Validate, assess and lane a group in one read-only transaction; answer at once the filings that
        are refused or already stored, return the others for the writer."""
        ready: list[_Waiting] = []
        with unit_of_work(self.url, read_only=True) as session:
            known = service.known_filings(session, {r.key for r in group})
            fresh = [r for r in group if r.key not in known]
            shared: dict[str, Any] = {}  # what checks read ahead for the group (manifest lines)
            if fresh:
                first = fresh[0]
                ahead = CheckContext(session, first.who, first.on or service.now().date(), shared)
                checks.prefetch(ahead, [r.decl for r in fresh])
            contexts: dict[tuple[Principal, date], service.Context] = {}
            for r in group:
                try:
                    body = service.payload_json(r.decl)
                    digest = service.payload_hash(body)
                    if r.key in known:
                        row = service.same_or_conflict(known[r.key], digest, r.decl)
                        r.answer.set_result((views.detail(row), False))
                        continue
                    day = r.on or service.now().date()
                    ctx = contexts.get((r.who, day))
                    if ctx is None:
                        ctx = contexts[(r.who, day)] = service.Context(session, day, r.who)
                        ctx.cache = shared
                    prepared = service.prepare(session, r.decl, day, "/".join(r.key), ctx, body=body, digest=digest)
                except Exception as exc:  # this filing's problem, answered to it alone
                    r.answer.set_exception(exc)
                    continue
                ready.append(_Waiting(service.Filing(r.who, prepared, r.remote_addr), r.answer))
        return ready

    # ------------------------------------------------------------------ writer side

    def _run(self) -> None:
        while True:
            group = [w for planned in _take(self._planned, MAX_GROUP, len) for w in planned]
            try:
                self._store_group(group)
            except (IntegrityError, OperationalError, DomainError):
                for waiting in group:
                    if not waiting.answer.done():
                        self._store_one(waiting)
            except BaseException as exc:
                for waiting in group:
                    if not waiting.answer.done():
                        waiting.answer.set_exception(exc)

    def _store_group(self, group: list[_Waiting]) -> None:
        answers: list[tuple[_Waiting, Answer | BaseException]] = []
        with unit_of_work(self.url, immediate=True) as session:
            keys = {(w.filing.prepared.decl.declarant.id, w.filing.prepared.decl.lrn) for w in group}
            known = service.known_filings(session, keys)
            fresh: list[_Waiting] = []
            first_of: dict[tuple[str, str], _Waiting] = {}
            repeats: list[_Waiting] = []
            for w in group:
                key = (w.filing.prepared.decl.declarant.id, w.filing.prepared.decl.lrn)
                if key in known:
                    try:
                        row = service.same_or_conflict(known[key], w.filing.prepared.digest, w.filing.prepared.decl)
                        answers.append((w, (views.detail(row), False)))
                    except DomainError as exc:
                        answers.append((w, exc))
                elif key in first_of:
                    repeats.append(w)
                else:
                    first_of[key] = w
                    fresh.append(w)
            stored = service.store_filings(session, [w.filing for w in fresh])
            details = {}
            for w, (decl_id, values) in zip(fresh, stored, strict=True):
                detail = views.detail(_stored_row(decl_id, values, w.filing.prepared))
                details[id(w)] = (detail, values["payload_hash"])
                answers.append((w, (detail, True)))
            for w in repeats:
                key = (w.filing.prepared.decl.declarant.id, w.filing.prepared.decl.lrn)
                detail, digest = details[id(first_of[key])]
                if digest == w.filing.prepared.digest:
                    answers.append((w, (detail, False)))
                else:
                    answers.append((w, service.duplicate_lrn(detail["lrn"], detail["reference"])))
        for w, answer in answers:  # only now, after the commit
            if isinstance(answer, BaseException):
                w.answer.set_exception(answer)
            else:
                w.answer.set_result(answer)

    def _store_one(self, waiting: _Waiting) -> None:
        """Store one filing on its own; another process filing the same LRN at the same moment makes the
        insert fail once, and the second look finds that filing (idempotent answer or conflict)."""
        filing = waiting.filing
        decl = filing.prepared.decl
        for attempt in range(3):
            try:
                with unit_of_work(self.url, immediate=True) as session:
                    existing = service.existing_filing(session, decl.declarant.id, decl.lrn)
                    if existing is not None:
                        answer = views.detail(service.same_or_conflict(existing, filing.prepared.digest, decl)), False
                    else:
                        decl_id, values = service.store_filings(session, [filing])[0]
                        answer = views.detail(_stored_row(decl_id, values, filing.prepared)), True
            except IntegrityError as exc:
                if attempt < 2:
                    continue
                waiting.answer.set_exception(exc)
                return
            except BaseException as exc:  # every waiting request gets an answer
                waiting.answer.set_exception(exc)
                return
            waiting.answer.set_result(answer)
            return


def _stored_row(decl_id: int, values: dict[str, Any], prepared: service.Prepared) -> DeclarationRow:
    """The row just stored, as the views read it: its column values, without the ORM's instance bookkeeping."""
    return cast(DeclarationRow, SimpleNamespace(id=decl_id, **service.stored_values(values, prepared)))


_committers: dict[str, GroupCommitter] = {}
_lock = threading.Lock()


def committer(url: str | None = None) -> GroupCommitter:
    """The writer for the configured database (started on first use)."""
    url = url or get_settings().database_url
    with _lock:
        if url not in _committers:
            _committers[url] = GroupCommitter(url)
        return _committers[url]

"""Group commit for filings over HTTP: many concurrent filings share one write transaction.

A filing is validated, assessed and laned by the request's own thread, reading only; a single writer
thread then stores every filing waiting at that moment in one transaction and answers each request
only after that transaction has committed (nothing is acknowledged and then lost). Committing costs
the same for one filing or fifty (index pages, the write-ahead log, PostgreSQL's flush to disk), so under
load each filing pays a fraction of it. If a group cannot be stored as a whole (another process filed
the same LRN meanwhile, a hook refused one filing), each of its filings is stored on its own, so one
filing's problem never fails another's.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy.exc import IntegrityError, OperationalError

from smartcustoms.clearance import service, views
from smartcustoms.clearance.schema import DeclarationIn
from smartcustoms.clearance.store import DeclarationRow
from smartcustoms.platform.auth import Principal
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.errors import DomainError
from smartcustoms.platform.settings import get_settings

MAX_GROUP = 200


@dataclass
class _Waiting:
    filing: service.Filing
    answer: Future[tuple[dict[str, Any], bool]] = field(default_factory=Future)


class GroupCommitter:
    """One writer thread per database URL; `submit` is called from request threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._queue: queue.SimpleQueue[_Waiting] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"group-commit:{url}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ request side

    def submit(
        self, who: Principal, decl: DeclarationIn, *, remote_addr: str | None = None, on: date | None = None
    ) -> tuple[dict[str, Any], bool]:
        """File a declaration: (its detail view, whether it is new); raises with every problem found.

        Same semantics as `service.submit`: the same LRN from the same declarant with the same content
        returns the first filing; with other content it is refused as a duplicate.
        """
        return self.begin(who, decl, remote_addr=remote_addr, on=on).result()

    def begin(
        self, who: Principal, decl: DeclarationIn, *, remote_addr: str | None = None, on: date | None = None
    ) -> Future[tuple[dict[str, Any], bool]]:
        """Validate, assess and lane in the caller's thread; the answer comes once the writer has committed.

        An asynchronous caller awaits the future (`asyncio.wrap_future`) instead of holding a thread.
        Problems found before storing (role, validation) are raised here.

        A resubmitted LRN is recognised by the writer, which looks up every LRN of its group in one query
        (answering with the first filing, or refusing changed content); looking each one up here as well
        cost a query per filing for the rare resubmission. Only when a filing fails validation is its LRN
        looked up here: a resubmission of an accepted filing gets that filing even if today's rules would
        refuse it.
        """
        service.check_filer(who, decl)
        payload = decl.model_dump(mode="json")
        with unit_of_work(self.url, read_only=True) as session:
            day = on or service.now().date()
            try:
                prepared = service.prepare(
                    session, decl, day, f"{decl.declarant.id}/{decl.lrn}", payload=payload, who=who
                )
            except DomainError:
                existing = service.existing_filing(session, decl.declarant.id, decl.lrn)
                if existing is None:
                    raise
                done: Future[tuple[dict[str, Any], bool]] = Future()
                done.set_result(
                    (views.detail(service.same_or_conflict(existing, service.payload_hash(payload))), False)
                )
                return done
        waiting = _Waiting(service.Filing(who, prepared, remote_addr))
        self._queue.put(waiting)
        return waiting.answer

    # ------------------------------------------------------------------ writer side

    def _run(self) -> None:
        while True:
            group = [self._queue.get()]
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
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
        answers: list[tuple[_Waiting, tuple[dict[str, Any], bool] | BaseException]] = []
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
                        row = service.same_or_conflict(known[key], w.filing.prepared.digest)
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
                detail = views.detail(_stored_row(decl_id, values))
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
                        answer = views.detail(service.same_or_conflict(existing, filing.prepared.digest)), False
                    else:
                        decl_id, values = service.store_filings(session, [filing])[0]
                        answer = views.detail(_stored_row(decl_id, values)), True
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


def _stored_row(decl_id: int, values: dict[str, Any]) -> DeclarationRow:
    """The row just stored, as the views read it: its column values, without the ORM's instance bookkeeping."""
    return cast(DeclarationRow, SimpleNamespace(id=decl_id, **values))


_committers: dict[str, GroupCommitter] = {}
_lock = threading.Lock()


def committer(url: str | None = None) -> GroupCommitter:
    """The writer for the configured database (started on first use)."""
    url = url or get_settings().database_url
    with _lock:
        if url not in _committers:
            _committers[url] = GroupCommitter(url)
        return _committers[url]

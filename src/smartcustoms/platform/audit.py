"""The append-only audit log: every action by every actor, written in the same transaction as the action."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from smartcustoms.platform.auth import Principal
from smartcustoms.platform.db import bulk_insert
from smartcustoms.platform.store import AuditRow
from smartcustoms.platform.types import iso


def row(
    actor: Principal,
    action: str,
    entity: str,
    entity_id: str | int,
    *,
    detail: dict[str, Any] | None = None,
    remote_addr: str | None = None,
    note: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """One audit entry as column values, for `record_many`; `at` defaults to now (a group of filings passes
    its one time stamp, converted once for all its rows)."""
    return {
        "at": at or datetime.now(UTC),
        "actor": actor.username,
        "role": actor.role.value,
        "action": action,
        "entity": entity,
        "entity_id": str(entity_id),
        "remote_addr": remote_addr,
        "detail": detail,
        "note": note,
    }


def record_many(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        bulk_insert(session, cast(Table, AuditRow.__table__), rows)


def record(
    session: Session,
    actor: Principal,
    action: str,
    entity: str,
    entity_id: str | int,
    *,
    detail: dict[str, Any] | None = None,
    remote_addr: str | None = None,
    note: str | None = None,
) -> None:
    record_many(session, [row(actor, action, entity, entity_id, detail=detail, remote_addr=remote_addr, note=note)])


def query(
    session: Session, *, entity_id: str | None = None, actor: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit).offset(offset)
    if entity_id:
        stmt = stmt.where(AuditRow.entity_id == entity_id)
    if actor:
        stmt = stmt.where(AuditRow.actor == actor)
    return [
        {
            "at": iso(r.at),
            "actor": r.actor,
            "role": r.role,
            "action": r.action,
            "entity": r.entity,
            "entity_id": r.entity_id,
            "remote_addr": r.remote_addr,
            "detail": r.detail,
            "note": r.note,
        }
        for r in session.scalars(stmt)
    ]

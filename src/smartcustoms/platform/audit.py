"""The append-only audit log: every action by every actor, written in the same transaction as the action."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from smartcustoms.platform.auth import Principal
from smartcustoms.platform.store import AuditRow


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
    session.add(
        AuditRow(
            at=datetime.now(UTC),
            actor=actor.username,
            role=actor.role.value,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            remote_addr=remote_addr,
            detail=detail,
            note=note,
        )
    )

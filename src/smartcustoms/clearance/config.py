"""Run-time configuration of the clearance core, stored in the database and cached briefly in-process."""

from __future__ import annotations

import time
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from smartcustoms.clearance.assessment import TaxRules
from smartcustoms.clearance.lanes import LaneRules
from smartcustoms.clearance.store import SettingRow
from smartcustoms.clearance.validation import Limits
from smartcustoms.platform.auth import Principal
from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.settings import get_settings

_TTL_S = 5.0
_cache: dict[str, tuple[float, Any]] = {}
KEYS = ("lane_rules", "tax_rules", "limits")


def _default_tax() -> TaxRules:
    s = get_settings()
    return TaxRules(national_currency=s.national_currency, vat_rate=s.vat_rate, de_minimis=s.de_minimis)


def _limits_from(data: dict[str, Any]) -> Limits:
    base = Limits()
    kwargs: dict[str, Any] = {}
    for f in fields(Limits):
        if f.name in data:
            current = getattr(base, f.name)
            kwargs[f.name] = (
                type(current)(str(data[f.name])) if isinstance(current, Decimal) else type(current)(data[f.name])
            )
    return Limits(**kwargs)


def _limits_dict(limits: Limits) -> dict[str, Any]:
    return {f.name: (str(v) if isinstance(v := getattr(limits, f.name), Decimal) else v) for f in fields(Limits)}


def _parse(key: str, data: dict[str, Any]) -> Any:
    try:
        if key == "lane_rules":
            rules = LaneRules.from_dict(data)
            if not (0 <= rules.random_c2_share <= 1 and 0 <= rules.random_c3_share <= 1):
                raise ValueError("random shares must be between 0 and 1")
            return rules
        if key == "tax_rules":
            return TaxRules.from_dict(data)
        if key == "limits":
            return _limits_from(data)
    except DomainError:
        raise
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise DomainError(Problem("invalid_setting", (key,), str(exc))) from exc
    raise DomainError(
        Problem(
            "unknown_setting",
            ("key",),
            t("Unknown setting '{key}'; one of {allowed}", key=key, allowed=", ".join(KEYS)),
        )
    )


def default(key: str) -> Any:
    return {"lane_rules": LaneRules(), "tax_rules": _default_tax(), "limits": Limits()}[key]


def get(session: Session, key: str) -> Any:
    """The current value of a setting (LaneRules, TaxRules or Limits)."""
    hit = _cache.get(key)
    now = time.monotonic()
    if hit and hit[0] > now:
        return hit[1]
    row = session.get(SettingRow, key)
    value = _parse(key, row.value) if row else default(key)
    _cache[key] = (now + _TTL_S, value)
    return value


def as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Limits):
        return _limits_dict(value)
    result: dict[str, Any] = value.as_dict()
    return result


def put(session: Session, who: Principal, key: str, data: dict[str, Any]) -> Any:
    """Validate and store a setting; it applies to declarations submitted from now on."""
    if key not in KEYS:
        raise DomainError(
            Problem(
                "unknown_setting",
                ("key",),
                t("Unknown setting '{key}'; one of {allowed}", key=key, allowed=", ".join(KEYS)),
            )
        )
    merged = {**as_dict(get(session, key)), **data}
    value = _parse(key, merged)
    row = session.get(SettingRow, key)
    stored = as_dict(value)
    if row is None:
        session.add(SettingRow(key=key, value=stored, updated_at=datetime.now(UTC), updated_by=who.username))
    else:
        row.value, row.updated_at, row.updated_by = stored, datetime.now(UTC), who.username
    _cache.pop(key, None)
    return value


def forget() -> None:
    _cache.clear()

"""Risk use cases on the platform database: targeting rules edited in the console, the risk queue,
inspection outcomes as training labels, post-clearance audit selection, model activation.

Each function runs inside the caller's unit of work (one transaction per use case). Rules are stored
one row per version, so every lane decision's `RULE@vN` can be traced to the text that made it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartcustoms.platform import audit
from smartcustoms.platform.auth import Principal, Role
from smartcustoms.platform.db import database_key
from smartcustoms.platform.errors import Conflict, DomainError, Forbidden, NotFound, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.risk.model import LANES, RuleError, RuleSet, parse_rules
from smartcustoms.risk.revenue import YieldTable
from smartcustoms.risk.store import TargetingRuleRow

EDITORS = frozenset({Role.ANALYST, Role.ADMIN})
READERS = frozenset({Role.OFFICER, Role.ANALYST, Role.ADMIN})
_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def registry_dir() -> Path:
    return Path(os.environ.get("SMARTCUSTOMS_RISK_REGISTRY", "var/risk/models"))


def _require(who: Principal, roles: frozenset[Role], what: str) -> None:
    if who.role not in roles:
        raise Forbidden(
            Problem("forbidden_role", (), t("Role {role} may not {action_text}", role=who.role.value, action_text=what))
        )


# ---------------------------------------------------------------------------------------------- targeting rules


@dataclass(frozen=True)
class RuleForm:
    """What the rule editor sends: text fields as typed, validated together."""

    rule_id: str
    reason: str
    when: str
    """The condition as YAML or JSON, e.g. `all: [{field: hs4, op: eq, value: "8517"}]`."""
    lane: str = ""
    score: str = ""
    valid_from: str = ""
    valid_to: str = ""
    note: str = ""


def _form_problems(problems: list[Problem]) -> list[Problem]:
    """Parser paths (`rules.0.when.all.1.field`) become form paths (`when.all.1.field`, `rule_id`)."""
    out = []
    for p in problems:
        path = tuple(p.path)
        if path[:2] == ("rules", 0):
            path = path[2:]
        if path and path[0] == "id":
            path = ("rule_id", *path[1:])
        out.append(Problem(p.code, path, p.message))
    return out


def _body(form: RuleForm, version: int, enabled: bool) -> dict[str, Any]:
    """Parse the form into a rule mapping; raises RuleError with every problem keyed by form field."""
    import yaml

    problems: list[Problem] = []
    rid = form.rule_id.strip()
    if not _RULE_ID.match(rid):
        problems.append(
            Problem("invalid", ("rule_id",), t("Rule id: letters, digits, '-', '_' or '.', at most 64 characters"))
        )
    when: Any = None
    if not form.when.strip():
        problems.append(Problem("missing", ("when",), t("Write the condition, e.g. field: origin, op: eq, value: CN")))
    else:
        try:
            when = _plain(yaml.safe_load(form.when))
        except yaml.YAMLError as exc:
            problems.append(Problem("syntax", ("when",), t("The condition does not parse: {error}", error=exc)))
    score: Any = None
    if form.score.strip():
        try:
            score = float(form.score.strip())
        except ValueError:
            problems.append(
                Problem(
                    "invalid",
                    ("score",),
                    t("Score must be a number between 0 and 1, got {value}", value=repr(form.score)),
                )
            )
    body: dict[str, Any] = {"id": rid, "version": version, "reason": form.reason.strip(), "enabled": enabled}
    if when is not None:
        body["when"] = when
    if form.lane.strip():
        body["lane"] = form.lane.strip().upper()
    if score is not None:
        body["score"] = score
    for key in ("valid_from", "valid_to"):
        value = getattr(form, key).strip()
        if value:
            body[key] = value
    try:
        parse_rules([body])
    except RuleError as exc:
        seen = {p.path[0] for p in problems if p.path}
        problems += [p for p in _form_problems(exc.problems) if not (p.path and p.path[0] in seen)]
    if problems:
        raise RuleError(problems)
    return body


def backtest_rule(
    session: Session, who: Principal, form: RuleForm, *, since: date | None = None, examples: int = 10
) -> dict[str, Any]:
    """What a rule (as typed in the editor, not saved) would have hit among past declarations.

    Counted per declaration (the rule looks at items: one hit item selects the declaration), over the
    platform's declarations since `since`, as if the rule had been active all along (its validity period
    is ignored here). Frauds are inspection and post-clearance audit outcomes; `precision` is the share
    of labelled hits that were frauds, beside the base rate of all labelled declarations.
    """
    import numpy as np

    from smartcustoms.risk.labels import canonical, export_labels
    from smartcustoms.risk.model import rule_masks
    from smartcustoms.risk.rules import with_derived

    _require(who, EDITORS, "backtest targeting rules")
    body = _body(form, version=1, enabled=True)
    body.pop("valid_from", None)
    body.pop("valid_to", None)
    rule = parse_rules([body]).rules[0]
    frame = export_labels(session, since=since)
    out: dict[str, Any] = {
        "rule": rule.id,
        "declarations": 0,
        "labelled": 0,
        "frauds": 0,
        "hits": 0,
        "hits_labelled": 0,
        "hits_fraud": 0,
        "precision": None,
        "base_rate": None,
        "fraud_share": None,
        "from": None,
        "to": None,
        "examples": [],
    }
    if frame.empty:
        return out
    derived = with_derived(canonical(frame))
    hit = rule_masks([rule], derived)[rule.ref]
    per = (
        pd.DataFrame(
            {
                "reference": derived["declaration_id"].astype(str).to_numpy(),
                "date": pd.to_datetime(derived["date"]).to_numpy(),
                "fraud": derived["fraud"].to_numpy(dtype="float64"),
                "hit": hit,
            }
        )
        .groupby("reference", sort=False)
        .agg(date=("date", "max"), fraud=("fraud", "max"), hit=("hit", "any"))
    )
    labelled = per["fraud"].notna()
    hits = per[per["hit"]]
    hits_labelled = hits["fraud"].notna()
    frauds = int(np.nansum(per["fraud"].to_numpy()))
    hits_fraud = int(np.nansum(hits["fraud"].to_numpy()))
    out.update(
        declarations=len(per),
        labelled=int(labelled.sum()),
        frauds=frauds,
        hits=len(hits),
        hits_labelled=int(hits_labelled.sum()),
        hits_fraud=hits_fraud,
        precision=hits_fraud / int(hits_labelled.sum()) if hits_labelled.any() else None,
        base_rate=frauds / int(labelled.sum()) if labelled.any() else None,
        fraud_share=hits_fraud / frauds if frauds else None,
        **{"from": per["date"].min().date().isoformat(), "to": per["date"].max().date().isoformat()},
        examples=hits.sort_values("date", ascending=False).index[:examples].tolist(),
    )
    return out


def _plain(node: Any) -> Any:
    """YAML dates (`value: 2021-01-01`) as ISO text, so the rule is stored as plain JSON."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, date):
        return node.isoformat()
    return node


def _latest(session: Session) -> list[TargetingRuleRow]:
    newest = (
        select(TargetingRuleRow.rule_id, func.max(TargetingRuleRow.version).label("v"))
        .group_by(TargetingRuleRow.rule_id)
        .subquery()
    )
    stmt = (
        select(TargetingRuleRow)
        .join(
            newest,
            (TargetingRuleRow.rule_id == newest.c.rule_id) & (TargetingRuleRow.version == newest.c.v),
        )
        .order_by(TargetingRuleRow.rule_id)
    )
    return list(session.scalars(stmt))


def list_rules(session: Session, who: Principal) -> list[dict[str, Any]]:
    """The latest version of every targeting rule, enabled or not."""
    _require(who, READERS, t("read targeting rules"))
    return [rule_view(r) for r in _latest(session)]


def rule_history(session: Session, who: Principal, rule_id: str) -> list[dict[str, Any]]:
    """Every version of one rule, newest first."""
    _require(who, READERS, t("read targeting rules"))
    rows = list(
        session.scalars(
            select(TargetingRuleRow)
            .where(TargetingRuleRow.rule_id == rule_id)
            .order_by(TargetingRuleRow.version.desc())
        )
    )
    if not rows:
        raise NotFound(Problem("unknown_rule", ("rule_id",), t("No targeting rule {rule}", rule=repr(rule_id))))
    return [rule_view(r) for r in rows]


def rule_view(r: TargetingRuleRow) -> dict[str, Any]:
    import yaml

    b = r.body
    return {
        "rule_id": r.rule_id,
        "version": r.version,
        "enabled": r.enabled,
        "reason": b.get("reason", ""),
        "lane": b.get("lane") or "",
        "score": "" if b.get("score") is None else str(b["score"]),
        "valid_from": b.get("valid_from") or "",
        "valid_to": b.get("valid_to") or "",
        "when": yaml.safe_dump(b.get("when"), sort_keys=False, allow_unicode=True, default_flow_style=None).strip(),
        "when_json": b.get("when"),
        "created_at": r.created_at,
        "created_by": r.created_by,
        "note": r.note or "",
        "ref": f"{r.rule_id}@v{r.version}",
    }


def save_rule(
    session: Session, who: Principal, form: RuleForm, *, editing: str | None = None, remote_addr: str | None = None
) -> dict[str, Any]:
    """Create a rule (`editing` None) or a new version of `editing`; validated, audited."""
    _require(who, EDITORS, t("edit targeting rules"))
    rid = editing or form.rule_id.strip()
    last = session.scalar(
        select(TargetingRuleRow).where(TargetingRuleRow.rule_id == rid).order_by(TargetingRuleRow.version.desc())
    )
    if editing is None and last is not None:
        raise Conflict(
            Problem("duplicate", ("rule_id",), t("A rule {rule} exists already; edit it instead", rule=repr(rid)))
        )
    if editing is not None and last is None:
        raise NotFound(Problem("unknown_rule", ("rule_id",), t("No targeting rule {rule}", rule=repr(editing))))
    version = (last.version + 1) if last else 1
    body = _body(RuleForm(**{**form.__dict__, "rule_id": rid}), version, last.enabled if last else True)
    action = "create_rule" if version == 1 else "edit_rule"
    return _write(session, who, rid, version, body, bool(body.get("enabled", True)), form.note, action, remote_addr)


def set_enabled(
    session: Session, who: Principal, rule_id: str, enabled: bool, *, note: str = "", remote_addr: str | None = None
) -> dict[str, Any]:
    """Disable (or enable again) a rule: a new version, so the history shows when and by whom."""
    _require(who, EDITORS, t("edit targeting rules"))
    last = session.scalar(
        select(TargetingRuleRow).where(TargetingRuleRow.rule_id == rule_id).order_by(TargetingRuleRow.version.desc())
    )
    if last is None:
        raise NotFound(Problem("unknown_rule", ("rule_id",), t("No targeting rule {rule}", rule=repr(rule_id))))
    if last.enabled == enabled:
        already = (
            t("Rule {rule} is enabled already", rule=rule_id)
            if enabled
            else t("Rule {rule} is disabled already", rule=rule_id)
        )
        raise Conflict(Problem("unchanged", ("enabled",), already))
    body = {**last.body, "version": last.version + 1, "enabled": enabled}
    action = "enable_rule" if enabled else "disable_rule"
    return _write(session, who, rule_id, last.version + 1, body, enabled, note, action, remote_addr)


def _write(
    session: Session,
    who: Principal,
    rule_id: str,
    version: int,
    body: dict[str, Any],
    enabled: bool,
    note: str,
    action: str,
    remote_addr: str | None,
) -> dict[str, Any]:
    row = TargetingRuleRow(
        rule_id=rule_id,
        version=version,
        body=body,
        enabled=enabled,
        created_at=datetime.now(UTC),
        created_by=who.username,
        note=note.strip() or None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        who,
        action,
        "targeting_rule",
        f"{rule_id}@v{version}",
        remote_addr=remote_addr,
        note=note.strip() or None,
        detail={"rule": body},
    )
    forget_rules()
    return rule_view(row)


_rules_cache: dict[str, tuple[float, RuleSet]] = {}
_rules_lock = threading.Lock()
_RULES_TTL_S = 5.0


def forget_rules() -> None:
    with _rules_lock:
        _rules_cache.clear()


def active_rules(session: Session) -> RuleSet:
    """The enabled latest versions as a RuleSet; cached a few seconds per database (filing path)."""
    key = database_key(session)
    now = time.monotonic()
    with _rules_lock:
        hit = _rules_cache.get(key)
    if hit and hit[0] > now:
        return hit[1]
    bodies = [r.body for r in _latest(session) if r.enabled]
    rs = parse_rules(bodies) if bodies else RuleSet(())
    digest = hashlib.sha256(json.dumps(bodies, sort_keys=True, default=str).encode()).hexdigest()[:12]
    rs = RuleSet(rs.rules, version=f"db-{digest}")
    with _rules_lock:
        _rules_cache[key] = (now + _RULES_TTL_S, rs)
    return rs


# ---------------------------------------------------------------------------------------------- models


def active_model(root: Path | None = None) -> Any:
    """The registry's active SelectivityModel (cached per version), or None."""
    from smartcustoms.risk.registry import ModelRegistry

    reg = ModelRegistry(root or registry_dir())
    version = reg.active_version()
    if version is None:
        return None
    return _load_model(str(reg.root), version)


_models: dict[tuple[str, str], Any] = {}


def _load_model(root: str, version: str) -> Any:
    from smartcustoms.risk.registry import ModelRegistry

    key = (root, version)
    if key not in _models:
        _models.clear()
        _models[key] = ModelRegistry(root).load(version)
    return _models[key]


def models_overview(who: Principal, root: Path | None = None) -> dict[str, Any]:
    """Registered models, newest first, with the active one marked."""
    from smartcustoms.risk.registry import ModelRegistry

    _require(who, READERS, t("read the model registry"))
    reg = ModelRegistry(root or registry_dir())
    active = reg.active_version()
    versions = reg.versions()
    for m in versions:
        m["active"] = m["version"] == active
    return {"active": active, "versions": versions, "root": str(reg.root)}


def activate_model(
    session: Session, who: Principal, version: str, *, root: Path | None = None, remote_addr: str | None = None
) -> str:
    """Make a registered version the active one (activation or rollback), audited."""
    from smartcustoms.risk.registry import ModelRegistry

    _require(who, EDITORS, t("activate risk models"))
    reg = ModelRegistry(root or registry_dir())
    before = reg.active_version()
    if before == version:
        raise Conflict(Problem("unchanged", ("version",), t("{version} is the active model already", version=version)))
    reg.activate(version)
    audit.record(
        session,
        who,
        "activate_model",
        "risk_model",
        version,
        remote_addr=remote_addr,
        detail={"previous": before, "registry": str(reg.root)},
    )
    return version


# ---------------------------------------------------------------------------------------------- queue, audit


def _yields(model: Any) -> YieldTable:
    return model.yields if model is not None else YieldTable(0.0)


def risk_queue(
    session: Session, who: Principal, *, order: str = "score", lane: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """Declarations waiting for an officer, riskiest (or most expected revenue) first, with reasons and
    the model and rule versions that decided."""
    from smartcustoms.clearance import service as clearance

    _require(who, READERS, t("read the risk queue"))
    if order not in ("score", "revenue"):
        raise DomainError(Problem("invalid", ("order",), t("order is 'score' or 'revenue'")))
    rows = clearance.officer_queue(session, who, lane, limit=max(limit, 500))
    yields = _yields(_safe_active_model())
    out = []
    for r in rows:
        codes = [str(i.get("tariff_code", "")) for i in (r.payload or {}).get("items", [])]
        expected = yields.expected(float(r.risk_score), codes)
        versions = list(r.lane_versions or [])
        out.append(
            {
                "reference": r.reference,
                "importer_id": r.importer_id,
                "importer_name": ((r.payload or {}).get("importer") or {}).get("name", ""),
                "lane": r.lane,
                "status": r.status,
                "score": float(r.risk_score),
                "expected_revenue": round(expected.amount, 2),
                "revenue_basis": expected.reason(),
                "reasons": list(r.lane_reasons or []),
                "model_versions": [v for v in versions if v.startswith("selectivity-")],
                "rule_versions": [v for v in versions if not v.startswith("selectivity-")],
                "submitted_at": r.submitted_at,
            }
        )
    key = "expected_revenue" if order == "revenue" else "score"
    out.sort(key=lambda x: (-x[key], -x["score"], x["submitted_at"]))
    return out[:limit]


def current_yields() -> YieldTable:
    """The active model's yield table (zero yields when no model is active)."""
    return _yields(_safe_active_model())


def _safe_active_model() -> Any:
    try:
        return active_model()
    except DomainError:
        return None


def audit_selection(session: Session, who: Principal, *, top: int = 50) -> pd.DataFrame:
    """Companies ranked for post-clearance audit by expected unpaid revenue (released declarations)."""
    from smartcustoms.risk.audit import rank_companies

    _require(who, READERS, t("read the audit selection"))
    model = active_model()
    if model is None:
        raise NotFound(Problem("no_model", ("model",), t("No active risk model: register and activate one first")))
    from smartcustoms.risk.labels import canonical, export_labels

    frame = export_labels(session)
    if frame.empty:
        return pd.DataFrame(columns=["rank", "importer_id", "declarations", "expected_unpaid", "reason"])
    canon = canonical(frame)
    return rank_companies(canon, model.assess(canon, explain="none"), top=top)


def as_mapping(form: Mapping[str, Any]) -> RuleForm:
    """A RuleForm from any mapping of text fields (HTML form, JSON body)."""
    fields = RuleForm.__dataclass_fields__
    return RuleForm(**{k: str(form.get(k) or "") for k in fields})


__all__ = [
    "LANES",
    "RuleForm",
    "activate_model",
    "active_rules",
    "audit_selection",
    "list_rules",
    "models_overview",
    "risk_queue",
    "rule_history",
    "save_rule",
    "set_enabled",
]

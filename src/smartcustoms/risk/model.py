"""Targeting rules: written by analysts as YAML or JSON, validated, versioned, evaluated and backtested.

Pure domain code (no I/O). A rule is a condition tree over declaration fields and derived features, a
validity period, a consequence (a forced lane or a score) and the reason shown to the officer.

    rules:
      - id: ELEC-CN-LOW
        version: 3
        valid_from: 2021-01-01          # optional; valid_to likewise (inclusive)
        when:
          all:
            - {field: hs4, op: in, value: ["8517", "8471"]}
            - {field: origin, op: eq, value: CN}
            - {field: price_ratio, op: lt, value: 0.5}
        lane: C3                        # or: score: 0.4
        reason: Electronics from CN declared at under half the reference price

Conditions nest with `all`, `any` and `not`. Every problem in a file is reported at once with its path
(`rules[0].when.all[2].field: unknown field 'orign'`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import t

# Field -> kind ("str", "num", "bool", "date"). Declaration fields, then derived features.
DECLARATION_FIELDS: dict[str, str] = {
    "declaration_id": "str",
    "date": "date",
    "office": "str",
    "process_type": "str",
    "import_type": "str",
    "import_use": "str",
    "payment_type": "str",
    "transport_mode": "str",
    "departure_country": "str",
    "origin": "str",
    "tax_type": "str",
    "origin_indicator": "str",
    "declarant_id": "str",
    "importer_id": "str",
    "seller_id": "str",
    "courier_id": "str",
    "hs_code": "str",
    "tax_rate": "num",
    "net_mass_kg": "num",
    "value": "num",
    "aeo": "bool",
}
DERIVED_FIELDS: dict[str, str] = {
    "hs2": "str",  # HS chapter
    "hs4": "str",  # HS heading
    "hs6": "str",  # HS subheading
    "value_per_kg": "num",
    "price_ratio": "num",  # declared unit price / reference unit price (past declarations)
    "importer_history": "num",  # number of the importer's earlier declarations
    "first_time_importer": "bool",
    "importer_fraud_rate": "num",  # smoothed past fraud rate of the importer
    "risk_score": "num",  # the selectivity model's calibrated probability, where available
}
FIELDS: dict[str, str] = {**DECLARATION_FIELDS, **DERIVED_FIELDS}
# KCS headers accepted as aliases, so analysts can write the names they see in the data.
ALIASES = {
    "Office ID": "office",
    "Country of Origin": "origin",
    "Country of Departure": "departure_country",
    "Importer ID": "importer_id",
    "Declarant ID": "declarant_id",
    "Seller ID": "seller_id",
    "Courier ID": "courier_id",
    "Mode of Transport": "transport_mode",
    "Tax Rate": "tax_rate",
    "Tax Type": "tax_type",
    "Net Mass": "net_mass_kg",
    "Item Price": "value",
    "HS6 Code": "hs6",
    "HS10 Code": "hs_code",
}
OPS = {
    "eq": "any",
    "ne": "any",
    "in": "list",
    "not_in": "list",
    "lt": "num",
    "le": "num",
    "gt": "num",
    "ge": "num",
    "between": "range",
    "startswith": "str",
    "is_null": "none",
    "not_null": "none",
}
LANES = ("C1", "C2", "C3")
_RULE_KEYS = {"id", "version", "valid_from", "valid_to", "when", "lane", "score", "reason", "description", "enabled"}


class RuleError(DomainError):
    """A rules document that does not parse or refers to unknown fields."""


@dataclass(frozen=True)
class Condition:
    """A leaf (`field op value`) or a node (`all` / `any` / `not` over children)."""

    kind: str  # "leaf", "all", "any", "not"
    field: str = ""
    op: str = ""
    value: Any = None
    children: tuple[Condition, ...] = ()

    def fields(self) -> set[str]:
        if self.kind == "leaf":
            return {self.field}
        return set().union(*(c.fields() for c in self.children)) if self.children else set()


@dataclass(frozen=True)
class Rule:
    id: str
    version: int
    when: Condition
    reason: str
    lane: str | None = None
    score: float | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    enabled: bool = True

    def active_on(self, day: date | None) -> bool:
        if not self.enabled:
            return False
        if day is None:
            return True
        return (self.valid_from is None or day >= self.valid_from) and (self.valid_to is None or day <= self.valid_to)

    @property
    def ref(self) -> str:
        return f"{self.id}@v{self.version}"


@dataclass(frozen=True)
class RuleHit:
    rule_id: str
    version: int
    lane: str | None
    score: float | None
    reason: str


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    version: str = ""  # content hash of the document, recorded with each decision
    problems: tuple[Problem, ...] = field(default=())


# --- parsing and validation ----------------------------------------------------------------------


def parse_rules_text(text: str, fmt: str = "auto") -> RuleSet:
    """Parse a YAML or JSON rules document; raises RuleError listing every problem."""
    import hashlib

    doc: Any
    try:
        if fmt == "json" or (fmt == "auto" and text.lstrip().startswith(("{", "["))):
            doc = json.loads(text)
        else:
            import yaml

            doc = yaml.safe_load(text)
    except Exception as exc:  # the parser's own message says where
        raise RuleError(Problem("syntax", (), t("rules document does not parse: {error}", error=exc))) from exc
    rules = parse_rules(doc)
    return RuleSet(rules.rules, version=hashlib.sha256(text.encode()).hexdigest()[:12])


def parse_rules(doc: Any) -> RuleSet:
    """Validate a decoded document (`{"rules": [...]}` or a list of rules)."""
    problems: list[Problem] = []
    items = doc.get("rules") if isinstance(doc, Mapping) else doc
    if not isinstance(items, list):
        raise RuleError(Problem("syntax", ("rules",), t("expected a list of rules under 'rules'")))
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        path: tuple[str | int, ...] = ("rules", i)
        if not isinstance(item, Mapping):
            problems.append(Problem("syntax", path, t("a rule must be a mapping")))
            continue
        for key in item:
            if key not in _RULE_KEYS:
                problems.append(
                    Problem(
                        "unknown_key",
                        (*path, str(key)),
                        t(
                            "unknown rule key {key}; expected one of {allowed}",
                            key=repr(key),
                            allowed=sorted(_RULE_KEYS),
                        ),
                    )
                )
        rid = item.get("id")
        if not isinstance(rid, str) or not rid.strip():
            problems.append(Problem("missing", (*path, "id"), t("rule needs an 'id' (text)")))
            rid = f"#{i}"
        elif rid in seen:
            problems.append(Problem("duplicate", (*path, "id"), t("duplicate rule id {rule}", rule=repr(rid))))
        seen.add(rid)
        version = item.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            problems.append(Problem("invalid", (*path, "version"), t("version must be a positive integer")))
            version = 1
        reason = item.get("reason") or item.get("description")
        if not isinstance(reason, str) or not reason.strip():
            problems.append(Problem("missing", (*path, "reason"), t("rule needs a 'reason' shown to the officer")))
            reason = ""
        lane: Any = item.get("lane")
        score: Any = item.get("score")
        if lane is None and score is None:
            problems.append(
                Problem("missing", (*path, "lane"), t("rule needs a 'lane' (C1, C2, C3) or a 'score' (0..1)"))
            )
        if lane is not None and lane not in LANES:
            problems.append(
                Problem(
                    "invalid",
                    (*path, "lane"),
                    t("lane must be one of {allowed}, got {value}", allowed=", ".join(LANES), value=repr(lane)),
                )
            )
        if score is not None and (not _is_num(score) or not 0 <= float(score) <= 1):
            problems.append(
                Problem(
                    "invalid",
                    (*path, "score"),
                    t("score must be a number between 0 and 1, got {value}", value=repr(score)),
                )
            )
        vfrom = _parse_date(item.get("valid_from"), (*path, "valid_from"), problems)
        vto = _parse_date(item.get("valid_to"), (*path, "valid_to"), problems)
        if vfrom and vto and vto < vfrom:
            problems.append(Problem("invalid", (*path, "valid_to"), t("valid_to is before valid_from")))
        if "when" not in item:
            problems.append(Problem("missing", (*path, "when"), t("rule needs a 'when' condition")))
            continue
        cond = _parse_condition(item["when"], (*path, "when"), problems)
        if cond is None:
            continue
        rules.append(
            Rule(
                id=rid,
                version=version,
                when=cond,
                reason=reason,
                lane=lane if lane in LANES else None,
                score=float(score) if _is_num(score) else None,
                valid_from=vfrom,
                valid_to=vto,
                enabled=bool(item.get("enabled", True)),
            )
        )
    if problems:
        raise RuleError(problems)
    return RuleSet(tuple(rules))


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))


def _parse_date(v: Any, path: tuple[str | int, ...], problems: list[Problem]) -> date | None:
    if v is None:
        return None
    if isinstance(v, date):
        return v
    try:
        return date.fromisoformat(str(v))
    except ValueError:
        problems.append(Problem("invalid", path, t("expected a date YYYY-MM-DD, got {value}", value=repr(v))))
        return None


def _parse_condition(node: Any, path: tuple[str | int, ...], problems: list[Problem]) -> Condition | None:
    if not isinstance(node, Mapping):
        problems.append(Problem("syntax", path, t("a condition must be a mapping: (field, op, value) or all/any/not")))
        return None
    groups = [k for k in ("all", "any", "not") if k in node]
    if groups:
        if len(node) != 1:
            problems.append(
                Problem("syntax", path, t("'{group}' must be the only key of its condition", group=groups[0]))
            )
            return None
        kind = groups[0]
        sub = node[kind]
        if kind == "not":
            child = _parse_condition(sub, (*path, "not"), problems)
            return Condition("not", children=(child,)) if child else None
        if not isinstance(sub, list) or not sub:
            problems.append(
                Problem("syntax", (*path, kind), t("'{group}' needs a non-empty list of conditions", group=kind))
            )
            return None
        children = [_parse_condition(c, (*path, kind, j), problems) for j, c in enumerate(sub)]
        if any(c is None for c in children):
            return None
        return Condition(kind, children=tuple(c for c in children if c is not None))
    extra = set(node) - {"field", "op", "value"}
    if extra:
        problems.append(
            Problem("syntax", path, t("unknown condition keys {keys}; expected field, op, value", keys=sorted(extra)))
        )
        return None
    raw_field = node.get("field")
    name = ALIASES.get(str(raw_field), raw_field)
    op = node.get("op", "eq")
    value = node.get("value")
    ok = True
    if not isinstance(name, str) or name not in FIELDS:
        problems.append(
            Problem(
                "unknown_field",
                (*path, "field"),
                t("unknown field {field}; known: {allowed}", field=repr(raw_field), allowed=", ".join(sorted(FIELDS))),
            )
        )
        ok = False
    if op not in OPS:
        problems.append(
            Problem(
                "unknown_op",
                (*path, "op"),
                t("unknown operator {op}; expected one of {allowed}", op=repr(op), allowed=", ".join(OPS)),
            )
        )
        return None
    need = OPS[op]
    kind = FIELDS.get(str(name), "str")
    if need == "none" and value is not None:
        problems.append(Problem("invalid", (*path, "value"), t("operator {op} takes no value", op=repr(op))))
        ok = False
    elif need == "list" and not (isinstance(value, list) and value):
        problems.append(Problem("invalid", (*path, "value"), t("operator {op} needs a non-empty list", op=repr(op))))
        ok = False
    elif need == "range" and not (isinstance(value, list) and len(value) == 2 and all(_is_num(v) for v in value)):
        problems.append(
            Problem(
                "invalid",
                (*path, "value"),
                t("operator 'between' needs [low, high] numbers, got {value}", value=repr(value)),
            )
        )
        ok = False
    elif need == "num" and not _is_num(value):
        problems.append(
            Problem(
                "invalid",
                (*path, "value"),
                t("operator {op} needs a number, got {value}", op=repr(op), value=repr(value)),
            )
        )
        ok = False
    elif need == "num" and kind != "num":
        problems.append(
            Problem(
                "invalid",
                (*path, "op"),
                t("operator {op} compares numbers but {field} is {kind}", op=repr(op), field=repr(name), kind=kind),
            )
        )
        ok = False
    elif need == "any" and value is None:
        problems.append(Problem("invalid", (*path, "value"), t("operator {op} needs a value", op=repr(op))))
        ok = False
    if not ok:
        return None
    if kind == "str" and need in ("any", "list", "str"):
        value = [str(v) for v in value] if isinstance(value, list) else str(value)
    if kind == "bool" and need == "any" and not isinstance(value, bool):
        problems.append(
            Problem(
                "invalid",
                (*path, "value"),
                t("{field} is true/false, got {value}", field=repr(name), value=repr(value)),
            )
        )
        return None
    return Condition("leaf", field=str(name), op=op, value=value)


# --- evaluation on one declaration ---------------------------------------------------------------


def derive(declaration: Mapping[str, Any]) -> dict[str, Any]:
    """Declaration fields plus the derived ones computable from the declaration alone."""
    d = {ALIASES.get(k, k): v for k, v in declaration.items()}
    hs = str(d.get("hs_code") or d.get("hs6") or "").replace(".", "")
    if hs:
        d.setdefault("hs6", hs[:6])
        d.setdefault("hs4", hs[:4])
        d.setdefault("hs2", hs[:2])
    mass, value = d.get("net_mass_kg"), d.get("value")
    if "value_per_kg" not in d and _is_num_like(mass) and _is_num_like(value) and float(mass) > 0:  # type: ignore[arg-type]
        d["value_per_kg"] = float(value) / float(mass)  # type: ignore[arg-type]
    if "first_time_importer" not in d and d.get("importer_history") is not None:
        d["first_time_importer"] = float(d["importer_history"]) == 0
    return d


def _is_num_like(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _test(cond: Condition, d: Mapping[str, Any]) -> bool:
    if cond.kind == "all":
        return all(_test(c, d) for c in cond.children)
    if cond.kind == "any":
        return any(_test(c, d) for c in cond.children)
    if cond.kind == "not":
        return not _test(cond.children[0], d)
    v: Any = d.get(cond.field)
    missing = v is None or (isinstance(v, float) and math.isnan(v))
    if cond.op == "is_null":
        return missing
    if cond.op == "not_null":
        return not missing
    if missing:
        return False
    kind = FIELDS[cond.field]
    if kind == "str":
        v = str(v)
    elif kind == "num":
        v = float(v)
    elif kind == "date":
        v = str(v)[:10]
    op, x = cond.op, cond.value
    if op == "eq":
        return bool(v == (float(x) if kind == "num" else x))
    if op == "ne":
        return bool(v != (float(x) if kind == "num" else x))
    if op == "in":
        return v in x or (kind == "num" and v in [float(i) for i in x])
    if op == "not_in":
        return v not in x
    if op == "startswith":
        return str(v).startswith(str(x))
    if op == "between":
        return float(x[0]) <= v <= float(x[1])
    return bool({"lt": v < x, "le": v <= x, "gt": v > x, "ge": v >= x}[op])


def evaluate_rules(
    rules: RuleSet | Sequence[Rule], declaration: Mapping[str, Any], *, on: date | None = None
) -> list[RuleHit]:
    """Rules that fire for one declaration (active on `on`, else on the declaration's date)."""
    items = rules.rules if isinstance(rules, RuleSet) else rules
    d = derive(declaration)
    day = on or _as_date(d.get("date"))
    return [RuleHit(r.id, r.version, r.lane, r.score, r.reason) for r in items if r.active_on(day) and _test(r.when, d)]


def _as_date(v: Any) -> date | None:
    if v is None:
        return None
    if isinstance(v, date):
        return v
    try:
        return date.fromisoformat(str(v)[:10])
    except ValueError:
        return None


def combine_lane(model_lane: str, hits: Sequence[RuleHit]) -> str:
    """The strictest of the model's lane and the lanes forced by rules."""
    lanes = [model_lane, *(h.lane for h in hits if h.lane)]
    return max(lanes, key=LANES.index)


# --- vectorised evaluation and backtest ----------------------------------------------------------


def _mask(cond: Condition, frame: pd.DataFrame) -> np.ndarray:
    if cond.kind == "all":
        out = np.ones(len(frame), dtype=bool)
        for c in cond.children:
            out &= _mask(c, frame)
        return out
    if cond.kind == "any":
        out = np.zeros(len(frame), dtype=bool)
        for c in cond.children:
            out |= _mask(c, frame)
        return out
    if cond.kind == "not":
        return ~_mask(cond.children[0], frame)
    if cond.field not in frame.columns:
        col = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    else:
        col = frame[cond.field]
    missing = col.isna().to_numpy()
    if cond.op == "is_null":
        return missing
    if cond.op == "not_null":
        return ~missing
    kind = FIELDS[cond.field]
    op, x = cond.op, cond.value
    if kind == "num":
        v = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64")
        with np.errstate(invalid="ignore"):
            if op in ("eq", "ne"):
                res = v == float(x) if op == "eq" else v != float(x)
            elif op in ("in", "not_in"):
                res = np.isin(v, [float(i) for i in x])
                res = res if op == "in" else ~res
            elif op == "between":
                res = (v >= float(x[0])) & (v <= float(x[1]))
            else:
                res = {"lt": v < x, "le": v <= x, "gt": v > x, "ge": v >= x}[op]
    else:
        s = col.astype(object).where(~missing, None)
        s = s.map(lambda z: str(z)[:10]) if kind == "date" else s.map(lambda z: z if isinstance(z, bool) else str(z))
        if op == "eq":
            res = (s == x).to_numpy()
        elif op == "ne":
            res = (s != x).to_numpy()
        elif op == "in":
            res = s.isin(x).to_numpy()
        elif op == "not_in":
            res = (~s.isin(x)).to_numpy()
        elif op == "startswith":
            res = s.astype(str).str.startswith(str(x)).to_numpy()
        else:  # numeric operators were rejected for non-numeric fields at parse time
            res = np.zeros(len(frame), dtype=bool)
    return np.asarray(res, dtype=bool) & ~missing


def rule_masks(rules: RuleSet | Sequence[Rule], frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per rule: which rows of `frame` (canonical + derived columns) it hits, validity period applied."""
    items = rules.rules if isinstance(rules, RuleSet) else rules
    days = pd.to_datetime(frame["date"]).dt.date if "date" in frame.columns else None
    out = {}
    for r in items:
        m = _mask(r.when, frame)
        if days is not None and (r.valid_from or r.valid_to):
            lo = r.valid_from or date.min
            hi = r.valid_to or date.max
            m &= days.map(lambda d, lo=lo, hi=hi: lo <= d <= hi).to_numpy(dtype=bool)
        if not r.enabled:
            m[:] = False
        out[r.ref] = m
    return out


def backtest(rules: RuleSet | Sequence[Rule], frame: pd.DataFrame) -> pd.DataFrame:
    """Per rule: hits, frauds among hits (where `fraud` is known), hit rate and share of all frauds."""
    masks = rule_masks(rules, frame)
    y = frame["fraud"].to_numpy(dtype="float64") if "fraud" in frame.columns else np.full(len(frame), np.nan)
    total_fraud = float(np.nansum(y))
    rows = []
    items = rules.rules if isinstance(rules, RuleSet) else rules
    for r in items:
        m = masks[r.ref]
        hits = int(m.sum())
        known = m & ~np.isnan(y)
        frauds = int(np.nansum(y[m]))
        rows.append(
            {
                "rule": r.id,
                "version": r.version,
                "hits": hits,
                "hit_share": hits / max(1, len(frame)),
                "frauds": frauds,
                "precision": frauds / known.sum() if known.sum() else float("nan"),
                "fraud_share": frauds / total_fraud if total_fraud else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=["rule", "version", "hits", "hit_share", "frauds", "precision", "fraud_share"])

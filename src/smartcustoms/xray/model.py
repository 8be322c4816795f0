"""Domain of X-ray triage: what a detection is, and whether what the scanner saw fits what was declared.

Pure functions and dataclasses only (no I/O), so the declared-versus-seen rules are tested in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smartcustoms.platform.i18n import t, t_plain

THREATS = ("meat", "drugs", "handgun", "gun_part", "knife")
"""Classes that matter to customs: restricted or prohibited goods."""
LOOKALIKES = ("cheese", "book", "electronics", "tool")
"""Benign goods that look like threats in a scan; the detector learns them so it can tell the difference."""
CLASSES = THREATS + LOOKALIKES

ALIASES: dict[str, str] = {
    # SIXray, OPIXray, PIDray, HiXray names → ours
    "gun": "handgun",
    "pistol": "handgun",
    "handgun": "handgun",
    "firearm": "handgun",
    "gun_parts": "gun_part",
    "gunpart": "gun_part",
    "bullet": "gun_part",
    "knife": "knife",
    "straight_knife": "knife",
    "folding_knife": "knife",
    "utility_knife": "knife",
    "multi-tool_knife": "knife",
    "multi_tool_knife": "knife",
    "scissor": "knife",
    "scissors": "knife",
    "blade": "knife",
    "wrench": "tool",
    "pliers": "tool",
    "plier": "tool",
    "hammer": "tool",
    "screwdriver": "tool",
    "tools": "tool",
    "laptop": "electronics",
    "portable_charger": "electronics",
    "mobile_phone": "electronics",
    "tablet": "electronics",
    "drug": "drugs",
    "narcotics": "drugs",
    "meat_cut": "meat",
    "books": "book",
}


def canonical_label(name: str) -> str:
    """Our class name for a data set's label ("Straight_Knife" → "knife"); unknown labels are kept, normalised."""
    key = name.strip().lower().replace(" ", "_")
    return ALIASES.get(key, key)


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in scan pixels (x1, y1 top-left; x2, y2 bottom-right, exclusive)."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def area(self) -> float:
        return max(0.0, self.x2 - self.x1) * max(0.0, self.y2 - self.y1)

    def iou(self, other: Box) -> float:
        iw = min(self.x2, other.x2) - max(self.x1, other.x1)
        ih = min(self.y2, other.y2) - max(self.y1, other.y1)
        if iw <= 0 or ih <= 0:
            return 0.0
        inter = iw * ih
        return inter / (self.area + other.area - inter)

    def as_list(self) -> list[float]:
        return [round(self.x1, 1), round(self.y1, 1), round(self.x2, 1), round(self.y2, 1)]


@dataclass(frozen=True)
class Detection:
    """One object the detector saw: class, calibrated confidence (probability it is right), box."""

    label: str
    score: float
    box: Box

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": round(self.score, 4), "box": self.box.as_list()}


@dataclass(frozen=True)
class ConsistencyRule:
    """Which tariff chapters a detected class is consistent with.

    `chapters` are HS prefixes (2 to 6 digits); empty means nothing may lawfully declare it (drugs).
    `needs_permit`: the consistent item must also carry a permit (firearms). `enforce` False only records
    the class (benign look-alikes); `min_confidence` is the calibrated confidence that raises a conflict,
    None for the model's own alarm threshold (chosen for a false-alarm budget on held-out scans).
    """

    label: str
    chapters: tuple[str, ...]
    needs_permit: bool = False
    enforce: bool = True
    min_confidence: float | None = None

    def threshold(self, alarm_threshold: float) -> float:
        return alarm_threshold if self.min_confidence is None else self.min_confidence


DEFAULT_RULES: tuple[ConsistencyRule, ...] = (
    ConsistencyRule("meat", ("02", "16")),
    ConsistencyRule("drugs", ()),
    ConsistencyRule("handgun", ("93",), needs_permit=True),
    ConsistencyRule("gun_part", ("93",), needs_permit=True),
    ConsistencyRule("knife", ("82", "93")),
    ConsistencyRule("cheese", ("04",), enforce=False, min_confidence=0.7),
    ConsistencyRule("book", ("49",), enforce=False, min_confidence=0.7),
    ConsistencyRule("electronics", ("84", "85", "90"), enforce=False, min_confidence=0.7),
    ConsistencyRule("tool", ("82", "84"), enforce=False, min_confidence=0.7),
)


def rules_from_config(data: Mapping[str, Any]) -> tuple[ConsistencyRule, ...]:
    """Rules from a JSON-like mapping {"meat": {"chapters": ["02", "16"], ...}, ...}; defaults fill the rest."""
    from smartcustoms.platform.errors import Problem
    from smartcustoms.xray.errors import XrayError

    problems: list[Problem] = []
    rules = {r.label: r for r in DEFAULT_RULES}
    for label, spec in data.items():
        if not isinstance(spec, Mapping):
            problems.append(Problem("invalid_rule", (label,), t("Each rule must be an object")))
            continue
        chapters = spec.get("chapters", [])
        if not isinstance(chapters, list) or not all(
            isinstance(c, str) and c.isdigit() and 2 <= len(c) <= 6 for c in chapters
        ):
            problems.append(
                Problem("invalid_chapters", (label, "chapters"), t("Chapters are 2 to 6 digit HS prefixes"))
            )
            continue
        conf = spec.get("min_confidence")
        if conf is not None and (not isinstance(conf, int | float) or not 0 <= conf <= 1):
            problems.append(Problem("invalid_confidence", (label, "min_confidence"), t("Between 0 and 1")))
            continue
        rules[canonical_label(label)] = ConsistencyRule(
            canonical_label(label),
            tuple(chapters),
            needs_permit=bool(spec.get("needs_permit", False)),
            enforce=bool(spec.get("enforce", True)),
            min_confidence=None if conf is None else float(conf),
        )
    if problems:
        raise XrayError(problems)
    return tuple(rules.values())


@dataclass(frozen=True)
class DeclaredItem:
    """What the declaration says about one line: enough to judge a scan against it."""

    line_no: int
    description: str
    tariff_code: str
    permits: tuple[str, ...] = ()

    @property
    def chapter(self) -> str:
        return self.tariff_code[:2]


@dataclass(frozen=True)
class Conflict:
    """A detection the declared goods do not explain, with the reason an officer reads."""

    detection: Detection
    code: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


def declared_summary(items: Sequence[DeclaredItem]) -> str:
    """The declared goods in a conflict's reason: "toys, chapter 95"; "toys / phones; chapters 95, 85"."""
    if not items:
        return t_plain("nothing")
    if len(items) == 1:
        return t_plain("{description}, chapter {chapter}", description=items[0].description, chapter=items[0].chapter)
    return t_plain(
        "{descriptions}; chapters {chapters}",
        descriptions=" / ".join(i.description for i in items),
        chapters=", ".join(i.chapter for i in items),
    )


CLASS_WORDS = {label: label.replace("_", " ") for label in CLASSES}
"""A class as a word in a reason ("gun part"); the console's catalogue translates these words."""


def conflicts(
    detections: Sequence[Detection],
    items: Sequence[DeclaredItem],
    rules: Sequence[ConsistencyRule] = DEFAULT_RULES,
    alarm_threshold: float = 0.5,
) -> list[Conflict]:
    """Detections that contradict the declared goods: one conflict per class, the most confident detection.

    A detection is explained by a declared item whose tariff code starts with one of the class's chapters
    (and, when the class needs a permit, that item carries one). Classes without an enforced rule never
    conflict. A rule without its own confidence uses `alarm_threshold`, the model's operating point.
    """
    by_label = {r.label: r for r in rules}
    best: dict[str, Detection] = {}
    for d in detections:
        rule = by_label.get(d.label)
        if rule is None or not rule.enforce or d.score < rule.threshold(alarm_threshold):
            continue
        if d.label not in best or d.score > best[d.label].score:
            best[d.label] = d
    out: list[Conflict] = []
    summary = declared_summary(items)
    for label, d in best.items():
        rule = by_label[label]
        matching = [i for i in items if any(i.tariff_code.startswith(c) for c in rule.chapters)]
        detail = {"label": label, "score": round(d.score, 4), "box": d.box.as_list(), "chapters": list(rule.chapters)}
        word = CLASS_WORDS.get(label, label.replace("_", " "))
        score = f"{d.score:.2f}"
        if not matching:
            reason = t_plain(
                "{label_text} detected with confidence {score}; declared: {declared_text}",
                label_text=word,
                score=score,
                declared_text=summary,
            )
            out.append(Conflict(d, "declared_vs_seen", reason, detail))
        elif rule.needs_permit and not any(i.permits for i in matching):
            lines = ", ".join(str(i.line_no) for i in matching)
            reason = t_plain(
                "{label_text} detected with confidence {score}; declared in line {lines} without a permit",
                label_text=word,
                score=score,
                lines=lines,
            )
            out.append(Conflict(d, "permit_missing", reason, detail | {"lines": lines}))
    out.sort(key=lambda c: -c.detection.score)
    return out


def items_from_payload(payload: Mapping[str, Any]) -> list[DeclaredItem]:
    """The declared lines of a stored declaration payload (the clearance slice's JSON)."""
    out = []
    for n, item in enumerate(payload.get("items") or [], start=1):
        out.append(
            DeclaredItem(
                int(item.get("line_no") or n),
                str(item.get("description") or ""),
                str(item.get("tariff_code") or ""),
                tuple(str(p) for p in item.get("permits") or ()),
            )
        )
    return out

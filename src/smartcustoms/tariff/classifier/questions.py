"""Progressive questions: when the top candidates are close, ask the question whose answer best separates them
(largest expected drop in entropy over the candidates' probabilities), narrow, repeat.

Pure: works on (code, probability, own text) triples; the session store lives in `service`.
Questions are drawn from the candidates' own texts: the heading they fall under, what they are made of, and
distinguishing words ("knitted", "for retail sale", "frozen") asked as yes/no.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from smartcustoms.platform.i18n import t
from smartcustoms.tariff.classifier.text import tokens

# Labels and prompts are messages (t()): stored in English in the session, translated on display.
MATERIALS: dict[str, tuple[str, ...]] = {
    t("cotton"): ("cotton",),
    t("wool or fine animal hair"): ("wool", "hair"),
    t("synthetic or man-made fibres"): ("synthetic", "man", "artificial", "polyester", "nylon"),
    t("silk"): ("silk",),
    t("leather"): ("leather",),
    t("plastics"): ("plastic", "polymer"),
    t("rubber"): ("rubber",),
    t("iron or steel"): ("iron", "steel"),
    t("aluminium"): ("aluminium",),
    t("copper"): ("copper",),
    t("wood"): ("wood", "wooden"),
    t("paper or paperboard"): ("paper", "paperboard"),
    t("glass"): ("glass",),
    t("ceramic or porcelain"): ("ceramic", "porcelain", "china"),
}
# Distinguishing words asked as yes/no (the word must appear in some candidates' texts, not all).
ASK: dict[str, str] = {
    "knitted": t("Is it knitted?"),
    "crocheted": t("Is it crocheted?"),
    "frozen": t("Is it frozen?"),
    "fresh": t("Is it fresh?"),
    "chilled": t("Is it chilled?"),
    "dried": t("Is it dried?"),
    "retail": t("Is it put up for retail sale?"),
    "electric": t("Is it electric?"),
    "portable": t("Is it portable?"),
    "children": t("Is it for children?"),
    "women": t("Is it for women or girls?"),
    "men": t("Is it for men or boys?"),
    "baby": t("Is it for babies?"),
    "printed": t("Is it printed?"),
    "bleached": t("Is it bleached?"),
    "roasted": t("Is it roasted?"),
    "alloy": t("Is it of an alloy?"),
    "parts": t("Is it a part?"),
    "motor": t("Does it have a motor?"),
    "household": t("Is it for household use?"),
    "sport": t("Is it for sport?"),
}
ASKABLE = tuple(ASK)
NONE = t("none of these")
YES, NO = t("yes"), t("no")


@dataclass(frozen=True)
class Option:
    label: str
    codes: frozenset[str]


@dataclass(frozen=True)
class Question:
    id: str
    prompt: str
    options: tuple[Option, ...]
    gain: float


@dataclass
class Narrowing:
    """The candidates' probabilities after the answers so far, and the trail of questions and answers."""

    probs: dict[str, float]
    texts: Mapping[str, str]
    headings: Mapping[str, str] = field(default_factory=dict)
    trail: list[tuple[str, str]] = field(default_factory=list)
    asked: set[str] = field(default_factory=set)

    def ranked(self) -> list[tuple[str, float]]:
        return sorted(self.probs.items(), key=lambda kv: -kv[1])


def entropy(ps: Sequence[float]) -> float:
    total = sum(ps)
    return -sum(p / total * math.log2(p / total) for p in ps if p > 0) if total > 0 else 0.0


def _gain(probs: Mapping[str, float], options: Sequence[Option]) -> float:
    total = sum(probs.values())
    before = entropy(list(probs.values()))
    after = 0.0
    for o in options:
        part = [probs[c] for c in o.codes if c in probs]
        if part:
            after += sum(part) / total * entropy(part)
    return before - after


def _partition(label_codes: list[tuple[str, set[str]]], all_codes: set[str]) -> tuple[Option, ...] | None:
    """Options from (label, codes) pairs, plus 'none of these' for the rest; None if it does not split."""
    covered: set[str] = set()
    opts = []
    for label, codes in label_codes:
        if codes and codes != all_codes:
            opts.append(Option(label, frozenset(codes)))
            covered |= codes
        elif codes == all_codes:
            return None
    rest = all_codes - covered
    if rest:
        opts.append(Option(NONE, frozenset(rest)))
    return tuple(opts) if len(opts) >= 2 else None


def candidate_questions(n: Narrowing) -> list[Question]:
    live = {c for c, p in n.probs.items() if p > 1e-4}
    words = {c: set(tokens(n.texts.get(c, ""))) for c in live}
    out: list[Question] = []
    heads: dict[str, set[str]] = {}
    for c in live:
        heads.setdefault(c[:4], set()).add(c)
    if len(heads) > 1 and "heading" not in n.asked:
        label_codes = [(f"{h} {n.headings.get(h, '')}".strip(), cs) for h, cs in sorted(heads.items())]
        opts = _partition(label_codes[:8], live)
        if opts:
            out.append(Question("heading", t("Which of these best describes the goods?"), opts, 0.0))
    if "material" not in n.asked:
        label_codes = [(label, {c for c in live if words[c] & set(keys)}) for label, keys in MATERIALS.items()]
        opts = _partition([lc for lc in label_codes if lc[1]], live)
        if opts:
            out.append(Question("material", t("What is it mainly made of?"), opts, 0.0))
    for w in ASKABLE:
        qid = f"word:{w}"
        if qid in n.asked:
            continue
        yes = {c for c in live if w in words[c]}
        if yes and yes != live:
            out.append(Question(qid, ASK[w], (Option(YES, frozenset(yes)), Option(NO, frozenset(live - yes))), 0.0))
    return [Question(q.id, q.prompt, q.options, round(_gain(n.probs, q.options), 4)) for q in out]


def next_question(n: Narrowing, confident: float = 0.8, min_gain: float = 0.05) -> Question | None:
    """The question with the largest information gain, or None when one candidate is clearly ahead."""
    ranked = n.ranked()
    if not ranked or ranked[0][1] / max(sum(n.probs.values()), 1e-12) >= confident:
        return None
    qs = [q for q in candidate_questions(n) if q.gain >= min_gain]
    return max(qs, key=lambda q: q.gain) if qs else None


def answer(n: Narrowing, q: Question, option: int, keep_out: float = 0.02) -> Narrowing:
    """Keep the chosen option's candidates (the others are down-weighted, not removed: answers can be wrong)."""
    chosen = q.options[option]
    probs = {c: p * (1.0 if c in chosen.codes else keep_out) for c, p in n.probs.items()}
    total = sum(probs.values()) or 1.0
    return Narrowing(
        {c: p / total for c, p in probs.items()},
        n.texts,
        n.headings,
        [*n.trail, (q.prompt, chosen.label)],
        n.asked | {q.id},
    )

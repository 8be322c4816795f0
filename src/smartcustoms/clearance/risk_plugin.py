"""The risk engine's active selectivity model as a lane assessor of the clearance core.

Clearance must keep running when the model cannot: if the registry has no active model the rule-based
lanes decide alone; if the model fails on a declaration, the declaration goes to documentary check with
that reason rather than being refused or released unseen.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from smartcustoms.clearance.lanes import DeclarationFacts, LaneAssessor, LaneDecision
from smartcustoms.clearance.lifecycle import Lane

log = logging.getLogger(__name__)
_lock = threading.Lock()
_loaded: dict[tuple[str, str], LaneAssessor] = {}


def registry_dir() -> Path:
    return Path(os.environ.get("SMARTCUSTOMS_RISK_REGISTRY", "var/risk/models"))


class RiskModelAssessor:
    """Adapts `risk.assessor.ModelLaneAssessor` (a mapping in, its own decision out) to `LaneAssessor`."""

    def __init__(self, inner: Any, version: str) -> None:
        self.inner = inner
        self.version = version

    def assess(self, facts: DeclarationFacts) -> LaneDecision:
        declaration = {
            "declaration_id": facts.key,
            "importer_id": facts.importer_id,
            "declarant_id": facts.declarant_id,
            "seller_id": facts.seller_id,
            "office": facts.office,
            "transport_mode": facts.transport_mode,
            "departure_country": facts.country_of_dispatch,
            "aeo": facts.aeo,
            "items": [
                {"hs_code": i.hs_code, "origin": i.origin, "net_mass_kg": i.net_mass_kg, "value": i.value}
                for i in facts.items
            ],
        }
        try:
            d = self.inner.assess(declaration)
        except Exception as exc:  # a model fault must not stop clearance
            log.exception("risk model %s failed", self.version)
            return LaneDecision(
                Lane.C2,
                0.5,
                (
                    f"Risk model {self.version} could not score this declaration ({exc.__class__.__name__}): documentary check",
                ),
                (self.version,),
            )
        return LaneDecision(Lane(d.lane), float(d.score), tuple(d.reasons), tuple(d.versions))


_ACTIVE_TTL_S = 5.0
_active: dict[str, tuple[float, str | None]] = {}


def _active_version(root: Path) -> str | None:
    """The registry's active version; the marker file is re-read at most every few seconds (hot path)."""
    now = time.monotonic()
    hit = _active.get(str(root))
    if hit and hit[0] > now:
        return hit[1]
    marker = root / "ACTIVE"
    version = marker.read_text().strip() if marker.exists() else None
    _active[str(root)] = (now + _ACTIVE_TTL_S, version)
    return version


def active_assessor(root: Path | None = None) -> LaneAssessor | None:
    """The assessor of the registry's active model (loaded once per version), or None when there is none."""
    root = root or registry_dir()
    version = _active_version(root)
    if version is None:
        return None
    key = (str(root), version)
    with _lock:
        if key in _loaded:
            return _loaded[key]
    try:
        from smartcustoms.risk.assessor import ModelLaneAssessor
        from smartcustoms.risk.registry import ModelRegistry

        assessor: LaneAssessor = RiskModelAssessor(ModelLaneAssessor(ModelRegistry(root).load(version)), version)
    except Exception:
        log.exception("risk model %s in %s could not be loaded; lanes come from rules alone", version, root)
        return None
    with _lock:
        _loaded.clear()
        _loaded[key] = assessor
    return assessor

"""Model registry: one directory per version under var/xray/models, an `ACTIVE` file naming the live one.

Like the risk models: versions are copied in once and never changed (each is checked against its hash on
load), rollback re-points `ACTIVE`, and every change is appended to `history.jsonl`. Without a registered
model the one shipped inside the package is used.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smartcustoms.platform.errors import NotFound, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.platform.settings import get_settings
from smartcustoms.xray.detector import CARD_FILE, XrayDetector


def default_root() -> Path:
    return get_settings().var_dir / "xray" / "models"


class ModelRegistry:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_root()

    def versions(self) -> list[dict[str, Any]]:
        """Cards of the registered versions, newest first (without training history), each with its operating
        point: the alarm threshold chosen for a false-alarm budget on held-out scans."""
        if not self.root.exists():
            return []
        out = []
        for d in self.root.iterdir():
            card = d / CARD_FILE
            if d.is_dir() and card.exists():
                data = json.loads(card.read_text())
                keys = ("version", "created_at", "classes", "training_data", "operating_point")
                out.append({k: data.get(k) for k in keys})
        return sorted(out, key=lambda m: (m.get("created_at") or "", m["version"]), reverse=True)

    def active_version(self) -> str | None:
        f = self.root / "ACTIVE"
        return f.read_text().strip() if f.exists() else None

    def active_dir(self) -> Path | None:
        v = self.active_version()
        return self.root / v if v else None

    def register(self, model_dir: Path, *, activate: bool = True) -> str:
        model = XrayDetector.load(model_dir)  # refuses other formats and bad hashes
        target = self.root / model.version_
        if not target.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.copytree(model_dir, target)
        self._log("register", model.version_)
        if activate:
            self.activate(model.version_)
        return model.version_

    def activate(self, version: str) -> None:
        if not (self.root / version / CARD_FILE).exists():
            known = ", ".join(m["version"] for m in self.versions()) or "none"
            raise NotFound(
                Problem(
                    "unknown_model",
                    ("version",),
                    t("Model {version} is not registered (known: {known})", version=repr(version), known=known),
                )
            )
        (self.root / "ACTIVE").write_text(version + "\n")
        self._log("activate", version)

    def _log(self, action: str, version: str) -> None:
        entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "action": action, "version": version}
        with (self.root / "history.jsonl").open("a") as f:
            f.write(json.dumps(entry) + "\n")

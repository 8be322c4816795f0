"""Directory-based model registry: one sub-directory per version, an `ACTIVE` file naming the live one.

Rollback is re-pointing `ACTIVE` at an earlier version; versions are never modified after registration
(each carries its content hash, checked on load), and every change is appended to `history.jsonl`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smartcustoms.platform.errors import NotFound, Problem
from smartcustoms.platform.i18n import t
from smartcustoms.risk.kcs import RiskInputError
from smartcustoms.risk.selectivity import SelectivityModel


class ModelRegistry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def versions(self) -> list[dict[str, Any]]:
        """Manifests of the registered versions, newest first."""
        if not self.root.exists():
            return []
        out = []
        for d in self.root.iterdir():
            m = d / "manifest.json"
            if d.is_dir() and m.exists():
                out.append(json.loads(m.read_text()))
        return sorted(out, key=lambda m: (m.get("created_at", ""), m["version"]), reverse=True)

    def active_version(self) -> str | None:
        f = self.root / "ACTIVE"
        return f.read_text().strip() if f.exists() else None

    def register(self, model_dir: str | Path, *, activate: bool = True) -> str:
        model = SelectivityModel.load(model_dir)  # checks kind and hash
        target = self.root / model.version
        if not target.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.copytree(model_dir, target)
        self._log("register", model.version)
        if activate:
            self.activate(model.version)
        return model.version

    def save_and_register(self, model: SelectivityModel, *, activate: bool = True) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            model.save(Path(tmp) / "m")
            return self.register(Path(tmp) / "m", activate=activate)

    def activate(self, version: str) -> None:
        if not (self.root / version / "manifest.json").exists():
            known = ", ".join(m["version"] for m in self.versions()) or "none"
            raise NotFound(
                Problem(
                    "not_found",
                    ("version",),
                    t("model version {version} is not registered (known: {known})", version=repr(version), known=known),
                )
            )
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "ACTIVE").write_text(version + "\n")
        self._log("activate", version)

    def load(self, version: str | None = None) -> SelectivityModel:
        v = version or self.active_version()
        if v is None:
            raise RiskInputError(Problem("no_model", ("registry",), t("no active model in {path}", path=self.root)))
        return SelectivityModel.load(self.root / v)

    def _log(self, action: str, version: str) -> None:
        entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "action": action, "version": version}
        with (self.root / "history.jsonl").open("a") as f:
            f.write(json.dumps(entry) + "\n")

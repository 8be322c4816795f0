"""The clearance core takes lanes from the risk engine's active model, and keeps running when it cannot."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from smartcustoms.clearance import risk_plugin
from smartcustoms.clearance.lanes import DeclarationFacts, ItemFacts
from smartcustoms.clearance.lifecycle import Lane
from smartcustoms.risk.kcs import from_kcs_frame
from smartcustoms.risk.registry import ModelRegistry
from smartcustoms.risk.selectivity import LanePolicy, SelectivityModel
from tests.clearance.conftest import Env, declaration
from tests.risk.conftest import make_kcs

FACTS = DeclarationFacts(
    key="TW1/L1",
    declaration_type="import",
    office="TWKHH",
    declarant_id="TW1",
    importer_id="TW1",
    seller_id="CN1",
    transport_mode="sea",
    country_of_dispatch="CN",
    customs_value=Decimal(90000),
    aeo=False,
    items=(ItemFacts(1, "851762", "CN", Decimal("12.5"), Decimal(90000)),),
)


@pytest.fixture(scope="module")
def fitted_model() -> SelectivityModel:
    frame = from_kcs_frame(make_kcs(1200, seed=5), require_labels=True)
    return SelectivityModel(n_estimators=20, policy=LanePolicy(exploration=0.05)).fit(frame)


@pytest.fixture
def registry(tmp_path: Path, fitted_model: SelectivityModel, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "models"
    ModelRegistry(root).save_and_register(fitted_model)
    monkeypatch.setenv("SMARTCUSTOMS_RISK_REGISTRY", str(root))
    return root


def test_no_registry_means_rules_alone(tmp_path: Path) -> None:
    assert risk_plugin.active_assessor(tmp_path / "nothing") is None


def test_active_model_decides_with_its_version(registry: Path, fitted_model: SelectivityModel) -> None:
    assessor = risk_plugin.active_assessor(registry)
    assert assessor is not None
    d = assessor.assess(FACTS)
    assert d.lane in set(Lane) and 0 <= d.score <= 1 and d.reasons
    assert fitted_model.version in d.versions


def test_model_fault_sends_to_documentary_check() -> None:
    class Broken:
        def assess(self, _declaration: object) -> object:
            raise RuntimeError("boom")

    d = risk_plugin.RiskModelAssessor(Broken(), "m-1").assess(FACTS)
    assert d.lane is Lane.C2 and "could not score" in d.reasons[0] and d.versions == ("m-1",)


def test_submission_records_model_version(env_sqlite: Env, registry: Path, fitted_model: SelectivityModel) -> None:
    body = env_sqlite.client.post("/declarations", json=declaration(), headers=env_sqlite.h("trader")).json()
    assert fitted_model.version in body["lane_versions"] and "lane-rules-1" in body["lane_versions"]


def test_unloadable_model_is_skipped(tmp_path: Path) -> None:
    root = tmp_path / "models"
    (root / "v-broken").mkdir(parents=True)
    (root / "ACTIVE").write_text("v-broken\n")
    assert risk_plugin.active_assessor(root) is None

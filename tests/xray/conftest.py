"""Fixtures: a tiny synthetic data set and a tiny trained model (seconds), shared by the module's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smartcustoms.xray import synth
from tests.clearance.conftest import env, env_sqlite  # noqa: F401  (fixtures reused by the API tests)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("xray-data")
    synth.generate(out, 10, 5, synth.Settings.named("easy", 128), difficulty="easy")
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    pytest.importorskip("torch")
    from smartcustoms.xray.datasets import load_coco
    from smartcustoms.xray.detector import XrayDetector

    det = XrayDetector(input_size=64, width=4, epochs=1, batch_size=4, seed=1)
    det.fit(load_coco(tiny_data), data_description="tiny test set")
    out = tmp_path_factory.mktemp("xray-model")
    det.save(out)
    yield out

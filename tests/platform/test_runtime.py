"""A warm start loads the tariff index before the first filing and freezes start-up objects for the collector."""

from __future__ import annotations

import gc

import pytest
from fastapi.testclient import TestClient

from smartcustoms.api import create_app
from smartcustoms.platform import runtime, settings


def test_warm_start_loads_index_and_settles_heap(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCUSTOMS_WARM_START", "1")
    settings.get_settings.cache_clear()
    gc.unfreeze()
    before = gc.get_threshold()
    try:
        with TestClient(create_app()) as client:
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold()[0] == runtime.YOUNG_THRESHOLD
            assert client.get("/docs").status_code == 200
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        monkeypatch.delenv("SMARTCUSTOMS_WARM_START")
        settings.get_settings.cache_clear()


def test_cold_start_leaves_collector_alone(sqlite_url: str) -> None:
    gc.unfreeze()
    with TestClient(create_app()):
        assert gc.get_freeze_count() == 0

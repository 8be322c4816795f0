"""Documents tests seal issuer keys with a throw-away master key (never a file in the working tree)."""

from __future__ import annotations

import base64
import os

import pytest


@pytest.fixture(autouse=True)
def _master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCUSTOMS_DOCUMENTS_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())

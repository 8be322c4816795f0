"""Every word a reader sees on the risk pages goes through gettext (the lead adds the translations)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcustoms.risk import pages
from tests.clearance.test_pages_i18n import untranslated

TEMPLATES = sorted(Path(pages.TEMPLATES).glob("**/*.html"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_risk_templates_have_no_literal_text(template: Path) -> None:
    assert untranslated(template.read_text(encoding="utf-8")) == []

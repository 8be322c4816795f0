"""Code lists a declaration is checked against: ISO countries and currencies, Incoterms 2020."""

from __future__ import annotations

from functools import lru_cache

from babel.numbers import list_currencies

from smartcustoms.platform.i18n import country_codes

INCOTERMS_2020 = frozenset({"EXW", "FCA", "FAS", "FOB", "CFR", "CIF", "CPT", "CIP", "DAP", "DPU", "DDP"})
FREIGHT_INCLUDED = frozenset({"CFR", "CIF", "CPT", "CIP", "DAP", "DPU", "DDP"})
"""Incoterms whose invoice price already carries the main carriage to the destination."""
INSURANCE_INCLUDED = frozenset({"CIF", "CIP", "DAP", "DPU", "DDP"})


countries = country_codes
"""ISO 3166-1 alpha-2 codes (one list for the platform: `platform.i18n.country_codes`)."""


@lru_cache(maxsize=1)
def currencies() -> frozenset[str]:
    return frozenset(code for code in list_currencies() if len(code) == 3 and code != "XXX")

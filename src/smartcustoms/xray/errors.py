"""The slice's one error type: every bad scan, dataset or model file is reported with a code and a path."""

from __future__ import annotations

from smartcustoms.platform.errors import DomainError


class XrayError(DomainError):
    """Bad image, annotation file or model directory (HTTP 422 unless told otherwise; CLI exit 2)."""

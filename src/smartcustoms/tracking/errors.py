"""The tracking slice's error type; undecodable device payloads raise its `DecodeError` flavour."""

from __future__ import annotations

from smartcustoms.platform.errors import DomainError, Problem


class TrackingError(DomainError):
    """Bad tracking input (files, trips, device payloads); carries code, field path and message."""


class DecodeError(TrackingError):
    """A device payload that cannot be decoded: the listener logs and counts it, never crashes."""

    def __init__(self, protocol: str, code: str, message: str):
        self.protocol = protocol
        self.reason = code
        super().__init__([Problem(f"decode.{code}", ("payload",), f"{protocol}: {message}")])

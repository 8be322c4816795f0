"""The tracking slice's error type; undecodable device payloads raise its `DecodeError` flavour."""

from __future__ import annotations

from smartcustoms.platform.errors import DomainError, Problem
from smartcustoms.platform.i18n import Msg, t


class TrackingError(DomainError):
    """Bad tracking input (files, trips, device payloads); carries code, field path and message."""


class DecodeError(TrackingError):
    """A device payload that cannot be decoded: the listener logs and counts it, never crashes.

    Messages that reach a person (OsmAnd over the API: `POST /tracking/ingest/osmand` answers with the
    problem) are `t()` messages and translate; the binary decoders' texts only reach the listener's log,
    its counters and the `tracking decode`/`samples` debugging commands, and stay in English."""

    def __init__(self, protocol: str, code: str, message: str):
        self.protocol = protocol
        self.reason = code
        text = (
            t("{protocol} device message: {message}", protocol=protocol, message=message)
            if isinstance(message, Msg)
            else f"{protocol}: {message}"
        )
        super().__init__([Problem(f"decode.{code}", ("payload",), text)])

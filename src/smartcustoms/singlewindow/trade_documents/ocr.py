"""Text of a scanned invoice: a PDF's own text layer (poppler's `pdftotext`), else pages rendered with
`pdftoppm` and read by Tesseract; images (PNG, JPEG, TIFF) go to Tesseract directly.

The binaries come from Debian: tesseract-ocr, tesseract-ocr-eng, tesseract-ocr-chi-tra, poppler-utils.
Each runs with a time limit in a private temporary folder; the format is told by the file's first bytes,
never by its name.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t
from smartcustoms.singlewindow.trade_documents.model import TradeDocumentError

MAX_BYTES = 10 * 1024 * 1024
MAX_PAGES = 5
DPI = 300
TIMEOUT_S = 60
LANGUAGES = os.environ.get("SMARTCUSTOMS_OCR_LANGUAGES", "eng+chi_tra")


@dataclass(frozen=True)
class Extracted:
    text: str
    format: str
    method: str
    """'pdf-text' (the PDF's text layer) or 'tesseract <languages>'."""
    pages: int


def sniff(content: bytes) -> str | None:
    """The file format from its magic bytes: pdf, png, jpeg, tiff, or None."""
    if content.startswith(b"%PDF-"):
        return "pdf"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if content.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if content[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def available() -> bool:
    return shutil.which("tesseract") is not None


@functools.lru_cache(maxsize=1)
def installed_languages() -> frozenset[str]:
    try:
        out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(line.strip() for line in out.stdout.splitlines()[1:] if line.strip())


def languages(asked: str | None = None) -> str:
    """The asked (default: configured) OCR languages that are installed (English at least)."""
    have = installed_languages()
    wanted = [lang for lang in (asked or LANGUAGES).split("+") if lang in have]
    return "+".join(wanted or ["eng"])


def _unavailable(tool: str) -> TradeDocumentError:
    return TradeDocumentError(
        Problem(
            "ocr_unavailable", ("file",), t("{tool} is not installed on this server; scans cannot be read", tool=tool)
        ),
        status=503,
    )


def _unreadable(message: str) -> TradeDocumentError:
    return TradeDocumentError(Problem("unreadable_scan", ("file",), message), status=422)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(args, cwd=cwd, capture_output=True, timeout=TIMEOUT_S, check=False)
    except FileNotFoundError as exc:
        raise _unavailable(args[0]) from exc
    except subprocess.TimeoutExpired as exc:
        raise _unreadable(
            t("{tool} took longer than {seconds} s; the scan is too large or damaged", tool=args[0], seconds=TIMEOUT_S)
        ) from exc


def _tesseract(image: Path, cwd: Path, langs: str) -> str:
    done = _run(["tesseract", str(image), "stdout", "-l", langs, "--psm", "6"], cwd)
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise _unreadable(t("The image could not be read: {error}", error=reason[-1] if reason else "tesseract failed"))
    return done.stdout.decode("utf-8", errors="replace")


def _check_image(content: bytes) -> None:
    """Pillow opens and fully decodes the image, so a truncated or corrupt file is refused clearly."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(content)) as im:
            im.load()
            if im.width < 50 or im.height < 50:
                raise _unreadable(
                    t("The image is {width}×{height} pixels, too small to read", width=im.width, height=im.height)
                )
            if im.width * im.height > 80_000_000:
                raise _unreadable("The image is larger than 80 megapixels")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _unreadable(t("The image file is damaged or incomplete ({error})", error=exc)) from exc


def extract_text(content: bytes, langs: str | None = None) -> Extracted:
    """The text of a scanned document (`langs`: Tesseract languages like 'eng+chi_tra', default the
    configured ones); raises a 4xx problem for unknown formats or unreadable files."""
    langs = languages(langs)
    if not content:
        raise _unreadable("The file is empty")
    if len(content) > MAX_BYTES:
        raise TradeDocumentError(
            Problem("too_large", ("file",), t("Scans are limited to {limit} MiB", limit=MAX_BYTES // (1024 * 1024))),
            status=413,
        )
    kind = sniff(content)
    if kind is None:
        raise TradeDocumentError(
            Problem("unsupported_format", ("file",), t("Unknown file format; send a PDF, PNG, JPEG or TIFF scan")),
            status=415,
        )
    with tempfile.TemporaryDirectory(prefix="sc-ocr-") as folder:
        cwd = Path(folder)
        if kind != "pdf":
            _check_image(content)
            if not available():
                raise _unavailable("tesseract")
            path = cwd / f"scan.{kind}"
            path.write_bytes(content)
            return Extracted(_tesseract(path, cwd, langs), kind, f"tesseract {langs}", 1)
        pdf = cwd / "scan.pdf"
        pdf.write_bytes(content)
        if shutil.which("pdftotext") is None:
            raise _unavailable("pdftotext (poppler-utils)")
        done = _run(["pdftotext", "-layout", "-l", str(MAX_PAGES), str(pdf), "-"], cwd)
        if done.returncode != 0:
            raise _unreadable("The PDF is damaged or encrypted: " + done.stderr.decode(errors="replace").strip()[:200])
        text = done.stdout.decode("utf-8", errors="replace")
        if sum(ch.isalnum() for ch in text) >= 40:
            return Extracted(text, "pdf", "pdf-text", text.count("\f") or 1)
        if not available():
            raise _unavailable("tesseract")
        rendered = _run(["pdftoppm", "-r", str(DPI), "-l", str(MAX_PAGES), "-png", str(pdf), str(cwd / "page")], cwd)
        pages = sorted(cwd.glob("page*.png"))
        if rendered.returncode != 0 or not pages:
            raise _unreadable("The PDF pages could not be rendered: " + rendered.stderr.decode(errors="replace")[:200])
        texts = [_tesseract(page, cwd, langs) for page in pages]
        return Extracted("\f".join(texts), "pdf", f"tesseract {langs}", len(pages))

"""Safe decoding of scans: PNG, JPEG or TIFF (8-bit colour, 8/16-bit grey), size checked before decoding.

Scanners write 16-bit grey TIFFs and false-colour PNG/JPEGs; we turn both into 8-bit RGB with the empty
belt bright (high transmission), and downscale big scans so a crafted or huge file can never exhaust memory.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from smartcustoms.platform.errors import Problem
from smartcustoms.platform.i18n import t
from smartcustoms.xray.errors import XrayError

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "TIFF": "image/tiff"}
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
"""How the supported formats start: such a file that cannot be read is corrupt, not of another format."""
MAX_BYTES = 64 * 1024 * 1024
MAX_PIXELS = 64_000_000
"""Larger images are refused before their pixels are decoded (a 8000×8000 scan is the largest we take)."""
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own bomb guard at the same limit (warning above it, error at 2×)
MAX_SIDE = 2048
"""Decoded scans are downscaled to at most this side; detections are reported in original pixels."""


@dataclass(frozen=True)
class Scan:
    """A decoded scan: 8-bit RGB pixels at working size, and the factor back to the original pixels."""

    rgb: np.ndarray
    width: int
    height: int
    format: str
    mode: str
    scale: float
    """original pixels per working pixel (>= 1)."""

    @property
    def media_type(self) -> str:
        return FORMATS[self.format]


def _grey_to_rgb(arr: np.ndarray) -> np.ndarray:
    """Window a grey image (any bit depth) to 8 bits between its 0.5 and 99.5 percentiles."""
    a = arr.astype(np.float32)
    lo, hi = np.percentile(a, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    g = np.clip((a - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


def decode(data: bytes, *, name: str = "scan", max_side: int = MAX_SIDE) -> Scan:
    """Decode image bytes or raise XrayError listing why (unsupported, corrupt, truncated, too large)."""
    path: tuple[str | int, ...] = ("file", name)
    if not data:
        raise XrayError(Problem("empty_file", path, t("The file is empty")))
    if len(data) > MAX_BYTES:
        raise XrayError(
            Problem("file_too_large", path, t("The file is over {megabytes} MB", megabytes=MAX_BYTES // (1024 * 1024)))
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im: Image.Image = Image.open(io.BytesIO(data))
            fmt = im.format or ""
            if fmt not in FORMATS:
                raise XrayError(
                    Problem(
                        "unsupported_format",
                        path,
                        t("Format {format} is not supported; send PNG, JPEG or TIFF", format=fmt or "?"),
                    )
                )
            w, h = im.size
            if w < 16 or h < 16:
                raise XrayError(
                    Problem(
                        "image_too_small",
                        path,
                        t("The image is {width}×{height}; at least 16×16 is needed", width=w, height=h),
                    )
                )
            if w * h > MAX_PIXELS:
                raise XrayError(
                    Problem(
                        "image_too_large",
                        path,
                        t(
                            "The image is {width}×{height}; at most {pixels} pixels are accepted",
                            width=w,
                            height=h,
                            pixels=f"{MAX_PIXELS:,}",
                        ),
                    )
                )
            mode = im.mode
            scale = max(1.0, max(w, h) / max_side)
            if scale > 1 and fmt == "JPEG":
                im.draft("RGB", (int(w / scale), int(h / scale)))  # decode JPEG at a reduced size
            im.load()
    except XrayError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise XrayError(
            Problem(
                "image_too_large",
                path,
                t("The image claims more than {pixels} pixels; refused before decoding", pixels=f"{MAX_PIXELS:,}"),
            )
        ) from None
    except UnidentifiedImageError:
        if data.startswith(SIGNATURES):  # a PNG, JPEG or TIFF start Pillow cannot follow: cut short or damaged
            raise XrayError(
                Problem("corrupt_image", path, t("The image is corrupt or truncated (its header cannot be read)"))
            ) from None
        raise XrayError(Problem("unsupported_format", path, t("Not a PNG, JPEG or TIFF image"))) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise XrayError(
            Problem("corrupt_image", path, t("The image is corrupt or truncated ({error})", error=str(exc)))
        ) from None
    if scale > 1:
        target = (max(1, round(w / scale)), max(1, round(h / scale)))
        if im.mode in ("I;16", "I;16B", "I;16L"):
            im = im.convert("I")
        im = im.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
    if im.mode in ("RGB",):
        rgb = np.asarray(im, dtype=np.uint8)
    elif im.mode in ("RGBA", "P", "CMYK", "YCbCr", "LAB", "HSV", "PA"):
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    elif im.mode in ("L", "LA", "1"):
        rgb = np.repeat(np.asarray(im.convert("L"), dtype=np.uint8)[:, :, None], 3, axis=2)
    elif im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        rgb = _grey_to_rgb(np.asarray(im))
    else:
        raise XrayError(Problem("unsupported_mode", path, t("Pixel mode {mode} is not supported", mode=im.mode)))
    return Scan(np.ascontiguousarray(rgb), w, h, fmt, mode, w / rgb.shape[1])


def to_png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def to_jpeg(rgb: np.ndarray, max_side: int = 1024, quality: int = 85) -> bytes:
    """A display copy browsers can show (TIFF and 16-bit grey are not)."""
    im = Image.fromarray(rgb)
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def heat_png(heat: np.ndarray) -> bytes:
    """A heat map (0..1, any size) as a transparent-to-red PNG to lay over the scan."""
    h = np.clip(heat, 0.0, 1.0)
    rgba = np.zeros((*h.shape, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[..., 1] = (np.clip(1.0 - 2 * h, 0, 1) * 200).astype(np.uint8)
    rgba[..., 3] = (np.sqrt(h) * 200).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def read_file(path: str) -> Scan:
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise XrayError(Problem("missing_file", ("file", str(path)), t("No such image file")))
    if p.stat().st_size > MAX_BYTES:
        raise XrayError(
            Problem(
                "file_too_large",
                ("file", str(path)),
                t("The file is over {megabytes} MB", megabytes=MAX_BYTES // (1024 * 1024)),
            )
        )
    return decode(p.read_bytes(), name=str(path))

"""Bad scans are refused with clear problems; 16-bit grey and huge scans are handled without blowing memory."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from smartcustoms.xray import imaging
from smartcustoms.xray.errors import XrayError


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG") if mode else Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _codes(data: bytes) -> list[str]:
    with pytest.raises(XrayError) as err:
        imaging.decode(data)
    return [p.code for p in err.value.problems]


def test_colour_png_and_jpeg_decode() -> None:
    arr = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    scan = imaging.decode(_png(arr))
    assert scan.format == "PNG" and scan.rgb.shape == (40, 60, 3) and np.array_equal(scan.rgb, arr)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    assert imaging.decode(buf.getvalue()).media_type == "image/jpeg"


def test_sixteen_bit_grey_tiff_is_windowed_to_rgb() -> None:
    ramp = np.tile(np.linspace(1000, 60000, 64, dtype=np.uint16), (32, 1))
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, format="TIFF")
    scan = imaging.decode(buf.getvalue())
    assert scan.format == "TIFF" and scan.mode.startswith("I;16")
    assert scan.rgb.shape == (32, 64, 3) and scan.rgb[:, 0].max() < 10 and scan.rgb[:, -1].min() > 245
    assert np.array_equal(scan.rgb[..., 0], scan.rgb[..., 2])


def test_big_scan_is_downscaled_and_sizes_reported_in_original_pixels() -> None:
    scan = imaging.decode(_png(np.zeros((600, 3000), dtype=np.uint8)), max_side=1000)
    assert (scan.width, scan.height) == (3000, 600)
    assert scan.rgb.shape[:2] == (200, 1000) and scan.scale == pytest.approx(3.0)


def test_bad_inputs_are_refused_with_reasons() -> None:
    good = _png(np.zeros((64, 64, 3), dtype=np.uint8))
    assert _codes(b"") == ["empty_file"]
    assert _codes(b"not an image at all") == ["unsupported_format"]
    assert _codes(good[: len(good) // 2]) == ["corrupt_image"]
    gif = io.BytesIO()
    Image.new("L", (32, 32)).save(gif, format="GIF")
    assert _codes(gif.getvalue()) == ["unsupported_format"]
    assert _codes(_png(np.zeros((8, 8), dtype=np.uint8))) == ["image_too_small"]


def test_pixel_bomb_is_refused_before_decoding() -> None:
    """A tiny PNG whose header claims 100000×100000 pixels: refused from the header alone."""
    good = _png(np.zeros((16, 16), dtype=np.uint8))
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    forged = good[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + good[33:]
    assert _codes(forged) == ["image_too_large"]


def test_display_copies() -> None:
    rgb = np.full((100, 50, 3), 200, dtype=np.uint8)
    assert Image.open(io.BytesIO(imaging.to_jpeg(rgb))).format == "JPEG"
    heat = Image.open(io.BytesIO(imaging.heat_png(np.linspace(0, 1, 64).reshape(8, 8))))
    assert heat.mode == "RGBA" and heat.size == (8, 8)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00"]))
def test_any_bytes_decode_or_fail_cleanly(data: bytes, magic: bytes) -> None:
    try:
        imaging.decode(magic + data)
    except XrayError as exc:
        assert exc.problems and exc.problems[0].code in {
            "empty_file",
            "unsupported_format",
            "corrupt_image",
            "image_too_small",
            "image_too_large",
            "unsupported_mode",
        }

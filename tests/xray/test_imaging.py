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


def _save(arr: np.ndarray, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_truncated_files_of_each_format_are_corrupt_not_unsupported() -> None:
    arr = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    for data in (
        _save(arr, "JPEG"),
        _save(arr, "TIFF"),
        _save(arr, "TIFF", compression="tiff_lzw"),  # its directory sits at the end: lost when cut short
        _save(arr, "PNG"),
    ):
        assert _codes(data[: len(data) // 2]) == ["corrupt_image"]
        assert _codes(data[:12]) == ["corrupt_image"]
    for fmt in ("BMP", "WEBP", "GIF"):
        assert _codes(_save(arr, fmt)) == ["unsupported_format"], fmt


def test_a_forged_jpeg_header_claiming_a_huge_image_is_refused() -> None:
    jpeg = bytearray(_save(np.zeros((64, 64, 3), dtype=np.uint8), "JPEG"))
    sof = jpeg.find(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2
    assert _codes(bytes(jpeg)) == ["image_too_large"]


def test_sixteen_bit_scans_of_every_kind_are_downscaled_under_the_limit() -> None:
    ramp = np.tile(np.linspace(0, 65535, 3000, dtype=np.uint16), (600, 1))
    big_endian = ramp.byteswap().view(ramp.dtype.newbyteorder())
    for data in (_save(ramp, "TIFF"), _save(big_endian, "TIFF"), _save(ramp, "PNG")):
        scan = imaging.decode(data, max_side=1000)
        assert (scan.width, scan.height) == (3000, 600) and scan.rgb.shape == (200, 1000, 3)
        assert scan.rgb[:, :5].max() < 10 and scan.rgb[:, -5:].min() > 245, "dark to bright, windowed"
    jpeg = imaging.decode(_save(np.zeros((600, 800, 3), dtype=np.uint8), "JPEG"), max_side=200)
    assert jpeg.rgb.shape == (150, 200, 3) and jpeg.scale == pytest.approx(4.0), "decoded at reduced size"
    strip = imaging.decode(_save(np.zeros((20, 8000), dtype=np.uint8), "PNG"))
    assert strip.rgb.shape[1] == imaging.MAX_SIDE and strip.rgb.shape[0] >= 1


def test_other_pixel_modes_become_rgb() -> None:
    rgb = np.random.default_rng(2).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    cmyk = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(cmyk, format="JPEG")
    floats = _save(np.random.default_rng(3).random((40, 40)).astype(np.float32), "TIFF")
    one_bit = io.BytesIO()
    Image.fromarray(rgb[..., 0] > 128).save(one_bit, format="TIFF")
    for data in (cmyk.getvalue(), floats, one_bit.getvalue(), _png(np.zeros((40, 40, 4), dtype=np.uint8))):
        scan = imaging.decode(data)
        assert scan.rgb.shape == (40, 40, 3) and scan.rgb.dtype == np.uint8

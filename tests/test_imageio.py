"""Tests for idproof.imageio.load_image: real faces, every colour mode, and hostile inputs."""

from __future__ import annotations

import io
import os
import random
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from idproof.errors import ImageError
from idproof.imageio import describe_source, load_image

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FACES = DATA / "faces"
LFW_JPEG = FACES / "lfw" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
BBT_PNG = FACES / "faceapi_bbt" / "amy" / "amy1.png"

pytestmark = pytest.mark.skipif(not LFW_JPEG.is_file(), reason=f"shared face data not found at {FACES}")


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the gray versions of two same-shape images."""
    ga = a.astype(np.float64).mean(axis=-1).ravel() if a.ndim == 3 else a.astype(np.float64).ravel()
    gb = b.astype(np.float64).mean(axis=-1).ravel() if b.ndim == 3 else b.astype(np.float64).ravel()
    return float(np.corrcoef(ga, gb)[0, 1])


def _assert_rgb(arr: np.ndarray, shape: tuple[int, int]) -> None:
    assert arr.dtype == np.uint8
    assert arr.shape == (*shape, 3)
    assert arr.flags["C_CONTIGUOUS"]


@pytest.fixture(scope="module")
def face_rgb() -> np.ndarray:
    with Image.open(LFW_JPEG) as im:
        return np.asarray(im.convert("RGB")).copy()


@pytest.fixture(scope="module")
def face_bytes() -> bytes:
    return LFW_JPEG.read_bytes()


def _raises(source: object, *words: str, **kw: int) -> ImageError:
    with pytest.raises(ImageError) as info:
        load_image(source, **kw)  # type: ignore[arg-type]
    err = info.value
    msg = err.message.lower()
    for w in words:
        assert w.lower() in msg, f"{w!r} not in {err.message!r}"
    assert err.fix, "every ImageError must say how to fix it"
    return err


# --- real files -----------------------------------------------------------------------------


def test_real_jpeg_matches_opencv() -> None:
    arr = load_image(LFW_JPEG)
    _assert_rgb(arr, (250, 250))
    ref = cv2.imread(str(LFW_JPEG), cv2.IMREAD_COLOR)[..., ::-1]
    assert np.abs(arr.astype(np.int16) - ref.astype(np.int16)).mean() < 2.0


def test_str_path_and_bytes_agree(face_bytes: bytes) -> None:
    from_path = load_image(str(LFW_JPEG))
    np.testing.assert_array_equal(from_path, load_image(face_bytes))
    np.testing.assert_array_equal(from_path, load_image(bytearray(face_bytes)))
    np.testing.assert_array_equal(from_path, load_image(memoryview(face_bytes)))


def test_real_png_loads() -> None:
    arr = load_image(BBT_PNG)
    with Image.open(BBT_PNG) as im:
        ref = np.asarray(im.convert("L"))
    _assert_rgb(arr, ref.shape)
    # a gray PNG comes out with three identical channels equal to the source
    np.testing.assert_array_equal(arr[..., 0], ref)
    np.testing.assert_array_equal(arr[..., 0], arr[..., 2])


# --- broken / hostile inputs ----------------------------------------------------------------


def test_text_bytes_are_not_an_image() -> None:
    secret = b"hello, this is definitely not an image file\n" * 4
    err = _raises(secret, "not an image")
    assert "hello" not in str(err)  # never echo the content


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    _raises(p, "empty")
    _raises(b"", "empty")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    _raises(tmp_path / "nope.jpg", "not found", "nope.jpg")
    _raises(tmp_path, "not a regular file")


def test_truncated_jpeg(face_bytes: bytes) -> None:
    err = _raises(face_bytes[: len(face_bytes) // 2], "truncated")
    assert "\\x" not in str(err)


def test_random_garbage_never_escapes_as_other_exception() -> None:
    rng = random.Random(1234)
    _raises(bytes(rng.getrandbits(8) for _ in range(4096)), "not an image")
    # garbage behind real magic numbers reaches the decoders: still only ImageError
    magics = [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"II*\x00", b"RIFF\x00\x00\x00\x00WEBP"]
    for magic in magics:
        for n in (0, 10, 100, 2000):
            with pytest.raises(ImageError) as info:
                load_image(magic + bytes(rng.getrandbits(8) for _ in range(n)))
            assert info.value.fix


def test_corrupted_real_jpeg_bytes_only_raise_image_error(face_bytes: bytes) -> None:
    rng = random.Random(7)
    for _ in range(30):
        data = bytearray(face_bytes)
        for _ in range(20):
            data[rng.randrange(2, len(data))] = rng.getrandbits(8)
        try:
            arr = load_image(bytes(data))
        except ImageError as e:
            assert e.fix
        else:  # JPEG often survives bit flips; then it must still be a proper image
            _assert_rgb(arr, (250, 250))


def test_decompression_bomb_png_is_refused_cheaply() -> None:
    bomb = _encode(Image.new("1", (20000, 20000)), "PNG")
    assert len(bomb) < 1_000_000  # tiny on disk ...
    tracemalloc.start()
    try:
        err = _raises(bomb, "too many pixels", "20000x20000", "limit", "40,000,000")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20  # ... and refused without decoding 400 megapixels
    assert "megapixels" in err.fix


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose SOF header is patched to claim width x height (a header-only bomb)."""
    data = bytearray(_encode(Image.new("L", (64, 64), 128), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def test_decompression_bomb_jpeg_header() -> None:
    # above Pillow's own guard (raised inside Image.open): still names WxH and our limit
    _raises(_jpeg_claiming(60000, 60000), "too many pixels", "60000x60000", "40,000,000")
    # below Pillow's guard but above ours: caught by our header check before decoding
    _raises(_jpeg_claiming(8000, 6000), "too many pixels", "8000x6000", "40,000,000")
    # a caller's tighter limit is honoured
    _raises(_jpeg_claiming(4000, 3000), "4000x3000", "10,000,000", max_pixels=10_000_000)


def test_pixel_limit_reports_dimensions(face_bytes: bytes) -> None:
    err = _raises(face_bytes, "250x250", "limit", "50,000", max_pixels=50_000)
    assert "megapixel" in err.fix.lower()


def test_oversize_bytes_and_file(face_bytes: bytes, tmp_path: Path) -> None:
    _raises(face_bytes, "too large", "1,000 bytes", max_bytes=1000)
    p = tmp_path / "big.jpg"
    p.write_bytes(face_bytes)
    _raises(p, "too large", "big.jpg", max_bytes=1000)
    assert load_image(p, max_bytes=len(face_bytes)).shape == (250, 250, 3)


def test_too_small_image() -> None:
    tiny = _encode(Image.new("RGB", (10, 10), (128, 64, 32)), "PNG")
    _raises(tiny, "too small", "usable face", "10x10")
    _raises(np.zeros((10, 10, 3), np.uint8), "too small")


def test_disallowed_format_is_refused(face_rgb: np.ndarray) -> None:
    # Pillow can read PPM, but intake only accepts common photo formats
    _raises(_encode(Image.fromarray(face_rgb), "PPM"), "unrecognised format")


# --- colour modes ---------------------------------------------------------------------------


def test_cmyk_jpeg(face_rgb: np.ndarray) -> None:
    data = _encode(Image.fromarray(face_rgb).convert("CMYK"), "JPEG", quality=95)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "CMYK"
    arr = load_image(data)
    _assert_rgb(arr, (250, 250))
    assert _corr(arr, face_rgb) > 0.9
    assert np.abs(arr.astype(int) - face_rgb.astype(int)).mean() < 12


def test_16bit_gray_png(face_rgb: np.ndarray) -> None:
    gray8 = np.asarray(Image.fromarray(face_rgb).convert("L"))
    gray16 = gray8.astype(np.uint16) * 257  # full 16-bit range
    data = _encode(Image.fromarray(gray16), "PNG")
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode.startswith("I")
    arr = load_image(data)
    _assert_rgb(arr, (250, 250))
    assert arr.std() > 20 and (arr == 255).mean() < 0.05  # visible contrast, not clipped to white
    np.testing.assert_array_equal(arr[..., 1], gray8)  # (v * 257) >> 8 == v
    assert _corr(arr, face_rgb) > 0.9


def test_8bit_gray_png(face_rgb: np.ndarray) -> None:
    gray = Image.fromarray(face_rgb).convert("L")
    arr = load_image(_encode(gray, "PNG"))
    _assert_rgb(arr, (250, 250))
    np.testing.assert_array_equal(arr[..., 0], np.asarray(gray))
    assert _corr(arr, face_rgb) > 0.9


def test_rgba_png_composites_over_white(face_rgb: np.ndarray) -> None:
    rgba = np.dstack([face_rgb, np.full((250, 250), 255, np.uint8)])
    rgba[:50, :, 3] = 0  # top band fully transparent
    arr = load_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    _assert_rgb(arr, (250, 250))
    assert (arr[:50] == 255).all()
    np.testing.assert_array_equal(arr[50:], face_rgb[50:])


def test_palette_png(face_rgb: np.ndarray) -> None:
    pal = Image.fromarray(face_rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    data = _encode(pal, "PNG")
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "P"
    arr = load_image(data)
    _assert_rgb(arr, (250, 250))
    assert _corr(arr, face_rgb) > 0.9


def test_la_png_and_gif_first_frame(face_rgb: np.ndarray) -> None:
    la = Image.fromarray(face_rgb).convert("LA")
    arr = load_image(_encode(la, "PNG"))
    _assert_rgb(arr, (250, 250))
    assert _corr(arr, face_rgb) > 0.9

    first = Image.fromarray(face_rgb)
    second = Image.new("RGB", (250, 250), (0, 0, 0))
    gif = _encode(first, "GIF", save_all=True, append_images=[second])
    arr = load_image(gif)
    _assert_rgb(arr, (250, 250))
    assert _corr(arr, face_rgb) > 0.9  # the face, not the black second frame


# --- EXIF orientation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "stored"),
    [
        (6, lambda a: np.rot90(a, k=1)),  # viewer rotates 90° CW to show it upright
        (8, lambda a: np.rot90(a, k=-1)),  # viewer rotates 90° CCW
        (3, lambda a: np.rot90(a, k=2)),
    ],
)
def test_exif_rotated_jpeg(face_rgb: np.ndarray, orientation: int, stored) -> None:  # type: ignore[no-untyped-def]
    upright = face_rgb[:, :200]  # non-square, so a wrong rotation shows in the shape
    pixels = np.ascontiguousarray(stored(upright))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(Image.fromarray(pixels), "JPEG", quality=95, exif=exif.tobytes())
    arr = load_image(data)
    _assert_rgb(arr, upright.shape[:2])
    assert _corr(arr, upright) > 0.95


# --- ndarray inputs -------------------------------------------------------------------------


def test_ndarray_rgb_is_copied(face_rgb: np.ndarray) -> None:
    arr = load_image(face_rgb)
    np.testing.assert_array_equal(arr, face_rgb)
    assert not np.shares_memory(arr, face_rgb)
    # non-contiguous views come out contiguous
    view = face_rgb[::2, ::2]
    out = load_image(view)
    _assert_rgb(out, (125, 125))
    np.testing.assert_array_equal(out, view)


def test_ndarray_gray_uint16_float_rgba(face_rgb: np.ndarray) -> None:
    gray = np.asarray(Image.fromarray(face_rgb).convert("L"))

    out = load_image(gray)
    _assert_rgb(out, (250, 250))
    np.testing.assert_array_equal(out[..., 2], gray)

    out16 = load_image(gray.astype(np.uint16) * 257)
    np.testing.assert_array_equal(out16, out)

    outf = load_image(face_rgb.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(outf, face_rgb)

    rgba = np.dstack([face_rgb, np.full((250, 250), 255, np.uint8)])
    np.testing.assert_array_equal(load_image(rgba), face_rgb)
    rgba[..., 3] = 0
    assert (load_image(rgba) == 255).all()

    np.testing.assert_array_equal(load_image(gray[..., None]), out)


@pytest.mark.parametrize(
    ("bad", "word"),
    [
        (np.zeros((64,), np.uint8), "shape"),
        (np.zeros((2, 64, 64, 3), np.uint8), "shape"),
        (np.zeros((64, 64, 2), np.uint8), "shape"),
        (np.zeros((64, 64, 3), dtype=object), "dtype"),
        (np.zeros((64, 64, 3), np.int32), "dtype"),
        (np.zeros((64, 64, 3), bool), "dtype"),
        (np.full((64, 64, 3), 2.0, np.float32), "[0, 1]"),
        (np.full((64, 64, 3), np.nan, np.float64), "[0, 1]"),
    ],
)
def test_bad_ndarray(bad: np.ndarray, word: str) -> None:
    _raises(bad, word)


def test_unsupported_source_type() -> None:
    _raises([[1, 2], [3, 4]], "unsupported")
    _raises(12345, "unsupported")


# --- misc -----------------------------------------------------------------------------------


def test_describe_source(face_bytes: bytes) -> None:
    assert describe_source(Path("/secret/user/photo.jpg")) == "file 'photo.jpg'"
    assert describe_source(face_bytes) == f"uploaded bytes ({len(face_bytes)} bytes)"
    assert "shape (2, 3)" in describe_source(np.zeros((2, 3)))


def test_never_writes_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, face_bytes: bytes) -> None:
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "f.jpg"
    p.write_bytes(face_bytes)
    load_image(p)
    load_image(face_bytes)
    assert sorted(os.listdir(tmp_path)) == ["f.jpg"]


def test_truncated_jpeg_refused_even_if_pillow_was_told_to_accept_them(face_bytes: bytes, monkeypatch) -> None:
    # face_recognition (the benchmark peer) sets this global at import time.
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    _raises(face_bytes[: len(face_bytes) // 2], "truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for the other library

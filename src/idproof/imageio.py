"""The one way images enter idproof: ``load_image`` -> upright RGB uint8 (H, W, 3).

This is the intake path for uploaded selfies and ID document photos, so it is defensive:
size limits are checked before anything is decoded, only a short list of raster formats
is accepted, every failure becomes an :class:`~idproof.errors.ImageError` that says what is
wrong and how to fix it, and no message ever contains image bytes. Nothing is written to disk.
"""

from __future__ import annotations

import io
import os
import re
import stat
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from idproof.errors import ImageError

__all__ = ["ALLOWED_FORMATS", "MIN_SIDE", "ImageSource", "describe_source", "load_image"]

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray]

# Plain raster formats only: Pillow can also open e.g. EPS (which shells out to Ghostscript)
# and many exotic parsers; an identity-proofing upload has no business reaching those.
# (Phone "MPO" JPEGs are opened by the JPEG entry; "MPO" itself is not an opener name.)
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF")
MIN_SIDE = 32  # below this there cannot be a usable face

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000

_FIX_FORMAT = "Send a JPEG or PNG photo under 20 MB."
_FIX_RETAKE = "Take or export the photo again and upload the complete file as a JPEG or PNG."


def describe_source(source: object) -> str:
    """A short, log-safe description of ``source`` for error messages (never its content)."""
    if isinstance(source, (str, os.PathLike)):
        try:
            return f"file {Path(os.fsdecode(source)).name!r}"  # base name only: paths can hold user names
        except (TypeError, ValueError):
            return "file"
    if isinstance(source, memoryview):
        return f"uploaded bytes ({source.nbytes} bytes)"
    if isinstance(source, (bytes, bytearray)):
        return f"uploaded bytes ({len(source)} bytes)"
    if isinstance(source, np.ndarray):
        return f"array of shape {source.shape} and dtype {source.dtype}"
    return f"object of type {type(source).__name__}"


def load_image(
    source: ImageSource,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Return an upright RGB uint8 array of shape (H, W, 3), C-contiguous.

    ``source`` is a file path, the raw bytes of an encoded image, or a decoded array
    (H x W gray, H x W x 3 RGB, H x W x 4 RGBA; uint8, uint16 or float in [0, 1]).
    Files/bytes larger than ``max_bytes`` and images with more than ``max_pixels`` pixels
    are refused before their pixels are decoded. Pillow's own ``Image.MAX_IMAGE_PIXELS``
    guard stays in force as a backstop, so ``max_pixels`` above it has no effect.
    The result never shares memory with the input. Raises :class:`ImageError` on any failure.
    """
    if max_bytes <= 0 or max_pixels <= 0:
        raise ValueError("max_bytes and max_pixels must be positive")
    what = describe_source(source)
    if isinstance(source, np.ndarray):
        return _from_array(source, what, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        size = source.nbytes if isinstance(source, memoryview) else len(source)
        _check_byte_size(size, max_bytes, what)
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        data = _read_file(source, max_bytes, what)
    else:
        raise ImageError(
            f"Unsupported image source: {what}.",
            fix="Pass a file path, the image file's bytes, or a numpy array.",
        )
    return _decode(data, what, max_pixels)


def _check_byte_size(size: int, max_bytes: int, what: str) -> None:
    if size == 0:
        raise ImageError(f"The image is empty ({what} has 0 bytes).", fix=_FIX_RETAKE)
    if size > max_bytes:
        raise ImageError(
            f"The image is too large: {what} is {size:,} bytes, over the limit of {max_bytes:,} bytes "
            f"({max_bytes / 2**20:.1f} MB).",
            fix=f"Send a JPEG or PNG photo under {max_bytes / 2**20:.1f} MB (re-save it at a lower resolution or quality).",
        )


def _read_file(path: str | os.PathLike, max_bytes: int, what: str) -> bytes:
    fix_path = "Check the path and that the file is readable."
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):  # directories, FIFOs, /dev/zero, ...
            raise ImageError(f"The image path is not a regular file: {what}.", fix=fix_path)
        _check_byte_size(st.st_size, max_bytes, what)  # before reading anything
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)  # bounded: the file may have grown since stat
    except FileNotFoundError as exc:
        raise ImageError(f"Image file not found: {what}.", fix=fix_path) from exc
    except PermissionError as exc:
        raise ImageError(f"Image file is not readable (permission denied): {what}.", fix=fix_path) from exc
    except (OSError, ValueError, TypeError) as exc:  # e.g. embedded NUL, name too long, I/O error
        raise ImageError(f"Could not read the image {what} ({type(exc).__name__}).", fix=fix_path) from exc
    _check_byte_size(len(data), max_bytes, what)
    return data


def _load_strict(img: Image.Image) -> None:
    """Decode all pixels, refusing truncated data even if another library in this process switched
    Pillow's global LOAD_TRUNCATED_IMAGES on (face_recognition does so at import): a proofing must
    never decide on half an image. The global is restored afterwards."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        img.load()
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _decode(data: bytes, what: str, max_pixels: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            # Local only: Pillow's "possible decompression bomb" warning becomes an exception.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as img:
                # Image.open only parsed the header; check it before any pixel is decoded.
                _check_dimensions(img.width, img.height, what, max_pixels)
                _load_strict(img)  # truncated/corrupt data fails here
                upright = ImageOps.exif_transpose(img)  # first frame only for GIF/TIFF
                arr = _pil_to_array(upright)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's global guard fired inside Image.open, before we saw the header.
        limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
        size = _header_size(data)
        if size is not None:
            _check_dimensions(*size, what, limit)  # raises, naming WxH
        m = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(m.group(1)):,} pixels" if m else "too many pixels"
        raise ImageError(
            f"The image has too many pixels: {what} has {count}, over the pixel limit of "
            f"{limit:,} ({limit / 1e6:g} megapixels).",
            fix=f"Resize the image to at most {max_pixels / 1e6:g} megapixels.",
        ) from exc
    except UnidentifiedImageError as exc:
        if data.lstrip()[:5] == b"%PDF-":  # scans often arrive as PDF; say so rather than "unrecognised"
            raise ImageError(
                f"This is a PDF document, not an image: {what}. PDFs are not opened (they can carry scripts and many pages).",
                fix="Export the page as a JPEG or PNG photo (or photograph the document) and send that.",
            ) from exc
        raise ImageError(
            f"Not an image, or an unrecognised format: {what} (accepted: {', '.join(ALLOWED_FORMATS)}).",
            fix=_FIX_FORMAT,
        ) from exc
    except Exception as exc:  # noqa: BLE001 - any decoder failure (OSError, SyntaxError, struct.error, ...)
        # Only the exception type is reported: decoder messages can quote bytes from the file.
        raise ImageError(
            f"The image is truncated or corrupt: {what} could not be decoded ({type(exc).__name__}).",
            fix=_FIX_RETAKE,
        ) from exc
    return _from_array(arr, what, max_pixels)


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header alone, bypassing Pillow's bomb check (only to name WxH)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for fmt in ALLOWED_FORMATS:
                factory, accept = Image.OPEN[fmt]
                if accept is None or accept(data[:16]) is True:
                    with factory(io.BytesIO(data), "") as im:  # parses the header, decodes nothing
                        return im.size
    except Exception:  # noqa: BLE001 - best effort, the caller has a fallback message
        pass
    return None


def _check_dimensions(width: int, height: int, what: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError(
            f"The image has too many pixels: {what} is {width}x{height} = {width * height:,} pixels, "
            f"over the pixel limit of {max_pixels:,} ({max_pixels / 1e6:g} megapixels).",
            fix=f"Resize the image to at most {max_pixels / 1e6:g} megapixels.",
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageError(
            f"The image is too small to contain a usable face: {what} is {width}x{height} pixels, "
            f"the minimum is {MIN_SIDE}x{MIN_SIDE}.",
            fix="Send the original, full-resolution photo rather than a thumbnail.",
        )


def _pil_to_array(img: Image.Image) -> np.ndarray:
    """Pillow image -> gray/RGB/RGBA array (uint8, uint16 or float32), ready for ``_from_array``."""
    mode = img.mode
    if mode.startswith("I;16"):
        # Pillow's convert("RGB") clips 16-bit values at 255 (an all-white face); keep the
        # full range here and let _from_array scale it (>> 8). astype makes big-endian native.
        return np.asarray(img).astype(np.uint16)
    if mode == "I":  # 32-bit int, e.g. 16-bit data from TIFF: clip to the 16-bit range
        return np.clip(np.asarray(img), 0, 65535).astype(np.uint16)
    if mode == "F":  # float TIFF: must be in [0, 1], checked by _from_array
        return np.asarray(img, dtype=np.float32)
    if "A" in mode or "a" in mode or (mode in ("P", "L", "RGB", "1") and "transparency" in img.info):
        return np.asarray(img.convert("RGBA"))  # composited over white by _from_array
    if mode == "L":
        return np.asarray(img)
    if mode != "RGB":  # CMYK, YCbCr, P, 1, LAB, HSV, ...
        img = img.convert("RGB")
    return np.asarray(img)


def _from_array(arr: np.ndarray, what: str, max_pixels: int) -> np.ndarray:
    fix_array = "Pass an H x W (gray), H x W x 3 (RGB) or H x W x 4 (RGBA) array of uint8, uint16 or float in [0, 1]."
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ImageError(f"Unsupported image array shape: {what}.", fix=fix_array)
    _check_dimensions(arr.shape[1], arr.shape[0], what, max_pixels)

    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.uint16:
        out = (arr >> 8).astype(np.uint8)  # scale by the 16-bit range, not clip
    elif arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
            raise ImageError(f"Float image values must be finite and within [0, 1]: {what}.", fix=fix_array)
        out = np.rint(arr.astype(np.float64) * 255.0).astype(np.uint8)
    else:  # bool, signed ints, object, ...: ambiguous range, refuse rather than guess
        raise ImageError(f"Unsupported image array dtype: {what}.", fix=fix_array)

    if out.ndim == 2:
        out = np.stack([out, out, out], axis=-1)
    elif out.shape[2] == 4:
        # Transparent areas become white, as they look in a viewer, rather than black.
        rgb = out[:, :, :3].astype(np.uint16)
        alpha = out[:, :, 3:4].astype(np.uint16)
        out = ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    # Always a fresh C-contiguous array: callers may mutate it without touching the input.
    return np.array(out, dtype=np.uint8, order="C", copy=True)

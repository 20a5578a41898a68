"""Reading uploads from the raw request stream, in memory only.

FastAPI's ``UploadFile`` (Starlette's form parser) spools every file part over 1 MB to a temporary
file on disk; an identity document or selfie must never touch the disk, so uploads do not go through
it. The request stream is read chunk by chunk into memory; the size limit is checked on every chunk
(a declared Content-Length over the limit is refused before reading, but a missing or lying one is
caught by the count), and the request ends with a 413 problem the moment the limit is passed.
Multipart bodies are parsed incrementally with ``python_multipart`` straight into byte buffers.
"""

from __future__ import annotations

from starlette.requests import Request

from idproof.service.problems import ProblemError

__all__ = ["IMAGE_MEDIA_TYPES", "read_chip_upload", "read_form_upload", "read_image_upload"]

IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "image/tiff", "image/bmp", "image/gif",
                     "application/octet-stream")
MULTIPART = "multipart/form-data"
ENVELOPE_BYTES = 64 * 1024  # multipart boundaries and part headers, on top of the file bytes
MAX_PARTS = 20
CHIP_PARTS = ("sod", "com", *(f"dg{n}" for n in range(1, 17)))
CHIP_REQUIRED = ("sod", "dg1", "dg2")


def _too_large(limit: int) -> ProblemError:
    return ProblemError(
        413, "upload_too_large", f"The upload is larger than the limit of {limit:,} bytes ({limit / 2**20:.1f} MB).",
        fix=f"Send a JPEG or PNG under {limit / 2**20:.1f} MB (re-save it at a lower resolution or quality).",
        title="Upload too large", headers={"Connection": "close"},
    )


def _media_type(request: Request) -> tuple[str, dict[bytes, bytes]]:
    from python_multipart.multipart import parse_options_header

    raw = request.headers.get("content-type")
    if not raw:
        return "", {}
    ctype, params = parse_options_header(raw)
    return ctype.decode("latin-1").lower(), params


def _check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _too_large(limit)


async def _chunks(request: Request, limit: int, shown_limit: int):
    """The body in chunks, raising 413 as soon as more than ``limit`` bytes have arrived."""
    _check_declared_length(request, limit)
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise _too_large(shown_limit)
        if chunk:
            yield chunk


def _unsupported(ctype: str, accepted: tuple[str, ...]) -> ProblemError:
    return ProblemError(
        415, "unsupported_media_type", f"Content-Type {ctype or '(none)'!r} is not accepted here.",
        fix=f"Send one of: {', '.join(accepted)}.", title="Unsupported Media Type",
    )


def _empty(what: str) -> ProblemError:
    return ProblemError(422, "empty_upload", f"The {what} upload is empty.",
                        fix="Upload the complete image file.", title="Empty upload")


class _MultipartCollector:
    """python_multipart callbacks that keep the wanted parts in memory and discard the rest."""

    def __init__(self, wanted: tuple[str, ...], limit: int) -> None:
        self.wanted, self.limit = wanted, limit
        self.parts: dict[str, bytearray] = {}
        self.total = 0
        self.count = 0
        self.ended = False
        self._field = bytearray()
        self._value = bytearray()
        self._disposition = b""
        self._current: bytearray | None = None

    def on_part_begin(self) -> None:
        self.count += 1
        if self.count > MAX_PARTS:
            raise ProblemError(422, "malformed_multipart", f"More than {MAX_PARTS} parts in the upload.",
                               fix="Send only the parts this endpoint names.")
        self._disposition, self._current = b"", None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        if bytes(self._field).lower() == b"content-disposition":
            self._disposition = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            raise ProblemError(422, "malformed_multipart", "A multipart part has no Content-Disposition name.",
                               fix='Give every part a name, e.g. Content-Disposition: form-data; name="file"; filename="doc.jpg".')
        key = name.decode("utf-8", "replace").lower()
        if key in self.wanted:
            if key in self.parts:
                raise ProblemError(422, "malformed_multipart", f"The part {key!r} is sent twice.",
                                   fix="Send each part once.")
            self._current = self.parts[key] = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is not None:
            self.total += end - start
            if self.total > self.limit:
                raise _too_large(self.limit)
            self._current += data[start:end]

    def on_part_end(self) -> None:
        self._current = None

    def on_end(self) -> None:
        self.ended = True


async def _read_multipart(request: Request, params: dict[bytes, bytes], wanted: tuple[str, ...],
                          limit: int) -> dict[str, bytes]:
    import python_multipart
    from python_multipart.exceptions import FormParserError

    boundary = params.get(b"boundary")
    if not boundary:
        raise ProblemError(422, "malformed_multipart", "The multipart Content-Type has no boundary.",
                           fix="Let the HTTP client build the multipart body (it sets the boundary).")
    c = _MultipartCollector(wanted, limit)
    callbacks = {name: getattr(c, name) for name in (
        "on_part_begin", "on_part_data", "on_part_end", "on_header_field", "on_header_value", "on_header_end",
        "on_headers_finished", "on_end")}
    try:
        parser = python_multipart.MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        async for chunk in _chunks(request, limit + ENVELOPE_BYTES, limit):
            parser.write(chunk)
        parser.finalize()
    except FormParserError as e:
        c.parts.clear()
        raise ProblemError(422, "malformed_multipart", "The multipart body cannot be parsed.",
                           fix="Send a well-formed multipart/form-data body.") from e
    except BaseException:
        c.parts.clear()  # drop what was read: nothing of a refused upload is kept
        raise
    if not c.ended:
        c.parts.clear()
        raise ProblemError(422, "malformed_multipart", "The multipart body ends before its closing boundary.",
                           fix="Send the complete multipart/form-data body.")
    return {k: bytes(v) for k, v in c.parts.items()}


async def read_image_upload(request: Request, limit: int, what: str) -> bytes:
    """One image: the raw body (``image/*`` or ``application/octet-stream``) or the multipart part ``file``."""
    ctype, params = _media_type(request)
    if ctype == MULTIPART:
        parts = await _read_multipart(request, params, ("file",), limit)
        if "file" not in parts:
            raise ProblemError(422, "missing_file", f"The multipart upload has no part named 'file' with the {what}.",
                               fix=f'Send the {what} as the multipart part "file", or as the raw body with Content-Type image/jpeg.')
        data = parts["file"]
    elif ctype in IMAGE_MEDIA_TYPES:
        buf = bytearray()
        async for chunk in _chunks(request, limit, limit):
            buf += chunk
        data = bytes(buf)
    else:
        raise _unsupported(ctype, (*IMAGE_MEDIA_TYPES, MULTIPART))
    if not data:
        raise _empty(what)
    return data


async def read_chip_upload(request: Request, limit: int) -> dict[str, bytes]:
    """Chip files as multipart parts ``sod``, ``dg1``, ``dg2`` (optionally ``com``, ``dg3``..``dg16``),
    returned as ``{"SOD": ..., "DG1": ..., ...}``."""
    ctype, params = _media_type(request)
    if ctype != MULTIPART:
        raise _unsupported(ctype, (MULTIPART,))
    parts = await _read_multipart(request, params, CHIP_PARTS, limit)
    missing = [p for p in CHIP_REQUIRED if not parts.get(p)]
    if missing:
        raise ProblemError(422, "chip_files_missing", f"Chip upload lacks: {', '.join(missing)}.",
                           fix="Send the chip's EF.SOD, DG1 and DG2 as multipart parts named sod, dg1 and dg2.")
    return {k.upper(): v for k, v in parts.items() if v}


async def read_form_upload(request: Request, wanted: tuple[str, ...], limit: int) -> dict[str, bytes]:
    """The named parts of a ``multipart/form-data`` body (others are discarded), ``limit`` bytes in all."""
    ctype, params = _media_type(request)
    if ctype != MULTIPART:
        raise _unsupported(ctype, (MULTIPART,))
    return await _read_multipart(request, params, wanted, limit)

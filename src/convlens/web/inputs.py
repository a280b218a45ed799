"""What a client sends, read and checked once: bodies, JSON fields, arrays and images.

Every problem becomes an :class:`ApiError` carrying the HTTP status and one sentence
that names the field, so a handler never sees a value it has to doubt:

- 413: a body over :data:`MAX_BODY_BYTES` (checked on ``Content-Length`` and again
  while the body streams in, for clients that send none);
- 415: an upload Pillow cannot identify as a picture, or a body of an unknown type;
- 400: a picture over Pillow's decompression-bomb limit, one that cannot be decoded,
  or one without ink;
- 422: malformed JSON, a missing field, a wrong type, a wrong array shape, NaN or
  infinity (the message names the field, e.g. ``pixels[3][4]``).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import warnings
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

MAX_BODY_BYTES = 2 * 1024 * 1024  # a phone photo fits once re-encoded; a drawn digit is ~10 KB
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"})


class ApiError(Exception):
    """A request the server refuses: ``status`` and a sentence for the client."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.message, "field": self.field}


# --------------------------------------------------------------------------- bodies
async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, refusing with 413 as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, _too_large(int(declared), limit))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, _too_large(size, limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> str:
    return f"The upload is too large: the limit is {limit // 1024} KiB. Received: {size:,} bytes or more."


def parse_json(body: bytes) -> dict[str, Any]:
    """A JSON object; anything else (bad syntax, a list) is 422.

    ``NaN`` and ``Infinity`` (not JSON, but sent by JavaScript's and Python's encoders)
    are read as floats, so that the field that holds them is named when it is checked.
    """
    try:
        value = json.loads(body or b"{}")
    except (ValueError, RecursionError) as error:
        raise ApiError(422, f"The body is not valid JSON: {error}.", field="body") from None
    if not isinstance(value, dict):
        raise ApiError(
            422, f"The body must be a JSON object. Received: {type(value).__name__}.", field="body"
        )
    return value


async def read_upload_or_json(request: Request, file_field: str = "image") -> tuple[bytes | None, dict]:
    """``(image bytes, fields)`` of a request that carries a picture or JSON.

    Accepted: ``multipart/form-data`` (the file in ``file_field``, other form fields
    as strings), a raw ``image/*`` body, or an ``application/json`` object (then the
    image is ``None``).
    """
    body = await read_body(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        return await _multipart(request, body, file_field)
    if kind.startswith("image/"):
        return body, {}
    if kind in ("application/json", "") or kind.endswith("+json"):
        return None, parse_json(body)
    raise ApiError(
        415,
        "Send a picture (multipart/form-data or image/png, image/jpeg) or JSON. "
        f"Received: Content-Type {kind}.",
    )


async def _multipart(request: Request, body: bytes, file_field: str) -> tuple[bytes | None, dict]:
    async def single_chunk() -> AsyncIterator[bytes]:
        yield body

    parser = MultiPartParser(request.headers, single_chunk(), max_files=2, max_fields=20)
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise ApiError(422, f"The form cannot be read: {error}.", field="body") from None
    fields: dict[str, Any] = {}
    image = None
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name == file_field:
                image = await value.read()
        else:
            fields[name] = value
    await form.close()
    if image is None and file_field in fields:
        raise ApiError(422, f"{file_field} must be a file upload, not a text field.", field=file_field)
    return image, fields


# --------------------------------------------------------------------------- images
def check_picture(data: bytes, field: str = "image") -> None:
    """Refuse what is not a picture (415) or is a decompression bomb (400), before decoding it."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ApiError(422, f"{field} is empty: send a PNG or JPEG file.", field=field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                fmt, (width, height) = image.format, image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(400, _bomb_message(field), field=field) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ApiError(
            415, f"{field} is not a picture Pillow can read: send a PNG or JPEG file.", field=field
        ) from None
    if fmt not in IMAGE_FORMATS:
        raise ApiError(415, f"{field} is a {fmt} file: send PNG, JPEG, GIF, BMP, WebP or TIFF.", field=field)
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise ApiError(400, _bomb_message(field, f" ({width}x{height})"), field=field)


def _bomb_message(field: str, size: str = "") -> str:
    from PIL import Image

    return (
        f"{field} has more pixels{size} than Pillow's decompression-bomb limit of "
        f"{Image.MAX_IMAGE_PIXELS:,}: it is refused unread."
    )


# --------------------------------------------------------------------------- fields
def integer(fields: dict, name: str, low: int, high: int, default: int | None = None) -> int:
    """Field ``name`` as an int in ``[low, high]`` (form fields may send it as text)."""
    value = fields.get(name, default)
    if value is None:
        raise ApiError(422, f"{name} is required: an integer from {low} to {high}.", field=name)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(
            422, f"{name} must be an integer from {low} to {high}. Received: {name}={value!r}.", field=name
        )
    return value


def number(fields: dict, name: str, low: float, high: float, default: float | None = None) -> float:
    """Field ``name`` as a finite float in ``[low, high]``."""
    value = fields.get(name, default)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high:
        raise ApiError(
            422, f"{name} must be a number from {low:g} to {high:g}. Received: {name}={value!r}.", field=name
        )
    return float(value)


def choice(fields: dict, name: str, options: list[str] | tuple[str, ...], default: str | None = None) -> str:
    """Field ``name`` as one of ``options``."""
    value = fields.get(name, default)
    if value not in options:
        raise ApiError(
            422, f"{name} must be one of {', '.join(options)}. Received: {name}={value!r}.", field=name
        )
    return value


def array(
    fields: dict,
    name: str,
    ndim: int,
    shape: tuple[int, ...] | None = None,
    max_side: int = 64,
    low: float = -1e6,
    high: float = 1e6,
) -> np.ndarray:
    """Field ``name`` as a float64 array of ``ndim`` dimensions (exactly ``shape`` if given).

    Lists must be rectangular and hold finite numbers within ``[low, high]``; the
    message names the first offending cell, e.g. ``pixels[3][4]``.
    """
    value = fields.get(name)
    if value is None:
        raise ApiError(422, f"{name} is required: {_shape_words(ndim, shape)}.", field=name)
    if isinstance(value, str):  # a form field carrying JSON
        try:
            value = json.loads(value)
        except ValueError:
            raise ApiError(422, f"{name} must be {_shape_words(ndim, shape)} in JSON.", field=name) from None
    found = _nested_shape(value, name, ndim)
    if shape is not None and found != tuple(shape):
        raise ApiError(
            422,
            f"{name} must be {_shape_words(ndim, shape)}. Received: shape {'x'.join(map(str, found))}.",
            field=name,
        )
    if any(n < 1 or n > max_side for n in found):
        raise ApiError(
            422,
            f"{name} must have from 1 to {max_side} entries per axis. Received: shape {found}.",
            field=name,
        )
    result = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(result) | (result < low) | (result > high)
    if bad.any():
        where = "".join(f"[{i}]" for i in np.argwhere(bad)[0])
        raise ApiError(
            422,
            f"{name}{where} is {float(result[bad][0])}: every value must be a finite number "
            f"from {low:g} to {high:g}.",
            field=name,
        )
    return result


def _nested_shape(value: Any, name: str, ndim: int) -> tuple[int, ...]:
    """Shape of a rectangular nested list of numbers with ``ndim`` levels, else 422."""
    shape: list[int] = []
    level = [value]
    for depth in range(ndim):
        lengths = {len(v) if isinstance(v, list) else -1 for v in level}
        if -1 in lengths or len(lengths) != 1:
            raise ApiError(
                422,
                f"{name} must be a {ndim}-D array: nested lists of equal length "
                f"(the problem is at depth {depth}).",
                field=name,
            )
        shape.append(lengths.pop())
        level = [item for v in level for item in v]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in level):
        bad = next(v for v in level if not isinstance(v, int | float) or isinstance(v, bool))
        raise ApiError(422, f"{name} must hold numbers only. Received: {bad!r}.", field=name)
    return tuple(shape)


def _shape_words(ndim: int, shape: tuple[int, ...] | None) -> str:
    if shape is not None:
        return f"a {'x'.join(map(str, shape))} array of numbers"
    return f"a {ndim}-D array of numbers"

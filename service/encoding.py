"""Turning curves into response bytes: JSON (orjson), ``.npy`` float64, raw float32; ETags.

Whole bodies (:func:`encode`) for curves that fit comfortably in memory; chunked streams
(:func:`stream`) for big ones, which never hold more than one chunk of encoded output: the
binary forms are zero-copy ``memoryview`` slices of the computed array, JSON is written by
orjson one slice of values at a time and is byte-for-byte what :func:`encode` returns.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson
from numpy.typing import NDArray
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from service.engine import Curve, Curve32, StepRange
from service.engine.types import FloatArray

JSON = "application/json"
NPY = "application/x-npy"
FLOAT32 = "application/octet-stream"
MEDIA_TYPES = (JSON, NPY, FLOAT32)

Series = Literal["lr", "momentum"]


@dataclass(frozen=True, slots=True)
class Encoded:
    """A response body with its media type and extra headers."""

    body: bytes
    media_type: str
    headers: dict[str, str]


def negotiate(
    accept: str | None,
    offered: Sequence[str] = MEDIA_TYPES,
    wildcards: Collection[str] = ("*/*", "application/*"),
) -> str | None:
    """The media type of ``offered`` to answer with for an ``Accept`` header; ``None`` if none
    is acceptable.

    Ranges are tried by quality, then in the order given; no header, or a range of
    ``wildcards``, gets the first type offered. Curves offer JSON, ``.npy`` and float32;
    plots (``service/api/plot.py``) SVG and PNG.
    """
    if not accept:
        return offered[0]
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept.split(",")):
        parts = [part.strip() for part in item.split(";")]
        quality = 1.0
        for parameter in parts[1:]:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, parts[0].lower()))
    for _, _, media_range in sorted(ranked):
        if media_range in offered:
            return media_range
        if media_range in wildcards:
            return offered[0]
    return None


def encode(curve: Curve, steps: StepRange, media_type: str, series: Series) -> Encoded:
    """Encode ``curve`` for ``media_type``; binary forms carry ``series`` only."""
    if media_type == JSON:
        document = {
            "start": steps.start,
            "stop": steps.stop,
            "stride": steps.stride,
            "groups": int(curve.lr.shape[0]),
            "lr": np.ascontiguousarray(curve.lr),
            "momentum": None if curve.momentum is None else np.ascontiguousarray(curve.momentum),
            "warnings": list(curve.warnings),
        }
        return Encoded(orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY), JSON, {})
    values = curve.lr if series == "lr" else curve.momentum
    assert values is not None
    shape = {"X-Shape": f"{values.shape[0]},{values.shape[1]}"}
    if media_type == NPY:
        return Encoded(npy_bytes(values), NPY, shape)
    return Encoded(np.ascontiguousarray(values, dtype="<f4").tobytes(), FLOAT32, shape)


def npy_header(dtype: str, shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` (format 1.0) header of a C-order array of ``dtype`` and ``shape``."""
    buffer = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def npy_bytes(values: FloatArray) -> bytes:
    """``values`` as a ``.npy`` file (little-endian float64, C order): the bytes ``np.save``
    writes, without its per-call checks (which cost more than the copy of a small curve)."""
    contiguous = np.ascontiguousarray(values, dtype="<f8")
    return npy_header("<f8", contiguous.shape) + contiguous.tobytes()


def etag(canonical_request: bytes, media_type: str, series: Series, version: str) -> str:
    """A strong ETag for one representation of one canonical request."""
    digest = hashlib.sha256()
    for part in (version.encode(), media_type.encode(), series.encode(), canonical_request):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return f'"{digest.hexdigest()[:40]}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether an ``If-None-Match`` header matches ``tag`` (weak comparison, per RFC 9110)."""
    return any(c == "*" or c.removeprefix("W/") == tag for c in _candidates(if_none_match))


def is_wildcard(if_none_match: str | None) -> bool:
    """Whether an ``If-None-Match`` header holds ``*``, which matches any answer that exists:
    the routes compute before answering it 304, so a request they refuse is still refused."""
    return "*" in _candidates(if_none_match)


def _candidates(if_none_match: str | None) -> list[str]:
    """The entity tags (or ``*``) an ``If-None-Match`` header lists."""
    if not if_none_match:
        return []
    return [candidate.strip() for candidate in if_none_match.split(",")]


SLICE_BYTES = 1 << 20
"""Largest piece of a whole body handed to the server at once (see :class:`SlicedResponse`)."""


class SlicedResponse(Response):
    """A ``Response`` that hands a big body to the server in 1 MiB slices.

    Written in one piece, a 22 MB body lands in the transport's write buffer, which
    Python 3.11's asyncio keeps as one ``bytearray`` and shifts after every partial send
    (quadratic copying). In slices, the server waits for the socket to drain between
    them, so the buffer stays small. Same bytes, same ``Content-Length``.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = memoryview(self.body)
        if len(body) <= SLICE_BYTES:
            await super().__call__(scope, receive, send)
            return
        start = {"type": "http.response.start", "status": self.status_code}
        await send(start | {"headers": self.raw_headers})
        for offset in range(0, len(body), SLICE_BYTES):
            piece = body[offset : offset + SLICE_BYTES]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


JSON_CHUNK_VALUES = 1 << 16
"""Values per orjson call when streaming JSON (about 1.4 MB of text)."""
BINARY_CHUNK_BYTES = 1 << 20
"""Bytes per chunk when streaming the binary forms."""


@dataclass(frozen=True, slots=True)
class Stream:
    """A body produced chunk by chunk; ``length`` is known for the binary forms."""

    chunks: Iterator[bytes | memoryview]
    media_type: str
    headers: dict[str, str]
    length: int | None


def stream(curve: Curve | Curve32, steps: StepRange, media_type: str, series: Series) -> Stream:
    """:func:`encode`'s body in chunks (binary forms: float64 ``.npy`` or float32 raw).

    ``curve`` must be a :class:`Curve32` for :data:`FLOAT32` (computed in float32, so the
    stream is a view of it) and a :class:`Curve` otherwise.
    """
    if media_type == JSON:
        return Stream(_json_chunks(curve, steps), JSON, {}, None)
    values = curve.lr if series == "lr" else curve.momentum
    assert values is not None
    dtype = "<f8" if media_type == NPY else "<f4"
    values = np.ascontiguousarray(values, dtype=dtype)
    shape = {"X-Shape": f"{values.shape[0]},{values.shape[1]}"}
    header = npy_header(dtype, values.shape) if media_type == NPY else b""
    return Stream(_binary_chunks(header, values), media_type, shape, len(header) + values.nbytes)


def stream_pieces(
    pieces: Iterator[NDArray[Any]], n: int, dtype: np.dtype[Any], media_type: str
) -> Stream:
    """A one-group binary body (``.npy`` or raw float32) from pieces of ``n`` values in all,
    each computed when the previous one has been sent."""
    header = npy_header(dtype.str, (1, n)) if media_type == NPY else b""

    def chunks() -> Iterator[bytes | memoryview]:
        if header:
            yield header
        for piece in pieces:
            yield memoryview(np.ascontiguousarray(piece, dtype=dtype).data).cast("B")

    return Stream(chunks(), media_type, {"X-Shape": f"1,{n}"}, len(header) + n * dtype.itemsize)


def json_pieces(pieces: Iterator[NDArray[Any]], steps: StepRange) -> Stream:
    """:func:`encode`'s JSON for one group without momentum or warnings, from pieces of
    the lr computed one at a time."""

    def chunks() -> Iterator[bytes | memoryview]:
        yield (
            f'{{"start":{steps.start},"stop":{steps.stop},"stride":{steps.stride},'
            f'"groups":1,"lr":[['
        ).encode()
        for index, piece in enumerate(pieces):
            if index:
                yield b","
            yield memoryview(orjson.dumps(piece, option=orjson.OPT_SERIALIZE_NUMPY))[1:-1]
        yield b']],"momentum":null,"warnings":[]}'

    return Stream(chunks(), JSON, {}, None)


def _binary_chunks(header: bytes, values: NDArray[Any]) -> Iterator[bytes | memoryview]:
    if header:
        yield header
    raw = memoryview(values.data).cast("B")
    for offset in range(0, len(raw), BINARY_CHUNK_BYTES):
        yield raw[offset : offset + BINARY_CHUNK_BYTES]


def _json_chunks(curve: Curve | Curve32, steps: StepRange) -> Iterator[bytes | memoryview]:
    """The JSON document of :func:`encode`, written one slice of values at a time."""
    groups = int(curve.lr.shape[0])
    yield (
        f'{{"start":{steps.start},"stop":{steps.stop},"stride":{steps.stride},'
        f'"groups":{groups},"lr":'
    ).encode()
    yield from _json_matrix(curve.lr)
    yield b',"momentum":'
    if curve.momentum is None:
        yield b"null"
    else:
        yield from _json_matrix(curve.momentum)
    yield b',"warnings":' + orjson.dumps(list(curve.warnings)) + b"}"


def _json_matrix(values: NDArray[Any]) -> Iterator[bytes | memoryview]:
    """``[[...],[...]]`` as orjson writes a 2-d array, a slice of one row at a time."""
    rows, width = values.shape
    for row in range(rows):
        yield b"[[" if row == 0 else b",["
        for offset in range(0, width, JSON_CHUNK_VALUES):
            piece = orjson.dumps(
                values[row, offset : offset + JSON_CHUNK_VALUES], option=orjson.OPT_SERIALIZE_NUMPY
            )
            if offset:
                yield b","
            yield memoryview(piece)[1:-1]
        yield b"]"
    yield b"]" if rows else b"[]"

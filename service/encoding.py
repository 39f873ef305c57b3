"""Turning curves into response bytes: JSON (orjson), ``.npy`` float64, raw float32; ETags."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
import orjson

from service.engine import Curve, StepRange
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


def negotiate(accept: str | None) -> str | None:
    """The media type to answer with for an ``Accept`` header; ``None`` if none is acceptable."""
    if not accept:
        return JSON
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
        if media_range in MEDIA_TYPES:
            return media_range
        if media_range in ("*/*", "application/*"):
            return JSON
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


def npy_bytes(values: FloatArray) -> bytes:
    """``values`` as a ``.npy`` file (little-endian float64, C order)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(values, dtype="<f8"), allow_pickle=False)
    return buffer.getvalue()


def etag(canonical_request: bytes, media_type: str, series: Series, version: str) -> str:
    """A strong ETag for one representation of one canonical request."""
    digest = hashlib.sha256()
    for part in (version.encode(), media_type.encode(), series.encode(), canonical_request):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return f'"{digest.hexdigest()[:40]}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether an ``If-None-Match`` header matches ``tag`` (weak comparison, per RFC 9110)."""
    if not if_none_match:
        return False
    candidates = [candidate.strip() for candidate in if_none_match.split(",")]
    return any(c == "*" or c.removeprefix("W/") == tag for c in candidates)

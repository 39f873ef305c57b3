"""Every endpoint as a :class:`Call` builder and a response parser: no I/O here.

``Client`` and ``AsyncClient`` (and their sessions) differ only in how they send a call, so
the request shapes and the parsing live once, here.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict
from urllib.parse import quote

import httpx

from lrsched_client._http import Call
from lrsched_client.models import wire_number

if TYPE_CHECKING:
    import numpy
    import numpy.typing as npt

Series = Literal["lr", "momentum"]
Dtype = Literal["float32", "float64"]
Reduce = Literal["mean", "min", "max"]
LearningRates = float | Sequence[float]
Spec = Mapping[str, Any]

NPY = "application/x-npy"
FLOAT32 = "application/octet-stream"
_PLATEAU = "ReduceLROnPlateau"


def jsonable(value: Any) -> Any:
    """``value`` ready for the wire: non-finite floats as strings, tuples as lists, scalars
    with ``.item()`` (numpy, torch) as Python numbers."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return wire_number(value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    item = getattr(value, "item", None)
    if callable(item):
        return jsonable(item())
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    raise TypeError(f"cannot send a {type(value).__name__} as JSON: {value!r}")


def _lrs(lr: LearningRates) -> list[Any]:
    values = [lr] if isinstance(lr, int | float) else list(lr)
    return [jsonable(float(value)) for value in values]


# -- curves --------------------------------------------------------------------------------


def curve_body(spec: Spec, lr: LearningRates, steps: int, start: int, stride: int) -> Any:
    """The ``POST /v1/schedules`` body."""
    return {
        "schedule": jsonable(spec),
        "lr": _lrs(lr),
        "steps": steps,
        "start": start,
        "stride": stride,
    }


def curve_json_call(spec: Spec, lr: LearningRates, steps: int, start: int, stride: int) -> Call:
    """The curve as JSON: ``{"start", "stop", "stride", "groups", "lr", "momentum"}``."""
    return Call("POST", "/v1/schedules", json=curve_body(spec, lr, steps, start, stride))


def curve_call(
    spec: Spec,
    lr: LearningRates,
    steps: int,
    start: int,
    stride: int,
    series: Series,
    dtype: Dtype,
) -> Call:
    """The curve in binary: ``.npy`` for float64, raw little-endian float32 for float32."""
    if series not in ("lr", "momentum"):
        raise ValueError(f"series={series!r}: expected 'lr' or 'momentum'")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype={dtype!r}: expected 'float32' or 'float64'")
    return Call(
        "POST",
        "/v1/schedules",
        json=curve_body(spec, lr, steps, start, stride),
        params={"series": series},
        headers={"Accept": NPY if dtype == "float64" else FLOAT32},
    )


def require_numpy() -> None:
    """Fail early, with the fix, when numpy is missing (before any request is sent)."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        raise ImportError(
            "Client.curve returns numpy arrays and needs numpy: "
            "pip install 'lrsched-client[numpy]' (or use curve_json, which does not)"
        ) from None


def decode_curve(response: httpx.Response, dtype: Dtype) -> npt.NDArray[numpy.floating[Any]]:
    """The ``(groups, n)`` array in a binary curve answer (a fresh, writable array)."""
    import numpy as np

    if dtype == "float64":
        array = np.load(io.BytesIO(response.content), allow_pickle=False)
        return np.asarray(array, dtype=np.float64)
    shape_header = response.headers.get("X-Shape", "")
    try:
        groups, n = (int(part) for part in shape_header.split(","))
    except ValueError:
        raise ValueError(
            f"the curve answer has no valid X-Shape header: {shape_header!r}"
        ) from None
    flat = np.frombuffer(response.content, dtype="<f4")
    if flat.size != groups * n:
        raise ValueError(f"X-Shape {shape_header!r} does not match {flat.size} float32 values")
    return flat.reshape(groups, n).astype(np.float32)


# -- plateau -------------------------------------------------------------------------------


def plateau_spec(spec: Spec) -> dict[str, Any]:
    """``spec`` with ``"type": "ReduceLROnPlateau"`` (which may be left out)."""
    return {"type": _PLATEAU, **jsonable(spec)}


def replay_call(spec: Spec, lr: LearningRates, metrics: Sequence[float]) -> Call:
    """``POST /v1/plateau/replay``."""
    body = {
        "schedule": plateau_spec(spec),
        "lr": _lrs(lr),
        "metrics": [wire_number(metric) for metric in metrics],
    }
    return Call("POST", "/v1/plateau/replay", json=body)


# -- sessions ------------------------------------------------------------------------------


class SessionOptions(TypedDict, total=False):
    """The keywords of ``create_session`` besides ``schedule`` and ``lr``, declared once for
    :class:`Client` and :class:`AsyncClient`; :func:`create_session_call` holds the defaults."""

    state_dict: Mapping[str, Any] | None
    world_size: int
    reduce: Reduce
    ttl_seconds: int | None
    warmup_steps: int
    warmup_start_factor: float | None
    early_stopping: Spec | None


def create_session_call(
    schedule: Spec | None = None,
    lr: LearningRates | None = None,
    *,
    state_dict: Mapping[str, Any] | None = None,
    world_size: int = 1,
    reduce: Reduce = "mean",
    ttl_seconds: int | None = None,
    warmup_steps: int = 0,
    warmup_start_factor: float | None = None,
    early_stopping: Spec | None = None,
) -> Call:
    """``POST /v1/sessions``; not idempotent, so retried only when certainly unprocessed."""
    if schedule is not None and state_dict is not None:
        raise ValueError("give exactly one of schedule= (options) or state_dict= (to resume)")
    if schedule is None and state_dict is None and early_stopping is None:
        raise ValueError(
            "give exactly one of schedule= (options) or state_dict= (to resume), "
            "or early_stopping= alone"
        )
    body: dict[str, Any] = {"world_size": world_size, "reduce": reduce}
    if schedule is not None:
        body["schedule"] = plateau_spec(schedule)
    elif state_dict is not None:
        body["state_dict"] = jsonable(state_dict)
    if early_stopping is not None:
        body["early_stopping"] = jsonable(early_stopping)
    if lr is not None:
        body["lr"] = _lrs(lr)
    if ttl_seconds is not None:
        body["ttl_seconds"] = ttl_seconds
    if warmup_steps:
        body["warmup_steps"] = warmup_steps
    if warmup_start_factor is not None:
        body["warmup_start_factor"] = warmup_start_factor
    return Call("POST", "/v1/sessions", json=body, idempotent=False)


def session_path(session_id: str, suffix: str = "", root: str = "/v1/sessions") -> str:
    """The path of a session resource (the id is quoted: it comes from outside)."""
    return f"{root}/{quote(session_id, safe='')}{suffix}"


def bearer(token: str) -> dict[str, str]:
    """The session's ``Authorization`` header (none for an empty token: the server's 401)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def report_call(session_id: str, token: str, epoch: int, metric: float, rank: int) -> Call:
    """``POST .../reports``: idempotent by ``(epoch, rank)``, so always safe to retry."""
    body = {"epoch": epoch, "metric": wire_number(metric), "rank": rank}
    return Call("POST", session_path(session_id, "/reports"), json=body, headers=bearer(token))


def get_call(
    session_id: str, token: str, suffix: str = "", root: str = "/v1/sessions", **params: int
) -> Call:
    """``GET`` the session or one of its sub-resources."""
    return Call(
        "GET",
        session_path(session_id, suffix, root),
        params=params or None,
        headers=bearer(token),
    )


def delete_call(session_id: str, token: str, root: str = "/v1/sessions") -> Call:
    """``DELETE`` the session; a 404 after a retry means an earlier try deleted it."""
    return Call(
        "DELETE",
        session_path(session_id, "", root),
        headers=bearer(token),
        ok_after_retry=frozenset({404}),
    )


# -- LR range test -------------------------------------------------------------------------

LR_FINDER = "/v1/lr-finder"


def create_lr_finder_call(options: Mapping[str, Any]) -> Call:
    """``POST /v1/lr-finder`` (not idempotent, like session creation)."""
    return Call("POST", LR_FINDER, json=jsonable(options), idempotent=False)


def finder_report_call(finder_id: str, token: str, step: int, loss: float, rank: int) -> Call:
    """``POST /v1/lr-finder/{id}/reports``: idempotent by ``(step, rank)``."""
    body = {"step": step, "loss": wire_number(loss), "rank": rank}
    path = session_path(finder_id, "/reports", LR_FINDER)
    return Call("POST", path, json=body, headers=bearer(token))

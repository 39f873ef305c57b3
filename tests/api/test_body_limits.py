"""The body gate (service/api/bodies.py, service/jsonscan.py): every JSON body is checked for
nesting, array items, object members and string sizes before anything parses it, at and past
every limit of service/limits.py, on every body route, by the shortcut and the declared route
alike."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

import service.api.schedules as schedule_routes
import service.jsonscan as jsonscan
from service.api.bodies import GatedRoute
from service.config import Settings
from service.limits import (
    BODY_INLINE_BYTES,
    BODY_MAX_DEPTH,
    BODY_MAX_ITEMS,
    BODY_MAX_MEMBERS,
    BODY_MAX_STRING_BYTES,
)
from service.main import create_app
from tests.api.shortcut_checks import described, never

STEP_LR = {"type": "StepLR", "step_size": 2}
CURVE = "/v1/schedules"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store="memory"))) as client:
        yield client


def post(client: TestClient, url: str, body: Any) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(url, content=raw, headers={"Content-Type": "application/json"})


def refusal(response: httpx.Response, status: int, kind: str) -> list[str | int]:
    """The ``loc`` of the gate's one error, after checking status, type and shape."""
    assert response.status_code == status, response.text[:500]
    [error] = response.json()["detail"]
    assert error["type"] == f"body_too_{kind}", error
    assert "docs/operations.md" in error["msg"]
    loc: list[str | int] = error["loc"]
    return loc


def nested_lists(depth: int) -> bytes:
    """``{"schedule": STEP_LR, "steps": 10, "x": [[...]]}`` with ``depth`` levels in all."""
    inner = b"[" * (depth - 1) + b"]" * (depth - 1)
    return b'{"schedule": {"type": "StepLR", "step_size": 2}, "steps": 10, "x": ' + inner + b"}"


# --- nesting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [BODY_MAX_DEPTH - 1, BODY_MAX_DEPTH])
def test_a_body_nested_to_the_limit_reaches_validation(client: TestClient, depth: int) -> None:
    response = post(client, CURVE, nested_lists(depth))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["type"] == "extra_forbidden" and error["loc"] == ["body", "x"]


@pytest.mark.parametrize("depth", [BODY_MAX_DEPTH + 1, 1000, 100_000])
def test_a_body_nested_past_the_limit_is_422_at_the_container(
    client: TestClient, depth: int
) -> None:
    loc = refusal(post(client, CURVE, nested_lists(depth)), 422, "depth")
    assert loc == ["body", "x", *[0] * (BODY_MAX_DEPTH - 1)]


@pytest.mark.parametrize("kind", ["SequentialLR", "ChainedScheduler"])
@pytest.mark.parametrize("nesting", [16, 127, 200, 250])
def test_deep_composites_are_refused_before_anything_serializes(
    client: TestClient, kind: str, nesting: int
) -> None:
    """Issue #12 item 5: composites 127-250 deep failed serializing the ETag (a 500)."""
    spec: dict[str, Any] = dict(STEP_LR)
    for _ in range(nesting):
        spec = {"type": kind, "schedulers": [spec], "milestones": []}
        if kind == "ChainedScheduler":
            del spec["milestones"]
    loc = refusal(post(client, CURVE, {"schedule": spec, "steps": 10}), 422, "depth")
    assert loc[:4] == ["body", "schedule", "schedulers", 0]


# --- array items, object members, strings ----------------------------------------------------


def test_the_most_items_a_body_may_hold_are_replayed(client: TestClient) -> None:
    metrics = [1.0] * BODY_MAX_ITEMS
    response = post(
        client,
        "/v1/plateau/replay",
        {"schedule": {"type": "ReduceLROnPlateau"}, "metrics": metrics},
    )
    assert response.status_code == 200, response.text[:300]
    assert len(response.json()["lr"][0]) == BODY_MAX_ITEMS


def test_one_item_more_is_413_naming_the_array(client: TestClient) -> None:
    body = {"schedule": {"type": "ReduceLROnPlateau"}, "metrics": [1.0] * (BODY_MAX_ITEMS + 1)}
    loc = refusal(post(client, "/v1/plateau/replay", body), 413, "items")
    assert loc == ["body", "metrics"]


@pytest.mark.parametrize(
    ("field", "count"), [("lr", 10**6), ("milestones", 10**6)], ids=["groups", "milestones"]
)
def test_a_million_groups_or_milestones_are_413_naming_them(
    client: TestClient, field: str, count: int
) -> None:
    """Issue #12 item 1: these blocked the event loop for seconds."""
    if field == "lr":
        body = {"schedule": STEP_LR, "lr": [0.1] * count, "steps": 10}
        path = ["body", "lr"]
    else:
        body = {"schedule": {"type": "MultiStepLR", "milestones": [1] * count}, "steps": 10}
        path = ["body", "schedule", "milestones"]
    assert refusal(post(client, CURVE, body), 413, "items") == path


def test_items_are_counted_over_the_whole_body(client: TestClient) -> None:
    half = BODY_MAX_ITEMS // 2 + 1
    body = {"schedule": STEP_LR, "lr": [0.1] * half, "steps": 10, "x": [0] * half}
    assert refusal(post(client, CURVE, body), 413, "items") == ["body", "x"]


def test_the_most_members_a_body_may_hold_reach_validation(client: TestClient) -> None:
    extra = {f"k{i}": 1 for i in range(BODY_MAX_MEMBERS - 4)}  # 4: schedule, type, step_size, steps
    response = post(client, CURVE, {"schedule": STEP_LR, "steps": 10, **extra})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "extra_forbidden"


def test_the_issue_body_of_a_million_keys_is_413_naming_the_body(client: TestClient) -> None:
    """Issue #12 item 1: 11 MB of ``"k0": 1, ...`` froze the process for two minutes and
    was answered with a 422 ten times its size."""
    keys = ",".join(f'"k{i}":1' for i in range(1_000_000))
    raw = ('{"schedule":{"type":"StepLR","step_size":2},"lr":0.1,"steps":10,' + keys + "}").encode()
    assert len(raw) > 11_000_000
    response = post(client, CURVE, raw)
    assert refusal(response, 413, "members") == ["body"]
    assert len(response.content) < 500


def test_members_nested_anywhere_are_counted(client: TestClient) -> None:
    spec = {"type": "optax.piecewise_constant", "init_value": 0.1}
    spec["boundaries_and_scales"] = {str(i): 0.5 for i in range(BODY_MAX_MEMBERS)}
    loc = refusal(post(client, CURVE, {"schedule": spec, "steps": 10}), 413, "members")
    assert loc == ["body", "schedule", "boundaries_and_scales"]


@pytest.mark.parametrize("excess", [0, 1])
def test_a_string_at_and_past_the_limit(client: TestClient, excess: int) -> None:
    source = "0" * (BODY_MAX_STRING_BYTES + excess)
    response = post(
        client, CURVE, {"schedule": {"type": "LambdaLR", "lr_lambda": source}, "steps": 10}
    )
    if excess:
        assert refusal(response, 413, "string") == ["body", "schedule", "lr_lambda"]
    else:  # the schema's own limit on expressions answers
        assert response.status_code == 422
        assert "lr_lambda" in response.json()["detail"][0]["loc"]


def test_a_long_key_is_413_naming_it_shortened(client: TestClient) -> None:
    key = "k" * (BODY_MAX_STRING_BYTES + 1)
    loc = refusal(post(client, CURVE, {"schedule": STEP_LR, "steps": 10, key: 1}), 413, "string")
    assert loc == ["body", "k" * 100 + "..."]


# --- every body route, the shortcut and the declared route -----------------------------------


@pytest.mark.parametrize("url", [CURVE, "/v1/schedules/plot", "/v1/plateau/replay", "/v1/sessions"])
def test_every_body_route_passes_the_gate(client: TestClient, url: str) -> None:
    assert refusal(post(client, url, nested_lists(BODY_MAX_DEPTH + 1)), 422, "depth")[:2] == [
        "body",
        "x",
    ]
    many = {"metrics": [0] * (BODY_MAX_ITEMS + 1)}
    assert refusal(post(client, url, many), 413, "items") == ["body", "metrics"]


ENCODINGS = {
    "utf-8-sig": lambda text: codecs.BOM_UTF8 + text.encode(),
    "utf-16": lambda text: text.encode("utf-16"),
    "utf-16-le": lambda text: text.encode("utf-16-le"),
    "utf-32": lambda text: text.encode("utf-32"),
}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize(
    "text",
    [
        nested_lists(5000).decode(),  # past the depth limit, and past BODY_INLINE_BYTES
        json.dumps({"metrics": [0.5] * (BODY_MAX_ITEMS + 1)}),
        json.dumps({"schedule": STEP_LR, "steps": 10}),  # small and valid but for the encoding
    ],
    ids=["deep", "many-items", "small"],
)
@pytest.mark.parametrize("url", [CURVE, "/v1/plateau/replay", "/v1/early-stopping/replay"])
def test_a_body_the_scan_cannot_read_is_422_not_parsed(
    client: TestClient, url: str, text: str, encoding: str
) -> None:
    """A byte-order mark or UTF-16/32 once hid a body from the gate's byte scan, and
    ``json.loads`` then decoded it: a RecursionError (500) or a million items parsed."""
    response = post(client, url, ENCODINGS[encoding](text))
    assert response.status_code == 422, response.text[:300]
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"]) == ("json_invalid", ["body", 0])
    assert f"reads as {encoding}" in error["ctx"]["error"]


@pytest.mark.parametrize("size", [10, BODY_INLINE_BYTES])  # parsed by FastAPI / by the gate
def test_utf8_text_beyond_ascii_is_still_json(client: TestClient, size: int) -> None:
    body = {"schedule": STEP_LR, "steps": 3, "é": "ü" * size}
    response = post(client, CURVE, json.dumps(body, ensure_ascii=False).encode())
    assert response.status_code == 422, response.text[:300]
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"]) == ("extra_forbidden", ["body", "é"])
    assert error["input"].startswith("ü" * min(size, 50))  # long inputs are shortened


def api_routes(routes: Sequence[Any]) -> Iterator[APIRoute]:
    """Every :class:`APIRoute` of an app, inside included routers too."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from api_routes(route.original_router.routes)


def test_every_route_with_a_body_is_gated() -> None:
    """The early-stopping and LR range test routers once had no gate: a body of two
    million metrics was parsed and validated whole."""
    app = create_app(Settings(store="memory"))
    with_bodies = {
        route.path: isinstance(route, GatedRoute)
        for route in api_routes(app.routes)
        if route.body_field is not None
    }
    assert "/v1/early-stopping/replay" in with_bodies and "/v1/lr-finder" in with_bodies
    assert all(with_bodies.values()), with_bodies


def test_the_report_route_passes_the_gate(client: TestClient) -> None:
    created = post(client, "/v1/sessions", {"schedule": {"type": "ReduceLROnPlateau"}}).json()
    url = f"/v1/sessions/{created['id']}/reports"
    headers = {"Authorization": f"Bearer {created['token']}", "Content-Type": "application/json"}
    body = {"epoch": 0, "metric": 0.5, "x": "y" * (BODY_MAX_STRING_BYTES + 1)}
    response = client.post(url, content=json.dumps(body), headers=headers)
    assert refusal(response, 413, "string") == ["body", "x"]


@pytest.mark.parametrize(
    "raw",
    [
        nested_lists(BODY_MAX_DEPTH + 1),
        json.dumps({"schedule": STEP_LR, "steps": 10, "lr": [0.1] * (BODY_MAX_ITEMS + 1)}).encode(),
        json.dumps({"schedule": STEP_LR, "steps": 10, "lr": [0.1] * 2000}).encode(),
        json.dumps({"schedule": STEP_LR, "steps": 10, "lr": [0.1] * 100}).encode(),
    ],
    ids=["deep", "many-items", "large-valid-lr-list", "small"],
)
def test_the_shortcut_and_the_declared_route_answer_alike(
    raw: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"Content-Type": "application/json"}
    with TestClient(create_app(Settings(store="memory"))) as client:
        ours = described(client.post(CURVE, content=raw, headers=headers))
    monkeypatch.setattr(schedule_routes, "_answer_directly", never)
    with TestClient(create_app(Settings(store="memory"))) as client:
        theirs = described(client.post(CURVE, content=raw, headers=headers))
    assert ours == theirs


def test_a_large_body_is_parsed_off_the_loop_with_the_same_numbers(client: TestClient) -> None:
    """Past BODY_INLINE_BYTES the gate parses the body (with a faster parser) in a thread:
    the values, non-finite tokens and huge integers read as FastAPI's own parser reads them."""
    metrics = [0.1 + i * 1e-7 for i in range(BODY_INLINE_BYTES)]
    body = {"schedule": {"type": "ReduceLROnPlateau", "patience": 0}, "lr": 0.3, "metrics": metrics}
    response = post(client, "/v1/plateau/replay", body)
    assert response.status_code == 200
    assert response.json()["lr"][0][:3] == [0.3, 0.03, 0.003]
    raw = json.dumps(body).encode()[:-1] + b', "x": NaN}'
    [error] = post(client, "/v1/plateau/replay", raw).json()["detail"]
    assert error["loc"] == ["body", "x"] and error["type"] == "extra_forbidden"


# --- the scanner against a reference, with small limits --------------------------------------

SMALL = {
    "BODY_MAX_DEPTH": 4,
    "BODY_MAX_ITEMS": 12,
    "BODY_MAX_MEMBERS": 8,
    "BODY_MAX_STRING_BYTES": 10,
}

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=14),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)


def within_small_limits(value: Any) -> bool:
    depth = items = members = longest = 0

    def walk(node: Any, level: int) -> None:
        nonlocal depth, items, members, longest
        if isinstance(node, str):
            longest = max(longest, len(json.dumps(node)) - 2)
        elif isinstance(node, list):
            depth, items = max(depth, level + 1), items + len(node)
            for child in node:
                walk(child, level + 1)
        elif isinstance(node, dict):
            depth, members = max(depth, level + 1), members + len(node)
            for key, child in node.items():
                walk(key, level + 1)
                walk(child, level + 1)

    walk(value, 0)
    return (
        depth <= SMALL["BODY_MAX_DEPTH"]
        and items <= SMALL["BODY_MAX_ITEMS"]
        and members <= SMALL["BODY_MAX_MEMBERS"]
        and longest <= SMALL["BODY_MAX_STRING_BYTES"]
    )


@settings(max_examples=400, deadline=None)
@given(value=JSON, indent=st.sampled_from([None, 1]))
def test_the_scan_refuses_exactly_what_passes_a_limit(value: Any, indent: int | None) -> None:
    with pytest.MonkeyPatch.context() as patch:
        for name, limit in SMALL.items():
            patch.setattr(jsonscan, name, limit)
        problem = jsonscan.scan(json.dumps(value, indent=indent).encode())
    assert (problem is None) == within_small_limits(value), problem


def test_long_runs_of_numbers_are_counted_exactly() -> None:
    for count in (4095, 4096, 4097, 3 * 4096 + 1):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(jsonscan, "BODY_MAX_ITEMS", count - 1)
            over = jsonscan.scan(json.dumps({"m": [1e-3] * count}, indent=1).encode())
            patch.setattr(jsonscan, "BODY_MAX_ITEMS", count)
            at = jsonscan.scan(json.dumps({"m": [1e-3] * count}, indent=1).encode())
        assert at is None
        assert over is not None and over.kind == "items" and over.loc == ("m",)


@settings(max_examples=300, deadline=None)
@given(value=JSON)
def test_the_quick_pass_admits_only_what_the_scan_admits(value: Any) -> None:
    with pytest.MonkeyPatch.context() as patch:
        for name, limit in SMALL.items():
            patch.setattr(jsonscan, name, limit)
        body = json.dumps(value, separators=(",", ":")).encode()
        if jsonscan.quick_pass(body):
            assert jsonscan.scan(body) is None


def _large_lambda_request(bad_lambda: str | None = None) -> dict[str, Any]:
    """A body over BODY_INLINE_BYTES: 100 distinct lambdas (one per param group), the eighth
    replaced by ``bad_lambda`` when given."""
    lambdas = [f"lambda epoch: 0.9 ** epoch + {group} * 0.0001 * epoch" for group in range(100)]
    body = {
        "schedule": {"type": "LambdaLR", "lr_lambda": lambdas},
        "lr": [0.1] * 100,
        "steps": 3,
    }
    if bad_lambda is not None:
        lambdas[7] = bad_lambda
    return body


def test_a_large_body_is_validated_off_the_event_loop_as_the_declared_route_would(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validating a large body can compile a thousand expressions: that runs in the worker
    thread that parses it, and FastAPI takes the validated model as it is."""
    import service.api.bodies as bodies

    validated: list[Any] = []
    checked = bodies._checked

    def recording(body: bytes, model: Any) -> Any:
        value = checked(body, model)
        validated.append(value)
        return value

    monkeypatch.setattr(bodies, "_checked", recording)
    body = _large_lambda_request()
    assert len(json.dumps(body)) > BODY_INLINE_BYTES
    response = post(client, "/v1/schedules", body)
    assert response.status_code == 200, response.text
    [model] = validated
    assert type(model).__name__ == "ScheduleRequest"
    lr = response.json()["lr"]
    assert lr[3] == pytest.approx([0.1, 0.1 * (0.9 + 0.0003), 0.1 * (0.81 + 0.0006)])


def test_a_large_invalid_body_is_refused_in_the_same_words_as_a_small_one(
    client: TestClient,
) -> None:
    large = post(client, "/v1/schedules", _large_lambda_request(bad_lambda="lambda e: e.x"))
    assert large.status_code == 422
    [error] = large.json()["detail"]
    assert error["loc"] == ["body", "schedule", "lr_lambda", 7]
    small_body = {"schedule": {"type": "LambdaLR", "lr_lambda": ["lambda e: e.x"]}, "lr": [0.1]}
    small = post(client, "/v1/schedules", small_body | {"steps": 3})
    assert small.json()["detail"][0]["msg"] == error["msg"]

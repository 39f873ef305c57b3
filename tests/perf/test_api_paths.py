"""The route's fast paths end to end: cache, streaming (every form, chunk boundaries), 304."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import service.engine as engine
from service import encoding
from service.cache import CurveCache, Entry
from service.config import Settings
from service.main import create_app

COSINE = {"type": "CosineAnnealingLR", "T_max": 1000, "eta_min": 0.001}
ONE_CYCLE = {"type": "OneCycleLR", "max_lr": [0.1, 0.2], "total_steps": 5000}
NPY = {"Accept": encoding.NPY}
F32 = {"Accept": encoding.FLOAT32}
JSON_TYPE = {"Content-Type": "application/json"}


def make_client(**settings: Any) -> TestClient:
    return TestClient(create_app(Settings(store="memory", **settings)))


@pytest.fixture(scope="module")
def buffered() -> TestClient:
    return make_client()


@pytest.fixture(scope="module")
def streamed() -> TestClient:
    return make_client(stream_values=1000)


def cache_count(client: TestClient, result: str) -> float:
    text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith(f'lrsched_curve_cache_total{{result="{result}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_a_repeated_request_is_answered_from_the_cache(buffered: TestClient) -> None:
    body = {"schedule": COSINE, "lr": 0.1, "steps": 4321}
    hits, misses = cache_count(buffered, "hit"), cache_count(buffered, "miss")
    first = buffered.post("/v1/schedules", json=body)
    second = buffered.post("/v1/schedules", json=body)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    assert cache_count(buffered, "miss") == misses + 1
    assert cache_count(buffered, "hit") == hits + 1


def test_each_representation_is_its_own_cache_entry(buffered: TestClient) -> None:
    body = {"schedule": ONE_CYCLE, "lr": [0.001, 0.002], "steps": 5001}
    as_json = buffered.post("/v1/schedules", json=body)
    as_npy = buffered.post("/v1/schedules", json=body, headers=NPY)
    momentum = buffered.post("/v1/schedules?series=momentum", json=body, headers=NPY)
    assert len({as_json.headers["etag"], as_npy.headers["etag"], momentum.headers["etag"]}) == 3
    lr = np.load(io.BytesIO(as_npy.content), allow_pickle=False)
    np.testing.assert_array_equal(lr, np.array(as_json.json()["lr"]))
    m = np.load(io.BytesIO(momentum.content), allow_pickle=False)
    np.testing.assert_array_equal(m, np.array(as_json.json()["momentum"]))


def test_a_big_curve_is_computed_off_the_event_loop_and_cached(buffered: TestClient) -> None:
    body = {"schedule": COSINE, "lr": 0.1, "steps": 200_000}
    first = buffered.post("/v1/schedules", json=body, headers=F32)
    second = buffered.post("/v1/schedules", json=body, headers=F32)
    assert first.content == second.content
    values = np.frombuffer(first.content, dtype="<f4")
    k = np.arange(200_000)
    expected = 0.001 + (0.1 - 0.001) * (1 + np.cos(np.pi * np.fmod(k, 2000) / 1000)) / 2
    np.testing.assert_array_equal(values, expected.astype(np.float32))


def test_a_disabled_cache_computes_every_time() -> None:
    client = make_client(cache_bytes=0)
    body = {"schedule": COSINE, "steps": 100}
    hits, misses = cache_count(client, "hit"), cache_count(client, "miss")
    for _ in range(2):
        assert client.post("/v1/schedules", json=body).status_code == 200
    assert cache_count(client, "hit") == hits  # the counters are process-wide
    assert cache_count(client, "miss") == misses + 2


def test_if_none_match_still_answers_304(buffered: TestClient) -> None:
    body = {"schedule": COSINE, "steps": 100}
    tag = buffered.post("/v1/schedules", json=body).headers["etag"]
    again = buffered.post("/v1/schedules", json=body, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""


# -- byte-identical repeats (CurveRoute): answered before validation --------------------------


@pytest.fixture
def recalls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each lookup of a raw request found a remembered answer, in order."""
    found: list[bool] = []
    recall = CurveCache.recall

    def spy(self: CurveCache, raw: bytes) -> tuple[str, Entry] | None:
        answer = recall(self, raw)
        found.append(answer is not None)
        return answer

    monkeypatch.setattr(CurveCache, "recall", spy)
    return found


def test_a_byte_identical_repeat_is_answered_from_the_cache_with_the_same_headers(
    recalls: list[bool],
) -> None:
    client = make_client()
    raw = json.dumps({"schedule": ONE_CYCLE, "lr": [0.001, 0.002], "steps": 1000})
    first = client.post("/v1/schedules", content=raw, headers=JSON_TYPE)
    second = client.post("/v1/schedules", content=raw, headers=JSON_TYPE)
    assert recalls == [False, True]
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert _answer_headers(first) == _answer_headers(second)
    lr = np.array(second.json()["lr"])
    fresh = make_client().post("/v1/schedules", content=raw, headers=JSON_TYPE).json()
    np.testing.assert_array_equal(lr, np.array(fresh["lr"]))


def test_a_repeat_in_another_representation_gets_that_representation(
    recalls: list[bool],
) -> None:
    client = make_client()
    raw = json.dumps({"schedule": ONE_CYCLE, "lr": [0.001, 0.002], "steps": 500})
    as_json = client.post("/v1/schedules", content=raw, headers=JSON_TYPE)
    as_npy = client.post("/v1/schedules", content=raw, headers=JSON_TYPE | NPY)
    momentum = client.post("/v1/schedules?series=momentum", content=raw, headers=JSON_TYPE | NPY)
    repeats = [
        client.post("/v1/schedules", content=raw, headers=JSON_TYPE | NPY),
        client.post("/v1/schedules?series=momentum", content=raw, headers=JSON_TYPE | NPY),
    ]
    assert recalls == [False, False, False, True, True]
    assert as_npy.headers["content-type"] == repeats[0].headers["content-type"] == encoding.NPY
    assert repeats[0].content == as_npy.content and repeats[1].content == momentum.content
    np.testing.assert_array_equal(
        np.load(io.BytesIO(repeats[1].content), allow_pickle=False),
        np.array(as_json.json()["momentum"]),
    )


def test_the_raw_query_string_selects_the_remembered_answer(recalls: list[bool]) -> None:
    """The raw key holds the query string as sent: another spelling of the same series is
    validated again (and finds the same entry), never served another series' bytes."""
    client = make_client()
    raw = json.dumps({"schedule": ONE_CYCLE, "lr": [0.001, 0.002], "steps": 300})
    paths = [
        "/v1/schedules?series=momentum",
        "/v1/schedules?series=momentum&unused=1",
        "/v1/schedules?series=lr",
        "/v1/schedules?series=momentum",
    ]
    answers = [client.post(path, content=raw, headers=JSON_TYPE | NPY) for path in paths]
    assert recalls == [False, False, False, True]
    assert answers[0].content == answers[1].content == answers[3].content
    assert answers[0].headers["etag"] == answers[1].headers["etag"] != answers[2].headers["etag"]
    as_json = client.post("/v1/schedules", content=raw, headers=JSON_TYPE).json()
    for answer, series in zip(answers[1:3], ("momentum", "lr"), strict=True):
        values = np.load(io.BytesIO(answer.content), allow_pickle=False)
        np.testing.assert_array_equal(values, np.array(as_json[series]))


def test_the_first_of_repeated_selecting_headers_counts_on_both_paths(
    recalls: list[bool],
) -> None:
    """Two ``Accept`` headers: the first is the one negotiated (as Starlette reads headers),
    for a fresh request and for its byte-identical repeat alike."""
    client = make_client()
    raw = json.dumps({"schedule": COSINE, "steps": 100}).encode()
    headers = [("content-type", "application/json"), ("accept", encoding.NPY)]
    headers.append(("accept", "application/json"))
    answers = [client.post("/v1/schedules", content=raw, headers=headers) for _ in range(2)]
    assert recalls == [False, True]
    assert [a.headers["content-type"] for a in answers] == [encoding.NPY, encoding.NPY]
    assert answers[0].content == answers[1].content


@pytest.mark.parametrize("shape", [(1, 0), (1, 1000), (3, 17)])
def test_npy_bytes_are_what_np_save_writes(shape: tuple[int, int]) -> None:
    values = np.random.default_rng(7).random(shape)
    for given in (values, np.asfortranarray(values), values.astype(np.float32)):
        saved = io.BytesIO()
        np.save(saved, np.ascontiguousarray(given, dtype="<f8"), allow_pickle=False)
        assert encoding.npy_bytes(given) == saved.getvalue()


def test_a_repeat_still_needs_the_api_key(recalls: list[bool]) -> None:
    client = make_client(api_keys="k1,k2")
    raw = json.dumps({"schedule": COSINE, "steps": 300})
    good = client.post("/v1/schedules", content=raw, headers=JSON_TYPE | {"X-API-Key": "k2"})
    assert good.status_code == 200
    for key in (None, "k3"):
        headers = JSON_TYPE | ({} if key is None else {"X-API-Key": key})
        refused = client.post("/v1/schedules", content=raw, headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"] == "ApiKey"
    again = client.post("/v1/schedules", content=raw, headers=JSON_TYPE | {"X-API-Key": "k1"})
    assert again.status_code == 200 and again.content == good.content
    assert recalls == [False, True]  # the API-key gate refuses before the cache is asked


def test_a_repeat_with_if_none_match_is_a_304(recalls: list[bool]) -> None:
    client = make_client()
    raw = json.dumps({"schedule": COSINE, "steps": 200})
    tag = client.post("/v1/schedules", content=raw, headers=JSON_TYPE).headers["etag"]
    again = client.post("/v1/schedules", content=raw, headers=JSON_TYPE | {"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    other = client.post("/v1/schedules", content=raw, headers=JSON_TYPE | {"If-None-Match": '"x"'})
    assert other.status_code == 200 and other.headers["etag"] == tag
    assert recalls == [False, True, True]


def test_an_equivalent_request_in_other_bytes_is_validated_and_hits_the_same_entry(
    recalls: list[bool],
) -> None:
    client = make_client()
    body = {"schedule": COSINE, "lr": 0.1, "steps": 250}
    first = client.post("/v1/schedules", content=json.dumps(body), headers=JSON_TYPE)
    spaced = client.post("/v1/schedules", content=json.dumps(body, indent=2), headers=JSON_TYPE)
    assert recalls == [False, False]
    assert spaced.content == first.content and spaced.headers["etag"] == first.headers["etag"]


def test_refused_requests_are_never_remembered(recalls: list[bool]) -> None:
    client = make_client()
    raw = json.dumps({"schedule": {"type": "StepLR", "step_size": 0}, "steps": 10})
    answers = [client.post("/v1/schedules", content=raw, headers=JSON_TYPE) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [422, 422]
    assert answers[0].json() == answers[1].json()
    assert recalls == [False, False]


def _answer_headers(response: Any) -> dict[str, str]:
    """The headers that describe the answer (not the per-request id)."""
    return {k: v for k, v in response.headers.items() if k not in ("x-request-id", "date")}


@pytest.mark.parametrize(
    "body",
    [
        {"schedule": COSINE, "lr": [0.1, 0.3], "steps": 2 * (1 << 16) + 1},
        {"schedule": ONE_CYCLE, "lr": [0.001, 0.002], "steps": 5001, "start": 3, "stride": 2},
        {"schedule": {"type": "StepLR", "step_size": 10, "gamma": 0.5}, "steps": 1 << 16},
        {"schedule": COSINE, "steps": 1001},
    ],
)
@pytest.mark.parametrize("accept", [{}, NPY, F32])
def test_streamed_bodies_equal_buffered_ones(
    buffered: TestClient, streamed: TestClient, body: dict[str, Any], accept: dict[str, str]
) -> None:
    whole = buffered.post("/v1/schedules", json=body, headers=accept)
    chunked = streamed.post("/v1/schedules", json=body, headers=accept)
    assert whole.status_code == chunked.status_code == 200
    assert chunked.content == whole.content
    assert chunked.headers["content-type"] == whole.headers["content-type"]
    assert chunked.headers["etag"] == whole.headers["etag"]
    if accept:
        assert chunked.headers["x-shape"] == whole.headers["x-shape"]
        assert int(chunked.headers["content-length"]) == len(whole.content)


@pytest.mark.parametrize("extra", [-1, 0, 1])
def test_streamed_json_at_chunk_boundaries(
    streamed: TestClient, monkeypatch: pytest.MonkeyPatch, extra: int
) -> None:
    monkeypatch.setattr(encoding, "JSON_CHUNK_VALUES", 1024)
    monkeypatch.setattr(encoding, "BINARY_CHUNK_BYTES", 4096)
    n = 3 * 1024 + extra
    body = {"schedule": COSINE, "lr": [0.1, 1.0], "steps": n}
    data = streamed.post("/v1/schedules", json=body).json()
    k = np.arange(n)
    for row, base in zip(data["lr"], (0.1, 1.0), strict=True):
        expected = 0.001 + (base - 0.001) * (1 + np.cos(np.pi * np.fmod(k, 2000) / 1000)) / 2
        np.testing.assert_allclose(row, expected, rtol=1e-12, atol=1e-16)
    assert data["momentum"] is None and data["warnings"] == []
    raw = streamed.post("/v1/schedules", json=body, headers=F32).content
    assert len(raw) == 2 * n * 4
    np.testing.assert_array_equal(
        np.frombuffer(raw, "<f4").reshape(2, n), np.array(data["lr"], dtype=np.float32)
    )


def test_a_streamed_request_that_pytorch_rejects_is_a_422_not_a_partial_body(
    streamed: TestClient,
) -> None:
    body = {"schedule": {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 1500}, "steps": 1600}
    response = streamed.post("/v1/schedules", json=body, headers=NPY)
    assert response.status_code == 422
    assert "total_steps=1500" in response.text


def test_streamed_momentum_series(streamed: TestClient, buffered: TestClient) -> None:
    body = {"schedule": ONE_CYCLE, "lr": [0.001, 0.002], "steps": 5001}
    url = "/v1/schedules?series=momentum"
    assert streamed.post(url, json=body, headers=F32).content == (
        buffered.post(url, json=body, headers=F32).content
    )
    no_momentum = {"schedule": COSINE, "steps": 5000}
    assert streamed.post(url, json=no_momentum, headers=F32).status_code == 422


def test_series_is_validated_like_a_declared_query_parameter(buffered: TestClient) -> None:
    body = {"schedule": COSINE, "steps": 10}
    response = buffered.post("/v1/schedules?series=beta", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "type": "literal_error",
            "loc": ["query", "series"],
            "msg": "Input should be 'lr' or 'momentum'",
            "input": "beta",
            "ctx": {"expected": "'lr' or 'momentum'"},
        }
    ]


def test_query_and_header_parameters_are_still_documented(buffered: TestClient) -> None:
    operation = buffered.get("/openapi.json").json()["paths"]["/v1/schedules"]["post"]
    documented = {(p["name"], p["in"]) for p in operation["parameters"]}
    assert documented == {("series", "query"), ("accept", "header"), ("if-none-match", "header")}
    series = next(p for p in operation["parameters"] if p["name"] == "series")
    assert series["schema"]["enum"] == ["lr", "momentum"]


LAZY = [
    {"type": "CosineAnnealingLR", "T_max": 1000, "eta_min": 0.001},
    {"type": "CosineAnnealingLR", "T_max": 250_000},
    {"type": "CosineAnnealingLR", "T_max": 2.5},
    {"type": "CosineAnnealingWarmRestarts", "T_0": 300, "T_mult": 2},
    {"type": "CosineAnnealingWarmRestarts", "T_0": 7},
]


@pytest.mark.parametrize("schedule", LAZY)
@pytest.mark.parametrize(("start", "stride", "extra"), [(0, 1, -1), (0, 1, 0), (5, 3, 1)])
@pytest.mark.parametrize("accept", [{}, NPY, F32])
def test_pieces_computed_while_streaming_equal_the_whole_curve(
    buffered: TestClient,
    streamed: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    schedule: dict[str, Any],
    start: int,
    stride: int,
    extra: int,
    accept: dict[str, str],
) -> None:
    monkeypatch.setattr(engine.evaluation, "PIECE", 1024)  # pieces of 1024 steps
    steps = start + (3 * 1024 + extra) * stride
    body = {"schedule": schedule, "lr": 0.1, "steps": steps, "start": start, "stride": stride}
    whole = buffered.post("/v1/schedules", json=body, headers=accept)
    pieces = streamed.post("/v1/schedules", json=body, headers=accept)
    assert whole.status_code == pieces.status_code == 200
    assert pieces.content == whole.content
    if accept:
        assert int(pieces.headers["content-length"]) == len(whole.content)
        assert pieces.headers["x-shape"] == whole.headers["x-shape"]


def test_a_lazily_streamed_schedule_pytorch_rejects_is_still_a_422(streamed: TestClient) -> None:
    body = {"schedule": {"type": "CosineAnnealingLR", "T_max": 0}, "steps": 5000}
    response = streamed.post("/v1/schedules", json=body, headers=F32)
    assert response.status_code == 422
    assert "T_max=0" in response.text

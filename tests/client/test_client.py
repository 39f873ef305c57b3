"""Client against a real service: curves (binary and JSON), replay, errors, configuration."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import numpy as np
import pytest
from lrsched_client import (
    AsyncClient,
    Client,
    Retry,
    TransportError,
    ValidationError,
)

from tests.client.server import REPO, free_port
from tests.loop import run_in_fresh_loop

ONE_CYCLE = {"type": "OneCycleLR", "max_lr": [0.1, 0.2], "total_steps": 500}
COSINE_RESTARTS = {"type": "CosineAnnealingWarmRestarts", "T_0": 7, "T_mult": 2, "eta_min": 1e-5}


def test_float64_curve_equals_the_json_curve_exactly(client: Client) -> None:
    document = client.curve_json(ONE_CYCLE, [0.01, 0.02], 501)
    curve = client.curve(ONE_CYCLE, [0.01, 0.02], 501, dtype="float64")
    assert curve.dtype == np.float64 and curve.shape == (2, 501)
    assert np.array_equal(curve, np.asarray(document["lr"], dtype=np.float64))


def test_float32_curve_equals_the_json_curve_rounded_to_float32(client: Client) -> None:
    document = client.curve_json(COSINE_RESTARTS, 0.1, 1000)
    curve = client.curve(COSINE_RESTARTS, 0.1, 1000)
    assert curve.dtype == np.float32 and curve.shape == (1, 1000)
    assert np.array_equal(curve, np.asarray(document["lr"], dtype=np.float32))
    curve[0, 0] = 0.0  # a fresh, writable array, not a view of the response bytes


def test_start_and_stride_select_the_same_values_as_the_full_curve(client: Client) -> None:
    full = client.curve(ONE_CYCLE, [0.01, 0.02], 501, dtype="float64")
    part = client.curve(ONE_CYCLE, [0.01, 0.02], 501, start=37, stride=11, dtype="float64")
    assert part.shape == (2, len(range(37, 501, 11)))
    assert np.array_equal(part, full[:, 37:501:11])
    document = client.curve_json(ONE_CYCLE, [0.01, 0.02], 501, start=37, stride=11)
    assert (document["start"], document["stop"], document["stride"]) == (37, 501, 11)
    assert np.array_equal(np.asarray(document["lr"]), part)


def test_momentum_series_is_the_json_momentum(client: Client) -> None:
    document = client.curve_json(ONE_CYCLE, [0.01, 0.02], 501)
    momentum = client.curve(ONE_CYCLE, [0.01, 0.02], 501, series="momentum", dtype="float64")
    assert np.array_equal(momentum, np.asarray(document["momentum"]))
    assert momentum[:, 0].tolist() == [0.95, 0.95]  # max_momentum at step 0
    assert momentum.min() == pytest.approx(0.85)  # base_momentum at the lr peak


def test_momentum_of_a_schedule_without_momentum_is_a_validation_error(client: Client) -> None:
    assert client.curve_json(COSINE_RESTARTS, 0.1, 10)["momentum"] is None
    with pytest.raises(ValidationError) as caught:
        client.curve(COSINE_RESTARTS, 0.1, 10, series="momentum")
    assert caught.value.errors[0]["loc"] == ["query", "series"]
    assert "does not cycle momentum" in str(caught.value)


def test_invalid_spec_raises_validation_error_naming_the_field(client: Client) -> None:
    with pytest.raises(ValidationError) as caught:
        client.curve_json({"type": "CosineAnnealingWarmRestarts", "T_0": 0}, 0.1, 10)
    error = caught.value
    assert error.status_code == 422
    assert any("T_0" in [str(part) for part in item["loc"]] for item in error.errors)
    assert "T_0" in str(error)


def test_curve_past_a_one_cycle_end_is_refused_with_the_server_message(client: Client) -> None:
    with pytest.raises(ValidationError, match="total_steps"):
        client.curve({"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 10}, 0.01, 12)


def test_bad_dtype_or_series_is_refused_before_any_request() -> None:
    with Client("http://127.0.0.1:9", retries=0) as offline:
        with pytest.raises(ValueError, match="dtype"):
            offline.curve(ONE_CYCLE, 0.1, 10, dtype="float16")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="series"):
            offline.curve(ONE_CYCLE, 0.1, 10, series="beta")  # type: ignore[arg-type]


def test_replay_matches_plateau_rules_with_non_finite_metrics(client: Client) -> None:
    replay = client.replay({"patience": 0, "factor": 0.5}, 0.1, [1.0, 1.0, float("nan"), 0.5])
    assert replay.lr == ((0.1, 0.05, 0.025, 0.025),)
    assert replay.reduced == (False, True, True, False)


def test_unreachable_server_raises_transport_error_after_retries() -> None:
    policy = Retry(attempts=3, backoff=0.001)
    with Client(f"http://127.0.0.1:{free_port()}", retries=policy) as offline:
        with pytest.raises(TransportError, match="after 3 tries"):
            offline.curve_json(ONE_CYCLE, 0.1, 10)


def test_base_url_and_api_key_come_from_the_environment(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[httpx.Request] = []

    class Recording(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return super().handle_request(request)

    monkeypatch.setenv("LRSCHED_URL", url)
    monkeypatch.setenv("LRSCHED_API_KEY", "key-from-env")
    with Client(transport=Recording()) as from_env:
        assert from_env.base_url == url
        from_env.curve_json(COSINE_RESTARTS, 0.1, 3)
    with Client(url, api_key="explicit", transport=Recording()) as explicit:
        explicit.curve_json(COSINE_RESTARTS, 0.1, 3)
    assert [request.headers["X-API-Key"] for request in seen] == ["key-from-env", "explicit"]
    assert json.loads(seen[0].content)["schedule"] == COSINE_RESTARTS


def test_async_client_gives_the_same_answers_as_the_sync_client(client: Client, url: str) -> None:
    async def run() -> tuple[np.ndarray, dict[str, object], tuple[float, ...]]:
        async with AsyncClient(url) as async_client:
            curve = await async_client.curve(ONE_CYCLE, [0.01, 0.02], 501, dtype="float64")
            document = await async_client.curve_json(ONE_CYCLE, [0.01, 0.02], 501, start=500)
            session = await async_client.create_session({"patience": 0}, 0.1)
            await session.report(0, 1.0)
            report = await session.report(1, 2.0)
            rows = [row.epoch async for row in session.history(page_size=1)]
            assert rows == [0, 1]
            assert (await session.state()).epoch == 2
            assert (await session.state_dict())["last_epoch"] == 2
            await session.delete()
            return curve, document, report.lr

    curve, document, lr = run_in_fresh_loop(run())
    assert np.array_equal(curve, client.curve(ONE_CYCLE, [0.01, 0.02], 501, dtype="float64"))
    assert document["lr"] == [[curve[0, 500]], [curve[1, 500]]]
    assert lr == pytest.approx((0.01,))


def test_importing_the_client_imports_neither_torch_nor_numpy_nor_fastapi() -> None:
    code = (
        "import sys, lrsched_client, lrsched_client.client; "
        "print(sorted(m for m in ('torch', 'numpy', 'fastapi', 'pydantic') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(REPO / "client" / "src")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"

"""Plateau variants (replay and sessions): keras patience, threshold modes, sign-safe
threshold, optax accumulation, Keras ``min_delta``; PyTorch stays the default."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from service.engine.plateau import PlateauConfig, initial_state, replay, step
from service.sessions import decode_session, encode_session, new_session
from tests.conformance.tolerance import assert_curve_close

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "families_plateau.json"
OPTAX_CASES: list[dict[str, Any]] = json.loads(GOLDEN.read_text())
TORCH = PlateauConfig("min", 0.5, 2, 1e-4, "rel", 0, (0.0,), 1e-8)


@pytest.fixture(scope="module")
def client() -> TestClient:
    from service.config import Settings
    from service.main import create_app

    return TestClient(create_app(Settings(store="memory")))


def lrs(config: PlateauConfig, metrics: list[float], lr: float = 1.0) -> list[float]:
    return replay(config, [lr], metrics).lr[0].tolist()


@pytest.mark.parametrize("case", OPTAX_CASES, ids=[case["name"] for case in OPTAX_CASES])
def test_variants_reproduce_optax_reduce_on_plateau(
    client: TestClient, case: dict[str, Any]
) -> None:
    response = client.post("/v1/plateau/replay", json=case["request"])
    assert response.status_code == 200, response.text
    assert_curve_close(response.json()["lr"], case["lr"], what=case["name"])


def test_keras_patience_cuts_one_epoch_earlier_than_torch() -> None:
    metrics = [1.0, 1.0, 1.0, 1.0, 1.0]
    assert lrs(TORCH, metrics) == [1.0, 1.0, 1.0, 0.5, 0.5]  # third bad epoch (> 2)
    keras = replace(TORCH, patience_semantics="keras")
    assert lrs(keras, metrics) == [1.0, 1.0, 0.5, 0.5, 0.25]  # second bad epoch (>= 2)


def test_keras_patience_does_not_cut_during_cooldown() -> None:
    keras = replace(TORCH, patience=0, cooldown=2, patience_semantics="keras")
    # patience 0: every step outside cooldown cuts; the two cooldown steps do not.
    assert lrs(keras, [1.0] * 6) == [0.5, 0.5, 0.5, 0.25, 0.25, 0.25]


def test_rel_threshold_on_negative_best_is_torch_sign_flaw_unless_sign_safe() -> None:
    config = replace(TORCH, threshold=0.1, patience=0)
    # best=-10: torch's bar is -10 * 0.9 = -9, so -9.5 counts as better (no cut) ...
    assert lrs(config, [-10.0, -9.5]) == [1.0, 1.0]
    # ... the sign-safe bar is -10 - 0.1 * 10 = -11: -9.5 is a bad epoch and cuts.
    assert lrs(replace(config, sign_safe=True), [-10.0, -9.5]) == [1.0, 0.5]
    assert lrs(replace(config, sign_safe=True), [-10.0, -11.5]) == [1.0, 1.0]


def test_both_threshold_adds_the_absolute_margin() -> None:
    both = replace(TORCH, threshold=0.1, threshold_mode="both", min_delta=0.5, patience=0)
    # bar after best=10: 10 * 0.9 - 0.5 = 8.5
    assert lrs(both, [10.0, 8.6]) == [1.0, 0.5]
    assert lrs(both, [10.0, 8.4]) == [1.0, 1.0]


def test_accumulation_decides_on_the_mean_every_n_steps() -> None:
    config = replace(TORCH, patience=0, accumulation_size=3)
    # decisions at steps 2 and 5 on means 2.0 (improves on inf) and 2.0 (bad: cut)
    assert lrs(config, [1.0, 2.0, 3.0, 2.0, 2.0, 2.0, 9.0]) == [1, 1, 1, 1, 1, 0.5, 0.5]
    state = initial_state(config, [1.0])
    state, reduced = step(config, state, 4.0)
    assert (state.accumulated, state.accumulated_count, reduced) == (4.0, 1, False)
    state, _ = step(config, state, 2.0)
    assert (state.accumulated, state.accumulated_count, state.last_epoch) == (3.0, 2, 2)


def test_min_delta_is_the_absolute_threshold_in_abs_mode(client: TestClient) -> None:
    schedule = {
        "type": "ReduceLROnPlateau",
        "threshold_mode": "abs",
        "min_delta": 0.1,
        "patience": 0,
        "factor": 0.5,
    }
    body = {"schedule": schedule, "lr": 1.0, "metrics": [1.0, 0.95, 0.85]}
    assert client.post("/v1/plateau/replay", json=body).json()["lr"] == [[1.0, 0.5, 0.5]]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"min_delta": 0.1}, "min_delta"),  # rel mode has no absolute margin
        ({"threshold_mode": "abs", "min_delta": 0.1, "threshold": 0.2}, "min_delta"),
        ({"accumulation_size": 0}, "accumulation_size"),
        ({"patience_semantics": "fastai"}, "patience_semantics"),
    ],
)
def test_bad_variant_options_are_422_naming_the_field(
    client: TestClient, extra: dict[str, Any], field: str
) -> None:
    body = {"schedule": {"type": "ReduceLROnPlateau", **extra}, "lr": 1.0, "metrics": [1.0]}
    response = client.post("/v1/plateau/replay", json=body)
    assert response.status_code == 422
    assert any(field in entry["loc"] for entry in response.json()["detail"])


def test_default_options_are_pytorch_and_documents_keep_their_shape() -> None:
    session = new_session(TORCH, 0.0, (1.0,), world_size=1, reduce="mean")
    document = orjson.loads(encode_session(session))
    assert set(document["config"]) == {
        "mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lrs", "eps"
    }  # fmt: skip
    assert set(document["state"]) == {
        "lrs", "best", "num_bad_epochs", "cooldown_counter", "last_epoch"
    }  # fmt: skip
    assert decode_session(encode_session(session)) == session


def test_variant_session_round_trips_through_its_document() -> None:
    config = replace(TORCH, patience_semantics="keras", accumulation_size=2, sign_safe=True)
    session = new_session(config, 0.0, (1.0,), world_size=1, reduce="mean")
    state, _ = step(config, session.state, 0.7)
    session = replace(session, state=state)
    decoded = decode_session(encode_session(session))
    assert decoded.config == config
    assert (decoded.state.accumulated, decoded.state.accumulated_count) == (0.7, 1)


def test_session_applies_the_variants(client: TestClient) -> None:
    schedule = {
        "type": "ReduceLROnPlateau",
        "patience": 1,
        "factor": 0.5,
        "patience_semantics": "keras",
        "accumulation_size": 2,
    }
    created = client.post("/v1/sessions", json={"schedule": schedule, "lr": 1.0}).json()
    auth = {"Authorization": f"Bearer {created['token']}"}
    url = f"/v1/sessions/{created['id']}/reports"
    answers = [
        client.post(url, json={"epoch": e, "metric": m, "rank": 0}, headers=auth).json()
        for e, m in enumerate([1.0, 1.0, 2.0, 2.0])
    ]
    # decisions at epochs 1 (mean 1.0: better than inf) and 3 (mean 2.0: bad, patience 1 cuts)
    assert [a["lr"] for a in answers] == [[1.0], [1.0], [1.0], [0.5]]
    assert [a["reduced"] for a in answers] == [False, False, False, True]

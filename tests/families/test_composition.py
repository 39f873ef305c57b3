"""Composition through POST /v1/schedules: sequence, warmup, clamp, scale, nesting, warnings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def client() -> TestClient:
    from service.config import Settings
    from service.main import create_app

    return TestClient(create_app(Settings(store="memory")))


def curve(client: TestClient, schedule: dict[str, Any], **request: Any) -> dict[str, Any]:
    body = {"schedule": schedule, "lr": request.pop("lr", 0.1), "steps": request.pop("steps", 40)}
    response = client.post("/v1/schedules", json=body | request)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def error_locs(client: TestClient, schedule: dict[str, Any], steps: int = 40) -> list[Any]:
    response = client.post("/v1/schedules", json={"schedule": schedule, "steps": steps})
    assert response.status_code == 422, response.text
    return [entry["loc"] for entry in response.json()["detail"]]


LINEAR = {"type": "optax.linear", "init_value": 0.0, "end_value": 0.1, "transition_steps": 10}
COSINE = {"type": "optax.cosine_decay", "init_value": 0.1, "decay_steps": 20}


def test_sequence_segments_see_their_local_step(client: TestClient) -> None:
    schedule = {
        "type": "sequence",
        "segments": [{"schedule": LINEAR, "steps": 10}, {"schedule": COSINE}],
    }
    lr = curve(client, schedule, steps=35)["lr"][0]
    assert lr[5] == pytest.approx(0.05)
    assert lr[10] == 0.1  # the cosine's local step 0
    assert lr[20] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 10 / 20)))
    assert lr[30:] == [0.0] * 5  # the last segment runs on past its own end (optax holds 0)


def test_sequence_equals_optax_join_schedules(client: TestClient) -> None:
    join = {"type": "optax.join_schedules", "schedules": [LINEAR, COSINE], "boundaries": [10]}
    sequence = {
        "type": "sequence",
        "segments": [{"schedule": LINEAR, "steps": 10}, {"schedule": COSINE}],
    }
    assert curve(client, join)["lr"] == curve(client, sequence)["lr"]


def test_fractions_of_total_steps_round_to_the_nearest_step(client: TestClient) -> None:
    constant = [{"type": "optax.constant", "value": v} for v in (0.3, 0.2, 0.1)]
    schedule = {
        "type": "sequence",
        "total_steps": 100,
        "segments": [
            {"schedule": constant[0], "fraction": 0.7},  # fastai's sum(pcts) == 1. rejects these
            {"schedule": constant[1], "fraction": 0.2},
            {"schedule": constant[2], "fraction": 0.1},
        ],
    }
    data = curve(client, schedule, steps=100)
    lr = data["lr"][0]
    assert (lr[69], lr[70], lr[89], lr[90]) == (0.3, 0.2, 0.2, 0.1)
    assert len(data["warnings"]) == 2  # each constant jumps


def test_fractions_need_total_steps(client: TestClient) -> None:
    schedule = {
        "type": "sequence",
        "segments": [{"schedule": LINEAR, "fraction": 0.5}, {"schedule": COSINE}],
    }
    assert ["body", "schedule", "total_steps"] in error_locs(client, schedule)


def test_continuity_warning_names_the_segment_and_the_jump(client: TestClient) -> None:
    schedule = {
        "type": "sequence",
        "segments": [
            {"schedule": {"type": "optax.constant", "value": 0.1}, "steps": 5},
            {"schedule": {"type": "optax.constant", "value": 0.05}},
        ],
    }
    warnings = curve(client, schedule)["warnings"]
    assert warnings == [
        "schedule.segments[1].schedule: sequence segment 1 starts at 0.05 at step 5, but "
        "segment 0 would be at 0.1 there: the lr jumps"
    ]


def test_continuous_sequence_has_no_warnings(client: TestClient) -> None:
    schedule = {
        "type": "sequence",
        "segments": [
            {"schedule": LINEAR, "steps": 10},
            {"schedule": {"type": "hf.constant"}, "steps": 10},
            {"schedule": {"type": "CosineAnnealingLR", "T_max": 20}},
        ],
    }
    assert curve(client, schedule)["warnings"] == []


def test_nested_sequence_warnings_are_reported_with_their_path(client: TestClient) -> None:
    inner = {
        "type": "sequence",
        "segments": [
            {"schedule": {"type": "hf.constant"}, "steps": 3},
            {"schedule": {"type": "optax.constant", "value": 1.0}},
        ],
    }
    warnings = curve(client, {"type": "warmup", "steps": 4, "schedule": inner})["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("schedule.schedule.segments[1]")


@pytest.mark.parametrize(
    ("shape", "at_5"),
    [
        ("linear", 0.01 + (0.1 - 0.01) * 0.5),
        ("cosine", 0.01 + (0.1 - 0.01) * (1 - math.cos(math.pi * 0.5)) / 2),
        ("exponential", 0.01 * (0.1 / 0.01) ** 0.5),
    ],
)
def test_warmup_shapes_reach_the_schedule_start_at_step_w(
    client: TestClient, shape: str, at_5: float
) -> None:
    schedule = {
        "type": "warmup",
        "steps": 10,
        "shape": shape,
        "start_factor": 0.1,
        "schedule": {"type": "CosineAnnealingLR", "T_max": 20},
    }
    lr = curve(client, schedule)["lr"][0]
    assert lr[0] == pytest.approx(0.01)
    assert lr[5] == pytest.approx(at_5, rel=1e-12)
    assert lr[10] == 0.1  # the cosine's step 0
    assert lr[20] == pytest.approx(0.05)


def test_warmup_from_an_absolute_start_value(client: TestClient) -> None:
    schedule = {
        "type": "warmup",
        "steps": 4,
        "start_value": 0.0,
        "schedule": {"type": "hf.constant"},
    }
    assert curve(client, schedule, steps=6, lr=[0.1, 1.0])["lr"] == [
        [0.0, 0.025, 0.05, 0.07500000000000001, 0.1, 0.1],
        [0.0, 0.25, 0.5, 0.75, 1.0, 1.0],
    ]


def test_exponential_warmup_from_zero_is_422(client: TestClient) -> None:
    schedule = {
        "type": "warmup",
        "steps": 4,
        "shape": "exponential",
        "schedule": {"type": "hf.constant"},
    }
    assert ["body", "schedule", "shape"] in error_locs(client, schedule)


def test_clamp_and_scale(client: TestClient) -> None:
    clamp = {"type": "clamp", "min": 0.05, "schedule": {"type": "ExponentialLR", "gamma": 0.5}}
    assert curve(client, clamp, steps=4)["lr"] == [[0.1, 0.05, 0.05, 0.05]]
    keras = {
        "type": "keras.InverseTimeDecay",
        "initial_learning_rate": 1.0,
        "decay_steps": 1,
        "decay_rate": 1.0,
    }
    scale = {"type": "scale", "factor": [1.0, 0.1], "schedule": keras}
    assert curve(client, scale, steps=3, lr=[0.5, 0.5])["lr"] == [
        [1.0, 0.5, 1 / 3],
        [0.1, 0.05, 1 / 30],
    ]


def test_scale_list_must_match_the_groups(client: TestClient) -> None:
    body = {"schedule": {"type": "scale", "factor": [1.0, 2.0], "schedule": LINEAR}, "steps": 3}
    response = client.post("/v1/schedules", json=body | {"lr": [0.1, 0.1, 0.1]})
    assert response.status_code == 422


def test_stepped_pytorch_segment_is_pytorch_from_its_local_step_0(client: TestClient) -> None:
    pytorch = {
        "type": "SequentialLR",
        "schedulers": [
            {"type": "LinearLR", "start_factor": 0.1, "total_iters": 5},
            {"type": "ExponentialLR", "gamma": 0.9},
        ],
        "milestones": [5],
    }
    alone = curve(client, pytorch, steps=30)["lr"][0]
    schedule = {
        "type": "sequence",
        "segments": [{"schedule": {"type": "hf.constant"}, "steps": 10}, {"schedule": pytorch}],
    }
    lr = curve(client, schedule, steps=40)["lr"][0]
    np.testing.assert_allclose(lr[10:], alone, rtol=1e-12)
    strided = curve(client, schedule, steps=40, start=3, stride=7)["lr"][0]
    assert strided == [lr[k] for k in range(3, 40, 7)]


def test_momentum_is_held_by_segments_that_do_not_schedule_it(client: TestClient) -> None:
    one_cycle = {"type": "fastai.one_cycle", "n_epoch": 1, "n_iter": 10}
    schedule = {
        "type": "sequence",
        "segments": [
            {"schedule": {"type": "hf.constant"}, "steps": 3},
            {"schedule": one_cycle, "steps": 10},
            {"schedule": {"type": "hf.constant"}},
        ],
    }
    data = curve(client, schedule, steps=16)
    momentum = data["momentum"][0]
    assert momentum[:3] == [0.95, 0.95, 0.95]  # before: the first momentum segment's start
    alone = curve(client, one_cycle, steps=10)["momentum"][0]
    assert momentum[3:13] == alone
    assert momentum[13:] == [alone[-1]] * 3  # after: held where it ended


def test_composition_nests_inside_pytorch_composites(client: TestClient) -> None:
    warmup = {"type": "warmup", "steps": 4, "schedule": {"type": "hf.constant"}}
    chained = {
        "type": "ChainedScheduler",
        "schedulers": [warmup, {"type": "ExponentialLR", "gamma": 0.5}],
    }
    assert curve(client, chained, steps=6, lr=1.0)["lr"] == [[0.0, 0.125, 0.25, 0.375, 0.5, 0.5]]


def test_nested_compositions_count_towards_the_depth_limit(client: TestClient) -> None:
    spec: dict[str, Any] = {"type": "hf.constant"}
    for _ in range(9):
        spec = {"type": "clamp", "max": 1.0, "schedule": spec}
    response = client.post("/v1/schedules", json={"schedule": spec, "steps": 3})
    assert response.status_code == 422 and "deep" in response.text


def test_stepping_a_nested_pytorch_scheduler_too_far_is_422(client: TestClient) -> None:
    schedule = {
        "type": "scale",
        "factor": 1.0,
        "schedule": {"type": "MultiplicativeLR", "lr_lambda": "0.9 if epoch % 2 else 1.0"},
    }
    body = {"schedule": schedule, "steps": 10**12, "start": 10**12 - 1}
    response = client.post("/v1/schedules", json=body)
    assert response.status_code == 422 and "nested PyTorch scheduler" in response.text

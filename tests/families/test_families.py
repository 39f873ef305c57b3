"""Unit tests of the families, at their boundaries, with the library source they follow.

timm cannot be installed here (it needs torchvision, which has no CPU build), so the timm
expectations below are written from its source (timm 1.0.31, ``timm/scheduler``); the golden
fixtures were recorded from timm's scheduler modules loaded without ``timm/__init__``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.engine.families import noise


@pytest.fixture(scope="module")
def client() -> TestClient:
    from service.config import Settings
    from service.main import create_app

    return TestClient(create_app(Settings(store="memory")))


def lr(client: TestClient, schedule: dict[str, Any], steps: int = 40, **request: Any) -> Any:
    body = {"schedule": schedule, "lr": request.pop("lr", 0.1), "steps": steps} | request
    response = client.post("/v1/schedules", json=body)
    assert response.status_code == 200, response.text
    return response.json()["lr"]


def locs(client: TestClient, schedule: dict[str, Any], **request: Any) -> list[Any]:
    body = {"schedule": schedule, "lr": request.pop("lr", 0.1), "steps": 40} | request
    response = client.post("/v1/schedules", json=body)
    assert response.status_code == 422, response.text
    return [entry["loc"][2:] for entry in response.json()["detail"]]


# -- Hugging Face: LambdaLR multipliers of each group's lr ---------------------------------


def test_hf_warmup_starts_at_zero_and_multiplies_every_group(client: TestClient) -> None:
    schedule = {"type": "hf.linear", "num_warmup_steps": 4, "num_training_steps": 8}
    assert lr(client, schedule, steps=10, lr=[0.1, 1.0]) == [
        [0.0, 0.025, 0.05, 0.07500000000000001, 0.1, 0.07500000000000001, 0.05, 0.025, 0.0, 0.0],
        [0.0, 0.25, 0.5, 0.75, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0],
    ]


def test_hf_min_lr_is_relative_to_the_first_groups_lr(client: TestClient) -> None:
    schedule = {
        "type": "hf.cosine_with_min_lr",
        "num_warmup_steps": 0,
        "num_training_steps": 10,
        "min_lr": 0.01,
    }
    rows = lr(client, schedule, steps=11, lr=[0.1, 1.0])
    assert rows[0][10] == pytest.approx(0.01) and rows[1][10] == pytest.approx(0.1)


def test_hf_min_lr_and_min_lr_rate_are_exclusive(client: TestClient) -> None:
    spec = {"type": "hf.cosine_with_min_lr", "num_warmup_steps": 0, "num_training_steps": 10}
    assert locs(client, spec | {"min_lr": 0.1, "min_lr_rate": 0.1})
    assert locs(client, spec)


def test_hf_polynomial_checks_lr_end_against_the_lr(client: TestClient) -> None:
    spec = {"type": "hf.polynomial", "num_warmup_steps": 0, "num_training_steps": 10, "lr_end": 0.5}
    assert ["lr_end"] in locs(client, spec)


def test_hf_wsd_infers_stable_steps_and_holds_the_floor(client: TestClient) -> None:
    schedule = {
        "type": "hf.wsd",
        "num_warmup_steps": 2,
        "num_decay_steps": 2,
        "num_training_steps": 8,
        "decay_type": "linear",
        "min_lr_ratio": 0.1,
    }
    assert lr(client, schedule, steps=9, lr=1.0) == [[0.1, 0.55, 1, 1, 1, 1, 1.0, 0.55, 0.1]]


def test_hf_cosine_warmup_with_min_lr_reaches_the_lr_one_step_early(client: TestClient) -> None:
    schedule = {
        "type": "hf.cosine_warmup_with_min_lr",
        "num_warmup_steps": 4,
        "num_training_steps": 12,
        "min_lr_rate": 0.0,
    }
    row = lr(client, schedule, steps=13, lr=1.0)[0]
    assert row[:5] == [0.25, 0.5, 0.75, 1.0, pytest.approx(0.5 * (1 + math.cos(math.pi / 8)))]


# -- optax and Keras: the value is the lr of every group -----------------------------------


def test_optax_value_ignores_the_optimizer_lr(client: TestClient) -> None:
    schedule = {"type": "optax.constant", "value": 0.3}
    assert lr(client, schedule, steps=2, lr=[0.1, 7.0]) == [[0.3, 0.3], [0.3, 0.3]]


def test_boundaries_optax_switches_at_b_keras_after_b_timm_before_b(client: TestClient) -> None:
    optax = {
        "type": "optax.piecewise_constant",
        "init_value": 1.0,
        "boundaries_and_scales": {"3": 0.5},
    }
    keras = {"type": "keras.PiecewiseConstantDecay", "boundaries": [3], "values": [1.0, 0.5]}
    timm = {"type": "timm.multistep", "decay_t": [3], "decay_rate": 0.5}
    torch = {"type": "MultiStepLR", "milestones": [3], "gamma": 0.5}
    assert lr(client, optax, steps=6) == [[1.0, 1.0, 1.0, 0.5, 0.5, 0.5]]
    assert lr(client, keras, steps=6) == [[1.0, 1.0, 1.0, 1.0, 0.5, 0.5]]
    # timm multistep_lr.py: get_curr_decay_steps = bisect.bisect_right(self.decay_t, t + 1)
    assert lr(client, timm, steps=6, lr=1.0) == [[1.0, 1.0, 0.5, 0.5, 0.5, 0.5]]
    assert lr(client, torch, steps=6, lr=1.0) == [[1.0, 1.0, 1.0, 0.5, 0.5, 0.5]]


def test_total_length_conventions_of_warmup_cosines(client: TestClient) -> None:
    optax = {
        "type": "optax.warmup_cosine_decay",
        "init_value": 0.0,
        "peak_value": 1.0,
        "warmup_steps": 10,
        "decay_steps": 30,  # includes the warmup: ends at 30
    }
    keras = {
        "type": "keras.CosineDecay",
        "initial_learning_rate": 0.0,
        "decay_steps": 30,  # excludes the warmup: ends at 40
        "warmup_target": 1.0,
        "warmup_steps": 10,
    }
    assert lr(client, optax, steps=41)[0][30] == 0.0
    keras_row = lr(client, keras, steps=41)[0]
    assert keras_row[30] > 0.2 and keras_row[40] == pytest.approx(0.0, abs=1e-16)


def test_optax_warmup_cosine_with_decay_steps_equal_to_warmup_is_422(client: TestClient) -> None:
    spec = {
        "type": "optax.warmup_cosine_decay",
        "init_value": 0.0,
        "peak_value": 1.0,
        "warmup_steps": 10,
        "decay_steps": 10,
    }
    assert ["decay_steps"] in locs(client, spec)


def test_optax_exponential_end_value_bounds_growth_from_above(client: TestClient) -> None:
    spec = {
        "type": "optax.exponential_decay",
        "init_value": 1.0,
        "transition_steps": 1,
        "decay_rate": 2.0,
        "end_value": 5.0,
    }
    assert lr(client, spec, steps=5) == [[1.0, 2.0, 4.0, 5.0, 5.0]]


def test_keras_restarts_floor_is_not_scaled_by_m_mul(client: TestClient) -> None:
    spec = {
        "type": "keras.CosineDecayRestarts",
        "initial_learning_rate": 1.0,
        "first_decay_steps": 2,
        "t_mul": 1.0,
        "m_mul": 0.5,
        "alpha": 0.2,
    }
    assert lr(client, spec, steps=5)[0] == pytest.approx([1.0, 0.6, 0.6, 0.4, 0.4])


# -- timm (expectations from timm/scheduler source) ---------------------------------------


def test_timm_warmup_never_reaches_base_and_runs_on_absolute_t(client: TestClient) -> None:
    # cosine_lr.py: warmup_steps = (v - warmup_lr_init) / warmup_t; lr = warmup_lr_init + t * s
    # for t < warmup_t, then (no warmup_prefix) the cosine at the absolute t.
    spec = {"type": "timm.cosine", "t_initial": 10, "warmup_t": 4, "warmup_lr_init": 0.0}
    row = lr(client, spec, steps=11, lr=1.0)[0]
    assert row[:4] == [0.0, 0.25, 0.5, 0.75]
    assert row[4] == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 10)))
    assert row[10] == 0.0  # i = 1 >= cycle_limit = 1: lr_min


def test_timm_cycle_mul_geometry(client: TestClient) -> None:
    # cosine_lr.py: i = floor(log(1 - t/T (1 - m), m)), t_i = m^i T,
    # t_curr = t - (1 - m^i)/(1 - m) T, peak base * cycle_decay^i
    spec = {
        "type": "timm.cosine",
        "t_initial": 2,
        "cycle_mul": 2.0,
        "cycle_limit": 3,
        "cycle_decay": 0.5,
    }
    row = lr(client, spec, steps=15, lr=1.0)[0]
    assert row[0] == 1.0 and row[2] == 0.5 and row[6] == 0.25  # cycles start at 0, 2, 6
    assert row[4] == pytest.approx(0.25 * (1 + math.cos(math.pi * 2 / 4)))
    assert row[14] == 0.0  # fourth cycle: past cycle_limit


def test_timm_shrinking_cycles_end_in_a_math_domain_error(client: TestClient) -> None:
    spec = {"type": "timm.cosine", "t_initial": 10, "cycle_mul": 0.5, "cycle_limit": 100}
    assert ["cycle_mul"] in locs(client, spec)


def test_timm_tanh_warmup_aims_at_the_decayed_value(client: TestClient) -> None:
    # tanh_lr.py: t_v = base_values if warmup_prefix else self._get_lr(self.warmup_t)
    spec = {"type": "timm.tanh", "t_initial": 10, "warmup_t": 2, "lb": -1.0, "ub": 1.0}
    row = lr(client, spec, steps=3, lr=1.0)[0]
    at_2 = 0.5 * (1 - math.tanh(-1 * (1 - 0.2) + 1 * 0.2))
    assert row == pytest.approx([0.0, at_2 / 2, at_2])


def test_timm_noise_is_seeded_per_step_and_multiplicative(client: TestClient) -> None:
    # scheduler.py _add_noise: lrs = [v + v * noise]; _calculate_noise seeds noise_seed + t
    spec = {"type": "timm.step", "decay_t": 100, "noise_range_t": [2, 4], "noise_seed": 7}
    row = lr(client, spec, steps=5, lr=1.0)[0]
    n = noise.normal_noise(np.array([9, 10]), 0.67, 1.0)
    assert row == [1.0, 1.0, 1.0 + n[0], 1.0 + n[1], 1.0]
    assert all(abs(v) < 0.67 for v in n)


# torch.randn(1, generator=torch.Generator().manual_seed(s)).item(), torch 2.13 CPU
TORCH_RANDN = {0: 1.5409960746765137, 42: 0.33669036626815796, 12345: 1.4271304607391357}


@pytest.mark.parametrize("seed", sorted(TORCH_RANDN))
def test_noise_generator_reproduces_torch_randn(seed: int) -> None:
    first = noise.normal_noise(np.array([seed]), 10.0, 1.0)[0]
    assert first == TORCH_RANDN[seed]


def test_noise_matches_live_torch() -> None:
    torch = pytest.importorskip("torch")
    seeds = np.arange(100, 400)
    expected = []
    for seed in seeds:
        generator = torch.Generator()
        generator.manual_seed(int(seed))
        while True:
            value = torch.randn(1, generator=generator).item()
            if abs(value) < 0.3:
                break
        expected.append(value)
    assert noise.normal_noise(seeds, 0.3, 1.0).tolist() == expected


# -- fastai -------------------------------------------------------------------------------


def test_fastai_one_cycle_peaks_at_pct_start_and_ends_at_lr_max_over_div_final(
    client: TestClient,
) -> None:
    spec = {"type": "fastai.one_cycle", "n_epoch": 1, "n_iter": 100, "lr_max": 1.0}
    response = client.post("/v1/schedules", json={"schedule": spec, "steps": 101})
    data = response.json()
    row, momentum = data["lr"][0], data["momentum"][0]
    assert row[0] == pytest.approx(1 / 25) and row[25] == 1.0 and momentum[25] == 0.85
    assert row[100] == pytest.approx(1e-5)  # pos = 1: lr_max / div_final


def test_fastai_lr_max_defaults_to_each_groups_lr(client: TestClient) -> None:
    spec = {"type": "fastai.flat_cos", "n_epoch": 1, "n_iter": 4}
    assert lr(client, spec, steps=2, lr=[0.1, 0.2]) == [[0.1, 0.1], [0.2, 0.2]]

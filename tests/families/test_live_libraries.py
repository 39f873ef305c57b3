"""Live differential tests against the real libraries, when they are importable.

Skipped unless transformers, optax + jax, keras, fastai and timm (its scheduler modules) are
installed (see ``tools/family_reference.py``); the fixture tests cover the same ground
without them. Seeded random configurations, different from the fixtures', per family.
"""

from __future__ import annotations

import importlib.util
import os
import random
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conformance.tolerance import assert_curve_close

os.environ.setdefault("KERAS_BACKEND", "jax")  # Keras 3 needs a backend; jax is the one used
for _module in ("transformers", "optax", "jax", "keras", "fastai"):
    pytest.importorskip(_module)
if importlib.util.find_spec("timm") is None:  # not imported: timm/__init__ needs torchvision
    pytest.skip("timm is not installed", allow_module_level=True)

reference = pytest.importorskip("tools.family_reference")


def _random_requests(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    requests: list[dict[str, Any]] = []
    for _ in range(8):
        warmup = rng.choice([0, 2, 9])
        total = warmup + rng.randint(1, 80)
        kind = rng.choice(["hf.linear", "hf.cosine", "hf.cosine_with_restarts", "hf.inverse_sqrt"])
        spec: dict[str, Any] = {"type": kind, "num_warmup_steps": warmup}
        if kind != "hf.inverse_sqrt":
            spec["num_training_steps"] = total
        requests.append(
            {"schedule": spec, "lr": rng.choice([0.1, [0.3, 0.01]]), "steps": total + 9}
        )
    for _ in range(6):
        steps = rng.randint(1, 60)
        spec = {
            "type": "optax.exponential_decay",
            "init_value": 0.1,
            "transition_steps": rng.randint(-2, 9),
            "decay_rate": rng.choice([0.5, 0.9, 1.1]),
            "transition_begin": rng.randint(-3, 9),
            "staircase": rng.choice([True, False]),
            "end_value": rng.choice([None, 0.05, 0.2]),
        }
        requests.append({"schedule": spec, "lr": 0.1, "steps": steps + 30})
    for _ in range(8):
        kind = rng.choice(["timm.cosine", "timm.poly", "timm.tanh", "timm.step"])
        spec = {"type": kind, "warmup_t": rng.choice([0, 4]), "warmup_lr_init": 1e-3}
        if kind == "timm.step":
            spec.update(decay_t=rng.randint(1, 20), decay_rate=0.5)
        else:
            spec.update(
                t_initial=rng.randint(3, 30),
                cycle_limit=rng.randint(1, 3),
                cycle_mul=rng.choice([1.0, 2.0]),
            )
        spec["noise_range_t"] = rng.choice([None, 5, [3, 20]])
        requests.append({"schedule": spec, "lr": [0.1, 0.05], "steps": 70})
    for _ in range(2):
        spec = {
            "type": "keras.CosineDecayRestarts",
            "initial_learning_rate": 0.1,
            "first_decay_steps": rng.randint(2, 12),
            "t_mul": 1.0,
            "m_mul": 0.8,
        }
        requests.append({"schedule": spec, "lr": 0.1, "steps": 30})
    requests.append(
        {
            "schedule": {"type": "fastai.one_cycle", "n_epoch": 2, "n_iter": 13, "pct_start": 0.4},
            "lr": 0.2,
            "steps": 26,
        }
    )
    return requests


REQUESTS = _random_requests(99)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
"""The libraries warn (torch's step-order warning, deprecations); not this service's."""


@pytest.fixture(scope="module")
def client() -> TestClient:
    from service.config import Settings
    from service.main import create_app

    return TestClient(create_app(Settings(store="memory")))


@pytest.mark.parametrize("request_body", REQUESTS, ids=[r["schedule"]["type"] for r in REQUESTS])
def test_service_matches_the_live_library(client: TestClient, request_body: dict[str, Any]) -> None:
    expected_lr, expected_momentum = reference.run(request_body)
    response = client.post("/v1/schedules", json=request_body)
    assert response.status_code == 200, response.text
    body = response.json()
    if request_body["schedule"]["type"].startswith("keras.Cosine"):  # Keras' cos is float32
        for got, want in zip(body["lr"], expected_lr, strict=True):
            assert got == pytest.approx(want, rel=1e-6, abs=1e-8)
        return
    assert_curve_close(body["lr"], expected_lr, what="lr")
    assert_curve_close(body["momentum"], expected_momentum, what="momentum")

"""``lrsched_client.optax.schedule`` against optax's own schedules and optimizers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lrsched_client import Client, ValidationError

optax = pytest.importorskip("optax")
jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from lrsched_client import optax as remote  # noqa: E402

GOLDEN = json.loads((Path(__file__).resolve().parents[1] / "golden" / "adapters.json").read_text())
WARMUP_COSINE = GOLDEN["optax"][0]["spec"]
assert WARMUP_COSINE["type"] == "optax.warmup_cosine_decay"
ONE_CYCLE = {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 50}


def test_optax_spec_equals_optax_in_float64_including_past_the_end(client: Client) -> None:
    counts = np.arange(-3, 80)
    with jax.enable_x64(True):
        ours = remote.schedule(WARMUP_COSINE, 70, dtype="float64", client=client)
        theirs = optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 60, 0.001)
        got = np.asarray(ours(jnp.asarray(counts)))
        expected = np.asarray([float(theirs(max(int(c), 0))) for c in counts])
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_float32_table_is_the_service_curve_rounded_once_and_clamped(client: Client) -> None:
    ours = remote.schedule(ONE_CYCLE, 50, lr=0.004, client=client)
    exact = client.curve_json(ONE_CYCLE, 0.004, 50)["lr"][0]
    got = np.asarray(ours(jnp.arange(-2, 60)))
    assert got.dtype == np.float32
    clamped = [exact[min(max(c, 0), 49)] for c in range(-2, 60)]
    np.testing.assert_array_equal(got, np.asarray(clamped, dtype=np.float32))


def test_schedule_is_jit_and_vmap_safe(client: Client) -> None:
    ours = remote.schedule(ONE_CYCLE, 50, client=client)
    eager = [float(ours(k)) for k in range(55)]
    jitted = jax.jit(ours)
    assert [float(jitted(jnp.int32(k))) for k in range(55)] == eager
    assert np.asarray(jax.vmap(ours)(jnp.arange(55))).tolist() == eager


def test_inject_hyperparams_steps_through_the_remote_values(client: Client) -> None:
    ours = remote.schedule(ONE_CYCLE, 50, client=client)
    optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=ours)
    params = {"w": jnp.zeros(2)}
    state = optimizer.init(params)
    grads = {"w": jnp.ones(2)}
    for k in range(6):
        updates, state = optimizer.update(grads, state, params)
        assert np.asarray(updates["w"]).tolist() == [-float(ours(k))] * 2
        assert float(state.hyperparams["learning_rate"]) == float(ours(k))


def test_refusals_name_the_problem(client: Client) -> None:
    with pytest.raises(ValidationError) as refused:
        remote.schedule({"type": "StepLR", "step_size": 0.0, "gamma": "x"}, 10, client=client)
    assert any("gamma" in error["loc"] for error in refused.value.errors)
    with pytest.raises(ValueError, match="jax_enable_x64"):
        remote.schedule(ONE_CYCLE, 10, dtype="float64", client=client)
    with pytest.raises(ValueError, match="steps=0"):
        remote.schedule(ONE_CYCLE, 0, client=client)
    with pytest.raises(ValueError, match="one number"):
        remote.schedule(ONE_CYCLE, 10, lr=[0.1, 0.2], client=client)  # type: ignore[arg-type]

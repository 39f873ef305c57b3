"""``lrsched_client.keras`` against Keras 3 (jax backend): schedules, saving, fit callbacks."""

from __future__ import annotations

import os
import threading

import pytest
from lrsched_client import Client

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import numpy as np  # noqa: E402
from lrsched_client.keras import RemotePlateau, RemoteSchedule  # noqa: E402

COSINE = {"type": "keras.CosineDecay", "initial_learning_rate": 0.1, "decay_steps": 40}
ONE_CYCLE = {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 30}


def values(schedule: object, steps: range) -> list[float]:
    return [float(schedule(step)) for step in steps]  # type: ignore[operator]


def test_keras_spec_equals_keras_own_schedule_including_past_the_end(client: Client) -> None:
    ours = RemoteSchedule(COSINE, 50, client=client)
    theirs = keras.optimizers.schedules.CosineDecay(0.1, 40)
    # Keras computes in float32: its cosine near 0 is off by ~1e-9 absolute.
    expected = values(theirs, range(60))
    np.testing.assert_allclose(values(ours, range(60)), expected, rtol=2e-6, atol=1e-8)


def test_values_are_the_service_curve_rounded_once_and_clamped(client: Client) -> None:
    ours = RemoteSchedule(ONE_CYCLE, 31, lr=0.004, client=client)
    exact = np.float32(client.curve_json(ONE_CYCLE, 0.004, 31)["lr"][0])
    expected = [float(exact[min(max(k, 0), 30)]) for k in range(-2, 40)]
    assert values(ours, range(-2, 40)) == expected


def test_config_round_trip_fetches_the_same_values_again(url: str, client: Client) -> None:
    ours = RemoteSchedule(ONE_CYCLE, 31, client=client)
    config = ours.get_config()
    assert config == {"spec": ONE_CYCLE, "steps": 31, "lr": 0.001, "dtype": "float32", "url": url}
    again = RemoteSchedule.from_config(config)
    assert values(again, range(35)) == values(ours, range(35))
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(ours))
    assert isinstance(restored, RemoteSchedule)
    assert values(restored, range(35)) == values(ours, range(35))


def test_an_optimizer_steps_through_the_remote_values(client: Client) -> None:
    ours = RemoteSchedule(ONE_CYCLE, 31, client=client)
    optimizer = keras.optimizers.SGD(learning_rate=ours)
    weight = keras.Variable(np.zeros(2, dtype="float32"))
    before = 0.0
    for step in range(5):
        optimizer.apply_gradients([(keras.ops.ones(2), weight)])
        after = float(keras.ops.convert_to_numpy(weight.value)[0])
        assert after - before == pytest.approx(-float(ours(step)), rel=1e-6)
        before = after


def model() -> keras.Model:
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    net.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="mse")
    return net


def test_fit_applies_the_session_decisions(client: Client) -> None:
    session = client.create_session({"patience": 0, "factor": 0.5, "mode": "max"}, [0.1])
    net = model()
    x, y = np.ones((8, 2), "float32"), np.zeros((8, 1), "float32")
    # mode=max on a falling loss: every epoch after the first is a plateau, and cuts.
    history = net.fit(x, y, epochs=3, verbose=0, callbacks=[RemotePlateau(session, "loss")])
    state = session.state()
    assert state.epoch == 3 and state.lr == pytest.approx((0.025,))
    assert float(net.optimizer.learning_rate) == pytest.approx(0.025)
    assert [row.metric for row in session.history()] == pytest.approx(history.history["loss"])


def test_two_workers_get_the_same_decision(client: Client) -> None:
    session = client.create_session({"patience": 0, "factor": 0.5}, [0.1], world_size=2)
    callbacks = [RemotePlateau(session, "loss", rank) for rank in (0, 1)]
    nets = [model(), model()]
    for callback, net in zip(callbacks, nets, strict=True):
        callback.set_model(net)
        callback.on_train_begin()
    for epoch, (first, second) in enumerate([(1.0, 3.0), (4.0, 4.0)]):
        threads = [
            threading.Thread(target=cb.on_epoch_end, args=(epoch, {"loss": metric}))
            for cb, metric in zip(callbacks, (first, second), strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    # mean 2.0, then 4.0: no improvement with patience 0 cuts at epoch 1.
    assert [float(net.optimizer.learning_rate) for net in nets] == pytest.approx([0.05, 0.05])
    assert session.state().epoch == 2


def test_a_missing_monitor_is_an_error_naming_it(client: Client) -> None:
    callback = RemotePlateau(client.create_session({}, [0.1]), "val_loss")
    callback.set_model(model())
    callback.on_train_begin()
    with pytest.raises(KeyError, match="val_loss"):
        callback.on_epoch_end(0, {"loss": 1.0})

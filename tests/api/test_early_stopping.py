"""Early stopping over HTTP: the replay route and sessions (with and without a plateau rule),
on every store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from schemas.early_stopping import EarlyStopping
from schemas.plateau import ReduceLROnPlateau
from service.api.early_stopping import options
from service.config import Settings
from service.engine import registry
from service.engine.early_stopping import EarlyStoppingConfig
from service.engine.early_stopping import replay as stopping_replay
from service.engine.plateau import replay as plateau_replay
from service.main import create_app

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "early_stopping.json"
PLATEAU = {"type": "ReduceLROnPlateau", "patience": 1, "factor": 0.5}
KERAS = {"semantics": "keras", "patience": 2, "min_delta": 0.01}


class Session:
    def __init__(self, client: TestClient, **body: Any) -> None:
        response = client.post("/v1/sessions", json=body)
        assert response.status_code == 201, response.text
        self.client, self.created = client, response.json()
        self.id = self.created["id"]
        self.headers = {"Authorization": f"Bearer {self.created['token']}"}

    def report(self, epoch: int, metric: float | str, rank: int = 0) -> dict[str, Any]:
        response = self.client.post(
            f"/v1/sessions/{self.id}/reports",
            json={"epoch": epoch, "metric": metric, "rank": rank},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def get(self, suffix: str = "") -> Any:
        return self.client.get(f"/v1/sessions/{self.id}{suffix}", headers=self.headers)


def test_replay_route_stops_where_each_library_stops(memory_client: TestClient) -> None:
    for case in json.loads(GOLDEN.read_text())["early_stopping"]:
        response = memory_client.post("/v1/early-stopping/replay", json=case["request"])
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["stop_epoch"] == case["expected"]["stop_epoch"]
        assert body["state"]["best_epoch"] == case["expected"]["best_epoch"]
        assert body["state"]["best_metric"] == case["expected"]["best"]
        stop_epoch = case["expected"]["stop_epoch"]
        flags = [stop_epoch is not None and i >= stop_epoch for i in range(len(body["stop"]))]
        assert body["stop"] == flags


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"semantics": "hf", "patience": 1, "baseline": 0.5}, "baseline"),
        ({"semantics": "keras", "patience": 1, "stopping_threshold": 0.1}, "stopping_threshold"),
        ({"semantics": "keras", "patience": 1, "check_finite": False}, "check_finite"),
        ({"semantics": "keras", "patience": -1}, "patience"),
        ({"semantics": "keras", "patience": 1, "min_delta": -0.1}, "min_delta"),
        ({"semantics": "tf", "patience": 1}, "semantics"),
        ({"semantics": "keras"}, "patience"),
    ],
)
def test_bad_options_are_a_422_naming_the_field(
    memory_client: TestClient, options: dict[str, Any], field: str
) -> None:
    body = {"early_stopping": options, "metrics": [1.0]}
    replayed = memory_client.post("/v1/early-stopping/replay", json=body)
    created = memory_client.post("/v1/sessions", json={"early_stopping": options})
    for response in (replayed, created):
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] == field


def test_too_many_metrics_is_a_413() -> None:
    with TestClient(create_app(Settings(store="memory", max_values=3))) as client:
        body = {"early_stopping": KERAS, "metrics": [1.0] * 4}
        assert client.post("/v1/early-stopping/replay", json=body).status_code == 413


def test_every_rank_gets_the_same_stop_decided_once_on_the_reduced_metric(
    store_client: TestClient,
) -> None:
    session = Session(store_client, schedule=PLATEAU, lr=0.1, world_size=2, early_stopping=KERAS)
    metrics = [[1.0, 1.2], [0.9, 0.9], [0.9, 0.91], [0.95, 0.89], [0.93, 0.93], [0.5, 0.5]]
    reduced = [sum(pair) / 2 for pair in metrics]
    expected_stop = stopping_replay(EarlyStoppingConfig("keras", "min", 2, 0.01), reduced)
    expected_lr = plateau_replay(
        registry.plateau_config(ReduceLROnPlateau.model_validate(PLATEAU), 1), [0.1], reduced
    )
    for epoch, (first, second) in enumerate(metrics):
        waiting = session.report(epoch, first, rank=1)
        assert not waiting["decided"] and waiting["stop"] == (epoch > 3)
        decided = session.report(epoch, second, rank=0)
        assert decided["decided"] and decided["stop"] == expected_stop.stop[epoch]
        assert decided["lr"] == [expected_lr.lr[0, epoch]]
        assert session.report(epoch, first, rank=1) == decided  # a retry: the same answer
    assert expected_stop.state.stop_epoch == 3  # stays stopped though epoch 5 improves
    assert decided["best_epoch"] == 1 and decided["best_metric"] == 0.9
    view = session.get().json()
    assert view["stopping"]["stop_epoch"] == 3 and view["stopping"]["stop_reason"] == "patience"
    assert view["early_stopping"]["semantics"] == "keras"
    rows = session.get("/history").json()["rows"]
    assert [row["stop"] for row in rows] == expected_stop.stop


@pytest.mark.parametrize(
    "sent",
    [
        {"semantics": "keras", "patience": 2, "min_delta": 0.01, "baseline": 0.5},
        {"semantics": "hf", "mode": "max", "patience": 1, "start_from_epoch": 3},
        {"semantics": "lightning", "patience": 0, "check_finite": False, "stopping_threshold": 0.1},
        {"semantics": "lightning", "patience": 4},
    ],
    ids=["keras", "hf", "lightning", "lightning-defaults"],
)
def test_a_sessions_early_stopping_options_read_back_as_sent(sent: dict[str, Any]) -> None:
    """``options`` inverts the registry's config; an unsent Lightning ``check_finite`` reads
    back as Lightning's default, true."""
    spec = EarlyStopping.model_validate(sent)
    expected = spec.model_dump()
    if spec.semantics == "lightning" and spec.check_finite is None:
        expected["check_finite"] = True
    assert options(registry.early_stopping_config(spec)).model_dump() == expected


def test_early_stopping_only_session_keeps_the_lr_and_has_no_state_dict(
    store_client: TestClient,
) -> None:
    options = {"semantics": "lightning", "patience": 3, "mode": "max"}
    session = Session(store_client, early_stopping=options, lr=0.02)
    answers = [session.report(epoch, m) for epoch, m in enumerate([0.5, 0.6, "nan", 0.9])]
    assert [a["stop"] for a in answers] == [False, False, True, True]
    assert all(a["lr"] == [0.02] and not a["reduced"] for a in answers)
    assert answers[-1]["best_metric"] == 0.6 and answers[-1]["best_epoch"] == 1
    view = session.get().json()
    assert view["schedule"] is None and view["stopping"]["stop_reason"] == "non_finite"
    assert session.get("/state_dict").status_code == 409


def test_a_session_needs_a_schedule_or_early_stopping(memory_client: TestClient) -> None:
    response = memory_client.post("/v1/sessions", json={"lr": 0.1})
    assert response.status_code == 422


def test_plateau_sessions_answer_stop_false_without_early_stopping(
    memory_client: TestClient,
) -> None:
    session = Session(memory_client, schedule=PLATEAU, lr=0.1)
    answer = session.report(0, 1.0)
    assert answer["stop"] is False and answer["best_epoch"] is None
    assert session.get().json()["stopping"] is None

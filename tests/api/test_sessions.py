"""/v1/sessions through the API: auth, order, retries, ranks, warmup, export, resume."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.config import Settings
from service.engine import registry
from service.engine.plateau import replay
from service.main import create_app
from service.sessions import combine

PLATEAU = {"type": "ReduceLROnPlateau", "patience": 1, "factor": 0.5, "cooldown": 1}
PYTORCH_STATE_DICT_KEYS = {
    "factor",
    "default_min_lr",
    "min_lrs",
    "patience",
    "cooldown",
    "eps",
    "last_epoch",
    "_last_lr",
    "mode_worse",
    "mode",
    "threshold",
    "threshold_mode",
    "best",
    "cooldown_counter",
    "num_bad_epochs",
}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store="memory"))) as test_client:
        yield test_client


class Session:
    """A created session and calls on it with its bearer token."""

    def __init__(self, client: TestClient, **body: Any) -> None:
        response = client.post("/v1/sessions", json={"schedule": PLATEAU, "lr": 0.1} | body)
        assert response.status_code == 201, response.text
        self.client = client
        self.created = response.json()
        self.id = self.created["id"]
        self.headers = {"Authorization": f"Bearer {self.created['token']}"}

    def report(self, epoch: int, metric: float | str, rank: int = 0) -> Any:
        return self.client.post(
            f"/v1/sessions/{self.id}/reports",
            json={"epoch": epoch, "metric": metric, "rank": rank},
            headers=self.headers,
        )

    def get(self, suffix: str = "") -> Any:
        return self.client.get(f"/v1/sessions/{self.id}{suffix}", headers=self.headers)


def as_float(value: float | str) -> float:
    return float(value)


def test_create_returns_id_token_and_initial_state(client: TestClient) -> None:
    session = Session(client, lr=[0.1, 0.01])
    created = session.created
    assert len(created["id"]) >= 22 and len(created["token"]) >= 43  # >= 128 / 256 bits
    assert created["lr"] == [0.1, 0.01] and created["epoch"] == 0
    assert created["state"] == {
        "best": "inf",
        "num_bad_epochs": 0,
        "cooldown_counter": 0,
        "last_epoch": 0,
    }
    assert created["expires_at"] == pytest.approx(time.time() + 604800, abs=60)


def test_every_call_needs_the_bearer_token(client: TestClient) -> None:
    session = Session(client)
    calls = [
        ("get", ""),
        ("get", "/history"),
        ("get", "/state_dict"),
        ("post", "/reports"),
        ("delete", ""),
    ]
    report = {"epoch": 0, "metric": 1.0}
    for method, suffix in calls:
        url = f"/v1/sessions/{session.id}{suffix}"
        kwargs: dict[str, Any] = {"json": report} if method == "post" else {}
        missing = client.request(method, url, **kwargs)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        wrong = client.request(method, url, headers={"Authorization": "Bearer nope"}, **kwargs)
        assert wrong.status_code == 403
        basic = client.request(method, url, headers={"Authorization": "Basic eDp5"}, **kwargs)
        assert basic.status_code == 401
        unknown = client.request(
            method, f"/v1/sessions/unknown{suffix}", headers=session.headers, **kwargs
        )
        assert unknown.status_code == 404
    assert session.get().status_code == 200


def test_single_rank_decisions_equal_replay(client: TestClient) -> None:
    metrics: list[float | str] = [1.0, 0.9, 0.95, 0.97, "nan", 0.96, "inf", 0.5, 0.49, 0.6]
    session = Session(client, lr=[0.1, 1.0])
    answers = [session.report(epoch, metric).json() for epoch, metric in enumerate(metrics)]
    schedule = {k: v for k, v in PLATEAU.items() if k != "type"}
    from service.engine.plateau import PlateauConfig

    config = PlateauConfig(
        mode="min",
        factor=0.5,
        patience=schedule["patience"],
        threshold=1e-4,
        threshold_mode="rel",
        cooldown=schedule["cooldown"],
        min_lrs=(0.0, 0.0),
        eps=1e-8,
    )
    expected = replay(config, [0.1, 1.0], [as_float(m) for m in metrics])
    assert [a["lr"] for a in answers] == expected.lr.T.tolist()
    assert [a["reduced"] for a in answers] == expected.reduced.tolist()
    assert all(a["decided"] and a["waiting_for"] == [] for a in answers)
    assert [a["epoch"] for a in answers] == list(range(len(metrics)))


@pytest.mark.parametrize(("reduce", "expected"), [("mean", 2.0), ("min", 1.0), ("max", 3.0)])
def test_epoch_decided_when_the_last_rank_reports(
    client: TestClient, reduce: str, expected: float
) -> None:
    session = Session(client, world_size=3, reduce=reduce)
    first = session.report(0, 3.0, rank=2).json()
    assert first["decided"] is False and first["waiting_for"] == [0, 1]
    assert session.get().json()["pending_ranks"] == [2]
    assert session.report(0, 1.0, rank=0).json()["waiting_for"] == [1]
    last = session.report(0, 2.0, rank=1).json()
    assert last["decided"] is True and last["state"]["best"] == expected
    row = session.get("/history").json()["rows"][0]
    assert row["metric"] == expected and row["metrics"] == [1.0, 2.0, 3.0]


def test_nan_from_any_rank_makes_the_combined_metric_nan(client: TestClient) -> None:
    session = Session(client, world_size=2, reduce="min")
    session.report(0, 1.0, rank=0)
    answer = session.report(0, "nan", rank=1).json()
    assert answer["state"]["num_bad_epochs"] == 1 and answer["state"]["best"] == "inf"
    assert session.get("/history").json()["rows"][0]["metric"] == "nan"


def test_retry_of_a_decided_epoch_returns_the_recorded_decision(client: TestClient) -> None:
    session = Session(client)
    decisions = [
        session.report(epoch, metric).json() for epoch, metric in enumerate([1.0, 2.0, 3.0])
    ]
    before = (session.get().json(), session.get("/history").json())
    for epoch, decision in enumerate(decisions):
        assert session.report(epoch, 123.0).json() == decision  # a different metric: ignored
    assert (session.get().json()["epoch"], session.get("/history").json()) == (3, before[1])
    assert session.get().json()["best"] == before[0]["best"]


def test_repeated_report_of_a_pending_rank_changes_nothing(client: TestClient) -> None:
    session = Session(client, world_size=2)
    session.report(0, 1.0, rank=0)
    again = session.report(0, 5.0, rank=0).json()
    assert again["decided"] is False and again["waiting_for"] == [1]
    decided = session.report(0, 3.0, rank=1).json()
    assert decided["decided"] and decided["state"]["best"] == 2.0  # mean of 1.0 (first) and 3.0


def test_skipping_ahead_is_409_naming_the_expected_epoch(client: TestClient) -> None:
    session = Session(client)
    session.report(0, 1.0)
    response = session.report(2, 1.0)
    assert response.status_code == 409
    assert response.json()["detail"]["expected_epoch"] == 1
    assert session.get().json()["epoch"] == 1


def test_rank_outside_world_size_is_422(client: TestClient) -> None:
    session = Session(client, world_size=2)
    response = session.report(0, 1.0, rank=2)
    assert response.status_code == 422
    assert ["body", "rank"] in [e["loc"] for e in response.json()["detail"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"schedule": PLATEAU, "state_dict": {}}, "body"),
        ({"lr": 0.1}, "body"),
        ({"schedule": PLATEAU | {"min_lr": [0.1, 0.2]}, "lr": 0.1}, "min_lr"),
        ({"schedule": PLATEAU | {"factor": 1.0}}, "factor"),
        ({"schedule": PLATEAU, "world_size": 0}, "world_size"),
        ({"schedule": PLATEAU, "reduce": "median"}, "reduce"),
        ({"schedule": PLATEAU, "ttl_seconds": 0}, "ttl_seconds"),
        ({"schedule": PLATEAU, "lr": -1.0}, "lr"),
        ({"schedule": PLATEAU, "surprise": 1}, "surprise"),
    ],
)
def test_invalid_create_is_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/sessions", json=body)
    assert response.status_code == 422
    assert any(field in e["loc"] for e in response.json()["detail"]), response.json()


def test_invalid_metric_is_422(client: TestClient) -> None:
    session = Session(client)
    assert session.report(0, "lots").status_code == 422  # type: ignore[arg-type]
    assert session.report(0, "-Infinity").status_code == 200


def test_history_pages(client: TestClient) -> None:
    session = Session(client)
    for epoch in range(7):
        session.report(epoch, 1.0 / (epoch + 1))
    page = session.client.get(
        f"/v1/sessions/{session.id}/history?start=2&limit=3", headers=session.headers
    ).json()
    assert [row["epoch"] for row in page["rows"]] == [2, 3, 4] and page["next_start"] == 5
    last = session.client.get(
        f"/v1/sessions/{session.id}/history?start=5", headers=session.headers
    ).json()
    assert [row["epoch"] for row in last["rows"]] == [5, 6] and last["next_start"] is None


def test_delete_then_gone(client: TestClient) -> None:
    session = Session(client)
    assert (
        session.client.delete(f"/v1/sessions/{session.id}", headers=session.headers).status_code
        == 204
    )
    assert session.get().status_code == 404
    assert session.report(0, 1.0).status_code == 404


def test_session_expires_after_its_ttl(client: TestClient) -> None:
    session = Session(client, ttl_seconds=1)
    assert session.report(0, 1.0).status_code == 200  # a write refreshes the expiry
    time.sleep(1.2)
    assert session.get().status_code == 404


def test_warmup_ramps_linearly_then_hands_over_to_the_plateau_rule(client: TestClient) -> None:
    session = Session(client, lr=[0.1, 1.0], warmup_steps=4, warmup_start_factor=0.2)
    assert session.created["lr"] == pytest.approx([0.02, 0.2])
    worse = [session.report(epoch, 10.0 + epoch).json() for epoch in range(4)]
    for i, answer in enumerate(worse):
        factor = 0.2 + 0.8 * (i + 1) / 4
        assert answer["lr"] == pytest.approx([0.1 * factor, 1.0 * factor])
        assert answer["reduced"] is False and answer["state"]["last_epoch"] == 0
    assert worse[-1]["lr"] == [0.1, 1.0]
    rows = session.get("/history").json()["rows"]
    assert [row["warmup"] for row in rows] == [True] * 4
    # The plateau rule starts fresh: patience 1 needs two bad epochs after a first best.
    lrs = [session.report(4 + i, m).json()["lr"] for i, m in enumerate([1.0, 2.0, 3.0])]
    assert lrs == [[0.1, 1.0], [0.1, 1.0], [0.05, 0.5]]
    view = session.get().json()
    assert view["in_warmup"] is False and view["warmup_steps"] == 4


def test_state_dict_has_pytorchs_keys(client: TestClient) -> None:
    session = Session(client, lr=[0.1, 0.2])
    for epoch, metric in enumerate([1.0, 2.0, 3.0, 4.0]):
        session.report(epoch, metric)
    exported = session.get("/state_dict").json()
    assert set(exported) == PYTORCH_STATE_DICT_KEYS
    assert exported["mode_worse"] == "inf" and exported["last_epoch"] == 4
    assert exported["_last_lr"] == [0.05, 0.1] and exported["best"] == 1.0


def test_resume_from_a_state_dict_continues_at_its_epoch(client: TestClient) -> None:
    first = Session(client, lr=[0.1, 0.2])
    metrics = [1.0, 2.0, 3.0, 4.0, 0.5, 0.6, 0.7]
    for epoch, metric in enumerate(metrics[:4]):
        first.report(epoch, metric)
    saved = first.get("/state_dict").json()
    resumed = client.post("/v1/sessions", json={"state_dict": saved})
    assert resumed.status_code == 201, resumed.text
    body = resumed.json()
    assert body["epoch"] == 4 and body["lr"] == saved["_last_lr"]
    headers = {"Authorization": f"Bearer {body['token']}"}
    for epoch, metric in enumerate(metrics[4:], start=4):
        a = first.report(epoch, metric).json()
        b = client.post(
            f"/v1/sessions/{body['id']}/reports",
            json={"epoch": epoch, "metric": metric},
            headers=headers,
        ).json()
        assert a == b
    early = client.post(
        f"/v1/sessions/{body['id']}/reports", json={"epoch": 1, "metric": 1}, headers=headers
    )
    assert early.status_code == 409  # decided before the resume, elsewhere


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    world_size=st.integers(1, 4),
    reduce=st.sampled_from(["mean", "min", "max"]),
    patience=st.integers(-1, 3),
    cooldown=st.integers(0, 2),
    mode=st.sampled_from(["min", "max"]),
    threshold_mode=st.sampled_from(["rel", "abs"]),
    rows=st.lists(
        st.lists(
            st.one_of(st.floats(-5, 5, allow_nan=False), st.just(math.nan), st.just(math.inf)),
            min_size=4,
            max_size=4,
        ),
        min_size=1,
        max_size=12,
    ),
    order=st.randoms(use_true_random=False),
)
def test_random_jobs_decide_like_replay_of_the_combined_metrics(
    client: TestClient,
    world_size: int,
    reduce: str,
    patience: int,
    cooldown: int,
    mode: str,
    threshold_mode: str,
    rows: list[list[float]],
    order: Any,
) -> None:
    schedule = {
        "type": "ReduceLROnPlateau",
        "patience": patience,
        "cooldown": cooldown,
        "mode": mode,
    }
    schedule |= {"threshold_mode": threshold_mode, "factor": 0.5}
    session_body = {
        "schedule": schedule,
        "lr": [0.1, 0.3],
        "world_size": world_size,
        "reduce": reduce,
    }
    response = client.post("/v1/sessions", json=session_body)
    session_id, headers = (
        response.json()["id"],
        {"Authorization": f"Bearer {response.json()['token']}"},
    )
    combined = []
    answers = []
    for epoch, row in enumerate(rows):
        ranks = list(range(world_size))
        order.shuffle(ranks)
        for rank in ranks + ranks[:1]:  # the first rank retries after the epoch is decided
            metric = row[rank]
            wire = "nan" if math.isnan(metric) else ("inf" if math.isinf(metric) else metric)
            body = {"epoch": epoch, "metric": wire, "rank": rank}
            answer = client.post(
                f"/v1/sessions/{session_id}/reports", json=body, headers=headers
            ).json()
        answers.append(answer)
        combined.append(combine(tuple(row[:world_size]), reduce))  # type: ignore[arg-type]
    from schemas.plateau import ReduceLROnPlateau

    config = registry.plateau_config(ReduceLROnPlateau.model_validate(schedule), 2)
    expected = replay(config, [0.1, 0.3], combined)
    np.testing.assert_array_equal(np.array([a["lr"] for a in answers]).T, expected.lr)
    assert [a["reduced"] for a in answers] == expected.reduced.tolist()


def test_state_dict_and_decisions_equal_live_torch(client: TestClient) -> None:
    torch = pytest.importorskip("torch")
    import warnings

    metrics = [1.0, 0.8, 0.85, 0.9, math.nan, 0.7, math.inf, 0.71, 0.72, 0.73, -1.0, -0.99]
    schedule = {"type": "ReduceLROnPlateau", "patience": 1, "cooldown": 1, "factor": 0.3}
    schedule |= {"min_lr": [0.001, 0.05], "threshold": 0.05}
    session = Session(client, schedule=schedule, lr=[0.1, 0.2])
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in (0.1, 0.2)]
    optimizer = torch.optim.SGD(groups, lr=0.1)
    options = {k: v for k, v in schedule.items() if k != "type"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **options)
        for epoch, metric in enumerate(metrics):
            wire = "nan" if math.isnan(metric) else ("inf" if math.isinf(metric) else metric)
            answer = session.report(epoch, wire).json()
            scheduler.step(metric)
            assert answer["lr"] == [g["lr"] for g in optimizer.param_groups]
    exported = session.get("/state_dict").json()
    expected = scheduler.state_dict()
    assert set(exported) == set(expected)
    for key, value in expected.items():
        wire = value
        if isinstance(value, float) and not math.isfinite(value):
            wire = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        assert exported[key] == wire, key


def test_store_outage_is_a_retryable_503() -> None:
    from service.store_holder import StoreHolder
    from service.stores import SessionStore, StoreUnavailableError
    from service.stores.memory import MemoryStore

    class FlakyStore(MemoryStore):
        """Down for the first update, then back."""

        outages = 1

        def update(self, session_id: str, fn: Any) -> Any:
            if self.outages:
                self.outages -= 1
                raise StoreUnavailableError("ConnectionError: connection refused")
            return super().update(session_id, fn)

    class FlakyHolder(StoreHolder):
        """Holds the flaky store: what every route reads the store from."""

        def get(self) -> SessionStore:
            return store

    store = FlakyStore()
    app = create_app(Settings(store="memory"))
    app.state.store = FlakyHolder("memory")
    with TestClient(app) as outage_client:
        session = Session(outage_client)
        response = session.report(0, 1.0)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert session.report(0, 1.0).json()["decided"] is True  # the retry goes through


def test_session_view_echoes_the_plateau_variant_options(client: TestClient) -> None:
    schedule = {
        "type": "ReduceLROnPlateau",
        "patience_semantics": "keras",
        "threshold_mode": "both",
        "threshold": 0.01,
        "min_delta": 0.001,
        "sign_safe_threshold": True,
        "accumulation_size": 3,
    }
    session = Session(client, schedule=schedule)
    echoed = session.get().json()["schedule"]
    assert {key: echoed[key] for key in schedule} == schedule
    again = client.post("/v1/sessions", json={"schedule": echoed, "lr": 0.1})
    assert again.status_code == 201  # the echo is itself a valid spec

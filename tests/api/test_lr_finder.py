"""The LR range test over HTTP, on every store: ranks, retries, stop, result, refusals."""

from __future__ import annotations

import math
import random
import re
from typing import Any

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from service.config import Settings
from service.engine.lr_finder import LrFinderConfig, LrFinderState, lr_at, step, suggest
from service.limits import MAX_LR_FINDER_STEPS
from service.main import create_app

OPTIONS = {"start_lr": 1e-5, "end_lr": 1.0, "num_steps": 40, "smooth": 0.9}


class Finder:
    def __init__(self, client: TestClient, **body: Any) -> None:
        response = client.post("/v1/lr-finder", json=body)
        assert response.status_code == 201, response.text
        self.client, self.created = client, response.json()
        self.id = self.created["id"]
        self.headers = {"Authorization": f"Bearer {self.created['token']}"}

    def report(self, step: int, loss: float | str, rank: int = 0) -> Any:
        return self.client.post(
            f"/v1/lr-finder/{self.id}/reports",
            json={"step": step, "loss": loss, "rank": rank},
            headers=self.headers,
        )

    def result(self) -> dict[str, Any]:
        response = self.client.get(f"/v1/lr-finder/{self.id}/result", headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def loss_at(lr: float, rank: int) -> float:
    """A loss that falls with log(lr), then blows up past lr = 0.05 (the rank adds noise)."""
    return 3.0 - 0.3 * math.log10(lr / 1e-5) + 0.01 * rank + (40.0 * lr if lr > 0.05 else 0.0)


def test_every_rank_gets_the_same_lr_and_stop_and_the_result_is_the_rule_s(
    store_client: TestClient,
) -> None:
    world_size = 3
    finder = Finder(store_client, **OPTIONS, world_size=world_size, reduce="mean")
    config = LrFinderConfig(**OPTIONS)
    assert finder.created["lr"] == 1e-5 and finder.created["num_steps"] == 40
    rng = random.Random(14)
    state, lr, reduced, answers = LrFinderState(), 1e-5, [], []
    for k in range(config.num_steps):
        losses = [loss_at(lr, rank) for rank in range(world_size)]
        order = rng.sample(range(world_size), world_size)
        for rank in order[:-1]:
            waiting = finder.report(k, losses[rank], rank).json()
            assert not waiting["decided"] and waiting["stop"] is False
        answer = finder.report(k, losses[order[-1]], order[-1]).json()
        assert finder.report(k, losses[order[0]], order[0]).json() == answer  # a retry
        mean = sum(losses) / world_size
        reduced.append(mean)
        state = step(config, state, mean)
        assert answer["decided"] and answer["stop"] == state.stop
        assert answer["smoothed_loss"] == state.smoothed
        answers.append(answer)
        if state.stop:
            break
        lr = lr_at(config, k + 1)
        assert answer["lr"] == lr
    assert state.reason == "diverged" and 10 < len(answers) < 40
    result = finder.result()
    assert result["loss"] == reduced and result["stop_reason"] == "diverged"
    assert result["lr"] == [lr_at(config, k) for k in range(len(reduced))]
    expected = suggest(result["lr"], result["smoothed_loss"], config.num_steps)
    assert result["suggestions"] == {
        "fastai": {
            "minimum": expected.fastai_minimum,
            "steep": expected.fastai_steep,
            "valley": expected.fastai_valley,
            "slide": expected.fastai_slide,
        },
        "lightning": expected.lightning,
        "torch_lr_finder": expected.torch_lr_finder,
    }
    assert expected.torch_lr_finder is not None and expected.fastai_valley is not None
    late = finder.report(len(answers), 1.0).json()  # after the stop: still stopped
    assert late["stop"] is True and len(finder.result()["lr"]) == len(answers)


def test_a_non_finite_loss_stops_the_test_as_divergence(memory_client: TestClient) -> None:
    finder = Finder(memory_client, **OPTIONS)
    assert finder.report(0, 2.0).json()["stop"] is False
    answer = finder.report(1, "nan").json()
    assert answer["stop"] is True and answer["stop_reason"] == "diverged"
    assert answer["smoothed_loss"] == "nan"


def test_a_report_that_skips_ahead_is_409_naming_the_step(memory_client: TestClient) -> None:
    finder = Finder(memory_client, **OPTIONS)
    response = finder.report(2, 2.0)
    assert response.status_code == 409 and response.json()["detail"]["expected_epoch"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start_lr": 1e-3, "end_lr": 1e-3}, "end_lr"),
        ({"start_lr": 1e-3, "end_lr": 1e-4}, "end_lr"),
        ({"start_lr": 1e-10, "end_lr": 1e300}, "end_lr"),  # the ratio overflows
        ({"start_lr": 5e-324, "end_lr": 1.0, "mode": "linear"}, "end_lr"),
        ({"num_steps": MAX_LR_FINDER_STEPS + 1}, "num_steps"),
        ({"num_steps": 1}, "num_steps"),
        ({"start_lr": 0.0}, "start_lr"),
        ({"smooth": 1.0}, "smooth"),
        ({"diverge_threshold": 0.5}, "diverge_threshold"),
        ({"mode": "cosine"}, "mode"),
        ({"world_size": 0}, "world_size"),
    ],
)
def test_bad_options_are_a_422_naming_the_field(
    memory_client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = memory_client.post("/v1/lr-finder", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


def test_the_widest_range_has_a_finite_lr_at_every_step(memory_client: TestClient) -> None:
    """end_lr / start_lr just under float64's maximum: every step's lr is a number (an
    overflowing ratio once gave ``"lr": null`` and then a 500 on every read)."""
    options = {"start_lr": 1e-300, "end_lr": 1.7e8, "num_steps": 3}
    finder = Finder(memory_client, **options)
    lrs = [finder.report(k, 1.0).json()["lr"] for k in range(2)]
    view = memory_client.get(f"/v1/lr-finder/{finder.id}", headers=finder.headers)
    assert view.status_code == 200
    config = LrFinderConfig(**options)
    assert lrs + [view.json()["lr"]] == [lr_at(config, 1), lr_at(config, 2), lr_at(config, 2)]
    assert lr_at(config, 2) == pytest.approx(1.7e8)


def test_a_plateau_session_is_not_a_range_test(memory_client: TestClient) -> None:
    created = memory_client.post(
        "/v1/sessions", json={"schedule": {"type": "ReduceLROnPlateau"}}
    ).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    response = memory_client.get(f"/v1/lr-finder/{created['id']}/result", headers=headers)
    assert response.status_code == 404


def test_the_result_needs_the_token_and_delete_removes_it(memory_client: TestClient) -> None:
    finder = Finder(memory_client, **OPTIONS)
    url = f"/v1/lr-finder/{finder.id}"
    assert memory_client.get(f"{url}/result").status_code == 401
    assert memory_client.delete(url, headers=finder.headers).status_code == 204
    assert memory_client.get(f"{url}/result", headers=finder.headers).status_code == 404


def test_the_view_gives_the_next_step_its_lr_and_the_options(memory_client: TestClient) -> None:
    finder = Finder(memory_client, **OPTIONS, world_size=2)
    finder.report(0, 2.0, rank=0)
    finder.report(0, 2.2, rank=1)
    finder.report(1, 2.0, rank=1)
    view = memory_client.get(f"/v1/lr-finder/{finder.id}", headers=finder.headers).json()
    config = LrFinderConfig(**OPTIONS)
    assert view["step"] == 1 and view["lr"] == lr_at(config, 1) and view["stop"] is False
    assert view["pending_ranks"] == [1]
    assert view["options"] == {
        **OPTIONS,
        "mode": "exponential",
        "smoothing": "debiased",
        "diverge_threshold": 4.0,
        "world_size": 2,
        "reduce": "mean",
        "ttl_seconds": 604800,
    }


def test_the_plot_is_loss_against_log_lr_with_every_suggestion_marked(
    memory_client: TestClient,
) -> None:
    pytest.importorskip("matplotlib")
    finder = Finder(memory_client, **OPTIONS)
    for k in range(OPTIONS["num_steps"]):  # type: ignore[arg-type]
        if finder.report(k, loss_at(lr_at(LrFinderConfig(**OPTIONS), k), 0)).json()["stop"]:
            break
    result = finder.result()
    marked = [v for v in result["suggestions"]["fastai"].values() if v is not None]
    marked += [v for k, v in result["suggestions"].items() if k != "fastai" and v is not None]
    assert len(marked) == 6
    url = f"/v1/lr-finder/{finder.id}/plot"
    svg = memory_client.get(url, headers=finder.headers)
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    text = svg.text
    assert all(f'id="suggestion-{i}"' in text for i in range(6)) and 'id="suggestion-6"' not in text
    assert 'id="smoothed"' in text and "learning rate" in text
    ticks = "".join(re.findall(r"<tspan[^>]*>([^<]*)</tspan>", text))
    assert "10−5" in ticks and "10−3" in ticks  # decades on x: a log axis from 1e-5 on
    png = memory_client.get(url, headers={**finder.headers, "Accept": "image/png"})
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    refused = memory_client.get(url, headers={**finder.headers, "Accept": "text/csv"})
    assert refused.status_code == 406


@pytest.mark.parametrize("losses", [[1e308], [1e308, 1e308], [-1e308, 1e308, 2.0]])
@pytest.mark.parametrize("accept", ["image/svg+xml", "image/png"])
def test_losses_matplotlib_cannot_place_are_left_out_of_the_plot(
    memory_client: TestClient, losses: list[float], accept: str
) -> None:
    """A loss near float64's maximum once made matplotlib's ticks fail (a 500)."""
    pytest.importorskip("matplotlib")
    finder = Finder(memory_client, start_lr=1e-300, end_lr=1.7e8, num_steps=20)
    for k, loss in enumerate(losses):
        finder.report(k, loss)
    response = memory_client.get(
        f"/v1/lr-finder/{finder.id}/plot", headers={**finder.headers, "Accept": accept}
    )
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == accept


def test_the_plot_is_drawn_on_the_curve_pool_and_admitted_by_it() -> None:
    """45 plots at once once held the threads session calls shared for seconds; now each
    takes a place on the curve pool, and past its places a plot is a 503 like a curve."""
    pytest.importorskip("matplotlib")
    with TestClient(create_app(Settings(store="memory", curve_jobs=1))) as client:
        finder = Finder(client, **OPTIONS)
        finder.report(0, 2.0)
        url = f"/v1/lr-finder/{finder.id}/plot"
        held = client.app.state.curve_pool.admit(Request({"type": "http"}), 10)  # type: ignore[attr-defined]
        try:
            refused = client.get(url, headers=finder.headers)
        finally:
            held.close()
        assert refused.status_code == 503 and "Retry-After" in refused.headers
        assert "LRSCHED_CURVE_JOBS" in refused.text
        drawn = client.get(url, headers=finder.headers)
        assert drawn.status_code == 200 and 'id="smoothed"' in drawn.text


def test_range_tests_belong_to_their_api_key_and_count_in_its_quota() -> None:
    keys = {"X-API-Key": "key-a"}, {"X-API-Key": "key-b"}
    settings = Settings(
        store="memory",
        api_keys="key-a,key-b",  # type: ignore[arg-type]
        max_sessions_per_key=2,
        max_world_size=8,
    )
    with TestClient(create_app(settings)) as client:
        created = client.post("/v1/lr-finder", json=OPTIONS, headers=keys[0]).json()
        plateau = {"schedule": {"type": "ReduceLROnPlateau"}}
        assert client.post("/v1/sessions", json=plateau, headers=keys[0]).status_code == 201
        third = client.post("/v1/lr-finder", json=OPTIONS, headers=keys[0])
        assert third.status_code == 429 and "LRSCHED_MAX_SESSIONS_PER_KEY" in third.text
        path = f"/v1/lr-finder/{created['id']}"
        for key, status in ((keys[1], 404), (keys[0], 200)):
            headers = {**key, "Authorization": f"Bearer {created['token']}"}
            report = {"step": 0, "loss": 2.0}
            assert (
                client.post(f"{path}/reports", json=report, headers=headers).status_code == status
            )
            assert client.get(f"{path}/result", headers=headers).status_code == status
        too_wide = client.post("/v1/lr-finder", json={"world_size": 9}, headers=keys[1])
        assert too_wide.status_code == 422
        assert too_wide.json()["detail"][0]["loc"][-1] == "world_size"

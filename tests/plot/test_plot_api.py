"""POST /v1/schedules/plot: media types, momentum axis, comparisons, limits, 501; the playground."""

from __future__ import annotations

import re
import sys
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service import plotting
from service.api import plot
from service.config import Settings
from service.main import create_app

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ONE_CYCLE = {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 1000}
STEP = {"type": "StepLR", "step_size": 100, "gamma": 0.5}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(Settings(store="memory")))


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[plotting.Plot]:
    """Every picture handed to the plotter; nothing is really drawn (faster)."""
    pictures: list[plotting.Plot] = []

    def capture(picture: plotting.Plot, fmt: plotting.Format) -> bytes:
        pictures.append(picture)
        return b"<svg/>"

    monkeypatch.setattr(plotting, "render", capture)
    return pictures


def post(client: TestClient, body: dict[str, Any], **kwargs: Any) -> Any:
    return client.post("/v1/schedules/plot", json=body, **kwargs)


def locs(response: Any) -> list[list[Any]]:
    return [entry["loc"] for entry in response.json()["detail"]]


def line_ids(svg: bytes) -> list[str]:
    return re.findall(r'<g id="((?:lr|momentum)-\d+)"', svg.decode())


def test_svg_is_the_default_titled_with_the_schedule_type(client: TestClient) -> None:
    response = post(client, {"schedule": STEP, "lr": [0.1, 0.2], "steps": 500})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.content.startswith(b"<?xml") and b"<svg" in response.content[:500]
    assert b">StepLR</text>" in response.content
    assert line_ids(response.content) == ["lr-0", "lr-1"]  # one line per param group


def test_png_when_accepted(client: TestClient) -> None:
    response = post(client, {"schedule": STEP, "steps": 500}, headers={"Accept": "image/png"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, plot.SVG),
        ("*/*", plot.SVG),
        ("image/*", plot.SVG),
        ("image/png;q=0.9, image/svg+xml;q=0.5", plot.PNG),
        ("text/html, image/png;q=0.1", plot.PNG),
        ("application/json", None),
        ("image/png;q=0", None),
    ],
)
def test_accept_negotiation(accept: str | None, expected: str | None) -> None:
    assert plot.negotiate(accept) == expected


def test_unacceptable_media_type_is_406(client: TestClient) -> None:
    response = post(client, {"schedule": STEP, "steps": 10}, headers={"Accept": "application/json"})
    assert response.status_code == 406
    assert "image/svg+xml" in response.json()["detail"]


def test_momentum_gets_a_second_axis_for_one_cycle(client: TestClient) -> None:
    svg = post(client, {"schedule": ONE_CYCLE, "steps": 1000}).content
    assert line_ids(svg) == ["lr-0", "momentum-0"]
    assert b">momentum</text>" in svg  # the right axis' label
    assert b">momentum</text>" not in post(client, {"schedule": STEP, "steps": 1000}).content


def test_log_scale_with_zeros_draws(client: TestClient) -> None:
    cosine = {"type": "CosineAnnealingLR", "T_max": 50, "eta_min": 0.0}  # reaches 0 at 50, 150..
    response = post(client, {"schedule": cosine, "lr": 0.1, "steps": 400}, params={"scale": "log"})
    assert response.status_code == 200
    assert line_ids(response.content) == ["lr-0"]


def test_unknown_scale_is_422_naming_it(client: TestClient) -> None:
    response = post(client, {"schedule": STEP, "steps": 10}, params={"scale": "symlog"})
    assert response.status_code == 422
    assert ["query", "scale"] in locs(response)


def test_comparison_overlays_every_schedule_with_its_label(client: TestClient) -> None:
    body = {"schedules": [ONE_CYCLE, STEP], "labels": ["one cycle", "step"], "steps": 1000}
    response = post(client, body)
    assert response.status_code == 200
    assert line_ids(response.content) == ["lr-0", "lr-1", "momentum-0"]
    assert b">one cycle vs step</text>" in response.content
    assert b">one cycle</text>" in response.content and b">step</text>" in response.content


def test_comparison_labels_default_to_numbered_types(client: TestClient) -> None:
    body = {"schedules": [STEP, STEP | {"gamma": 0.1}], "steps": 300}
    assert b">StepLR #1 vs StepLR #2</text>" in post(client, body).content


def test_comparison_needs_one_label_per_schedule(client: TestClient) -> None:
    response = post(client, {"schedules": [ONE_CYCLE, STEP], "labels": ["only one"], "steps": 10})
    assert response.status_code == 422
    assert locs(response) == [["body", "labels"]]
    assert "1 labels for 2 schedules" in response.text


def test_one_schedule_takes_one_label(client: TestClient) -> None:
    response = post(client, {"schedule": STEP, "labels": ["a", "b"], "steps": 10})
    assert response.status_code == 422
    assert locs(response) == [["body", "labels"]]
    assert (
        b">mine</text>" in post(client, {"schedule": STEP, "labels": ["mine"], "steps": 10}).content
    )


def test_at_most_eight_curves(client: TestClient) -> None:
    response = post(client, {"schedules": [STEP] * 9, "steps": 10})
    assert response.status_code == 422
    assert locs(response) == [["body", "schedules"]]


def test_schedule_or_schedules_exactly_one(client: TestClient) -> None:
    neither = post(client, {"steps": 10})
    assert neither.status_code == 422 and locs(neither) == [["body", "schedule"]]
    both = post(client, {"schedule": STEP, "schedules": [STEP], "steps": 10})
    assert both.status_code == 422 and locs(both) == [["body", "schedules"]]


def test_invalid_spec_in_a_comparison_names_its_index_and_field(client: TestClient) -> None:
    body = {"schedules": [STEP, {"type": "CosineAnnealingLR", "T_max": 0}], "steps": 10}
    response = post(client, body)
    assert response.status_code == 422
    assert ["body", "schedules", 1, "T_max"] in locs(response)
    schema = post(client, {"schedules": [STEP, {"type": "StepLR", "step_size": "x"}], "steps": 10})
    assert schema.status_code == 422
    assert locs(schema) == [["body", "schedules", 1, "step_size"]]  # no union labels


def test_single_form_errors_are_those_of_v1_schedules(client: TestClient) -> None:
    body = {"schedule": {"type": "OneCycleLR", "max_lr": 0.1, "pct_start": 1.5}, "steps": 10}
    response = post(client, body)
    curve = client.post("/v1/schedules", json=body)
    assert response.status_code == curve.status_code == 422
    assert response.json() == curve.json()


def test_too_many_values_is_422_naming_steps(client: TestClient) -> None:
    response = post(client, {"schedule": STEP, "steps": 10**12})
    assert response.status_code == 422
    assert locs(response) == [["body", "steps"]]
    assert "LRSCHED_MAX_VALUES" in response.text


def test_value_limit_counts_every_curve_and_group() -> None:
    small = TestClient(create_app(Settings(store="memory", max_values=100)))
    body = {"schedules": [STEP, STEP], "lr": [0.1, 0.2], "steps": 25}  # 2 x 2 x 25 = 100
    assert post(small, body).status_code == 200
    assert post(small, body | {"steps": 26}).status_code == 422


def test_stepping_budget_applies(client: TestClient) -> None:
    chained = {
        "type": "ChainedScheduler",
        "schedulers": [STEP, {"type": "ExponentialLR", "gamma": 0.9}],
    }
    response = post(client, {"schedule": chained, "steps": 10**12, "start": 10**12 - 10})
    assert response.status_code == 422
    assert "step by step" in response.text


def test_a_million_step_curve_reaches_the_plotter_downsampled_with_its_spike(
    client: TestClient, drawn: list[plotting.Plot]
) -> None:
    spike = {"type": "LambdaLR", "lr_lambda": "1.0 if epoch == 654321 else 0.01"}
    response = post(
        client, {"schedule": spike, "lr": 1.0, "steps": 1_000_000}, params={"width": 640}
    )
    assert response.status_code == 200
    (line,) = drawn[0].series
    assert line.x.size <= 2 * 640 + 2
    assert line.y.max() == 1.0 and line.x[np.argmax(line.y)] == 654321


def test_large_curve_svg_stays_small(client: TestClient) -> None:
    body = {"schedule": {"type": "CosineAnnealingWarmRestarts", "T_0": 1000}, "steps": 2_000_000}
    response = post(client, body)
    assert response.status_code == 200
    assert len(response.content) < 200_000


def test_etag_and_304(client: TestClient) -> None:
    body = {"schedule": STEP, "steps": 300}
    first = post(client, body)
    tag = first.headers["etag"]
    assert post(client, body).headers["etag"] == tag
    assert post(client, body, params={"scale": "log"}).headers["etag"] != tag
    assert post(client, body, headers={"Accept": "image/png"}).headers["etag"] != tag
    again = post(client, body, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""


def test_if_none_match_star_does_not_hide_a_refusal(client: TestClient) -> None:
    refused = {"schedule": {"type": "LambdaLR", "lr_lambda": "1/epoch"}, "steps": 10}
    plain = post(client, refused)
    starred = post(client, refused, headers={"If-None-Match": "*"})
    assert plain.status_code == starred.status_code == 422
    assert starred.json() == plain.json()
    drawn = post(client, {"schedule": STEP, "steps": 30}, headers={"If-None-Match": "*"})
    assert drawn.status_code == 304 and drawn.content == b""


def test_501_without_matplotlib_while_the_rest_works(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    response = post(client, {"schedule": STEP, "steps": 10})
    assert response.status_code == 501
    assert "matplotlib" in response.json()["detail"]
    assert "lrsched[plot]" in response.json()["detail"]
    assert client.post("/v1/schedules", json={"schedule": STEP, "steps": 10}).status_code == 200
    assert client.get("/").status_code == 200


def test_openapi_documents_the_image_types_and_the_examples(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/schedules/plot"]["post"]
    assert set(operation["responses"]["200"]["content"]) == {plot.SVG, plot.PNG}
    assert {"406", "422", "501"} <= set(operation["responses"])
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert {"comparison", "OneCycleLR", "SequentialLR"} <= set(examples)
    params = {p["name"] for p in operation["parameters"]}
    assert {"scale", "width", "height"} <= params


def test_every_documented_example_reaches_the_plotter(
    client: TestClient, drawn: list[plotting.Plot]
) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/schedules/plot"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    for name, example in examples.items():  # drawing each for real would only cost time
        response = post(client, example["value"])
        assert response.status_code == 200, (name, response.text)
        assert drawn[-1].series and drawn[-1].series[0].x.size == example["value"]["steps"]


def test_playground_page_and_its_assets_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/playground.js"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from elsewhere
    script = client.get("/static/playground.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert client.get("/static/playground.css").headers["content-type"].startswith("text/css")
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_values_too_large_to_draw_are_422_naming_the_schedule(client: TestClient) -> None:
    growing = {"type": "ExponentialLR", "gamma": 10.0}  # reaches 1e200: finite, not drawable
    response = post(client, {"schedules": [STEP, growing], "lr": 1.0, "steps": 201})
    assert response.status_code == 422
    assert locs(response) == [["body", "schedules", 1]]
    assert "cannot be drawn" in response.text
    tiny = {"type": "ExponentialLR", "gamma": 0.1}  # down to 1e-330: underflows to 0
    assert post(client, {"schedule": tiny, "lr": 1.0, "steps": 331}).status_code == 200
    on_log = post(client, {"schedule": tiny, "lr": 1.0, "steps": 331}, params={"scale": "log"})
    assert on_log.status_code == 200


def test_too_many_lines_is_422_naming_lr(client: TestClient) -> None:
    response = post(client, {"schedules": [STEP] * 8, "lr": [0.1] * 5, "steps": 10})
    assert response.status_code == 422
    assert locs(response) == [["body", "lr"]]
    assert "40 lines" in response.text


def test_labels_are_plain_text(client: TestClient) -> None:
    labels = ["$\\foo$ costs", "warm 🔥 start <b>&"]
    response = post(client, {"schedules": [STEP, ONE_CYCLE], "labels": labels, "steps": 100})
    assert response.status_code == 200
    assert "warm 🔥 start &lt;b&gt;&amp;".encode() in response.content  # escaped, not markup
    assert b"\\foo" in response.content and b"$" in response.content
    for label in ("bell\x07", "not xml \ufffe"):
        refused = post(client, {"schedules": [STEP], "labels": [label], "steps": 10})
        assert refused.status_code == 422
        assert locs(refused) == [["body", "labels", 0]]


def test_api_keys_guard_the_plot_but_not_the_page() -> None:
    guarded = TestClient(create_app(Settings(store="memory", api_keys="secret")))
    body = {"schedule": STEP, "steps": 10}
    assert post(guarded, body).status_code == 401
    assert post(guarded, body, headers={"X-API-Key": "secret"}).status_code == 200
    assert guarded.get("/").status_code == 200
    assert guarded.get("/static/playground.js").status_code == 200

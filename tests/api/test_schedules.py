"""POST /v1/schedules: formats, ETags, limits and validation, asserting values."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app

ONE_CYCLE = {"type": "OneCycleLR", "max_lr": 1.0, "total_steps": 10}
# PyTorch 2.13, OneCycleLR(max_lr=1.0, total_steps=10), lr after k steps (reference notes).
ONE_CYCLE_LR = [0.04000000000000004, 0.52, 1.0, 0.9505, 0.8117, 0.6113, 0.3887, 0.1883, 0.0495]


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(Settings(store="memory")))


def post(client: TestClient, body: dict[str, Any], **kwargs: Any) -> Any:
    return client.post("/v1/schedules", json=body, **kwargs)


def locs(response: Any) -> list[list[Any]]:
    return [entry["loc"] for entry in response.json()["detail"]]


def test_json_curve_has_contract_shape_and_step_lr_values(client: TestClient) -> None:
    body = {
        "schedule": {"type": "StepLR", "step_size": 2, "gamma": 0.5},
        "lr": [0.1, 1.0],
        "steps": 5,
    }
    response = post(client, body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert (data["start"], data["stop"], data["stride"], data["groups"]) == (0, 5, 1, 2)
    assert data["lr"] == [[0.1, 0.1, 0.05, 0.05, 0.025], [1.0, 1.0, 0.5, 0.5, 0.25]]
    assert data["momentum"] is None


def test_one_cycle_values_and_momentum(client: TestClient) -> None:
    data = post(client, {"schedule": ONE_CYCLE, "steps": 9}).json()
    np.testing.assert_allclose(data["lr"][0], ONE_CYCLE_LR, atol=5e-5)
    assert data["lr"][0][0] == 0.040000000000000036  # PyTorch 2.13 gives exactly this at k=0
    assert data["momentum"][0][:3] == pytest.approx([0.95, 0.90, 0.85])


def test_npy_is_the_float64_json_curve(client: TestClient) -> None:
    body = {"schedule": {"type": "CosineAnnealingLR", "T_max": 7}, "lr": [0.1, 0.3], "steps": 20}
    as_json = np.array(post(client, body).json()["lr"])
    response = post(client, body, headers={"Accept": "application/x-npy"})
    assert response.headers["content-type"] == "application/x-npy"
    array = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert array.dtype == np.float64 and array.shape == (2, 20)
    np.testing.assert_array_equal(array, as_json)
    assert response.headers["x-shape"] == "2,20"


def test_octet_stream_is_little_endian_float32_with_shape_header(client: TestClient) -> None:
    body = {"schedule": ONE_CYCLE, "steps": 10, "start": 1, "stride": 3}
    as_json = np.array(post(client, body).json()["lr"])
    response = post(client, body, headers={"Accept": "application/octet-stream"})
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-shape"] == "1,3"
    values = np.frombuffer(response.content, dtype="<f4").reshape(1, 3)
    np.testing.assert_array_equal(values, as_json.astype(np.float32))


def test_series_momentum_selects_momentum_in_binary_forms(client: TestClient) -> None:
    body = {"schedule": ONE_CYCLE, "steps": 10}
    momentum = np.array(post(client, body).json()["momentum"])
    response = post(
        client, body, params={"series": "momentum"}, headers={"Accept": "application/x-npy"}
    )
    np.testing.assert_array_equal(np.load(io.BytesIO(response.content)), momentum)


def test_series_momentum_without_cycled_momentum_is_422(client: TestClient) -> None:
    body = {"schedule": {"type": "ExponentialLR", "gamma": 0.9}, "steps": 3}
    response = post(
        client, body, params={"series": "momentum"}, headers={"Accept": "application/x-npy"}
    )
    assert response.status_code == 422
    assert ["query", "series"] in locs(response)


def test_unacceptable_accept_header_is_406(client: TestClient) -> None:
    body = {"schedule": {"type": "ExponentialLR", "gamma": 0.9}, "steps": 3}
    assert post(client, body, headers={"Accept": "text/html"}).status_code == 406
    assert post(client, body, headers={"Accept": "text/html, */*;q=0.1"}).status_code == 200


def test_same_canonical_request_has_same_strong_etag_and_304(client: TestClient) -> None:
    first = post(client, {"schedule": {"type": "StepLR", "step_size": 3}, "steps": 10})
    spelled_out = post(
        client,
        {
            "steps": 10,
            "start": 0,
            "lr": 0.001,
            "schedule": {"gamma": 0.1, "step_size": 3, "type": "StepLR"},
        },
    )
    tag = first.headers["etag"]
    assert tag.startswith('"') and not tag.startswith("W/")
    assert spelled_out.headers["etag"] == tag
    again = post(
        client,
        {"schedule": {"type": "StepLR", "step_size": 3}, "steps": 10},
        headers={"If-None-Match": tag},
    )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == tag
    weak = post(
        client,
        {"schedule": {"type": "StepLR", "step_size": 3}, "steps": 10},
        headers={"If-None-Match": f'"other", W/{tag}'},
    )
    assert weak.status_code == 304


REFUSED_WHEN_COMPUTED = [
    ({"schedule": {"type": "LambdaLR", "lr_lambda": "1/epoch"}, "steps": 10}, {}),
    ({"schedule": {"type": "StepLR", "step_size": 3}, "steps": 10}, {"series": "momentum"}),
]


@pytest.mark.parametrize(("body", "params"), REFUSED_WHEN_COMPUTED, ids=["zero-division", "series"])
def test_if_none_match_star_does_not_hide_a_refusal(
    client: TestClient, body: dict[str, Any], params: dict[str, str]
) -> None:
    """``*`` matches any answer that exists; a request refused when computed has none
    (it was answered 304 once)."""
    accept = {"Accept": "application/x-npy"}
    plain = client.post("/v1/schedules", json=body, params=params, headers=accept)
    starred = client.post(
        "/v1/schedules", json=body, params=params, headers=accept | {"If-None-Match": "*"}
    )
    assert plain.status_code == starred.status_code == 422
    assert starred.json() == plain.json()


def test_if_none_match_star_on_a_curve_that_exists_is_304_and_computes_it(
    client: TestClient,
) -> None:
    body = {"schedule": {"type": "StepLR", "step_size": 7}, "lr": 0.25, "steps": 12}
    starred = post(client, body, headers={"If-None-Match": "*"})
    assert starred.status_code == 304 and starred.content == b""
    tag = starred.headers["etag"]
    answered = post(client, body)
    assert answered.headers["etag"] == tag
    assert answered.json()["lr"] == [[0.25] * 7 + [0.025] * 5]


def test_etag_differs_between_requests_and_representations(client: TestClient) -> None:
    body = {"schedule": {"type": "StepLR", "step_size": 3}, "steps": 10}
    tags = {
        post(client, body).headers["etag"],
        post(client, body | {"steps": 11}).headers["etag"],
        post(client, body, headers={"Accept": "application/x-npy"}).headers["etag"],
        post(client, body, headers={"Accept": "application/octet-stream"}).headers["etag"],
    }
    assert len(tags) == 4
    stale = post(
        client, body | {"steps": 11}, headers={"If-None-Match": post(client, body).headers["etag"]}
    )
    assert stale.status_code == 200


def test_range_is_a_slice_of_the_full_curve(client: TestClient) -> None:
    schedule = {
        "type": "SequentialLR",
        "schedulers": [
            {"type": "LinearLR", "start_factor": 0.1, "total_iters": 5},
            {"type": "CosineAnnealingWarmRestarts", "T_0": 4, "T_mult": 2},
        ],
        "milestones": [5],
    }
    full = np.array(
        post(client, {"schedule": schedule, "lr": [0.1, 0.2], "steps": 60}).json()["lr"]
    )
    part = post(
        client, {"schedule": schedule, "lr": [0.1, 0.2], "steps": 60, "start": 7, "stride": 5}
    ).json()
    assert (part["start"], part["stop"], part["stride"]) == (7, 60, 5)
    np.testing.assert_array_equal(np.array(part["lr"]), full[:, 7:60:5])


def test_empty_range_gives_empty_rows(client: TestClient) -> None:
    data = post(
        client,
        {"schedule": {"type": "StepLR", "step_size": 3}, "lr": [0.1, 0.2], "steps": 5, "start": 5},
    ).json()
    assert data["lr"] == [[], []] and data["groups"] == 2


def test_too_many_values_refused_naming_steps(client: TestClient) -> None:
    response = post(client, {"schedule": {"type": "StepLR", "step_size": 3}, "steps": 10**12})
    assert response.status_code == 422
    assert ["body", "steps"] in locs(response)
    assert "10000000" in response.text


def test_max_values_setting_is_enforced_per_group() -> None:
    small = TestClient(create_app(Settings(store="memory", max_values=100)))
    body = {"schedule": {"type": "StepLR", "step_size": 3}, "lr": [0.1, 0.2], "steps": 50}
    assert small.post("/v1/schedules", json=body).status_code == 200
    assert small.post("/v1/schedules", json=body | {"steps": 51}).status_code == 422
    strided = body | {"steps": 10**12, "stride": 10**10}  # 100 steps x 2 groups: 200 values
    assert small.post("/v1/schedules", json=strided).status_code == 422


def test_stepped_schedule_far_out_is_refused_by_its_stepping_cost(client: TestClient) -> None:
    schedule = {
        "type": "ChainedScheduler",
        "schedulers": [
            {"type": "StepLR", "step_size": 3},
            {"type": "ExponentialLR", "gamma": 0.99},
        ],
    }
    response = post(client, {"schedule": schedule, "steps": 10**12, "start": 10**12 - 10})
    assert response.status_code == 422
    assert ["body", "steps"] in locs(response)
    assert "step by step" in response.text


def test_closed_form_far_out_is_cheap(client: TestClient) -> None:
    response = post(
        client,
        {
            "schedule": {"type": "CosineAnnealingLR", "T_max": 10**9},
            "lr": 1.0,
            "steps": 10**12,
            "start": 10**12 - 3,
        },
    )
    assert response.status_code == 200
    k = np.arange(10**12 - 3, 10**12)
    np.testing.assert_allclose(
        response.json()["lr"][0], (1 + np.cos(np.pi * k / 10**9)) / 2, rtol=1e-9
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"schedule": {"type": "StepLR", "step_size": 3, "last_epoch": 4}, "steps": 3},
            "last_epoch",
        ),
        ({"schedule": {"type": "StepLR", "step_size": 3, "verbose": True}, "steps": 3}, "verbose"),
        (
            {"schedule": {"type": "StepLR", "step_size": 3}, "steps": 3, "optimizer": "SGD"},
            "optimizer",
        ),
        ({"schedule": {"step_size": 3}, "steps": 3}, "schedule"),
        ({"schedule": {"type": "ReduceLROnPlateau"}, "steps": 3}, "schedule"),
        ({"schedule": {"type": "StepLR"}, "steps": 3}, "step_size"),
        ({"schedule": {"type": "ExponentialLR", "gamma": 0.9}}, "steps"),
        ({"schedule": {"type": "ExponentialLR", "gamma": 0.9}, "steps": 3, "lr": -0.1}, "lr"),
        ({"schedule": {"type": "ExponentialLR", "gamma": 0.9}, "steps": 3, "stride": 0}, "stride"),
        (
            {
                "schedule": {"type": "OneCycleLR", "max_lr": [0.1, 0.2], "total_steps": 9},
                "lr": [1, 2, 3],
                "steps": 3,
            },
            "max_lr",
        ),
        ({"schedule": {"type": "OneCycleLR", "max_lr": 0.1}, "steps": 3}, "total_steps"),
        (
            {
                "schedule": {
                    "type": "OneCycleLR",
                    "max_lr": 0.1,
                    "total_steps": 10,
                    "pct_start": 1,
                },
                "steps": 3,
            },
            "pct_start",
        ),
        ({"schedule": {"type": "CosineAnnealingWarmRestarts", "T_0": 2.5}, "steps": 3}, "T_0"),
        (
            {
                "schedule": {"type": "CyclicLR", "base_lr": 0.1, "max_lr": 1, "mode": "sine"},
                "steps": 3,
            },
            "mode",
        ),
        ({"schedule": {"type": "LambdaLR", "lr_lambda": ["0.5", "0.5"]}, "steps": 3}, "lr_lambda"),
        (
            {
                "schedule": {
                    "type": "SequentialLR",
                    "schedulers": [{"type": "ExponentialLR", "gamma": 0.9}],
                    "milestones": [2],
                },
                "steps": 3,
            },
            "milestones",
        ),
        ({"schedule": {"type": "ChainedScheduler", "schedulers": []}, "steps": 3}, "schedulers"),
    ],
)
def test_invalid_request_is_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = post(client, body)
    assert response.status_code == 422, response.text
    assert any(field in loc for loc in locs(response)), locs(response)


def test_failure_while_stepping_names_the_field_and_the_step(client: TestClient) -> None:
    body = {
        "schedule": {
            "type": "SequentialLR",
            "schedulers": [
                {"type": "ExponentialLR", "gamma": 0.9},
                {"type": "StepLR", "step_size": 0},
            ],
            "milestones": [3],
        },
        "steps": 10,
    }
    response = post(client, body)
    assert response.status_code == 422
    assert ["body", "schedule", "schedulers", 1, "step_size"] in locs(response)
    assert ["body", "steps"] in locs(response)
    assert "at step 3" in response.text  # the restart at the milestone computes 0 // 0
    assert post(client, body | {"steps": 3}).status_code == 200


@pytest.mark.parametrize(
    ("source", "quoted"),
    [
        ("__import__('os').system('true')", "__import__"),
        ("().__class__.__bases__[0].__subclasses__()", "__class__"),
        ("epoch.real", "epoch.real"),
        ("lambda a, b: a", "lambda a, b: a"),
        ("9 ** 9 ** 9", "9 ** 9"),
        ("[e for e in range(3)]", "for"),
    ],
)
def test_hostile_expression_is_422_quoting_it(client: TestClient, source: str, quoted: str) -> None:
    response = post(client, {"schedule": {"type": "LambdaLR", "lr_lambda": source}, "steps": 3})
    assert response.status_code == 422
    assert ["body", "schedule", "LambdaLR", "lr_lambda", "str"] in locs(response) or any(
        "lr_lambda" in loc for loc in locs(response)
    )
    assert quoted in response.text


def test_expression_failing_inside_the_range_is_422(client: TestClient) -> None:
    response = post(
        client, {"schedule": {"type": "LambdaLR", "lr_lambda": "lambda e: 1 / e"}, "steps": 3}
    )
    assert response.status_code == 422
    assert any("lr_lambda" in loc for loc in locs(response))
    shifted = post(
        client,
        {"schedule": {"type": "LambdaLR", "lr_lambda": "lambda e: 1 / e"}, "steps": 4, "start": 1},
    )
    assert shifted.status_code == 422  # PyTorch constructs (k = 0) before any requested step


def test_expression_failing_before_the_requested_steps_is_422(client: TestClient) -> None:
    lambda_lr = {"type": "LambdaLR", "lr_lambda": ["1.0", "lambda e: 1 / (e - 7)"]}
    response = post(client, {"schedule": lambda_lr, "lr": [0.1, 0.1], "steps": 20, "start": 10})
    assert response.status_code == 422  # PyTorch steps through e = 7 to get to 10
    assert "epoch 7" in response.text
    scaled = {"type": "CyclicLR", "base_lr": 0.1, "max_lr": 1.0, "step_size_up": 2}
    scaled |= {"scale_fn": "lambda c: 1 / (c - 3)"}
    response = post(client, {"schedule": scaled, "steps": 30, "start": 25, "stride": 2})
    assert response.status_code == 422 and "cycle 3" in response.text
    assert post(client, {"schedule": scaled, "steps": 8}).status_code == 200  # cycles 1, 2


def test_error_in_a_later_param_group_reports_its_epoch(client: TestClient) -> None:
    lambda_lr = {"type": "LambdaLR", "lr_lambda": ["1.0", "lambda e: 1 / (e - 7)"]}
    response = post(client, {"schedule": lambda_lr, "lr": [0.1, 0.1], "steps": 20})
    assert response.status_code == 422
    assert "epoch 7" in response.text and "param group 1" in response.text


def test_failure_after_the_last_requested_step_is_still_a_failure(client: TestClient) -> None:
    # Requested k = 0, 5, 10, but the schedule has 13 steps: PyTorch raises at k = 11.
    body = {"schedule": ONE_CYCLE, "steps": 13, "stride": 5}
    response = post(client, body)
    assert response.status_code == 422
    assert ["body", "steps"] in locs(response)
    assert post(client, body | {"steps": 11}).status_code == 200
    chained = {"type": "ChainedScheduler", "schedulers": [ONE_CYCLE]}
    assert post(client, {"schedule": chained, "steps": 13, "stride": 5}).status_code == 422
    assert post(client, {"schedule": chained, "steps": 13, "start": 13}).status_code == 422


def test_pytorch_docs_lambdas_work(client: TestClient) -> None:
    for source, expected in [
        ("lambda epoch: 0.95 ** epoch", [0.95**k for k in range(40)]),
        ("lambda e: math.cos(math.pi * e / 50)", [math.cos(math.pi * k / 50) for k in range(40)]),
        ("1.0 if epoch < 30 else 0.1", [1.0 if k < 30 else 0.1 for k in range(40)]),
    ]:
        data = post(
            client, {"schedule": {"type": "LambdaLR", "lr_lambda": source}, "lr": 1.0, "steps": 40}
        ).json()
        np.testing.assert_allclose(data["lr"][0], expected, rtol=1e-12)


def test_non_finite_curve_is_422(client: TestClient) -> None:
    response = post(
        client, {"schedule": {"type": "ExponentialLR", "gamma": 10.0}, "lr": 1.0, "steps": 400}
    )
    assert response.status_code == 422
    assert "not finite" in response.text


def test_body_over_the_limit_is_413() -> None:
    small = TestClient(create_app(Settings(store="memory", max_body_bytes=2048)))
    body = {"schedule": {"type": "MultiStepLR", "milestones": list(range(1000))}, "steps": 3}
    assert small.post("/v1/schedules", json=body).status_code == 413


def test_every_documented_example_works(client: TestClient) -> None:
    openapi = client.get("/openapi.json").json()
    content = openapi["paths"]["/v1/schedules"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    examples = content["examples"]
    types = {example["value"]["schedule"]["type"] for example in examples.values()}
    pytorch = {
        "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
        "ExponentialLR", "SequentialLR", "PolynomialLR", "CosineAnnealingLR",
        "ChainedScheduler", "CyclicLR", "OneCycleLR", "CosineAnnealingWarmRestarts", "SWALR",
    }  # fmt: skip
    assert pytorch <= types
    families = types - pytorch  # issue 6: the other libraries' schedules and compositions
    assert {"hf.wsd", "optax.sgdr", "timm.cosine", "keras.CosineDecayRestarts"} <= families
    assert {"fastai.one_cycle", "sequence", "warmup", "clamp", "scale"} <= families
    for name, example in examples.items():
        response = post(client, example["value"])
        assert response.status_code == 200, (name, response.text)
        assert len(response.json()["lr"][0]) == example["value"]["steps"]


def test_schema_tags_the_union_without_a_default(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    step = schemas["StepLR"]
    assert "type" in step["required"]
    assert step["additionalProperties"] is False
    assert step["examples"] == [{"type": "StepLR", "step_size": 30, "gamma": 0.1}]


def test_cyclic_step_sizes_so_small_that_the_cycle_overflows_are_422(client: TestClient) -> None:
    # PyTorch: math.floor(1 + k / 1e-323) raises OverflowError at step 1.
    spec = {"type": "CyclicLR", "base_lr": 0.001, "max_lr": 0.01, "step_size_up": 5e-324}
    response = post(client, {"schedule": spec, "steps": 5})
    assert response.status_code == 422
    assert ["body", "schedule", "step_size_up"] in locs(response)
    tiny = post(client, {"schedule": spec | {"step_size_up": 1e-300}, "steps": 5})
    assert tiny.status_code == 200 and tiny.json()["lr"] == [[0.001] * 5]  # PyTorch's values


def test_a_body_nested_past_the_parsers_limit_is_422_naming_where(client: TestClient) -> None:
    nested = '{"type": "ChainedScheduler", "schedulers": [' * 2000 + "{}" + "]}" * 2000
    body = ('{"schedule": ' + nested + ', "steps": 3}').encode()
    response = client.post(
        "/v1/schedules", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    [loc] = locs(response)  # the body gate's: where the nesting passes its limit
    assert loc[:5] == ["body", "schedule", "schedulers", 0, "schedulers"]


def test_a_raw_nan_in_the_body_is_a_422_echoing_it_as_a_string(client: TestClient) -> None:
    body = b'{"schedule": {"type": "StepLR", "step_size": NaN}, "steps": 3}'
    response = client.post(
        "/v1/schedules", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert {entry["input"] for entry in response.json()["detail"]} == {"nan"}

"""``float``, ``int``, ``round`` and ints from ``math.floor``/``ceil`` (issue #12, item 14).

The reference is Python evaluating the same lambda on Python ints (``assert_matches_python``):
values, and exactly the arguments where Python raises. The Hugging Face lambdas are the
``lr_lambda`` bodies of ``transformers.optimization`` verbatim, their closure variables
written as numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.engine.expressions import compile_expression
from service.main import create_app
from tests.engine.test_expressions import assert_matches_python, python_lambda, rejection

STEPS = range(0, 1200)

HUGGING_FACE = {
    "get_constant_schedule_with_warmup": (
        "lambda current_step: float(current_step) / float(max(1.0, 100)) "
        "if current_step < 100 else 1.0"
    ),
    "get_linear_schedule_with_warmup": (
        "lambda current_step: float(current_step) / float(max(1, 100)) if current_step < 100 "
        "else max(0.0, float(1000 - current_step) / float(max(1, 1000 - 100)))"
    ),
    "get_cosine_schedule_with_warmup": (
        "lambda current_step: float(current_step) / float(max(1, 100)) if current_step < 100 "
        "else max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(0.5) * 2.0 "
        "* (float(current_step - 100) / float(max(1, 1000 - 100))))))"
    ),
    "get_cosine_with_hard_restarts_schedule_with_warmup": (
        "lambda current_step: float(current_step) / float(max(1, 100)) if current_step < 100 "
        "else (0.0 if float(current_step - 100) / float(max(1, 1000 - 100)) >= 1.0 "
        "else max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(3) * "
        "(float(current_step - 100) / float(max(1, 1000 - 100)))) % 1.0)))))"
    ),
    "get_polynomial_decay_schedule_with_warmup": (
        "lambda current_step: float(current_step) / float(max(1, 100)) if current_step < 100 "
        "else (1e-7 / 0.001 if current_step > 1000 else ((0.001 - 1e-7) "
        "* (1 - (current_step - 100) / (1000 - 100)) ** 2.0 + 1e-7) / 0.001)"
    ),
    "get_inverse_sqrt_schedule": (
        "lambda current_step: float(current_step) / float(max(1, 100)) if current_step < 100 "
        "else 1.0 / math.sqrt((current_step + (100 - 100)) / 100)"
    ),
}


@pytest.mark.parametrize("source", HUGGING_FACE.values(), ids=HUGGING_FACE.keys())
def test_hugging_face_lambdas_match_python(source: str) -> None:
    assert_matches_python(source, STEPS)


CONVERSIONS = [
    "float(epoch)",
    "float(epoch) / float(max(1, 7))",
    "float(epoch // 3) ** 2",
    "int(epoch / 3)",
    "int(-epoch / 3)",
    "int(epoch * 0.7) % 4",
    "int(2.5 * epoch) // 2",
    "0.5 ** int(epoch / 100)",
    "int(float(epoch)) ** 3",
    "int(abs(epoch) ** 0.5)",
    "round(epoch / 4)",
    "round(-epoch / 4)",
    "round(epoch + 0.5)",
    "round(epoch / 8, 2)",
    "round(epoch / 1000, 2)",
    "round(-epoch / 200, 1)",
    "round(epoch * 1.15, -1)",
    "round(epoch * 5 + 5, -1)",
    "round(epoch, -1)",
    "round(epoch, 2)",
    "round(epoch / 3, 0)",
    "round(epoch * 1e-30, 35)",
    "round(epoch * 1e20, 3)",
    "round(epoch / 7, -500)",
    "round(epoch * 0.001 - 0.005, 1)",  # -0.049999999999999996 * 10 rounds to -0.5 exactly
    "round((epoch + 0.5) / 1e-5, -5)",
    "round(epoch * 0.0001 + 0.00005, 4)",
    "round(epoch * 0.7 + 0.35, 1)",
    "math.floor(epoch / 3) ** 40",
    "2 ** math.ceil(epoch / 100)",
    "math.floor(epoch / 7) // 2 * 0.1",
    "math.ceil(-epoch / 2) % 3",
    "int(inf * (epoch - 2))",
    "round(epoch * inf) if epoch > 3 else 1",
    "int(1 / (epoch - 5))",
    "math.floor(epoch * 1e300) ** 2",
]


@pytest.mark.parametrize("source", CONVERSIONS)
def test_conversions_match_python(source: str) -> None:
    assert_matches_python(source)


@pytest.mark.parametrize(
    "source", ["int(-0.5 * epoch) * -1.0", "math.ceil(-0.5 * epoch) * -1.0", "round(-0.3) * -2.0"]
)
def test_an_int_has_no_sign_of_zero(source: str) -> None:
    """``int(-0.5)`` is ``0``: times ``-1.0`` that is ``-0.0``, where ``-0.0 * -1.0`` is ``0.0``."""
    x = np.arange(0, 3)
    got = compile_expression(source)(x)
    expected = [python_lambda(source)(int(k)) for k in x]
    assert got.tolist() == expected
    assert [math.copysign(1, v) for v in got] == [math.copysign(1, v) for v in expected]


@pytest.mark.parametrize("half", [0.5, 1.5, 2.5, -0.5, -1.5, 2.675, 0.125, 0.375])
def test_round_is_half_to_even_on_the_exact_value(half: float) -> None:
    for digits in ("", ", 0", ", 1", ", 2"):
        source = f"lambda e: round({half!r} + e * 0{digits})"
        assert compile_expression(source)(np.zeros(1, dtype=np.int64))[0] == eval(
            f"round({half!r}{digits})"
        )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("round(epoch, 1.5)", "round()'s ndigits must be an integer literal: '1.5'"),
        ("round(epoch, epoch)", "round()'s ndigits must be an integer literal: 'epoch'"),
        ("float(epoch, 2)", "float() takes 1 arguments, not 2"),
        ("int()", "int() takes 1 arguments, not 0"),
        ("round", "the function 'round' must be called"),
        ("math.round(epoch)", "math.round is not one of the allowed functions"),
    ],
)
def test_misuse_is_refused_pointing_at_it(source: str, message: str) -> None:
    assert message in rejection(source)


# --- through the API ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store="memory")), raise_server_exceptions=False) as c:
        yield c


def test_a_pasted_hugging_face_lambda_gives_pythons_curve(client: TestClient) -> None:
    source = HUGGING_FACE["get_linear_schedule_with_warmup"]
    body = {"schedule": {"type": "LambdaLR", "lr_lambda": source}, "lr": 0.1, "steps": 1100}
    response = client.post("/v1/schedules", json=body)
    assert response.status_code == 200, response.text
    function = python_lambda(source)
    assert response.json()["lr"] == [[0.1 * function(k) for k in range(1100)]]


def test_int_of_infinity_is_a_422_naming_lr_lambda_and_the_step(client: TestClient) -> None:
    schedule = {"type": "LambdaLR", "lr_lambda": "lambda e: 1.0 if e < 3 else int(math.inf * e)"}
    response = client.post("/v1/schedules", json={"schedule": schedule, "steps": 10})
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "schedule", "lr_lambda"]
    assert "cannot convert infinity or NaN to an integer" in error["msg"]
    assert "at step 3" in error["msg"] or "epoch 3" in error["msg"], error["msg"]

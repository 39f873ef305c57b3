"""The up-front cost checks: stepped evaluations and expression work, refused as a 422."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from schemas.requests import ScheduleRequest
from schemas.schedules import build
from service.config import Settings
from service.engine import (
    CALL_FLOOR,
    EXPRESSION_BUDGET,
    StepRange,
    check_costs,
    expression_cost,
)
from service.engine.errors import ScheduleError
from service.engine.expressions import compile_expression
from service.engine.lambdas import PREFIX_CHECK_LIMIT
from service.engine.nodes import Node
from service.main import create_app

LAMBDA = "0.95 ** epoch"  # 3 nodes: the BinOp, the constant, the argument
WIDE = "min(" + ", ".join(f"sin(epoch * {i})" for i in range(30)) + ")"


def root(schedule: dict[str, Any], groups: int = 1) -> Node:
    return build(
        ScheduleRequest.model_validate({"schedule": schedule, "steps": 1}).schedule, groups
    )


def test_expressions_count_their_syntax_nodes() -> None:
    assert compile_expression(LAMBDA).nodes == 3
    assert compile_expression("lambda step: 0.95 ** step").nodes == 4  # and the lambda
    assert compile_expression("0.5").nodes == 1


def test_a_closed_form_is_charged_its_steps_and_the_prefix_pytorch_steps_through() -> None:
    node = root({"type": "LambdaLR", "lr_lambda": LAMBDA})
    assert expression_cost(node, StepRange(0, 1_000_000, 1)) == 3 * (1_000_000 + 1_000_000)
    far = StepRange(10**12 - 3, 10**12, 1)  # three values; the prefix check stops at its limit
    assert expression_cost(node, far) == 3 * (3 + PREFIX_CHECK_LIMIT)
    assert expression_cost(node, StepRange(0, 1, 1)) == 3 * CALL_FLOOR  # numpy's per-call cost


def test_every_group_and_every_chained_scheduler_is_charged_every_step() -> None:
    groups = root({"type": "LambdaLR", "lr_lambda": [LAMBDA, LAMBDA]}, groups=2)
    assert expression_cost(groups, StepRange(0, 100_000, 1)) == 6 * 200_000
    stepped = root(
        {
            "type": "ChainedScheduler",
            "schedulers": [
                {"type": "MultiplicativeLR", "lr_lambda": LAMBDA},
                {"type": "StepLR", "step_size": 3},
                {"type": "MultiplicativeLR", "lr_lambda": LAMBDA},
            ],
        }
    )
    assert stepped.expression_nodes == 6
    # Stepped: every step up to the last requested one, whatever the stride.
    assert expression_cost(stepped, StepRange(0, 50_001, 1000)) == 6 * 50_001
    assert expression_cost(root({"type": "StepLR", "step_size": 3}), StepRange(0, 10**6, 1)) == 0


def test_work_just_under_the_budget_passes_and_just_over_is_refused_naming_steps() -> None:
    node = root({"type": "LambdaLR", "lr_lambda": WIDE})
    nodes = compile_expression(WIDE).nodes
    steps_at_budget = EXPRESSION_BUDGET // (nodes * 2)  # charged twice: values and prefix
    assert steps_at_budget < PREFIX_CHECK_LIMIT
    assert check_costs([node], StepRange(0, steps_at_budget, 1), 1, 10**12) == 0
    with pytest.raises(ScheduleError) as refused:
        check_costs([node], StepRange(0, steps_at_budget + 1, 1), 1, 10**12)
    assert refused.value.loc == ("steps",)
    assert f"at most {EXPRESSION_BUDGET}" in str(refused.value)


@pytest.mark.parametrize("url", ["/v1/schedules", "/v1/schedules/plot"])
def test_both_routes_refuse_costly_expressions_before_computing(url: str) -> None:
    body = {"schedule": {"type": "LambdaLR", "lr_lambda": WIDE}, "steps": 10_000_000}
    with TestClient(create_app(Settings(store="memory"))) as client:
        response = client.post(url, json=body)
        assert response.status_code == 422, response.text[:300]
        assert response.json()["detail"][0]["loc"] == ["body", "steps"]
        assert "node evaluations" in response.text
        body["steps"] = 1000
        assert client.post(url, json=body).status_code == 200

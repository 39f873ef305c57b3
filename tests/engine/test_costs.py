"""The up-front cost checks: stepped evaluations and expression work, refused as a 422.

Expression work is priced by :meth:`Expression.cost` (work per argument, overhead per call)
and summed by :func:`expression_cost` the way the engine evaluates; the numbers below are
exact, and nothing here is timed.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.api.schedules as schedule_routes
import service.engine
import service.engine.expressions
from rules.errors import ScheduleError
from schemas.requests import ScheduleRequest
from schemas.schedules import build
from service.config import Settings
from service.engine import BLOCK, StepRange, check_costs, expression_cost
from service.engine.expressions import CALL_FLOOR, CHUNK, Expression, compile_expression
from service.engine.nodes import Node
from service.limits import PREFIX_CHECK_LIMIT
from service.main import create_app
from tests.api.shortcut_checks import never

POWER = "0.95 ** epoch"
"""Three operations: the power (80 units an argument, 3 floors a call), a constant and the
argument (1 unit and 1 floor each)."""
SUM = "epoch + 1"
"""Three operations of 1 unit and 1 floor each."""
UNLIMITED = 10**12
"""A ``max_values`` that leaves the stepping budget out of the way."""


def root(schedule: dict[str, Any], groups: int = 1) -> Node:
    request = ScheduleRequest.model_validate(
        {"schedule": schedule, "lr": [0.1] * groups, "steps": 1}
    )
    return build(request.schedule, groups)


def cost(source: str, arguments: int) -> int:
    return compile_expression(source).cost(arguments)


@pytest.mark.parametrize(
    ("source", "work", "floors"),
    [
        (SUM, 3, 3),
        ("lambda step: step + 1", 3, 3),
        (POWER, 82, 5),
        ("pow(epoch, 2)", 82, 5),  # the function's name is no operation
        ("sin(epoch)", 37, 2),
        ("math.exp(epoch)", 41, 2),
        ("log(epoch, 2)", 12, 4),
        ("epoch // 30", 18, 4),  # the argument by a constant: few bits of exponent apart
        ("epoch % -7.5", 19, 5),
        ("(epoch + 1) // 30", 484, 6),  # anything else: up to 2,000 bits apart
        ("30 % epoch", 482, 4),
        ("epoch % 0.5", 482, 4),
        ("min(epoch, 1, 2)", 5, 5),  # the call and two folds, three operands
        ("epoch and 1 and 2", 5, 5),
        ("0 < epoch < 5", 5, 5),
        ("-epoch", 2, 2),
        ("+epoch", 2, 2),
    ],
)
def test_expressions_are_priced_by_their_operations(source: str, work: int, floors: int) -> None:
    expression = compile_expression(source)
    assert (expression.work, expression.overhead) == (work, floors * CALL_FLOOR)


def test_an_evaluation_costs_its_arguments_and_a_floor_per_call_of_numpy() -> None:
    expression = compile_expression(POWER)
    assert expression.nodes == 3
    per_call = 5 * CALL_FLOOR
    assert expression.cost(0) == CALL_FLOOR
    assert expression.cost(1) == 82 + per_call + CALL_FLOOR
    assert expression.cost(CHUNK) == 82 * CHUNK + per_call + CALL_FLOOR
    assert expression.cost(CHUNK + 1) == 82 * (CHUNK + 1) + 2 * per_call + CALL_FLOOR


def test_a_closed_form_is_charged_its_construction_its_steps_and_the_prefix() -> None:
    node = root({"type": "LambdaLR", "lr_lambda": POWER})
    # The whole prefix requested: nothing more to check.
    whole = StepRange(0, 1_000_000, 1)
    assert expression_cost(node, whole) == cost(POWER, 1) + cost(POWER, 1_000_000)
    # Three steps far out: PyTorch calls the lambda at every step before them.
    far = StepRange(10**12 - 3, 10**12, 1)
    expected = cost(POWER, 1) + cost(POWER, 3) + cost(POWER, PREFIX_CHECK_LIMIT + 1)
    assert expression_cost(node, far) == expected
    # Strided short of the end: the final step and its prefix are probed too.
    strided = StepRange(0, 1000, 7)  # steps 0, 7, ..., 994; the schedule runs to 999
    expected = cost(POWER, 1) + cost(POWER, 143) + cost(POWER, 995)
    assert expression_cost(node, strided) == expected + cost(POWER, 1) + cost(POWER, 1000)


def test_every_group_is_charged_and_a_shared_prefix_once() -> None:
    node = root({"type": "LambdaLR", "lr_lambda": [POWER, POWER, SUM]}, groups=3)
    steps = StepRange(5, 10, 1)
    values = 2 * cost(POWER, 1) + 2 * cost(POWER, 5) + cost(SUM, 1) + cost(SUM, 5)
    assert expression_cost(node, steps) == values + cost(POWER, 10) + cost(SUM, 10)


def test_a_constant_factor_is_evaluated_once() -> None:
    node = root({"type": "MultiplicativeLR", "lr_lambda": "lambda e: 0.5 ** 2"})
    assert expression_cost(node, StepRange(0, 10**9, 1)) == cost("0.5 ** 2", 1)
    probed = StepRange(0, 10**9, 10**6)  # the final step as well
    assert expression_cost(node, probed) == 2 * cost("0.5 ** 2", 1)


def test_every_stepped_scheduler_is_charged_every_step_block_by_block() -> None:
    node = root(
        {
            "type": "ChainedScheduler",
            "schedulers": [
                {"type": "MultiplicativeLR", "lr_lambda": POWER},
                {"type": "StepLR", "step_size": 3},
                {"type": "MultiplicativeLR", "lr_lambda": SUM},
            ],
        }
    )
    final = 100_000  # one block and a rest, whatever the stride
    rest = final - BLOCK

    def stepped(source: str) -> int:
        once = cost(source, 1)
        return 2 * once + cost(source, BLOCK) + once + cost(source, rest) + once

    expected = stepped(POWER) + stepped(SUM)
    assert expression_cost(node, StepRange(0, final + 1, 1000)) == expected
    assert expression_cost(root({"type": "StepLR", "step_size": 3}), StepRange(0, 10**6, 1)) == 0


def test_a_scale_fn_is_charged_with_the_cycles_before_the_steps() -> None:
    node = root(
        {
            "type": "CyclicLR",
            "base_lr": 0.01,
            "max_lr": 0.1,
            "step_size_up": 5,
            "scale_fn": SUM,
            "cycle_momentum": False,
        }
    )
    cycles = 1 + 99 // 10  # of steps 0-99
    expected = cost(SUM, 1) + cost(SUM, 100) + cost(SUM, cycles + 1)
    assert expression_cost(node, StepRange(0, 100, 1)) == expected


def test_a_composition_charges_its_children_and_their_prefixes_at_every_evaluation() -> None:
    clamped = {"type": "clamp", "max": 1.0, "schedule": {"type": "LambdaLR", "lr_lambda": SUM}}
    # On its own: the child built and evaluated when the clamp is constructed, then on the steps.
    alone = 2 * cost(SUM, 1) + cost(SUM, 1) + cost(SUM, 1000)
    assert expression_cost(root(clamped), StepRange(0, 1000, 1)) == alone
    # Stepped: the child is a closed form computed anew on every block, its prefix checked.
    chained = root({"type": "ChainedScheduler", "schedulers": [clamped]})
    once = 2 * cost(SUM, 1)
    block = cost(SUM, 1) + cost(SUM, 1000) + cost(SUM, 1001)  # steps 1-1000: a prefix from 0
    assert expression_cost(chained, StepRange(0, 1001, 1)) == 3 * once + block


def test_a_sequence_probes_its_segments_where_they_meet() -> None:
    far = 10**12
    node = root(
        {
            "type": "sequence",
            "segments": [
                {"schedule": {"type": "LambdaLR", "lr_lambda": SUM}, "steps": far},
                {"schedule": {"type": "StepLR", "step_size": 3}},
            ],
        }
    )
    # Ten steps requested, but the lambda's value at the boundary is probed for a warning.
    steps = StepRange(0, 10, 1)
    evaluations = 2 * cost(SUM, 1) + cost(SUM, 1) + cost(SUM, 10)
    probe = cost(SUM, 1) + cost(SUM, 1) + cost(SUM, PREFIX_CHECK_LIMIT + 1)
    assert expression_cost(node, steps) == evaluations + probe


def test_1024_maximal_lambdas_are_refused_even_at_one_step() -> None:
    sources = [
        "min(" + ",".join(f"epoch**{i % 9}.0000" for i in range(1, 65)) + f",{group})"
        for group in range(1024)
    ]
    node = root({"type": "LambdaLR", "lr_lambda": sources}, groups=1024)
    with pytest.raises(ScheduleError) as refused:
        check_costs([node], StepRange(0, 1, 1), 1024, UNLIMITED)
    assert refused.value.loc == ("steps",)


@pytest.mark.parametrize(
    ("schedule", "groups", "steps"),
    [
        ({"type": "LambdaLR", "lr_lambda": POWER}, 1, StepRange(0, 10_000, 1)),
        ({"type": "LambdaLR", "lr_lambda": [SUM, POWER]}, 2, StepRange(500, 10_000, 3)),
        ({"type": "MultiplicativeLR", "lr_lambda": POWER}, 1, StepRange(0, 70_000, 1)),
        (
            {
                "type": "ChainedScheduler",
                "schedulers": [
                    {"type": "MultiplicativeLR", "lr_lambda": SUM},
                    {"type": "ExponentialLR", "gamma": 0.9},
                    {"type": "LambdaLR", "lr_lambda": POWER},
                ],
            },
            1,
            StepRange(0, 70_000, 7),
        ),
    ],
)
def test_work_at_the_budget_passes_and_one_unit_more_is_refused_naming_steps(
    monkeypatch: pytest.MonkeyPatch, schedule: dict[str, Any], groups: int, steps: StepRange
) -> None:
    node = root(schedule, groups)
    work = expression_cost(node, steps)
    monkeypatch.setattr(service.engine.costs, "EXPRESSION_BUDGET", work)
    check_costs([node], steps, groups, UNLIMITED)
    monkeypatch.setattr(service.engine.costs, "EXPRESSION_BUDGET", work - 1)
    with pytest.raises(ScheduleError) as refused:
        check_costs([node], steps, groups, UNLIMITED)
    assert refused.value.loc == ("steps",)
    assert f"about {work} units" in refused.value.message
    assert f"at most {work - 1}" in refused.value.message
    assert "fewer steps, or use fewer or simpler expressions" in refused.value.message


def test_the_stepping_budget_is_checked_first() -> None:
    node = root({"type": "MultiplicativeLR", "lr_lambda": POWER})
    with pytest.raises(ScheduleError, match="step by step"):
        check_costs([node], StepRange(0, 1001, 1), 1, 100)


CHAINED = {
    "type": "ChainedScheduler",
    "schedulers": [
        {"type": "MultiplicativeLR", "lr_lambda": POWER},
        {"type": "StepLR", "step_size": 3},
    ],
}


@pytest.mark.parametrize("url", ["/v1/schedules", "/v1/schedules/plot"])
@pytest.mark.parametrize(
    "body",
    [
        {"schedule": {"type": "LambdaLR", "lr_lambda": POWER}, "steps": 5000, "stride": 7},
        {"schedule": CHAINED, "lr": [0.1, 0.2], "steps": 3000},
    ],
    ids=["closed-form", "stepped"],
)
def test_both_routes_refuse_costly_expressions_before_computing(
    monkeypatch: pytest.MonkeyPatch, url: str, body: dict[str, Any]
) -> None:
    request = ScheduleRequest.model_validate(body)
    node = build(request.schedule, len(request.lrs))
    work = expression_cost(node, StepRange(request.start, request.steps, request.stride))
    with TestClient(create_app(Settings(store="memory", cache_bytes=0))) as client:
        monkeypatch.setattr(service.engine.costs, "EXPRESSION_BUDGET", work)
        assert client.post(url, json=body).status_code == 200
        monkeypatch.setattr(service.engine.costs, "EXPRESSION_BUDGET", work - 1)
        response = client.post(url, json=body)
    assert response.status_code == 422, response.text[:300]
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "steps"]
    assert f"about {work} units" in detail[0]["msg"]


def test_the_plot_route_sums_the_work_of_every_curve(monkeypatch: pytest.MonkeyPatch) -> None:
    one = {"type": "LambdaLR", "lr_lambda": POWER}
    body = {"schedules": [one, one], "steps": 2000}
    work = expression_cost(root(one), StepRange(0, 2000, 1))
    monkeypatch.setattr(service.engine.costs, "EXPRESSION_BUDGET", 2 * work - 1)
    with TestClient(create_app(Settings(store="memory"))) as client:
        assert client.post("/v1/schedules/plot", json={**body, "schedules": [one]}).is_success
        response = client.post("/v1/schedules/plot", json=body)
    assert response.status_code == 422
    assert f"about {2 * work} units" in response.text


@pytest.mark.parametrize("shortcut", [True, False], ids=["shortcut", "declared-route"])
def test_each_expression_is_compiled_once_per_request(
    monkeypatch: pytest.MonkeyPatch, shortcut: bool
) -> None:
    """Validation compiles each expression; building the schedule reuses what it compiled,
    however many expressions the request holds (the compile cache holds 512)."""
    compiled: list[str] = []

    def spy(source: str) -> Expression:
        compiled.append(source)
        return compile_expression.__wrapped__(source)

    monkeypatch.setattr(service.engine.expressions, "compile_expression", spy)
    groups = 600
    lambdas = [f"1 / (epoch + {group})" for group in range(1, groups + 1)]
    body = {
        "schedule": {
            "type": "ChainedScheduler",
            "schedulers": [
                {"type": "LambdaLR", "lr_lambda": lambdas},
                {"type": "MultiplicativeLR", "lr_lambda": "0.99"},
                {
                    "type": "CyclicLR",
                    "base_lr": 0.01,
                    "max_lr": 0.1,
                    "scale_fn": "1 / (epoch + 1)",
                    "cycle_momentum": False,
                },
            ],
        },
        "lr": [0.1] * groups,
        "steps": 3,
    }
    app = create_app(Settings(store="memory"))
    if not shortcut:
        monkeypatch.setattr(schedule_routes, "_answer_directly", never)
    with TestClient(app) as client:
        response = client.post("/v1/schedules", json=body)
    assert response.status_code == 200, response.text[:300]
    assert sorted(compiled) == sorted([*lambdas, "0.99", "1 / (epoch + 1)"])


def test_a_validated_source_copies_and_pickles_with_its_compiled_form() -> None:
    request = ScheduleRequest.model_validate(
        {"schedule": {"type": "LambdaLR", "lr_lambda": SUM}, "steps": 1}
    )
    source = request.model_copy(deep=True).schedule.lr_lambda
    assert isinstance(source, service.engine.expressions.CompiledSource)
    assert source == SUM
    assert source.expression is compile_expression(SUM)
    restored = pickle.loads(pickle.dumps(request))
    assert restored == request
    assert restored.schedule.lr_lambda.expression is compile_expression(SUM)

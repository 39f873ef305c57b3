"""The layering: ``schemas`` describes the wire, the engine's registry builds (schedules, and
the training-control rules' configs); neither imports the other but through the registry,
and both share ``rules``."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from rules.errors import ScheduleError
from schemas.early_stopping import EarlyStopping
from schemas.lr_finder import LrFinderCreate
from schemas.plateau import ReduceLROnPlateau
from schemas.requests import ScheduleRequest
from schemas.schedules import SCHEDULE_MODELS, build
from service.engine import StepRange, compute
from service.engine.early_stopping import EarlyStoppingConfig
from service.engine.lr_finder import LrFinderConfig
from service.engine.registry import (
    FACTORIES,
    early_stopping_config,
    fields,
    lr_finder_config,
    plateau_config,
)

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a.b import c`` counts as ``a.b``)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            modules.add(node.module)
    return modules


def schema_types() -> set[str]:
    return {get_args(model.model_fields["type"].annotation)[0] for model in SCHEDULE_MODELS}


def test_every_schema_type_has_a_factory_and_every_factory_a_schema_type() -> None:
    assert schema_types() == set(FACTORIES)
    assert len(FACTORIES) == 54


@pytest.mark.parametrize(
    "path", sorted(ROOT.glob("schemas/**/*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_schemas_reach_the_engine_only_through_the_registry(path: Path) -> None:
    relative = str(path.relative_to(ROOT))
    engine = {m for m in imported_modules(path) if m.startswith("service.engine")}
    assert engine <= {"service.engine", "service.engine.registry"}, relative
    if "service.engine" in engine:  # ``from service.engine import registry`` and nothing else
        tree = ast.parse(path.read_text())
        names = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "service.engine"
            for alias in node.names
        }
        assert names == {"registry"}, relative


@pytest.mark.parametrize("package", ["rules", "service/engine"])
def test_rules_and_the_engine_import_no_wire_model(package: str) -> None:
    for path in sorted((ROOT / package).glob("**/*.py")):
        modules = imported_modules(path)
        assert not {m for m in modules if m.split(".")[0] in ("schemas", "pydantic")}, path
        if package == "rules":
            assert not {m for m in modules if m.split(".")[0] == "service"}, path


def test_a_factory_receives_the_fields_but_the_type() -> None:
    spec = ScheduleRequest.model_validate(
        {"lr": 0.1, "steps": 3, "schedule": {"type": "StepLR", "step_size": 2, "gamma": 0.5}}
    ).schedule
    assert fields(spec) == {"step_size": 2, "gamma": 0.5}
    curve = compute(build(spec, 1), np.array([0.1]), StepRange(0, 5, 1))
    np.testing.assert_array_equal(curve.lr[0], [0.1, 0.1, 0.05, 0.05, 0.025])


def test_a_factory_check_names_the_nested_field() -> None:
    spec = ScheduleRequest.model_validate(
        {
            "lr": 0.1,
            "steps": 3,
            "schedule": {
                "type": "warmup",
                "steps": 5,
                "schedule": {"type": "CyclicLR", "base_lr": [0.1, 0.2], "max_lr": 0.5},
            },
        }
    ).schedule
    with pytest.raises(ScheduleError) as raised:
        build(spec, 3)
    assert raised.value.loc == ("schedule", "base_lr")


@pytest.mark.parametrize(
    ("schedule", "loc"),
    [
        (
            {"type": "CyclicLR", "base_lr": 0.1, "max_lr": 0.5, "mode": "sine"},
            ("mode",),
        ),
        ({"type": "CyclicLR", "base_lr": [0.1], "max_lr": 0.5}, ("base_lr",)),
        ({"type": "OneCycleLR", "max_lr": [0.1], "total_steps": 10}, ("max_lr",)),
    ],
    ids=["CyclicLR-mode", "CyclicLR-base_lr", "OneCycleLR-max_lr"],
)
def test_a_factory_refuses_in_pytorchs_order(schedule: dict[str, object], loc: tuple[str]) -> None:
    """With the momenta also one per group short, the first refusal is still the one PyTorch
    makes first (mode, then the lrs, then the momenta)."""
    schedule = {**schedule, "base_momentum": [0.8], "max_momentum": [0.9]}
    spec = ScheduleRequest.model_validate({"lr": [0.1, 0.1], "steps": 3, "schedule": schedule})
    with pytest.raises(ScheduleError) as raised:
        build(spec.schedule, 2)
    assert raised.value.loc == loc


def test_the_plateau_rule_is_built_with_one_floor_per_group() -> None:
    spec = ReduceLROnPlateau.model_validate({"type": "ReduceLROnPlateau", "min_lr": 0.01})
    assert plateau_config(spec, 3).min_lrs == (0.01, 0.01, 0.01)
    listed = ReduceLROnPlateau.model_validate({"type": "ReduceLROnPlateau", "min_lr": [0.1, 0.2]})
    assert plateau_config(listed, 2).min_lrs == (0.1, 0.2)


@pytest.mark.parametrize(
    ("options", "loc", "message"),
    [
        ({"min_lr": [0.1], "min_delta": 0.1}, ("min_lr",), "expected 2 min_lrs, got 1"),
        ({"min_delta": 0.1}, ("min_delta",), "min_delta is an absolute margin"),
        (
            {"threshold_mode": "abs", "threshold": 0.1, "min_delta": 0.1},
            ("min_delta",),
            "give threshold or min_delta",
        ),
    ],
    ids=["min_lr-first", "min_delta-rel", "min_delta-and-threshold"],
)
def test_the_plateau_rule_refuses_naming_the_option(
    options: dict[str, object], loc: tuple[str], message: str
) -> None:
    spec = ReduceLROnPlateau.model_validate({"type": "ReduceLROnPlateau", **options})
    with pytest.raises(ScheduleError, match=message) as raised:
        plateau_config(spec, 2)
    assert raised.value.loc == loc


def test_min_delta_is_the_threshold_or_its_absolute_part() -> None:
    plateau = {"type": "ReduceLROnPlateau", "min_delta": 0.5}
    absolute = plateau_config(
        ReduceLROnPlateau.model_validate({**plateau, "threshold_mode": "abs"}), 1
    )
    assert (absolute.threshold, absolute.min_delta) == (0.5, 0.0)
    both = {**plateau, "threshold_mode": "both", "threshold": 0.25}
    config = plateau_config(ReduceLROnPlateau.model_validate(both), 1)
    assert (config.threshold, config.min_delta) == (0.25, 0.5)


def test_the_early_stopping_and_range_test_rules_take_their_own_options() -> None:
    stopping = EarlyStopping.model_validate({"semantics": "lightning", "patience": 2})
    assert early_stopping_config(stopping) == EarlyStoppingConfig("lightning", "min", 2)
    finder = LrFinderCreate.model_validate({"num_steps": 10, "world_size": 2})
    assert lr_finder_config(finder) == LrFinderConfig(1e-7, 10.0, 10)

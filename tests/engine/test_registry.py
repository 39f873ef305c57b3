"""The layering of the curve path: ``schemas`` describes the wire, the engine's registry
builds; neither imports the other but through the registry, and both share ``rules``."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from rules.errors import ScheduleError
from schemas.requests import ScheduleRequest
from schemas.schedules import SCHEDULE_MODELS, build
from service.engine import StepRange, compute
from service.engine.registry import FACTORIES, fields

ROOT = Path(__file__).resolve().parents[2]

SESSION_CONFIGS = {
    "schemas/plateau.py": {"service.engine.plateau"},
    "schemas/lr_finder.py": {"service.engine.lr_finder"},
    "schemas/early_stopping.py": {"service.engine.early_stopping"},
}
"""The session options still turned into engine configs by their schema (``to_config``);
the curve path's schemas import the registry only."""


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
    assert engine <= {"service.engine", "service.engine.registry"} | SESSION_CONFIGS.get(
        relative, set()
    ), relative
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

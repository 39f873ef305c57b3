"""Write ``tests/golden/plateau.json``: ReduceLROnPlateau as real PyTorch computes it.

Every fixture is ``{"name", "request", "lr"}`` where ``request`` is the exact JSON body of
``POST /v1/plateau/replay`` and ``lr[g][i]`` is ``optimizer.param_groups[g]["lr"]`` after the
``i``-th ``scheduler.step(metric)`` of ``torch.optim.lr_scheduler.ReduceLROnPlateau`` on a
``torch.optim.SGD`` with one param group per item of ``request["lr"]``. Configurations torch
rejects are ``{"name", "request", "error", "field"}``: torch's exception text and the field the
service must name in its 422. Non-finite metrics are written as ``"inf"``, ``"-inf"``, ``"nan"``
(or another accepted spelling, kept verbatim). Output is deterministic (fixed seeds, sorted).

Usage: ``python -m tools.generate_plateau_golden [--out tests/golden/plateau.json]``
(needs torch; the tests that read the file do not).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import torch

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests" / "golden" / "plateau.json"

Metric = float | str
Fixture = dict[str, Any]


def _metric_value(metric: Metric) -> float:
    """The float torch is stepped with (strings are the non-finite spellings)."""
    return float(metric)


def _wire(metric: float) -> Metric:
    """A metric as written in a request body: non-finite values as the canonical strings."""
    if math.isnan(metric):
        return "nan"
    if math.isinf(metric):
        return "inf" if metric > 0 else "-inf"
    return metric


def _run_torch(
    schedule: dict[str, Any], lr: float | list[float], metrics: list[Metric]
) -> list[list[float]]:
    """Build SGD + ReduceLROnPlateau like the service would, step every metric, record lrs.

    One param group per item of ``lr`` (a number is one group), built as
    ``SGD(groups, lr=lrs[0])`` like ``tools/torch_reference.py`` does for ``/v1/schedules``.
    """
    lrs = lr if isinstance(lr, list) else [lr]
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": g_lr} for g_lr in lrs]
    optimizer = torch.optim.SGD(groups, lr=lrs[0])
    kwargs = {key: value for key, value in schedule.items() if key != "type"}
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
    rows: list[list[float]] = [[] for _ in optimizer.param_groups]
    for metric in metrics:
        scheduler.step(_metric_value(metric))
        for row, group in zip(rows, optimizer.param_groups, strict=True):
            row.append(float(group["lr"]))
    return rows


def _schedule(**kwargs: Any) -> dict[str, Any]:
    return {"type": "ReduceLROnPlateau", **kwargs}


def _phases(rng: random.Random, n: int) -> list[bool]:
    """Alternating stretches of progress (True) and plateau (False), ``n`` steps in all."""
    out: list[bool] = []
    improving = True
    while len(out) < n:
        out.extend([improving] * (rng.randint(2, 8) if improving else rng.randint(4, 18)))
        improving = not improving
    return out[:n]


def _loss_curve(rng: random.Random, n: int, *, start: float = 2.0) -> list[float]:
    """A noisy loss that improves in stretches and stalls in between (plateaus)."""
    value = start
    out: list[float] = []
    for improving in _phases(rng, n):
        if improving:
            value *= rng.uniform(0.8, 0.99)
        out.append(value * rng.uniform(0.999, 1.01))
    return out


def _accuracy_curve(rng: random.Random, n: int) -> list[float]:
    """A noisy accuracy that climbs towards 1 in stretches, with plateaus."""
    value = 0.1
    out: list[float] = []
    for improving in _phases(rng, n):
        if improving:
            value += (1.0 - value) * rng.uniform(0.02, 0.2)
        out.append(min(1.0, value * rng.uniform(0.99, 1.001)))
    return out


def _sprinkle(rng: random.Random, metrics: list[float], rate: float) -> list[Metric]:
    """Replace a fraction ``rate`` of the metrics by nan, inf or -inf (as wire strings)."""
    out: list[Metric] = []
    for metric in metrics:
        if rng.random() < rate:
            out.append(rng.choice(["nan", "inf", "-inf"]))
        else:
            out.append(metric)
    return out


def accepted_cases() -> list[tuple[str, dict[str, Any], float | list[float], list[Metric]]]:
    """(name, schedule, lr, metrics) for every configuration torch accepts."""
    cases: list[tuple[str, dict[str, Any], float | list[float], list[Metric]]] = []

    def add(name: str, schedule: dict[str, Any], lr: float | list[float], metrics: Any) -> None:
        cases.append((name, schedule, lr, list(metrics)))

    # The grid: every mode x threshold_mode x patience x cooldown, on a noisy curve.
    for index, (mode, threshold_mode, patience, cooldown) in enumerate(
        itertools.product(["min", "max"], ["rel", "abs"], [0, -1, 3, 10], [0, 2])
    ):
        rng = random.Random(1000 + index)
        curve = _loss_curve(rng, 80) if mode == "min" else _accuracy_curve(rng, 80)
        threshold = 1e-2 if threshold_mode == "abs" else 1e-3
        add(
            f"grid/{mode}-{threshold_mode}-patience{patience}-cooldown{cooldown}",
            _schedule(
                mode=mode,
                threshold_mode=threshold_mode,
                threshold=threshold,
                patience=patience,
                cooldown=cooldown,
                factor=0.5,
            ),
            0.1,
            curve,
        )

    add("defaults/flat-loss", _schedule(), 0.001, [1.0] * 30)
    add("defaults/int-lr-and-int-metrics", _schedule(patience=1), 1, [5, 4, 4, 4, 3, 3, 3, 3])
    add("patience/zero-flat", _schedule(patience=0), 0.1, [1.0] * 6)
    add("patience/minus-one-improving", _schedule(patience=-1), 0.1, [5.0, 4.0, 3.0, 2.0, 1.0])
    add("patience/minus-five", _schedule(patience=-5), 1.0, [1.0, 0.5, 0.25])
    add(
        "cooldown/patience0-cooldown2-flat",
        _schedule(patience=0, cooldown=2, factor=0.5),
        1.0,
        [1.0] * 12,
    )
    add(
        "cooldown/improvement-during-cooldown",
        _schedule(patience=1, cooldown=3, factor=0.5),
        1.0,
        [1.0, 1.0, 1.0, 0.5, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4],
    )
    add("cooldown/negative", _schedule(patience=0, cooldown=-2), 1.0, [1.0] * 5)

    add("nan/min-patience0", _schedule(patience=0), 0.1, [1.0, "nan", 0.5, "nan", "nan"])
    add("nan/min-patience2", _schedule(patience=2), 0.1, [1.0, "nan", "nan", 0.9, "nan", "nan"])
    add("nan/first-metric", _schedule(patience=0), 0.1, ["nan", 1.0, 1.0])
    add(
        "nan/max-abs",
        _schedule(mode="max", threshold_mode="abs", patience=1),
        0.1,
        [0.5, "nan", "nan", 0.9, "nan", 0.95, "nan", "nan"],
    )
    add("nan/all", _schedule(patience=1, cooldown=1), 1.0, ["nan"] * 10)

    add("inf/first-plus-inf-min", _schedule(patience=0), 0.1, ["inf", 1.0, 1.0])
    add("inf/first-plus-inf-min-patience3", _schedule(patience=3), 0.1, ["inf"] * 6 + [1.0])
    add(
        "inf/minus-inf-min-is-final-best",
        _schedule(patience=1),
        0.1,
        [1.0, "-inf", -1e308, 0.0, "-inf", "-inf"],
    )
    add("inf/first-minus-inf-max", _schedule(mode="max", patience=0), 0.1, ["-inf", 1.0, 1.0])
    add("inf/plus-inf-max", _schedule(mode="max", patience=1), 0.1, [1.0, "inf", 2.0, 3.0, 4.0])
    add(
        "inf/abs-threshold",
        _schedule(threshold_mode="abs", patience=0),
        0.1,
        ["inf", "inf", 5.0, "-inf", "nan"],
    )
    add(
        "inf/spellings",
        _schedule(patience=0),
        0.1,
        ["Infinity", "+inf", "INF", "-Infinity", "NaN", "-INF"],
    )

    add(
        "negative/min-rel-wrong-way",
        _schedule(patience=0, threshold=0.1),
        0.1,
        [-10.0, -9.5, -9.0, -8.5, -20.0, -19.0],
    )
    add(
        "negative/min-rel-default-threshold",
        _schedule(patience=1),
        0.1,
        [-1.0, -1.0, -0.9999, -0.99995, -2.0, -2.0, -2.0],
    )
    add(
        "negative/max-rel",
        _schedule(mode="max", patience=0, threshold=0.1),
        0.1,
        [-10.0, -10.5, -11.0, -5.0, -5.2],
    )
    add(
        "negative/min-abs",
        _schedule(threshold_mode="abs", threshold=0.5, patience=0),
        0.1,
        [-1.0, -1.4, -1.6, -2.0, -2.2],
    )

    add(
        "max/best-zero-rel",
        _schedule(mode="max", patience=0),
        0.1,
        [0.0, 0.0, 1e-300, -1.0, 0.5, 0.5],
    )
    add(
        "max/best-zero-abs",
        _schedule(mode="max", threshold_mode="abs", patience=0),
        0.1,
        [0.0, 0.0, 5e-5, 2e-4, 2e-4],
    )
    add("min/best-zero-rel", _schedule(patience=0), 0.1, [0.0, 0.0, -1e-300, -1e-300, 0.0])

    add(
        "threshold/negative-rel",
        _schedule(threshold=-0.1, patience=0),
        0.1,
        [1.0, 1.05, 1.2, 1.3, 1.5],
    )
    add(
        "threshold/negative-abs",
        _schedule(threshold=-0.5, threshold_mode="abs", patience=0),
        0.1,
        [1.0, 1.4, 2.0, 1.9],
    )
    add(
        "threshold/one-rel-never-better",
        _schedule(threshold=1.0, patience=1),
        0.1,
        [1.0, 0.1, -5.0, 0.0],
    )
    add(
        "threshold/above-one-rel", _schedule(threshold=2.0, patience=1), 0.1, [1.0, 0.5, -5.0, -1.0]
    )
    add(
        "threshold/zero-abs-max",
        _schedule(mode="max", threshold=0.0, threshold_mode="abs", patience=0),
        0.1,
        [1.0, 1.0, 1.0000000000000002, 1.0000000000000002],
    )

    add("groups/two-min-lrs", _schedule(patience=0, min_lr=[0.05, 0.0]), [0.1, 0.01], [1.0] * 6)
    add(
        "groups/three-min-lrs",
        _schedule(patience=1, factor=0.3, min_lr=[0.2, 0.001, 1e-5]),
        [1.0, 0.1, 0.001],
        [1.0] * 14,
    )
    add(
        "groups/three-scalar-min-lr",
        _schedule(patience=0, factor=0.5, min_lr=0.004),
        [0.1, 0.05, 0.003],
        [1.0] * 8,
    )
    add("groups/one-item-list", _schedule(patience=0, min_lr=[0.001]), [0.1], [1.0] * 4)
    add(
        "groups/two-min-lr-above-lr",
        _schedule(patience=0, min_lr=[0.5, 0.0]),
        [0.1, 0.1],
        [1.0] * 3,
    )

    add("eps/lr-1e-8-never-reduced", _schedule(patience=0), 1e-8, [1.0] * 5)
    add("eps/lr-1e-7-once-then-stuck", _schedule(patience=0), 1e-7, [1.0] * 5)
    add("eps/zero-eps", _schedule(patience=0, eps=0.0), 1e-8, [1.0] * 5)
    add("eps/large-eps", _schedule(patience=0, eps=1e-3, factor=0.5), 0.01, [1.0] * 6)
    add(
        "eps/negative-eps-raises-to-min-lr",
        _schedule(patience=0, eps=-1.0, min_lr=0.5),
        0.1,
        [1.0] * 3,
    )
    add("eps/groups", _schedule(patience=0), [1e-7, 1e-6, 1e-8], [1.0] * 6)

    add("factor/zero", _schedule(patience=0, factor=0.0), 0.1, [1.0] * 3)
    add("factor/negative", _schedule(patience=0, factor=-0.5), 0.1, [1.0] * 3)
    add(
        "factor/negative-with-min-lr",
        _schedule(patience=0, factor=-2.0, min_lr=0.001),
        0.1,
        [1.0] * 3,
    )
    add("factor/near-one", _schedule(patience=0, factor=0.9999999), 0.1, [1.0] * 20)
    add("factor/tiny", _schedule(patience=0, factor=1e-300), 1.0, [1.0] * 3)

    add("min_lr/above-lr", _schedule(patience=0, min_lr=0.1), 0.01, [1.0] * 4)
    add("min_lr/equal-lr", _schedule(patience=0, min_lr=0.01), 0.01, [1.0] * 4)
    add("min_lr/negative", _schedule(patience=0, min_lr=-1.0, factor=-1.0), 0.5, [1.0] * 4)
    add("lr/zero", _schedule(patience=0), 0.0, [1.0] * 3)
    add("lr/zero-group", _schedule(patience=0), [0.0, 0.1], [1.0] * 3)
    add("metrics/single", _schedule(patience=-1), 0.1, [1.0])
    add("metrics/huge-and-tiny", _schedule(patience=0), 0.1, [1e308, 1e308, 5e-324, 5e-324, -1e308])

    # Long seeded random sequences, non-finite values sprinkled in.
    for seed in range(8):
        rng = random.Random(seed)
        mode = "min" if seed % 2 == 0 else "max"
        threshold_mode = "rel" if seed % 4 < 2 else "abs"
        curve = _loss_curve(rng, 200) if mode == "min" else _accuracy_curve(rng, 200)
        if seed >= 4:
            curve = [value - 1.0 for value in curve]  # negative metrics
        groups = [round(rng.uniform(0.01, 1.0), 6) for _ in range(1 + seed % 3)]
        min_lr: float | list[float] = (
            [round(rng.uniform(0.0, 1e-3), 8) for _ in groups] if seed % 3 == 2 else 1e-4
        )
        add(
            f"random/seed{seed}-{mode}-{threshold_mode}",
            _schedule(
                mode=mode,
                threshold_mode=threshold_mode,
                threshold=round(rng.uniform(0.0, 0.01), 6),
                patience=rng.randint(-1, 6),
                cooldown=rng.randint(0, 4),
                factor=round(rng.uniform(0.1, 0.9), 6),
                min_lr=min_lr,
                eps=1e-8,
            ),
            groups if len(groups) > 1 else groups[0],
            _sprinkle(rng, curve, 0.05),
        )
    rng = random.Random(99)
    add(
        "random/uniform-noise-patience0",
        _schedule(patience=0, factor=0.7, cooldown=1),
        [0.3, 0.02],
        [_wire(rng.uniform(-1.0, 1.0)) for _ in range(200)],
    )
    return cases


def rejected_cases() -> list[tuple[str, dict[str, Any], float | list[float], str]]:
    """(name, schedule, lr, field) for configurations torch refuses to construct."""
    return [
        ("rejected/factor-one", _schedule(factor=1.0), 0.1, "factor"),
        ("rejected/factor-two", _schedule(factor=2), 0.1, "factor"),
        ("rejected/mode-avg", _schedule(mode="avg"), 0.1, "mode"),
        ("rejected/threshold-mode-x", _schedule(threshold_mode="x"), 0.1, "threshold_mode"),
        ("rejected/min-lr-list-too-short", _schedule(min_lr=[0.0, 0.0]), [0.1, 0.1, 0.1], "min_lr"),
        ("rejected/min-lr-list-for-one-group", _schedule(min_lr=[0.0, 0.0]), 0.1, "min_lr"),
        ("rejected/negative-lr", _schedule(), -0.1, "lr"),
    ]


def build() -> list[Fixture]:
    """Run torch on every case; the fixtures sorted by name."""
    fixtures: list[Fixture] = []
    for name, schedule, lr, metrics in accepted_cases():
        request = {"schedule": schedule, "lr": lr, "metrics": metrics}
        fixtures.append({"name": name, "request": request, "lr": _run_torch(schedule, lr, metrics)})
    for name, schedule, lr, field in rejected_cases():
        request = {"schedule": schedule, "lr": lr, "metrics": [1.0, 1.0]}
        try:
            _run_torch(schedule, lr, [1.0, 1.0])
        except (ValueError, TypeError) as error:
            fixtures.append({"name": name, "request": request, "error": str(error), "field": field})
        else:
            raise AssertionError(f"{name}: torch accepted a configuration expected to fail")
    names = [fixture["name"] for fixture in fixtures]
    if len(set(names)) != len(names):
        raise AssertionError("duplicate fixture names")
    return sorted(fixtures, key=lambda fixture: str(fixture["name"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    fixtures = build()
    text = json.dumps(fixtures, sort_keys=True, indent=1, allow_nan=False) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    accepted = sum(1 for fixture in fixtures if "lr" in fixture)
    print(
        f"wrote {args.out}: {accepted} accepted, {len(fixtures) - accepted} rejected, "
        f"torch {torch.__version__}"
    )


if __name__ == "__main__":
    main()

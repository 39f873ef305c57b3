"""PyTorch's schedulers (``torch.optim.lr_scheduler``, and ``swa_utils.SWALR``).

The checks here are those PyTorch makes with the optimizer in hand (one value per param group)
or that its constructor makes across fields; single fields are checked by ``schemas.pytorch``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from rules.errors import Loc, ScheduleError
from service.engine import compose, cosine, cyclic, lambdas, multiplicative, one_cycle, swa
from service.engine.factories.params import expressions, per_group
from service.engine.nodes import Node
from service.engine.registry import Spec, build, register
from service.engine.types import FloatArray


@register("LambdaLR")
def lambda_lr(loc: Loc, groups: int, *, lr_lambda: str | list[str]) -> Node:
    """``lr = base_lr * lr_lambda(k)``, one expression per group or one for all."""
    return lambdas.LambdaLR(loc, expressions(lr_lambda, groups, (*loc, "lr_lambda")))


@register("MultiplicativeLR")
def multiplicative_lr(loc: Loc, groups: int, *, lr_lambda: str | list[str]) -> Node:
    """``lr_k = lr_{k-1} * lr_lambda(k)``."""
    return lambdas.MultiplicativeLR(loc, expressions(lr_lambda, groups, (*loc, "lr_lambda")))


@register("StepLR")
def step_lr(loc: Loc, groups: int, *, step_size: float, gamma: float) -> Node:
    """Decay by ``gamma`` every ``step_size`` steps."""
    return multiplicative.StepLR(loc, step_size, gamma)


@register("MultiStepLR")
def multi_step_lr(loc: Loc, groups: int, *, milestones: list[float], gamma: float) -> Node:
    """Decay by ``gamma`` at each milestone."""
    return multiplicative.MultiStepLR(loc, [float(m) for m in milestones], gamma)


@register("ConstantLR")
def constant_lr(loc: Loc, groups: int, *, factor: float, total_iters: float) -> Node:
    """``factor * lr`` until ``total_iters``."""
    return multiplicative.ConstantLR(loc, factor, total_iters)


@register("LinearLR")
def linear_lr(
    loc: Loc, groups: int, *, start_factor: float, end_factor: float, total_iters: float
) -> Node:
    """The factor from ``start_factor`` to ``end_factor`` over ``total_iters``."""
    return multiplicative.LinearLR(loc, start_factor, end_factor, total_iters)


@register("ExponentialLR")
def exponential_lr(loc: Loc, groups: int, *, gamma: float) -> Node:
    """Multiply by ``gamma`` every step."""
    return multiplicative.ExponentialLR(loc, gamma)


@register("PolynomialLR")
def polynomial_lr(loc: Loc, groups: int, *, total_iters: float, power: float) -> Node:
    """``(1 - min(k, total_iters) / total_iters) ** power`` times the lr."""
    return multiplicative.PolynomialLR(loc, total_iters, power)


@register("CosineAnnealingLR")
def cosine_annealing_lr(loc: Loc, groups: int, *, T_max: float, eta_min: float) -> Node:
    """Cosine from the lr to ``eta_min`` over ``T_max`` steps."""
    return cosine.CosineAnnealingLR(loc, T_max, eta_min)


@register("CosineAnnealingWarmRestarts")
def cosine_annealing_warm_restarts(
    loc: Loc,
    groups: int,
    *,
    T_0: int,
    T_mult: int,
    eta_min: float,
) -> Node:
    """SGDR: cosine over ``T_0`` steps, restarting with periods growing by ``T_mult``."""
    return cosine.CosineAnnealingWarmRestarts(loc, T_0, T_mult, eta_min)


@register("CyclicLR")
def cyclic_lr(loc: Loc, groups: int, **options: Any) -> Node:
    """Triangle waves; PyTorch refuses an unknown ``mode`` only without ``scale_fn``. The
    checks run in PyTorch's order (mode, lrs, momenta), so the first refusal is the same."""
    scale_fn = options.pop("scale_fn")
    if scale_fn is None and options["mode"] not in ("triangular", "triangular2", "exp_range"):
        raise ScheduleError(
            f"mode {options['mode']!r} is invalid and scale_fn is None "
            "(expected triangular, triangular2 or exp_range)",
            (*loc, "mode"),
        )
    base_lr = per_group(options.pop("base_lr"), groups, (*loc, "base_lr"))
    max_lr = per_group(options.pop("max_lr"), groups, (*loc, "max_lr"))
    expression = None if scale_fn is None else expressions(scale_fn, 1, loc)[0]
    base_momentum, max_momentum = _momenta(options, groups, loc)
    return cyclic.CyclicLR(
        loc,
        base_lr=base_lr,
        max_lr=max_lr,
        scale_fn=expression,
        base_momentum=base_momentum,
        max_momentum=max_momentum,
        **options,
    )


@register("OneCycleLR")
def one_cycle_lr(loc: Loc, groups: int, **options: Any) -> Node:
    """The 1cycle policy; ``total_steps``, or ``epochs`` times ``steps_per_epoch``."""
    total_steps = options.pop("total_steps")
    epochs, steps_per_epoch = options.pop("epochs"), options.pop("steps_per_epoch")
    if total_steps is None:
        if epochs is None or steps_per_epoch is None:
            raise ScheduleError(
                "You must define either total_steps OR (epochs AND steps_per_epoch)",
                (*loc, "total_steps"),
            )
        total_steps = epochs * steps_per_epoch
    max_lr = per_group(options.pop("max_lr"), groups, (*loc, "max_lr"))
    base_momentum, max_momentum = _momenta(options, groups, loc)
    return one_cycle.OneCycleLR(
        loc,
        max_lr=max_lr,
        total_steps=total_steps,
        base_momentum=base_momentum,
        max_momentum=max_momentum,
        **options,
    )


@register("SWALR")
def swalr(
    loc: Loc,
    groups: int,
    *,
    swa_lr: float | list[float],
    anneal_epochs: int,
    anneal_strategy: Literal["cos", "linear"],
) -> Node:
    """Anneal every lr to ``swa_lr`` over ``anneal_epochs`` steps, then hold it."""
    return swa.SWALR(
        loc, per_group(swa_lr, groups, (*loc, "swa_lr")), anneal_epochs, anneal_strategy
    )


@register("SequentialLR")
def sequential_lr(
    loc: Loc, groups: int, *, schedulers: list[Spec], milestones: list[float]
) -> Node:
    """``schedulers`` one after another, switching at each milestone."""
    if len(milestones) != len(schedulers) - 1:
        raise ScheduleError(
            "Sequential Schedulers expects number of schedulers provided to be one more than "
            "the number of milestone points, but got number of schedulers "
            f"{len(schedulers)} "
            f"and the number of milestones to be equal to {len(milestones)}",
            (*loc, "milestones"),
        )
    return compose.SequentialLR(
        loc, _children(schedulers, groups, loc), [float(m) for m in milestones]
    )


@register("ChainedScheduler")
def chained_scheduler(loc: Loc, groups: int, *, schedulers: list[Spec]) -> Node:
    """Every one of ``schedulers`` stepped at every step, in order."""
    return compose.ChainedScheduler(loc, _children(schedulers, groups, loc))


def _children(schedulers: list[Spec], groups: int, loc: Loc) -> list[Node]:
    return [
        build(child, groups, (*loc, "schedulers", index)) for index, child in enumerate(schedulers)
    ]


def _momenta(options: dict[str, Any], groups: int, loc: Loc) -> tuple[FloatArray, FloatArray]:
    """Per-group base and max momenta (taken out of ``options``); PyTorch checks their
    lengths only when it cycles momentum."""
    base, peak = options.pop("base_momentum"), options.pop("max_momentum")
    if not options["cycle_momentum"]:
        return np.zeros(groups), np.zeros(groups)
    return (
        per_group(base, groups, (*loc, "base_momentum")),
        per_group(peak, groups, (*loc, "max_momentum")),
    )

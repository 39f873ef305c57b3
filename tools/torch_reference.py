"""Run a ``POST /v1/schedules`` request body through real PyTorch: the reference side.

Both the golden-file generator (``tools/generate_golden.py``) and the live differential
test (``tests/conformance/test_torch_live.py``) translate a request into torch objects here,
so there is exactly one definition of "what PyTorch does with this request".

Construction convention (this is what the service is held to):

* The optimizer is::

      torch.optim.SGD(
          [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr_g} for each group g],
          lr=lr_0,
          momentum=0.9,
      )

  where ``lr`` is the request's ``lr`` (a number means one group; default ``0.001``).
* ``schedule`` is a spec ``{"type": <PyTorch class name>, <constructor kwargs>}``. JSON
  values reach torch as the Python values ``json.loads`` produces, so an ``int`` stays an
  ``int`` (``T_0: 3``) and ``1.0`` stays a ``float`` (``pct_start: 1.0``), exactly what a
  Python user typing the same literal would pass.
* Nested schedulers (``SequentialLR.schedulers``, ``ChainedScheduler.schedulers``) are built
  depth-first, children in list order before their parent -- what the natural expression
  ``SequentialLR(opt, [LinearLR(opt, ...), CosineAnnealingLR(opt, ...)], milestones=[...])``
  does. ``ChainedScheduler`` is built as ``ChainedScheduler([children...], optimizer=opt)``.
* ``lr_lambda`` (LambdaLR, MultiplicativeLR) and ``scale_fn`` (CyclicLR) are strings: Python
  lambda source (``"lambda epoch: 0.95 ** epoch"``, any argument name) or a bare expression
  in ``epoch``; ``lr_lambda`` may be a list of such strings, one per group. Here -- in the
  tools, never in the service -- they become callables via ``eval`` in a namespace holding
  ``math`` and the whitelisted names (``min max abs pow`` from builtins, ``floor ceil sqrt
  exp log log2 log10 cos sin tan tanh`` from :mod:`math`, constants ``pi e inf``).
* "The LR of group g at step k" is ``optimizer.param_groups[g]["lr"]`` after the
  constructor and ``k`` calls of ``scheduler.step()``; momentum likewise reads
  ``param_groups[g]["momentum"]``. Every step is preceded by ``optimizer.step()`` (a no-op:
  the parameters have no gradient) as in a training loop. Values are recorded for
  ``k in range(start, steps, stride)``; the scheduler is stepped through every ``k`` up to
  the last recorded one, so an exception anywhere up to there rejects the request.
* Momentum is reported (else ``None``) when the spec tree contains a CyclicLR or OneCycleLR
  with ``cycle_momentum`` true (the default).

Torch's own ``UserWarning``\\ s are silenced inside this module, so callers running under
``-W error`` see only exceptions.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.optim import lr_scheduler, swa_utils

LR_SCHEDULER_TYPES: tuple[str, ...] = (
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "SequentialLR",
    "PolynomialLR",
    "CosineAnnealingLR",
    "ChainedScheduler",
    "CyclicLR",
    "OneCycleLR",
    "CosineAnnealingWarmRestarts",
)
"""The 14 scheduler classes of ``torch.optim.lr_scheduler`` a request may name."""

SCHEDULE_TYPES: tuple[str, ...] = (*LR_SCHEDULER_TYPES, "SWALR")
"""Every PyTorch scheduler class name a request's ``schedule.type`` may carry: those of
``torch.optim.lr_scheduler`` and ``torch.optim.swa_utils.SWALR``."""

MOMENTUM_TYPES = frozenset({"CyclicLR", "OneCycleLR"})
"""Schedulers that cycle the optimizer's momentum when ``cycle_momentum`` is true."""

DEFAULT_LR = 0.001
"""The request's ``lr`` when omitted (API.md)."""

Spec = Mapping[str, Any]
Curves = dict[str, list[list[float]] | None]

_EXPRESSION_NAMESPACE: dict[str, Any] = {
    "__builtins__": {},
    "math": math,
    "min": min,
    "max": max,
    "abs": abs,
    "pow": pow,
    "floor": math.floor,
    "ceil": math.ceil,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log2": math.log2,
    "log10": math.log10,
    "cos": math.cos,
    "sin": math.sin,
    "tan": math.tan,
    "tanh": math.tanh,
    "pi": math.pi,
    "e": math.e,
    "inf": math.inf,
}


def compile_expression(source: str) -> Callable[[float], float]:
    """Turn ``"lambda x: ..."`` or a bare expression in ``epoch`` into a Python callable.

    Trusted input only (our own fixtures and strategies): this uses ``eval``.
    """
    text = source.strip()
    if not text.startswith("lambda"):
        text = f"lambda epoch: ({text})"
    function = eval(text, dict(_EXPRESSION_NAMESPACE))
    if not callable(function):
        raise TypeError(f"expression {source!r} is not callable")
    return function  # type: ignore[no-any-return]


def _compile_lambdas(value: Any) -> Any:
    """Compile one expression string, or a list of them; anything else passes through."""
    if isinstance(value, str):
        return compile_expression(value)
    if isinstance(value, list):
        return [compile_expression(v) if isinstance(v, str) else v for v in value]
    return value


def group_lrs(request: Mapping[str, Any]) -> list[Any]:
    """The per-group learning rates of ``request`` (a scalar ``lr`` means one group)."""
    lr = request.get("lr", DEFAULT_LR)
    return list(lr) if isinstance(lr, list) else [lr]


def make_optimizer(lrs: list[Any]) -> torch.optim.SGD:
    """The optimizer of the construction convention: SGD, one 1-element param per group."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def build_scheduler(spec: Spec, optimizer: torch.optim.Optimizer) -> lr_scheduler.LRScheduler:
    """Construct the scheduler tree of ``spec`` on ``optimizer``, children first."""
    kind = spec.get("type")
    if kind not in SCHEDULE_TYPES:
        raise ValueError(f"unknown schedule type {kind!r}")
    kwargs = {key: value for key, value in spec.items() if key != "type"}
    if kind in ("SequentialLR", "ChainedScheduler"):
        children = [build_scheduler(child, optimizer) for child in kwargs.pop("schedulers")]
        if kind == "SequentialLR":
            return lr_scheduler.SequentialLR(optimizer, children, **kwargs)
        return lr_scheduler.ChainedScheduler(children, optimizer=optimizer, **kwargs)
    if kind in ("LambdaLR", "MultiplicativeLR") and "lr_lambda" in kwargs:
        kwargs["lr_lambda"] = _compile_lambdas(kwargs["lr_lambda"])
    if kind == "CyclicLR" and kwargs.get("scale_fn") is not None:
        kwargs["scale_fn"] = _compile_lambdas(kwargs["scale_fn"])
    cls = swa_utils.SWALR if kind == "SWALR" else getattr(lr_scheduler, kind)
    return cls(optimizer, **kwargs)  # type: ignore[no-any-return]


def build(request: Mapping[str, Any]) -> tuple[torch.optim.SGD, lr_scheduler.LRScheduler]:
    """The optimizer and scheduler for ``request``, constructed per the module convention.

    Raises whatever torch raises at construction. Warnings are silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer = make_optimizer(group_lrs(request))
        scheduler = build_scheduler(request["schedule"], optimizer)
    return optimizer, scheduler


def cycles_momentum(spec: Spec) -> bool:
    """Whether the spec tree contains a CyclicLR/OneCycleLR with ``cycle_momentum`` on."""
    if spec.get("type") in MOMENTUM_TYPES and spec.get("cycle_momentum", True):
        return True
    children = spec.get("schedulers")
    if isinstance(children, list):
        return any(isinstance(c, Mapping) and cycles_momentum(c) for c in children)
    return False


def requested_steps(request: Mapping[str, Any]) -> range:
    """The ``k`` values a response carries: ``range(start, steps, stride)``."""
    return range(request.get("start", 0), request["steps"], request.get("stride", 1))


def run(request: Mapping[str, Any], *, through_end: bool = False) -> Curves:
    """Compute ``{"lr": [[...] per group], "momentum": [[...] per group] | None}`` in torch.

    The scheduler is stepped up to the last requested ``k`` (up to ``steps - 1`` when
    ``through_end``), and any exception torch raises on the way -- at construction or while
    stepping -- propagates unchanged.
    """
    ks = requested_steps(request)
    wanted = set(ks)
    last = (request["steps"] - 1) if through_end else (ks[-1] if ks else 0)
    with_momentum = cycles_momentum(request["schedule"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimizer, scheduler = build(request)
        groups = optimizer.param_groups
        lr: list[list[float]] = [[] for _ in groups]
        momentum: list[list[float]] = [[] for _ in groups]

        def record() -> None:
            for g, group in enumerate(groups):
                lr[g].append(float(group["lr"]))
                if with_momentum:
                    momentum[g].append(float(group["momentum"]))

        if 0 in wanted:
            record()
        for k in range(1, last + 1):
            optimizer.step()
            scheduler.step()
            if k in wanted:
                record()
    return {"lr": lr, "momentum": momentum if with_momentum else None}


def describe_error(error: BaseException) -> str:
    """``"<ExceptionType: message>"`` as recorded in the golden file."""
    return f"{type(error).__name__}: {error}"

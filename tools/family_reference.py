"""Run a ``POST /v1/schedules`` body with a family ``type`` through the real library.

Needs (outside the service's own requirements) transformers + torch, optax + jax, keras 3
(jax backend), timm (its scheduler modules only: loaded without ``timm/__init__``, which
needs torchvision) and fastai. JAX runs with ``jax_enable_x64`` and Keras with
``floatx = float64``, so optax and Keras compute in float64 like the service.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
from transformers import optimization as hf  # noqa: E402

keras.config.set_floatx("float64")


def _timm_schedulers() -> types.ModuleType:
    """``timm.scheduler`` without running ``timm/__init__`` (which imports torchvision)."""
    if "timm" not in sys.modules:
        spec = importlib.util.find_spec("timm")
        assert spec is not None and spec.submodule_search_locations is not None
        package = types.ModuleType("timm")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["timm"] = package
    import timm.scheduler.cosine_lr as cosine_lr
    import timm.scheduler.multistep_lr as multistep_lr
    import timm.scheduler.poly_lr as poly_lr
    import timm.scheduler.step_lr as step_lr
    import timm.scheduler.tanh_lr as tanh_lr

    module = types.ModuleType("timm_schedulers")
    module.cosine = cosine_lr.CosineLRScheduler  # type: ignore[attr-defined]
    module.tanh = tanh_lr.TanhLRScheduler  # type: ignore[attr-defined]
    module.poly = poly_lr.PolyLRScheduler  # type: ignore[attr-defined]
    module.step = step_lr.StepLRScheduler  # type: ignore[attr-defined]
    module.multistep = multistep_lr.MultiStepLRScheduler  # type: ignore[attr-defined]
    return module


TIMM = _timm_schedulers()

HF_FACTORIES: dict[str, Callable[..., Any]] = {
    "constant": hf.get_constant_schedule,
    "constant_with_warmup": hf.get_constant_schedule_with_warmup,
    "linear": hf.get_linear_schedule_with_warmup,
    "cosine": hf.get_cosine_schedule_with_warmup,
    "cosine_with_restarts": hf.get_cosine_with_hard_restarts_schedule_with_warmup,
    "cosine_with_min_lr": hf.get_cosine_with_min_lr_schedule_with_warmup,
    "cosine_warmup_with_min_lr": hf.get_cosine_with_min_lr_schedule_with_warmup_lr_rate,
    "polynomial": hf.get_polynomial_decay_schedule_with_warmup,
    "inverse_sqrt": hf.get_inverse_sqrt_schedule,
    "wsd": hf.get_wsd_schedule,
}

OPTAX_FACTORIES: dict[str, Callable[..., Any]] = {
    "constant": optax.constant_schedule,
    "linear": optax.linear_schedule,
    "polynomial": optax.polynomial_schedule,
    "cosine_decay": optax.cosine_decay_schedule,
    "warmup_cosine_decay": optax.warmup_cosine_decay_schedule,
    "exponential_decay": optax.exponential_decay,
    "piecewise_constant": optax.piecewise_constant_schedule,
    "piecewise_interpolate": optax.piecewise_interpolate_schedule,
    "linear_onecycle": optax.linear_onecycle_schedule,
    "cosine_onecycle": optax.cosine_onecycle_schedule,
    "sgdr": optax.sgdr_schedule,
}


def _kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in spec.items() if key != "type"}


def _optimizer(lrs: list[float]) -> torch.optim.Optimizer:
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs, strict=True)]
    return torch.optim.SGD(groups, lr=lrs[0])


def hf_curve(spec: dict[str, Any], lrs: list[float], ks: list[int]) -> list[list[float]]:
    """LambdaLR built by transformers: stepped ``k`` times (or ``base * lambda(k)`` far out)."""
    opt = _optimizer(lrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = HF_FACTORIES[spec["type"].split(".", 1)[1]](opt, **_kwargs(spec))
    if ks and ks[-1] <= 3000:
        wanted = set(ks)
        rows: list[list[float]] = [[] for _ in lrs]
        for k in range(ks[-1] + 1):
            if k:
                scheduler.step()
            if k in wanted:
                for g, group in enumerate(opt.param_groups):
                    rows[g].append(float(group["lr"]))
        return rows
    return [
        [base * lam(k) for k in ks]
        for lam, base in zip(scheduler.lr_lambdas, scheduler.base_lrs, strict=True)
    ]


def optax_schedule(spec: dict[str, Any]) -> Callable[[Any], Any]:
    """The optax schedule of a spec (``optax.join_schedules`` nests optax specs)."""
    name = spec["type"].split(".", 1)[1]
    kwargs = _kwargs(spec)
    if name == "join_schedules":
        children = [optax_schedule(child) for child in kwargs["schedules"]]
        return optax.join_schedules(children, kwargs["boundaries"])
    if "boundaries_and_scales" in kwargs and kwargs["boundaries_and_scales"] is not None:
        kwargs["boundaries_and_scales"] = {
            int(b): s for b, s in kwargs["boundaries_and_scales"].items()
        }
    return OPTAX_FACTORIES[name](**kwargs)


def optax_curve(spec: dict[str, Any], lrs: list[float], ks: list[int]) -> list[list[float]]:
    """``schedule(k)`` in float64, the same row for every group."""
    schedule = jax.vmap(optax_schedule(spec))
    values = np.asarray(schedule(jnp.asarray(ks, dtype=jnp.int64)), dtype=np.float64)
    row = np.broadcast_to(values, (len(ks),)).tolist()
    return [list(row) for _ in lrs]


def keras_curve(spec: dict[str, Any], lrs: list[float], ks: list[int]) -> list[list[float]]:
    """``schedule(k)`` in float64 (one call per step), the same row for every group."""
    cls = getattr(keras.optimizers.schedules, spec["type"].split(".", 1)[1])
    schedule = cls(**_kwargs(spec))
    row = [float(schedule(k)) for k in ks]
    return [list(row) for _ in lrs]


def timm_curve(spec: dict[str, Any], lrs: list[float], ks: list[int]) -> list[list[float]]:
    """The lr of every group after ``scheduler.step(k)``."""
    opt = _optimizer(lrs)
    kwargs = _kwargs(spec)
    if isinstance(kwargs.get("noise_range_t"), list):
        kwargs["noise_range_t"] = tuple(kwargs["noise_range_t"])
    scheduler = getattr(TIMM, spec["type"].split(".", 1)[1])(opt, **kwargs)
    rows: list[list[float]] = [[] for _ in lrs]
    for k in ks:
        scheduler.step(k)
        for g, group in enumerate(opt.param_groups):
            rows[g].append(float(group["lr"]))
    return rows


def fastai_curve(
    spec: dict[str, Any], lrs: list[float], ks: list[int]
) -> tuple[list[list[float]], list[list[float]] | None]:
    """A real ``fit_one_cycle`` / ``fit_flat_cos`` on a synthetic learner (one param group)."""
    import fastai.callback.schedule  # noqa: F401  (patches Learner.fit_one_cycle etc.)
    from fastai.test_utils import synth_learner

    assert len(lrs) == 1, "fastai references use one param group"
    kwargs = _kwargs(spec)
    n_epoch, n_iter = kwargs.pop("n_epoch"), kwargs.pop("n_iter")
    learn = synth_learner(n_trn=n_iter, lr=lrs[0])
    with learn.no_bar(), learn.no_logging(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec["type"] == "fastai.one_cycle":
            if "moms" in kwargs:
                kwargs["moms"] = tuple(kwargs["moms"])
            learn.fit_one_cycle(n_epoch, **kwargs)
        else:
            learn.fit_flat_cos(n_epoch, **kwargs)
    hps = learn.recorder.hps
    lr = [[float(hps["lr"][k]) for k in ks]]
    momentum = [[float(hps["mom"][k]) for k in ks]] if "mom" in hps else None
    return lr, momentum


def run(request: dict[str, Any]) -> tuple[list[list[float]], list[list[float]] | None]:
    """(lr, momentum) per group at the requested steps; raises what the library raises."""
    spec = request["schedule"]
    lr = request.get("lr", 0.001)
    lrs = lr if isinstance(lr, list) else [lr]
    ks = list(range(request.get("start", 0), request["steps"], request.get("stride", 1)))
    family = spec["type"].split(".", 1)[0]
    if family == "fastai":
        return fastai_curve(spec, lrs, ks)
    runner = {"hf": hf_curve, "optax": optax_curve, "keras": keras_curve, "timm": timm_curve}
    return runner[family](spec, lrs, ks), None

"""Hugging Face ``lr_scheduler_type`` names as the service's ``hf.*`` specs (no imports of
transformers or torch: :mod:`lrsched_client.hf` re-exports these)."""

from __future__ import annotations

from typing import Any

SCHEDULER_TYPES: dict[str, str] = {
    "linear": "hf.linear",
    "cosine": "hf.cosine",
    "cosine_with_restarts": "hf.cosine_with_restarts",
    "polynomial": "hf.polynomial",
    "constant": "hf.constant",
    "constant_with_warmup": "hf.constant_with_warmup",
    "inverse_sqrt": "hf.inverse_sqrt",
    "cosine_with_min_lr": "hf.cosine_with_min_lr",
    "cosine_warmup_with_min_lr": "hf.cosine_warmup_with_min_lr",
    "warmup_stable_decay": "hf.wsd",
}
"""``TrainingArguments.lr_scheduler_type`` names and the service's spec types."""


def spec_for(
    name: str,
    num_warmup_steps: int = 0,
    num_training_steps: int | None = None,
    **scheduler_kwargs: Any,
) -> dict[str, Any]:
    """The spec of ``transformers.get_scheduler(name, ...)``, passing arguments as it does:
    ``constant`` takes none, ``constant_with_warmup`` only the warmup, ``inverse_sqrt`` no
    ``num_training_steps``; ``scheduler_kwargs`` are ``lr_scheduler_kwargs``.

    Raises:
        ValueError: a name with no remote equivalent (``reduce_lr_on_plateau``: use a
            plateau session and ``RemotePlateau``) or a missing ``num_training_steps``.
    """
    key = str(getattr(name, "value", name))
    if key not in SCHEDULER_TYPES:
        raise ValueError(
            f"lr_scheduler_type={key!r} has no remote schedule; expected one of "
            f"{sorted(SCHEDULER_TYPES)} (for reduce_lr_on_plateau use a plateau session)"
        )
    spec: dict[str, Any] = {"type": SCHEDULER_TYPES[key]}
    if key == "constant":
        return spec
    spec["num_warmup_steps"] = num_warmup_steps
    if key == "constant_with_warmup":
        return spec
    if key not in ("inverse_sqrt", "warmup_stable_decay"):
        if num_training_steps is None:
            raise ValueError(f"{key} requires num_training_steps")
    if key != "inverse_sqrt":
        spec["num_training_steps"] = num_training_steps
    return spec | scheduler_kwargs

"""Schedulers driven by a user expression per param group: LambdaLR and MultiplicativeLR."""

from __future__ import annotations

import numpy as np

from rules.errors import Loc, ScheduleError
from service.engine.cancel import checkpoint
from service.engine.expressions import Expression
from service.engine.maps import Maps
from service.engine.nodes import Leaf
from service.engine.types import FloatArray, IntArray
from service.limits import PREFIX_CHECK_LIMIT

_PREFIX_CHUNK = 1 << 20


def first_failure_up_to(
    expression: Expression, last: int, first: int = 0
) -> tuple[int, str] | None:
    """The first argument in ``first..last`` where ``expression`` raises in Python, if any.

    A closed form evaluates only the requested steps, but PyTorch calls the function at
    every step on the way (up to :data:`PREFIX_CHECK_LIMIT`), so those must not raise either.
    """
    end = min(last, PREFIX_CHECK_LIMIT)
    for low in range(first, end + 1, _PREFIX_CHUNK):
        checkpoint()
        arguments = np.arange(low, min(low + _PREFIX_CHUNK, end + 1), dtype=np.int64)
        evaluation = expression.evaluate(arguments)
        if evaluation.first_error is not None:
            index, reason = evaluation.first_error
            return int(arguments[index]), reason
    return None


def check_prefix(expressions: list[Expression], k: IntArray, loc: Loc, field: str) -> None:
    """Raise where PyTorch would fail on a step before or between the requested ``k``."""
    if k.size == 0 or (k[0] == 0 and (k.size == 1 or k[1] - k[0] == 1)):
        return  # the requested steps are the whole prefix: evaluating them checks it
    for expression in dict.fromkeys(expressions):
        failure = first_failure_up_to(expression, int(k[-1]))
        if failure is not None:
            epoch, reason = failure
            raise ScheduleError(
                f"{field} {expression.source!r} fails at epoch {epoch}: {reason}",
                (*loc, field),
                epoch=epoch,
            )


def evaluate_per_group(
    expressions: list[Expression], epochs: IntArray, loc: Loc, field: str
) -> FloatArray:
    """Each group's expression at ``epochs`` (G, n); raises where Python would raise."""
    rows = []
    for group, expression in enumerate(expressions):
        evaluation = expression.evaluate(epochs)
        if evaluation.first_error is not None:
            index, reason = evaluation.first_error
            epoch = int(epochs[index])
            raise ScheduleError(
                f"{field} {expression.source!r} (param group {group}) fails at "
                f"epoch {epoch}: {reason}",
                (*loc, field),
                epoch=epoch,
            )
        rows.append(evaluation.values)
    return np.vstack(rows) if rows else np.empty((0, epochs.shape[0]))


class LambdaLR(Leaf):
    r"""The base lr times a user function of the step: :math:`lr_k = b\,\lambda(k)` (absolute)."""

    def __init__(self, loc: Loc, lr_lambdas: list[Expression]) -> None:
        super().__init__(loc)
        self.lr_lambdas = lr_lambdas

    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        factors = evaluate_per_group(self.lr_lambdas, epochs, self.loc, "lr_lambda")
        return Maps.absolute(self.base_lrs[:, None] * factors)

    def standalone(self, k: IntArray) -> tuple[FloatArray, FloatArray | None] | None:
        check_prefix(self.lr_lambdas, k, self.loc, "lr_lambda")
        return self.get_lr(k, initial=False).b, None


class MultiplicativeLR(Leaf):
    r"""Multiply the current lr by a user function of the step: :math:`lr_k = lr_{k-1}\,\lambda(k)`.

    Not applied at construction (:math:`lr_0 = b`). History-dependent, so a curve costs the
    whole prefix of steps unless every factor is a constant (then :math:`b\,c^k`).
    """

    def __init__(self, loc: Loc, lr_lambdas: list[Expression]) -> None:
        super().__init__(loc)
        self.lr_lambdas = lr_lambdas

    def get_lr(self, epochs: IntArray, initial: bool) -> Maps:
        if initial:
            return Maps.identity(self.optimizer.groups, epochs.shape[0])
        return Maps.factor(evaluate_per_group(self.lr_lambdas, epochs, self.loc, "lr_lambda"))

    @property
    def history_dependent(self) -> bool:
        return any(expression.depends_on_argument for expression in self.lr_lambdas)

    def standalone(self, k: IntArray) -> tuple[FloatArray, FloatArray | None] | None:
        if self.history_dependent:
            return None
        constants = evaluate_per_group(
            self.lr_lambdas, np.ones(1, dtype=np.int64), self.loc, "lr_lambda"
        )
        return self.base_lrs[:, None] * np.power(constants, k.astype(np.float64)), None

"""Schedulers driven by a user expression per param group: LambdaLR and MultiplicativeLR."""

from __future__ import annotations

import numpy as np

from service.engine.errors import Loc, ScheduleError
from service.engine.expressions import Expression
from service.engine.maps import Maps
from service.engine.nodes import Leaf
from service.engine.types import FloatArray, IntArray


def evaluate_per_group(
    expressions: list[Expression], epochs: IntArray, loc: Loc, field: str
) -> FloatArray:
    """Each group's expression at ``epochs`` (G, n); raises where Python would raise."""
    rows = []
    for group, expression in enumerate(expressions):
        evaluation = expression.evaluate(epochs)
        if evaluation.first_error is not None:
            epoch, reason = evaluation.first_error
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

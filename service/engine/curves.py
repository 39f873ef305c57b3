"""The requested steps and the curve computed on them: what the engine is asked and answers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from service.engine.types import FloatArray, IntArray


@dataclass(frozen=True, slots=True)
class StepRange:
    """``range(start, stop, stride)`` of step indices, with its length known in O(1)."""

    start: int
    stop: int
    stride: int

    def __len__(self) -> int:
        return len(range(self.start, self.stop, self.stride))

    @property
    def last(self) -> int:
        """The largest step in the range (``start - stride`` when it is empty)."""
        return self.start + (len(self) - 1) * self.stride

    @property
    def final(self) -> int:
        """The last step of the schedule, ``stop - 1``: PyTorch steps through all of them."""
        return self.stop - 1

    def indices(self) -> IntArray:
        """The steps as an int64 array."""
        return np.arange(self.start, self.stop, self.stride, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Curve:
    """lr per param group and step, shape (groups, n); momentum likewise or ``None``.

    ``warnings`` are continuity warnings of compositions (a segment that does not start
    where the previous one ended), and a note when ``start >= stop`` leaves the range empty:
    reported to the caller, not errors.
    """

    lr: FloatArray
    momentum: FloatArray | None
    warnings: tuple[str, ...] = ()


Float32Array = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Curve32:
    """A :class:`Curve` in float32 (each value float64's, rounded once)."""

    lr: Float32Array
    momentum: Float32Array | None
    warnings: tuple[str, ...] = ()

"""The one exception the engine raises for a configuration PyTorch would reject."""

from __future__ import annotations

Loc = tuple[str | int, ...]


class ScheduleError(ValueError):
    """A schedule cannot be computed as requested; ``loc`` is the offending field's path.

    The path is relative to the object the caller handed in (e.g. ``("schedulers", 1,
    "T_max")`` inside a ``schedule``); the API layer prefixes it and answers 422.
    """

    def __init__(
        self, message: str, loc: Loc = (), epoch: int | None = None, step: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.loc: Loc = loc
        self.epoch = epoch
        """The failing scheduler's own ``last_epoch`` where PyTorch fails, when known."""
        self.step = step
        """The requested step at which PyTorch fails (so fewer steps would avoid it)."""

    def within(self, *prefix: str | int) -> ScheduleError:
        """The same error with ``prefix`` put in front of its path."""
        return ScheduleError(self.message, (*prefix, *self.loc), self.epoch, self.step)

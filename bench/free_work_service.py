"""``python -m bench.free_work_service``: ``python -m service`` with part of a curve's work
made free, to measure what the rest costs (``python -m bench ceiling``). Never a server.

``LRSCHED_BENCH_FREE`` says which part: ``engine`` (building, pricing and computing the
curve: :func:`service.api.curve_job.plan` and ``compute`` answer what they answered the
first time) or ``engine+json`` (:meth:`service.api.curve_job.Job.encoded` answers the first
request's encoded body). Every request is still read, validated, hashed, cached and sent
as usual, but its answer is the first request's: the figures are ceilings, not results.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from service import __main__ as service_main
from service.api import curve_job

FREE = "LRSCHED_BENCH_FREE"


def first_answer(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, answering every call with its first call's result."""
    kept: list[Any] = []

    def answer(*args: Any, **kwargs: Any) -> Any:
        if not kept:
            kept.append(function(*args, **kwargs))
        return kept[0]

    return answer


def make_free(part: str) -> None:
    """Replace ``part``'s functions (see the module doc) in this process."""
    if part == "engine":
        curve_job.plan = first_answer(curve_job.plan)
        curve_job.compute = first_answer(curve_job.compute)  # type: ignore[attr-defined]
    elif part == "engine+json":
        curve_job.Job.encoded = first_answer(curve_job.Job.encoded)  # type: ignore[method-assign]
    else:
        raise SystemExit(f"{FREE}={part!r}: expected engine or engine+json")


if __name__ == "__main__":
    make_free(os.environ.get(FREE, ""))
    service_main.main()

"""Fixed limits of the service: what a request is refused for, when it is not an operator's
setting (those are in ``service.config.Settings``). One block per area.
"""

from __future__ import annotations

# -- training control: the LR range test ----------------------------------------------------

MAX_LR_FINDER_STEPS = 10_000
"""Most steps of one LR range test: its result (every step's lr, loss and smoothed loss) is
read back and suggested on in one request, and fastai's valley rule is quadratic in steps."""

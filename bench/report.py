"""Bench results: one row per figure, with its reference and the ratio, as markdown or JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Row:
    """One measured figure, its reference and how they compare.

    ``ratio`` is chosen by the caller with ``ratio_kind``: ``"faster"`` is
    ``reference / value`` for times (how many times faster than the reference),
    ``"of"`` is ``value / reference`` (our time or rate as a multiple of the reference's).
    ``target`` is the issue's goal in those terms; ``met`` whether it was reached (``None``:
    no target).
    """

    part: str
    figure: str
    value: float
    unit: str
    reference: str = ""
    reference_value: float | None = None
    ratio_kind: str = "of"
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """The comparison with the reference (see the class doc); ``None`` without one."""
        if self.reference_value is None or self.reference_value == 0 or self.value == 0:
            return None
        if self.ratio_kind == "faster":
            return self.reference_value / self.value
        return self.value / self.reference_value

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields, the ratio included."""
        return asdict(self) | {"ratio": self.ratio}


def number(value: float | None, unit: str = "") -> str:
    """A figure rounded for reading (3 significant digits, thousands separated)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 0.01 or magnitude == 0:
        text = f"{value:.2f}"
    else:
        text = f"{value:.2e}"
    return f"{text} {unit}".strip()


def markdown(rows: list[Row]) -> str:
    """The table the README shows."""
    lines = [
        "| part | figure | value | reference | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        reference = row.reference
        if row.reference_value is not None:
            reference = f"{reference}: {number(row.reference_value, row.unit)}"
        ratio = "-" if row.ratio is None else f"{number(row.ratio)}x"
        if row.ratio is not None and row.ratio_kind == "faster":
            ratio += " faster"
        met = {True: "yes", False: "**no**", None: ""}[row.met]
        figure = row.figure + (f" ({row.note})" if row.note else "")
        lines.append(
            f"| {row.part} | {figure} | {number(row.value, row.unit)} | {reference} | "
            f"{ratio} | {row.target} | {met} |"
        )
    return "\n".join(lines)

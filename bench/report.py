"""Plain-text tables (they paste into the README as they are) and the scenario result type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Cell = str | int | float | None


def fmt(value: Cell, digits: int = 2) -> str:
    """A cell as text: floats rounded, thousands separated, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:,.{digits}f}"
    return value


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """A titled table with right-aligned numbers and a rule under the header."""
    text = [[fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        all(isinstance(r[i], int | float) or r[i] is None for r in rows) and bool(rows)
        for i in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [title, line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in text]
    return "\n".join(out)


@dataclass
class Ratio:
    """One line of the final summary: a ratio measured side by side in this run."""

    scenario: str
    name: str
    value: float
    note: str = ""


@dataclass
class ScenarioResult:
    """What a scenario prints (tables, notes), adds to the summary, and saves as JSON."""

    name: str
    tables: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def render(self) -> str:
        parts = ["\n\n".join(self.tables)]
        parts += [f"  * {note}" for note in self.notes]
        return "\n".join(parts)

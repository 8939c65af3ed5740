"""Reading profiles for the benchmarks (``benchmarks.otel_cost``, ``benchmarks.xds``):
cProfile output summed by component (the source files' groups), and callgrind's total."""

from __future__ import annotations

import pstats
import re
from collections.abc import Sequence
from pathlib import Path


def callgrind_instructions(out_file: Path) -> int:
    """The instructions a callgrind run counted (its ``summary:``, else ``totals:``)."""
    text = out_file.read_text(errors="replace")
    match = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(
        r"^totals:\s+(\d+)", text, re.M
    )
    if match is None:
        raise RuntimeError(f"no callgrind summary in {out_file}")
    return int(match.group(1))


def component_of(filename: str, components: Sequence[tuple[str, str]]) -> str:
    """The name of the first ``(pattern, name)`` whose pattern is in ``filename``."""
    for pattern, name in components:
        if pattern in filename:
            return name
    return "builtins (C functions)" if filename == "~" else "other Python"


def by_component(
    stats: pstats.Stats, components: Sequence[tuple[str, str]]
) -> list[tuple[str, int, float]]:
    """``(component, calls, seconds of own time)``, the dearest first."""
    totals: dict[str, list[float]] = {}
    for (filename, _line, _name), row in stats.stats.items():  # type: ignore[attr-defined]
        _cc, ncalls, tottime, _cum, _callers = row
        cell = totals.setdefault(component_of(filename, components), [0, 0.0])
        cell[0] += ncalls
        cell[1] += tottime
    rows = [(name, int(n), t) for name, (n, t) in totals.items()]
    return sorted(rows, key=lambda row: -row[2])

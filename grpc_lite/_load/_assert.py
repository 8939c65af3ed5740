"""``--assert`` thresholds: ``p99<50ms``, ``errors<1%``, ``rps>=1000``, ``avg<=20ms``.

Grammar: ``METRIC OP VALUE`` with OP one of ``< <= > >= ==``. Metrics:

- ``pNN`` / ``pNN.N`` (any percentile, e.g. ``p50``, ``p99.9``), ``avg`` (``mean``),
  ``min`` (``fastest``), ``max`` (``slowest``): durations, VALUE with a unit
  (``ns us ms s``);
- ``errors``: failed calls, VALUE a count (``errors<=5``) or a share (``errors<1%``);
- ``rps``: calls per second; ``count``: calls tallied.

Several thresholds: repeat ``--assert`` or separate them with commas.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._cli_shared import CliError
from ._histogram import new_hdr

__all__ = ["Threshold", "check", "parse_thresholds"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
}
_EXPR = re.compile(r"^\s*([A-Za-z][A-Za-z0-9.]*)\s*(<=|>=|==|<|>)\s*([0-9.]+)\s*([a-z%]*)\s*$")
_UNITS = {"ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}
_DURATION_ALIASES = {"avg": "avg", "mean": "avg", "min": "min", "fastest": "min", "max": "max"}
_DURATION_ALIASES["slowest"] = "max"


@dataclass(frozen=True, slots=True)
class Threshold:
    text: str
    metric: str  # pNN, avg, min, max, errors, errors%, rps, count
    op: str
    value: float  # ns for durations

    def describe(self, actual: float) -> str:
        if self.metric.startswith("p") or self.metric in ("avg", "min", "max"):
            shown = f"{actual / 1e6:.3f}ms"
        elif self.metric == "errors%":
            shown = f"{actual:.3f}%"
        else:
            shown = f"{actual:g}"
        return f"{self.text} (measured {shown})"


def parse_thresholds(texts: list[str]) -> list[Threshold]:
    out = []
    for text in texts:
        for part in text.split(","):
            if part.strip():
                out.append(_parse(part.strip()))
    return out


def _parse(text: str) -> Threshold:
    m = _EXPR.match(text)
    if m is None:
        raise CliError(
            f"bad --assert {text!r}: expected METRIC OP VALUE, e.g. p99<50ms, errors<1%, rps>=100"
        )
    metric, op, number, unit = m.groups()
    try:
        value = float(number)
    except ValueError:
        raise CliError(f"bad --assert {text!r}: {number!r} is not a number") from None
    metric = metric.lower()
    if re.fullmatch(r"p\d+(\.\d+)?", metric):
        pct = float(metric[1:])
        if not 0 < pct <= 100:
            raise CliError(f"bad --assert {text!r}: percentile must be in (0, 100]")
        kind = "duration"
    elif metric in _DURATION_ALIASES:
        metric = _DURATION_ALIASES[metric]
        kind = "duration"
    elif metric == "errors":
        kind = "errors"
    elif metric in ("rps", "count"):
        kind = "number"
    else:
        raise CliError(
            f"bad --assert {text!r}: unknown metric {metric!r} "
            "(pNN, avg, min, max, errors, rps, count)"
        )
    if kind == "duration":
        if unit not in _UNITS:
            raise CliError(f"bad --assert {text!r}: a duration needs a unit (ns, us, ms, s)")
        value *= _UNITS[unit]
    elif kind == "errors":
        if unit == "%":
            metric = "errors%"
        elif unit:
            raise CliError(f"bad --assert {text!r}: errors take a count or a percentage")
    elif unit:
        raise CliError(f"bad --assert {text!r}: {metric} takes a plain number")
    return Threshold(text, metric, op, value)


def _measure(t: Threshold, report: dict[str, Any]) -> float:
    errors = sum((report.get("errorDistribution") or {}).values())
    if t.metric == "errors":
        return float(errors)
    if t.metric == "errors%":
        return 100.0 * errors / report["count"] if report["count"] else 0.0
    if t.metric == "rps":
        return float(report["rps"])
    if t.metric == "count":
        return float(report["count"])
    if t.metric == "avg":
        return float(report["average"])
    if t.metric == "min":
        return float(report["fastest"])
    if t.metric == "max":
        return float(report["slowest"])
    encoded = report.get("grpcLite", {}).get("hdrHistogram")
    if not encoded:
        return 0.0
    hist = new_hdr()
    hist.decode_and_add(encoded)
    value = float(hist.get_value_at_percentile(float(t.metric[1:])))
    slowest = float(report["slowest"])
    return min(value, slowest) if slowest else value


def check(thresholds: list[Threshold], report: dict[str, Any]) -> list[str]:
    """The thresholds broken by ``report``, each described with the measured value."""
    broken = []
    for t in thresholds:
        actual = _measure(t, report)
        if not _OPS[t.op](actual, t.value):
            broken.append(t.describe(actual))
    return broken

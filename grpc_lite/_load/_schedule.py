"""Load and concurrency schedules (ghz's ``const|step|line``), as pure functions of time.

A :class:`RateSchedule` is a piecewise-constant request rate. Request ``i`` (0-based) is
scheduled at the moment the cumulative count of requests reaches ``i``: the open model
sends it then, whatever happened to earlier requests, and its latency is measured from
that moment (no coordinated omission). :meth:`RateSchedule.time_of` inverts the
cumulative count; it is exact for every schedule (no drift from summing intervals), so
N processes that each take every N-th request together send exactly the global schedule.

A :class:`ConcurrencySchedule` is the number of workers over time (closed model: each
worker makes one call after another; open model: calls in flight at most).

Times are seconds from the start of the run. Nothing here reads a clock.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

__all__ = ["ConcurrencySchedule", "RateSchedule", "Segment"]


@dataclass(frozen=True, slots=True)
class Segment:
    """``rate`` per second from ``start`` (seconds) until the next segment's start."""

    start: float
    rate: float


def _steps(
    kind: str,
    start: float,
    step: float,
    end: float,
    step_duration: float,
    max_duration: float,
    *,
    what: str,
) -> list[Segment]:
    """The segments of a ``const``, ``step`` or ``line`` schedule (ghz's semantics).

    ``step``: ``start`` for ``step_duration``, then ``start + step``, ... until ``end`` is
    reached (then ``end`` from there on) or ``max_duration`` has passed (then the value at
    that moment from there on). ``line`` is ``step`` with one-second steps and ``step``
    as the slope. A value never goes below zero.
    """
    if kind == "const":
        return [Segment(0.0, max(0.0, start))]
    if kind == "line":
        step_duration = 1.0
    elif kind != "step":
        raise ValueError(f"unknown {what} schedule {kind!r} (const, step or line)")
    if step == 0:
        raise ValueError(f"a {kind} {what} schedule needs a non-zero step")
    if step_duration <= 0:
        raise ValueError(f"a step {what} schedule needs a positive step duration")
    if end == 0 and max_duration <= 0:
        raise ValueError(f"a {kind} {what} schedule needs an end value or a max duration")
    if end and (end - start) * step < 0:
        raise ValueError(
            f"the {what} schedule steps by {step:g} from {start:g} and never reaches {end:g}"
        )
    segments: list[Segment] = []
    value = start
    t = 0.0
    while True:
        if end and ((step > 0 and value >= end) or (step < 0 and value <= end)):
            segments.append(Segment(t, max(0.0, end)))
            break
        if max_duration > 0 and t >= max_duration - 1e-12:
            segments.append(Segment(t, max(0.0, value)))
            break
        segments.append(Segment(t, max(0.0, value)))
        if value <= 0 and step < 0:
            break
        t += step_duration
        value += step
        if len(segments) > 1_000_000:
            raise ValueError(f"the {what} schedule has too many steps")
    return segments


class RateSchedule:
    """Requests per second over time; ``time_of(i)`` is when request ``i`` is due."""

    def __init__(self, segments: list[Segment]) -> None:
        if not segments or segments[0].start != 0.0:
            raise ValueError("a rate schedule starts at 0")
        self.segments = segments
        # Cumulative requests at each segment's start.
        self._base: list[float] = [0.0]
        for prev, seg in itertools.pairwise(segments):
            self._base.append(self._base[-1] + prev.rate * (seg.start - prev.start))
        self._cursor = 0

    @classmethod
    def build(
        cls,
        kind: str,
        *,
        rps: float = 0.0,
        start: float = 0.0,
        step: float = 0.0,
        end: float = 0.0,
        step_duration: float = 0.0,
        max_duration: float = 0.0,
    ) -> RateSchedule:
        if kind == "const":
            if rps <= 0:
                raise ValueError("a constant rate must be positive")
            return cls([Segment(0.0, rps)])
        if start <= 0:
            raise ValueError(f"a {kind} load schedule needs --load-start > 0")
        return cls(_steps(kind, start, step, end, step_duration, max_duration, what="load"))

    def rate_at(self, t: float) -> float:
        rate = self.segments[0].rate
        for seg in self.segments:
            if seg.start > t:
                break
            rate = seg.rate
        return rate

    def count_at(self, t: float) -> float:
        """Requests due in ``[0, t)`` (a real number: floor it for a count)."""
        if t <= 0:
            return 0.0
        k = 0
        for j, seg in enumerate(self.segments):
            if seg.start > t:
                break
            k = j
        seg = self.segments[k]
        return self._base[k] + seg.rate * (t - seg.start)

    def time_of(self, i: int) -> float:
        """When request ``i`` (0-based) is due; ``inf`` if never (the rate fell to zero).

        Amortised O(1) when called with increasing ``i`` (as the workers do).
        """
        target = float(i)
        segs = self.segments
        base = self._base
        k = self._cursor
        if k and base[k] > target:
            k = 0  # a smaller i than before: search from the start
        while k + 1 < len(segs) and base[k + 1] <= target:
            k += 1
        self._cursor = k
        seg = segs[k]
        if seg.rate <= 0:
            # Zero rate: the next segment with a rate takes it, or never.
            for j in range(k + 1, len(segs)):
                if segs[j].rate > 0:
                    return segs[j].start
            return math.inf
        return seg.start + (target - base[k]) / seg.rate

    def rate_here(self) -> float:
        """The rate of the segment the last :meth:`time_of` landed in."""
        return self.segments[self._cursor].rate

    def final_rate(self) -> float:
        return self.segments[-1].rate


class ConcurrencySchedule:
    """Workers over time: ``value_at(t)``; ``changes()`` lists ``(t, workers)``."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = [Segment(s.start, float(int(s.rate))) for s in segments]

    @classmethod
    def build(
        cls,
        kind: str,
        *,
        concurrency: int = 1,
        start: float = 0.0,
        step: float = 1.0,
        end: float = 0.0,
        step_duration: float = 0.0,
        max_duration: float = 0.0,
    ) -> ConcurrencySchedule:
        if kind == "const":
            if concurrency < 1:
                raise ValueError("concurrency must be at least 1")
            return cls([Segment(0.0, concurrency)])
        if start < 1:
            raise ValueError(f"a {kind} concurrency schedule needs --concurrency-start >= 1")
        return cls(_steps(kind, start, step, end, step_duration, max_duration, what="concurrency"))

    def value_at(self, t: float) -> int:
        value = self.segments[0].rate
        for seg in self.segments:
            if seg.start > t:
                break
            value = seg.rate
        return int(value)

    def changes(self) -> list[tuple[float, int]]:
        """``(time, workers)`` at 0 and at each change."""
        out: list[tuple[float, int]] = []
        for seg in self.segments:
            if not out or int(seg.rate) != out[-1][1]:
                out.append((seg.start, int(seg.rate)))
        return out

    def maximum(self) -> int:
        return max(int(s.rate) for s in self.segments)

    def share(self, total: int, shard: int, shards: int) -> int:
        """Shard ``shard``'s part of ``total`` workers (the parts add up to ``total``)."""
        return total // shards + (1 if shard < total % shards else 0)

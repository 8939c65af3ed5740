"""Latency recording into HDR histogram buckets (1 ns to 1 h, 3 significant digits).

The hot path appends raw nanosecond latencies to a list; once a second (and at the end)
:meth:`Recorder.fold` puts them into an exact HDR counts array with the bucket layout of
HdrHistogram (``lowest=1, highest=3600e9, significant figures=3``), computed inline, so a
call costs a list append, not a ``record_value`` (about 1 us in ``hdrhistogram``).
Histograms of several processes are merged exactly by adding counts (``hdrhistogram``'s
standard encoding travels between processes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hdrh.histogram import HdrHistogram

__all__ = ["HIGHEST", "Recorder", "index_of", "new_hdr", "percentile_of_sparse"]

HIGHEST = 3600 * 10**9  # 1 h in ns
_SIG = 3
# HdrHistogram's layout for lowest=1, 3 significant figures: 2048 sub-buckets, half 1024.
_MASK = 2047


def index_of(value: int) -> int:
    """HdrHistogram's counts index of ``value`` (ns) for this layout."""
    b = (value | _MASK).bit_length() - 11
    return (b << 10) + (value >> b)


def value_of(index: int) -> int:
    """The lowest value of bucket ``index`` (the inverse of :func:`index_of`)."""
    b = (index >> 10) - 1
    sub = (index & 1023) + 1024
    if b < 0:
        b, sub = 0, index
    return sub << b


def new_hdr() -> HdrHistogram:
    try:
        from hdrh.histogram import HdrHistogram
    except ImportError as exc:  # pragma: no cover - the load extra is missing
        raise RuntimeError(
            "grpc-lite load needs the 'hdrhistogram' package: pip install 'grpc-lite[load]'"
        ) from exc
    return HdrHistogram(1, HIGHEST, _SIG)


def percentile_of_sparse(counts: dict[int, int], percentile: float) -> int:
    """The value (ns, the bucket's lowest) at ``percentile`` of sparse HDR counts."""
    total = sum(counts.values())
    if total == 0:
        return 0
    target = max(1, -(-total * percentile // 100))
    seen = 0
    for index in sorted(counts):
        seen += counts[index]
        if seen >= target:
            return value_of(index)
    return value_of(max(counts))


class Recorder:
    """OK latencies of one process: the current second's raw values and all-time counts."""

    __slots__ = ("counts", "pending")

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.counts: dict[int, int] = {}

    def fold(self) -> dict[int, int]:
        """Move the pending values into the counts; returns their own sparse counts."""
        values = self.pending
        self.pending = []
        interval: dict[int, int] = {}
        get = interval.get
        for v in values:
            if v < 1:
                v = 1
            elif v > HIGHEST:
                v = HIGHEST
            b = (v | _MASK).bit_length() - 11
            i = (b << 10) + (v >> b)
            interval[i] = get(i, 0) + 1
        counts = self.counts
        for i, c in interval.items():
            counts[i] = counts.get(i, 0) + c
        return interval

    def to_hdr(self) -> HdrHistogram:
        return sparse_to_hdr(self.counts)


def sparse_to_hdr(counts: dict[int, int] | Iterable[tuple[int, int]]) -> HdrHistogram:
    hist = new_hdr()
    items = counts.items() if isinstance(counts, dict) else counts
    for index, count in items:
        if count:
            hist.record_value(value_of(index), count)
    return hist


def hdr_to_sparse(hist: Any) -> dict[int, int]:
    out: dict[int, int] = {}
    for item in hist.get_recorded_iterator():
        out[index_of(item.value_iterated_to)] = item.count_at_value_iterated_to
    return out

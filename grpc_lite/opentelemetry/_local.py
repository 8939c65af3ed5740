"""Histograms aggregated by the plugin and merged into the OpenTelemetry SDK at collection.

A66 records four histogram values per unary call. Through the API, each ``record()`` of the
OpenTelemetry Python SDK builds a ``Measurement``, cleans and copies its attributes, hashes
them and takes two locks: about 7 us, more than a whole grpc_lite RPC. When the provider is
the SDK's ``MeterProvider`` and every reader aggregates the instrument as an explicit-bucket
histogram with the plugin's boundaries (the SDK's default, with A66's advisory boundaries),
the plugin instead counts each value into its own bucket counts, sum, min and max (the same
``bisect_left`` placement the SDK uses) and adds those totals to the SDK's aggregations when
a reader collects. The exported data points are the same as the API's, for cumulative and
delta readers, views that filter attributes or drop the instrument, and the cardinality
limit (the SDK's own ``_get_or_create_aggregation`` places every attribute set).

The totals are written into SDK objects that are not public API (``opentelemetry-sdk`` has
no way to hand it pre-aggregated histograms), so :func:`plan` checks every object it will
touch and falls back to ``Histogram.record`` when anything differs from what this module was
written against (opentelemetry-sdk 1.45), naming the reason. So does a value recorded while a
sampled span is current under the SDK's ``trace_based`` exemplar filter, so exemplars are
kept; an ``always_on`` filter turns it off. ``OpenTelemetryPlugin(local_aggregation=False)``
turns it off too.
"""

from __future__ import annotations

import enum
import logging
import sys
import threading
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import get_current

log = logging.getLogger("grpc_lite")

_get_current_span = trace.get_current_span
_INVALID_SPAN = trace.INVALID_SPAN

# A cell: [attributes, bucket counts, sum, min, max]
_Cell = list[Any]


class Path(enum.IntEnum):
    """Where a LocalHistogram's values go (false only for LOCAL: one test per value)."""

    LOCAL = 0
    """Into the plugin's cells, merged at collection."""
    LOCAL_UNLESS_SAMPLED = 1
    """The same, except a value recorded while a sampled span is current, which goes to
    ``Histogram.record`` for its exemplar (the SDK's ``trace_based`` filter)."""
    SDK = 2
    """All of them to ``Histogram.record`` (a reader that cannot take merges appeared)."""


PATH_TRANSITIONS: dict[Path, frozenset[Path]] = {
    Path.LOCAL: frozenset({Path.SDK}),
    Path.LOCAL_UNLESS_SAMPLED: frozenset({Path.SDK}),
    Path.SDK: frozenset(),
}
_SDK = Path.SDK


def _sdk_internals() -> dict[str, Any] | None:
    """The SDK classes and functions the merge relies on, or None without that SDK."""
    if "opentelemetry.sdk.metrics" not in sys.modules:
        return None  # the provider cannot be the SDK's: nothing imported it
    try:
        from opentelemetry.sdk.metrics._internal import (
            _view_instrument_match as vim_module,
        )
        from opentelemetry.sdk.metrics._internal import aggregation, exemplar, instrument
        from opentelemetry.sdk.metrics._internal.measurement_consumer import (
            SynchronousMeasurementConsumer,
        )
        from opentelemetry.sdk.metrics._internal.metric_reader_storage import (
            MetricReaderStorage,
        )
    except ImportError:
        return None
    return {
        "histogram": instrument._Histogram,
        "consumer": SynchronousMeasurementConsumer,
        "storage": MetricReaderStorage,
        "explicit": aggregation._ExplicitBucketHistogramAggregation,
        "drop": aggregation._DropAggregation,
        "hash": getattr(vim_module, "_hash_attributes", None),
        "always_off": exemplar.AlwaysOffExemplarFilter,
        "trace_based": exemplar.TraceBasedExemplarFilter,
    }


def _span_sampled() -> bool:
    """What the SDK's TraceBasedExemplarFilter asks: is a sampled span current?"""
    context = get_current()
    if not context:
        return False  # an empty context has no span (the common case, at no cost)
    span = _get_current_span(context)
    return span is not _INVALID_SPAN and span.get_span_context().trace_flags.sampled


_STORAGE_ATTRS = ("_get_or_init_view_instrument_match",)
_MATCH_ATTRS = ("_aggregation", "_view", "_lock", "_get_or_create_aggregation")
_AGG_ATTRS = ("_lock", "_value", "_sum", "_min", "_max", "_record_min_max", "_boundaries")


def _match_problem(sdk: dict[str, Any], match: Any, bounds: tuple[float, ...]) -> str | None:
    """Why one reader's view of an instrument cannot take merged totals (None: it can)."""
    if any(not hasattr(match, a) for a in _MATCH_ATTRS):
        return "a view match of an unknown shape"
    template = match._aggregation
    if isinstance(template, sdk["drop"]):
        return None
    if type(template) is not sdk["explicit"] or any(not hasattr(template, a) for a in _AGG_ATTRS):
        return f"a reader aggregates it as {type(template).__name__}"
    if tuple(template._boundaries) != bounds:
        return "a view sets other bucket boundaries"
    keys = getattr(match._view, "_attribute_keys", ())
    if keys is not None and not isinstance(keys, (set, frozenset)):
        return "a view with an unknown attribute filter"
    return None


def _matches(histogram: Any) -> Iterator[Any]:
    for storage in list(histogram._measurement_consumer._reader_storages.values()):
        yield from storage._get_or_init_view_instrument_match(histogram)


def plan(histogram: Any, bounds: Sequence[float]) -> tuple[dict[str, Any] | None, str]:
    """Whether ``histogram``'s values can be aggregated here: (the SDK's internals, "") when
    they can, (None, why not) otherwise."""
    sdk = _sdk_internals()
    if sdk is None:
        return None, "the meter provider is not the OpenTelemetry SDK's"
    if type(histogram) is not sdk["histogram"]:
        return None, f"the instrument is a {type(histogram).__name__}, not the SDK's _Histogram"
    if sdk["hash"] is None:
        return None, "this opentelemetry-sdk has no _hash_attributes"
    consumer: Any = getattr(histogram, "_measurement_consumer", None)
    if type(consumer) is not sdk["consumer"] or not hasattr(consumer, "_reader_storages"):
        return None, "the SDK's measurement consumer is not the one this was written for"
    exemplar_filter = getattr(getattr(consumer, "_sdk_config", None), "exemplar_filter", None)
    if type(exemplar_filter) not in (sdk["always_off"], sdk["trace_based"]):
        return None, f"the exemplar filter is {type(exemplar_filter).__name__}"
    if not callable(getattr(histogram, "_is_enabled", None)):
        return None, "the instrument has no _is_enabled"
    if not consumer._reader_storages:
        return None, "the meter provider has no metric reader"
    for storage in consumer._reader_storages.values():
        if type(storage) is not sdk["storage"] or any(
            not hasattr(storage, a) for a in _STORAGE_ATTRS
        ):
            return None, "a reader storage of an unknown shape"
    bounds_t = tuple(float(b) for b in bounds)
    for match in _matches(histogram):
        problem = _match_problem(sdk, match, bounds_t)
        if problem is not None:
            return None, problem
    sdk["trace_based_filter"] = type(exemplar_filter) is sdk["trace_based"]
    return sdk, ""


class LocalHistogram:
    """One histogram instrument's values since the last collection, per attribute dict.

    ``record(value, attributes)`` has ``Histogram.record``'s signature. ``attributes`` must be
    a dict the caller keeps and does not change (the plugin makes them once per method and
    status): cells are found by its identity.
    """

    __slots__ = ("_bounds", "_cells", "_histogram", "_lock", "_mode", "_sdk", "name")

    def __init__(self, histogram: Any, bounds: Sequence[float], sdk: dict[str, Any]) -> None:
        self._histogram = histogram
        self.name: str = histogram.name
        self._sdk = sdk
        self._bounds = tuple(float(b) for b in bounds)
        self._cells: dict[int, _Cell] = {}
        self._lock = threading.Lock()
        self._mode = Path.LOCAL_UNLESS_SAMPLED if sdk["trace_based_filter"] else Path.LOCAL

    @property
    def path(self) -> Path:
        return self._mode

    def _move(self, new: Path) -> None:
        """The only writer of the path after construction."""
        if new not in PATH_TRANSITIONS[self._mode]:
            raise AssertionError(f"LocalHistogram: invalid move {self._mode.name} -> {new.name}")
        self._mode = new

    def record(self, value: float, attributes: Mapping[str, str]) -> None:
        mode = self._mode
        if mode and (mode is _SDK or _span_sampled()):
            self._histogram.record(value, attributes)
            return
        with self._lock:
            cell = self._cells.get(id(attributes))
            if cell is None or cell[0] is not attributes:
                # The cell holds the dict, so its id cannot be reused while the cell lives.
                cell = self._cells[id(attributes)] = [
                    attributes,
                    [0] * (len(self._bounds) + 1),
                    0,
                    value,
                    value,
                ]
            cell[1][bisect_left(self._bounds, value)] += 1
            cell[2] += value
            if value < cell[3]:
                cell[3] = value
            if value > cell[4]:
                cell[4] = value

    def drain(self) -> list[_Cell]:
        with self._lock:
            cells, self._cells = self._cells, {}
        return list(cells.values())

    def merge(self) -> None:
        """Add the totals since the last merge to every reader's aggregations (called at
        collection, before the readers' storage is collected)."""
        cells = self.drain()
        if not cells or not self._histogram._is_enabled():
            return  # a disabled instrument records nothing (as Histogram.record does)
        sdk = self._sdk
        hash_attributes = sdk["hash"]
        for match in _matches(self._histogram):
            problem = _match_problem(sdk, match, self._bounds)
            if problem is not None:
                # Only a reader added after the plugin was made can get here.
                log.warning(
                    "grpc_lite: %s: %s; its values are recorded through the API from now on",
                    self.name,
                    problem,
                )
                if self._mode is not _SDK:
                    self._move(_SDK)
                continue
            if isinstance(match._aggregation, sdk["drop"]):
                continue
            keys = match._view._attribute_keys
            for attributes, counts, total, low, high in cells:
                kept = dict(attributes)
                if keys is not None:
                    kept = {k: v for k, v in kept.items() if k in keys}
                # The view's lock, then the aggregation's: the order the SDK's own
                # record path takes them in.
                with match._lock:
                    aggregation = match._get_or_create_aggregation(hash_attributes(kept), kept)
                    with aggregation._lock:
                        if aggregation._value is None:
                            aggregation._value = [0] * (len(aggregation._boundaries) + 1)
                        into = aggregation._value
                        for i, count in enumerate(counts):
                            if count:
                                into[i] += count
                        aggregation._sum += total
                        if aggregation._record_min_max:
                            aggregation._min = min(aggregation._min, low)
                            aggregation._max = max(aggregation._max, high)

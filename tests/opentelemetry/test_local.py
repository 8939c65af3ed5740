"""Histograms aggregated by the plugin and merged into the SDK at collection (``_local``):
every reader sees exactly the data points that ``Histogram.record`` gives it, and anything
the merge cannot reproduce goes through the API, with the reason."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics._internal.exemplar import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
)
from opentelemetry.sdk.metrics.view import (
    DropAggregation,
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.trace import TracerProvider

from grpc_lite.opentelemetry import OpenTelemetryPlugin
from grpc_lite.opentelemetry import _names as n
from grpc_lite.status import StatusCode

DURATION = "grpc.client.attempt.duration"
SIZE = "grpc.client.attempt.sent_total_compressed_message_size"
A = {"grpc.method": "pkg.S/A", "grpc.target": "dns:///x:1", "grpc.status": "OK"}
B = {"grpc.method": "pkg.S/B", "grpc.target": "dns:///x:1", "grpc.status": "OK"}
C = {"grpc.method": "pkg.S/A", "grpc.target": "dns:///x:1", "grpc.status": "UNAVAILABLE"}
D = {"grpc.method": "pkg.S/C", "grpc.target": "dns:///x:1", "grpc.status": "OK"}
# Exact binary fractions: a sum does not depend on the order of its additions.
DURATIONS = [i / 1024 for i in (0, 1, 3, 7, 64, 200, 1024, 5000, 3, 1)]
SIZES = [0, 10, 1023, 1024, 70_000, 5, 5, 4_000_000_000]

Reader = InMemoryMetricReader
Point = tuple[Any, ...]


def _plugin(readers: Sequence[Reader], local: bool, **provider: Any) -> OpenTelemetryPlugin:
    return OpenTelemetryPlugin(
        meter_provider=MeterProvider(metric_readers=readers, **provider),
        local_aggregation=local,
    )


def _record(plugin: OpenTelemetryPlugin, name: str, values: Sequence[float], attrs: Any) -> None:
    metrics = plugin._metrics
    assert metrics is not None
    record = {DURATION: metrics.attempt_duration, SIZE: metrics.sent_size}[name]
    assert record is not None
    for value in values:
        record(value, attrs)


def _points(reader: Reader) -> dict[str, list[Point]]:
    """Every histogram data point, in full, by metric name."""
    out: dict[str, list[Point]] = {}
    data = reader.get_metrics_data()
    if data is None:
        return out
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    if not isinstance(p, HistogramDataPoint):
                        continue
                    out.setdefault(metric.name, []).append(
                        (
                            tuple(sorted((p.attributes or {}).items())),
                            p.count,
                            p.sum,
                            p.min,
                            p.max,
                            tuple(p.bucket_counts),
                            tuple(p.explicit_bounds),
                            len(p.exemplars),
                        )
                    )
    for points in out.values():
        points.sort()
    return out


def _count(reader: Reader, name: str) -> int:
    """The count of the one data point of ``name`` (any histogram aggregation)."""
    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = [
        m
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
    ]
    (point,) = metric.data.data_points
    count: int = point.count
    return count


Scenario = Callable[[OpenTelemetryPlugin, list[Reader]], list[dict[str, list[Point]]]]


def _same_as_api(make_readers: Callable[[], list[Reader]], scenario: Scenario, **kw: Any) -> Any:
    """Run ``scenario`` with local aggregation and through the API; both see the same."""
    readers = make_readers()
    local = _plugin(readers, True, **kw)
    assert set(local.local_histograms().values()) == {"local"}
    got = scenario(local, readers)
    api_readers = make_readers()
    want = scenario(_plugin(api_readers, False, **kw), api_readers)
    assert got == want
    assert any(points for points in got), "the scenario collected nothing"
    return got


def _two_rounds(plugin: OpenTelemetryPlugin, readers: list[Reader]) -> list[dict[str, Any]]:
    out = []
    _record(plugin, DURATION, DURATIONS, A)
    _record(plugin, DURATION, DURATIONS[:3], C)
    _record(plugin, SIZE, SIZES, A)
    out += [_points(r) for r in readers]
    out += [_points(r) for r in readers]  # nothing new in between
    _record(plugin, DURATION, DURATIONS[3:], A)
    _record(plugin, DURATION, [0.5], B)
    out += [_points(r) for r in readers]
    return out


def test_cumulative_reader_sees_what_the_api_gives_it() -> None:
    got = _same_as_api(lambda: [Reader()], _two_rounds)
    first = dict((p[0], p) for p in got[0][DURATION])
    a = first[tuple(sorted(A.items()))]
    assert a[1:5] == (len(DURATIONS), sum(DURATIONS), min(DURATIONS), max(DURATIONS))
    assert a[6] == n.LATENCY_BUCKETS
    last = dict((p[0], p) for p in got[2][DURATION])
    assert last[tuple(sorted(A.items()))][1] == len(DURATIONS) + len(DURATIONS[3:])


def test_delta_reader_and_a_cumulative_one_side_by_side() -> None:
    def readers() -> list[Reader]:
        return [
            Reader(preferred_temporality={Histogram: AggregationTemporality.DELTA}),
            Reader(),
        ]

    got = _same_as_api(readers, _two_rounds)
    delta_first, _, delta_empty, _, delta_last, _ = got
    assert delta_empty == {}  # a delta reader's interval with no values has no points
    assert {p[0] for p in delta_last[DURATION]} == {
        tuple(sorted(A.items())),
        tuple(sorted(B.items())),
    }
    assert delta_first[DURATION] != delta_last[DURATION]


def test_views_that_filter_attributes_drop_or_rename() -> None:
    views = [
        View(instrument_name=DURATION, attribute_keys={"grpc.status"}),
        View(instrument_name=DURATION, name="renamed.duration"),
        View(instrument_name=SIZE, aggregation=DropAggregation()),
    ]
    got = _same_as_api(lambda: [Reader()], _two_rounds, views=views)
    assert SIZE not in got[0]
    assert [p[0] for p in got[0][DURATION]] == [
        (("grpc.status", "OK"),),
        (("grpc.status", "UNAVAILABLE"),),
    ]
    assert len(got[0]["renamed.duration"]) == 2


def test_the_cardinality_limit_overflows_the_same_way() -> None:
    def scenario(plugin: OpenTelemetryPlugin, readers: list[Reader]) -> list[dict[str, Any]]:
        for attrs in (A, B, C, D):
            _record(plugin, DURATION, DURATIONS, attrs)
        return [_points(r) for r in readers]

    got = _same_as_api(lambda: [Reader(cardinality_limits={Histogram: 2})], scenario)
    assert (("otel.metric.overflow", True),) in [p[0] for p in got[0][DURATION]]


def test_values_recorded_under_a_sampled_span_keep_their_exemplars() -> None:
    tracer = TracerProvider().get_tracer("t")

    def scenario(plugin: OpenTelemetryPlugin, readers: list[Reader]) -> list[dict[str, Any]]:
        _record(plugin, DURATION, DURATIONS[:4], A)
        with tracer.start_as_current_span("app"):
            _record(plugin, DURATION, DURATIONS[4:], A)
        return [_points(r) for r in readers]

    got = _same_as_api(lambda: [Reader()], scenario)
    (point,) = got[0][DURATION]
    assert point[1] == len(DURATIONS) and point[7] > 0


@pytest.mark.parametrize(
    ("why", "kw", "reader_kw"),
    [
        (
            "a reader aggregates it as _ExponentialBucketHistogramAggregation",
            {},
            {"preferred_aggregation": {Histogram: ExponentialBucketHistogramAggregation()}},
        ),
        (
            "a view sets other bucket boundaries",
            {
                "views": [
                    View(
                        instrument_name="*",
                        aggregation=ExplicitBucketHistogramAggregation((1.0, 2.0)),
                    )
                ]
            },
            {},
        ),
        (
            "the exemplar filter is AlwaysOnExemplarFilter",
            {"exemplar_filter": AlwaysOnExemplarFilter()},
            {},
        ),
    ],
)
def test_what_the_merge_cannot_reproduce_goes_through_the_api(
    why: str, kw: dict[str, Any], reader_kw: dict[str, Any]
) -> None:
    reader = Reader(**reader_kw)
    plugin = _plugin([reader], True, **kw)
    assert plugin.local_histograms()[DURATION] == why
    _record(plugin, DURATION, DURATIONS, A)
    assert _count(reader, DURATION) == len(DURATIONS)


def test_the_api_path_is_chosen_for_other_providers_and_on_request() -> None:
    from opentelemetry.metrics import NoOpMeterProvider

    plugin = OpenTelemetryPlugin(meter_provider=NoOpMeterProvider())
    assert "not the SDK's _Histogram" in plugin.local_histograms()[DURATION]
    assert _plugin([Reader()], False).local_histograms()[DURATION] == "local_aggregation=False"
    off = _plugin([Reader()], True, exemplar_filter=AlwaysOffExemplarFilter())
    assert off.local_histograms()[DURATION] == "local"


def test_disabling_attempt_started_keeps_the_merge_hook_but_exports_no_such_metric() -> None:
    reader = Reader()
    plugin = OpenTelemetryPlugin(
        meter_provider=MeterProvider(metric_readers=[reader]),
        disabled_metrics=[n.ATTEMPT_STARTED],
    )
    _record(plugin, DURATION, DURATIONS, A)
    data = reader.get_metrics_data()
    assert data is not None
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert names == {DURATION}


def test_concurrent_threads_lose_no_value() -> None:
    reader = Reader()
    plugin = _plugin([reader], True)
    threads, per_thread = 4, 20_000
    stop = threading.Event()

    def collect_meanwhile() -> None:
        while not stop.is_set():
            reader.get_metrics_data()

    collector = threading.Thread(target=collect_meanwhile)
    collector.start()
    workers = [
        threading.Thread(target=_record, args=(plugin, SIZE, [1] * per_thread, A))
        for _ in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    collector.join()
    (point,) = _points(reader)[SIZE]
    assert point[1] == point[2] == threads * per_thread


def test_a_reader_added_later_that_cannot_merge_switches_to_the_api(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = Reader()
    provider = MeterProvider(metric_readers=[first])
    plugin = OpenTelemetryPlugin(meter_provider=provider)
    _record(plugin, DURATION, DURATIONS, A)
    late = Reader(preferred_aggregation={Histogram: ExponentialBucketHistogramAggregation()})
    late._set_collect_callback(provider._measurement_consumer.collect)  # type: ignore[attr-defined]
    provider._measurement_consumer.add_metric_reader(late)  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING, logger="grpc_lite"):
        first.get_metrics_data()
    assert "a reader aggregates it as _ExponentialBucketHistogramAggregation" in caplog.text
    from grpc_lite.opentelemetry._local import Path

    metrics = plugin._metrics
    assert metrics is not None
    assert next(h for h in metrics.local if h.name == DURATION).path is Path.SDK
    _record(plugin, DURATION, DURATIONS, A)  # now through the API, to both readers
    assert _points(first)[DURATION][0][1] == 2 * len(DURATIONS)
    assert _count(late, DURATION) == len(DURATIONS)


def test_a_sampled_span_is_detected_and_an_unsampled_one_is_not() -> None:
    from grpc_lite.opentelemetry._local import _span_sampled

    assert not _span_sampled()
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("app"):
        assert _span_sampled()
    unsampled = trace.NonRecordingSpan(
        trace.SpanContext(1, 2, is_remote=False, trace_flags=trace.TraceFlags(0))
    )
    with trace.use_span(unsampled):
        assert not _span_sampled()


def test_channels_that_come_and_go_share_their_cells() -> None:
    """Cells are found by the attribute dict itself; channels with the same labels share
    one dict per label set, so 200 channels' calls make one cell, not 200."""
    reader = Reader()
    plugin = _plugin([reader], True)
    metrics = plugin._metrics
    assert metrics is not None
    for _ in range(200):
        channel = plugin.channel_observer("x:1", "dns:///x:1")
        assert channel is not None
        call = channel.method_observer("/pkg.S/A", True).start_call()
        call.start_attempt(False).end(StatusCode.OK, "")
        call.end(StatusCode.OK, "")
    duration = next(h for h in metrics.local if h.name == DURATION)
    assert len(duration._cells) == 1
    (point,) = _points(reader)[DURATION]
    assert point[1] == 200


def test_a_provider_without_readers_records_through_the_api() -> None:
    plugin = OpenTelemetryPlugin(meter_provider=MeterProvider())
    assert plugin.local_histograms()[DURATION] == "the meter provider has no metric reader"


def test_the_path_starts_by_the_exemplar_filter_and_only_moves_to_the_sdk() -> None:
    from grpc_lite.opentelemetry._local import PATH_TRANSITIONS, Path

    def path(plugin: OpenTelemetryPlugin) -> Path:
        metrics = plugin._metrics
        assert metrics is not None
        return next(h for h in metrics.local if h.name == DURATION).path

    assert path(_plugin([Reader()], True)) is Path.LOCAL_UNLESS_SAMPLED  # trace_based
    off = _plugin([Reader()], True, exemplar_filter=AlwaysOffExemplarFilter())
    assert path(off) is Path.LOCAL
    assert PATH_TRANSITIONS[Path.SDK] == frozenset()
    metrics = off._metrics
    assert metrics is not None
    local = metrics.local[0]
    local._move(Path.SDK)
    with pytest.raises(AssertionError, match="invalid move SDK -> LOCAL"):
        local._move(Path.LOCAL)

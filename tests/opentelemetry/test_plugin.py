"""OpenTelemetryPlugin's per-call hooks, driven directly (no channel): exactly what one call,
its retries, hedges and transparent retries record (A66, A96), and that a call leaves no
garbage for the cycle collector."""

from __future__ import annotations

import gc
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)

from grpc_lite.opentelemetry import OpenTelemetryPlugin
from grpc_lite.status import StatusCode

TARGET = "dns:///localhost:1"
METHOD = "pkg.Service/Method"
OK = StatusCode.OK
UNAVAILABLE = StatusCode.UNAVAILABLE


def _setup(**kwargs: Any) -> tuple[InMemoryMetricReader, Any]:
    reader = InMemoryMetricReader()
    plugin = OpenTelemetryPlugin(meter_provider=MeterProvider(metric_readers=[reader]), **kwargs)
    channel = plugin.channel_observer("localhost:1", TARGET)
    assert channel is not None
    return reader, channel.method_observer(f"/{METHOD}", True)


def _points(reader: InMemoryMetricReader) -> dict[str, dict[tuple[tuple[str, Any], ...], Any]]:
    """metric name -> sorted attribute items -> (count, sum) of a histogram, value of a sum."""
    out: dict[str, dict[tuple[tuple[str, Any], ...], Any]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    key = tuple(sorted((p.attributes or {}).items()))
                    if isinstance(p, HistogramDataPoint):
                        out.setdefault(metric.name, {})[key] = (p.count, p.sum)
                    else:
                        assert isinstance(p, NumberDataPoint)
                        out.setdefault(metric.name, {})[key] = p.value
    return out


def _attrs(status: StatusCode | None = None) -> tuple[tuple[str, Any], ...]:
    items = {"grpc.method": METHOD, "grpc.target": TARGET}
    if status is not None:
        items["grpc.status"] = status.name
    return tuple(sorted(items.items()))


def _attempt(call: Any, code: StatusCode, transparent: bool = False, hedge: bool = False) -> None:
    attempt = call.start_attempt(transparent, hedge)
    assert attempt.headers() == ()
    attempt.message_sent(b"\x00\x00\x00\x00\x0a" + bytes(10))
    if code is OK:
        attempt.message_received(7, None)
    attempt.end(code, "")


def test_one_call_one_attempt() -> None:
    reader, method = _setup()
    call = method.start_call()
    _attempt(call, OK)
    call.end(OK, "")
    points = _points(reader)
    ok = _attrs(OK)
    assert points["grpc.client.attempt.started"] == {_attrs(): 1}
    assert points["grpc.client.attempt.duration"][ok][0] == 1
    assert points["grpc.client.attempt.sent_total_compressed_message_size"] == {ok: (1, 10)}
    assert points["grpc.client.attempt.rcvd_total_compressed_message_size"] == {ok: (1, 7)}
    assert points["grpc.client.call.duration"][ok][0] == 1
    # A96: a call without retries, hedges or transparent retries records none of them.
    for name in (
        "grpc.client.call.retries",
        "grpc.client.call.transparent_retries",
        "grpc.client.call.hedges",
        "grpc.client.call.retry_delay",
    ):
        assert name not in points


def test_retries_hedges_and_transparent_retries() -> None:
    reader, method = _setup()
    retried = method.start_call()
    _attempt(retried, UNAVAILABLE)
    _attempt(retried, UNAVAILABLE, transparent=True)
    _attempt(retried, UNAVAILABLE)
    _attempt(retried, OK)
    retried.end(OK, "")
    hedged = method.start_call()
    first = hedged.start_attempt(False)
    second = hedged.start_attempt(False, True)
    second.end(OK, "")
    hedged.end(OK, "")  # ends the attempt still open, with the call's status
    assert first.end(UNAVAILABLE, "") is None  # already ended: ignored
    points = _points(reader)
    assert points["grpc.client.attempt.started"] == {_attrs(): 6}
    assert points["grpc.client.attempt.duration"][_attrs(UNAVAILABLE)][0] == 3
    assert points["grpc.client.attempt.duration"][_attrs(OK)][0] == 3
    assert points["grpc.client.call.duration"][_attrs(OK)][0] == 2
    assert points["grpc.client.call.retries"] == {_attrs(): (1, 2)}
    assert points["grpc.client.call.transparent_retries"] == {_attrs(): (1, 1)}
    assert points["grpc.client.call.hedges"] == {_attrs(): (1, 1)}
    assert points["grpc.client.call.retry_delay"][_attrs()][0] == 2


def test_disabled_metrics_are_not_recorded() -> None:
    reader, method = _setup(
        disabled_metrics=["grpc.client.attempt.duration", "grpc.client.call.duration"]
    )
    call = method.start_call()
    _attempt(call, OK)
    call.end(OK, "")
    points = _points(reader)
    assert "grpc.client.attempt.duration" not in points
    assert "grpc.client.call.duration" not in points
    assert points["grpc.client.attempt.sent_total_compressed_message_size"] == {_attrs(OK): (1, 10)}


def test_a_finished_call_is_freed_by_reference_counting() -> None:
    """The call and attempt tracers leave no reference cycle behind (no cycle-collector work
    per call)."""
    _reader, method = _setup()
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            call = method.start_call()
            _attempt(call, UNAVAILABLE)
            _attempt(call, OK)
            call.end(OK, "")
        del call
        assert gc.collect() == 0
    finally:
        gc.enable()

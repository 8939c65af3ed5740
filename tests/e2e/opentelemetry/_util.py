"""Helpers for the grpc_lite.opentelemetry tests (not collected: no ``test_`` prefix).

``Telemetry`` bundles the SDK's in-memory metric reader and span exporter with a plugin on
them; ``points(name)`` reads one metric's data points, ``metric(name)`` the metric itself
(its unit, and its histogram's bucket boundaries through its points).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from grpc_lite.opentelemetry import OpenTelemetryPlugin

A66_ATTEMPT = (
    "grpc.client.attempt.duration",
    "grpc.client.attempt.sent_total_compressed_message_size",
    "grpc.client.attempt.rcvd_total_compressed_message_size",
)
A96 = (
    "grpc.client.call.retries",
    "grpc.client.call.transparent_retries",
    "grpc.client.call.hedges",
    "grpc.client.call.retry_delay",
)


@dataclass
class Telemetry:
    reader: InMemoryMetricReader = field(default_factory=InMemoryMetricReader)
    exporter: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    # The plugins' histograms: aggregated by the plugin and merged at collection (True),
    # or recorded value by value through Histogram.record (False).
    local_aggregation: bool = True

    def __post_init__(self) -> None:
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def plugin(self, *, tracing: bool = True, **kwargs: Any) -> OpenTelemetryPlugin:
        kwargs.setdefault("local_aggregation", self.local_aggregation)
        plugin = OpenTelemetryPlugin(
            meter_provider=self.meter_provider,
            tracer_provider=self.tracer_provider if tracing else None,
            **kwargs,
        )
        paths = set(plugin.local_histograms().values())
        assert paths <= ({"local"} if kwargs["local_aggregation"] else {"local_aggregation=False"})
        return plugin

    def metrics(self) -> dict[str, Metric]:
        data = self.reader.get_metrics_data()
        found: dict[str, Metric] = {}
        if data is None:
            return found
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                assert sm.scope.name == "grpc-lite"
                for m in sm.metrics:
                    found[m.name] = m
        return found

    def points(self, name: str) -> list[Any]:
        metric = self.metrics().get(name)
        return [] if metric is None else list(metric.data.data_points)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def close(self) -> None:
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()


def attrs(point: Any) -> dict[str, Any]:
    return dict(point.attributes)


def by_status(points: list[Any]) -> dict[str, Any]:
    """Histogram points by their grpc.status."""
    return {p.attributes["grpc.status"]: p for p in points}

"""A Prometheus endpoint for the ``grpc-lite`` command's ``--prometheus-port`` (extra
``grpc-lite[prometheus]``): an SDK MeterProvider with OpenTelemetry's Prometheus reader,
served by prometheus_client on its own thread, and the plugin that records into it."""

from __future__ import annotations

from typing import Any

from .opentelemetry import OpenTelemetryPlugin


class PrometheusEndpoint:
    """``/metrics`` on ``host:port`` with every metric of :attr:`plugin`'s channels.

    ``close()`` stops the server and unregisters the reader (the process may make another).
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        try:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            from opentelemetry.sdk.metrics import MeterProvider
            from prometheus_client import start_http_server
        except ImportError as exc:
            raise RuntimeError(
                "--prometheus-port needs the OpenTelemetry SDK and its Prometheus exporter: "
                "pip install 'grpc-lite[prometheus]'"
            ) from exc
        self._reader = PrometheusMetricReader()
        self._provider = MeterProvider(metric_readers=[self._reader])
        try:
            self._server, self._thread = start_http_server(port, addr=host)
        except OSError:
            self._provider.shutdown()
            raise
        self.port: int = self._server.server_address[1]
        self.host = host
        self.plugin = OpenTelemetryPlugin(meter_provider=self._provider)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        server: Any = self._server
        server.shutdown()
        server.server_close()
        self._thread.join(timeout=5)
        self._provider.shutdown()

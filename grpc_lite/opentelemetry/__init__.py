"""OpenTelemetry metrics and traces for grpc_lite (install ``grpc-lite[otel]``).

Metrics (names, units, attributes and bucket boundaries as the gRFCs give them):

- A66, per attempt: ``grpc.client.attempt.started`` {grpc.method, grpc.target},
  ``grpc.client.attempt.duration``, ``grpc.client.attempt.sent_total_compressed_message_size``,
  ``grpc.client.attempt.rcvd_total_compressed_message_size`` {grpc.method, grpc.target,
  grpc.status}; per call: ``grpc.client.call.duration``. Every retry, hedge and transparent
  retry is an attempt.
- A96, per call with more than one attempt: ``grpc.client.call.retries``,
  ``.transparent_retries``, ``.hedges``, ``.retry_delay`` {grpc.method, grpc.target}.
- A94, per subchannel: ``grpc.subchannel.connection_attempts_succeeded``,
  ``.connection_attempts_failed``, ``.disconnections`` (with ``grpc.disconnect_error``),
  ``.open_connections`` {grpc.target}.
- A78, pick_first's view: ``grpc.lb.pick_first.connection_attempts_succeeded``,
  ``.connection_attempts_failed``, ``.disconnections`` {grpc.target}. (A78 defines no
  round_robin metrics; its WRR ones are for weighted_round_robin, which grpc_lite lacks.)

Traces (A72): a ``Sent.<service>.<method>`` span per call (CLIENT, a child of the current
span), an ``Attempt.<service>.<method>`` child per attempt with ``previous-rpc-attempts`` and
``transparent-retry``, "Outbound message"/"Inbound message" events, A72's status, and the
attempt's context sent to the server through the propagator.

Quick start::

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from grpc_lite.opentelemetry import OpenTelemetryPlugin

    plugin = OpenTelemetryPlugin(meter_provider=MeterProvider(...),
                                 tracer_provider=TracerProvider())
    plugin.register_global()        # or insecure_channel(target, observability=[plugin])
"""

try:
    import opentelemetry.trace as _trace  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by hand
    raise ImportError(
        "grpc_lite.opentelemetry needs the OpenTelemetry API: pip install 'grpc-lite[otel]'"
    ) from exc

from ._instrumentor import GrpcLiteInstrumentor
from ._names import (
    INSTRUMENTS,
    LATENCY_BUCKETS,
    RETRY_BUCKETS,
    SIZE_BUCKETS,
    TRANSPARENT_RETRY_BUCKETS,
)
from ._plugin import OpenTelemetryPlugin
from ._propagation import GrpcTraceBinPropagator

METRIC_NAMES: tuple[str, ...] = tuple(INSTRUMENTS)

__all__ = [
    "LATENCY_BUCKETS",
    "METRIC_NAMES",
    "RETRY_BUCKETS",
    "SIZE_BUCKETS",
    "TRANSPARENT_RETRY_BUCKETS",
    "GrpcLiteInstrumentor",
    "GrpcTraceBinPropagator",
    "OpenTelemetryPlugin",
]

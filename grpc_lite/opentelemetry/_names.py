"""Metric names, units, descriptions and bucket boundaries, as the gRFCs give them.

A66 (per-attempt and per-call metrics, the bucket boundaries), A96 (retries), A94 (subchannel
metrics), A78 (pick_first's). Descriptions are grpc-go's (stats/opentelemetry, clientconn.go).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import _observability as _core

# A66 "Buckets for histograms in default views".
LATENCY_BUCKETS: tuple[float, ...] = (
    0, 0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005,
    0.006, 0.008, 0.01, 0.013, 0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13,
    0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1, 2, 5, 10, 20, 50, 100,
)  # fmt: skip
SIZE_BUCKETS: tuple[float, ...] = (
    0, 1024, 2048, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
    268435456, 1073741824, 4294967296,
)  # fmt: skip
# A96's recommended boundaries.
RETRY_BUCKETS: tuple[float, ...] = (1, 2, 3, 4, 5)
TRANSPARENT_RETRY_BUCKETS: tuple[float, ...] = (1, 2, 3, 4, 5, 10)

# A66
ATTEMPT_STARTED = "grpc.client.attempt.started"
ATTEMPT_DURATION = "grpc.client.attempt.duration"
ATTEMPT_SENT_SIZE = "grpc.client.attempt.sent_total_compressed_message_size"
ATTEMPT_RCVD_SIZE = "grpc.client.attempt.rcvd_total_compressed_message_size"
CALL_DURATION = "grpc.client.call.duration"
# A94, and A78 (pick_first's view; A94 keeps them beside the subchannel ones for a
# transition): recorded by grpc_lite through the channel's MetricsRecorder.
DISCONNECT_ERROR = _core.DISCONNECT_ERROR
PICK_FIRST_ATTEMPTS_FAILED = _core.PICK_FIRST_ATTEMPTS_FAILED
PICK_FIRST_ATTEMPTS_SUCCEEDED = _core.PICK_FIRST_ATTEMPTS_SUCCEEDED
PICK_FIRST_DISCONNECTIONS = _core.PICK_FIRST_DISCONNECTIONS
SUBCHANNEL_ATTEMPTS_FAILED = _core.SUBCHANNEL_ATTEMPTS_FAILED
SUBCHANNEL_ATTEMPTS_SUCCEEDED = _core.SUBCHANNEL_ATTEMPTS_SUCCEEDED
SUBCHANNEL_DISCONNECTIONS = _core.SUBCHANNEL_DISCONNECTIONS
SUBCHANNEL_OPEN_CONNECTIONS = _core.SUBCHANNEL_OPEN_CONNECTIONS
# A96
CALL_RETRIES = "grpc.client.call.retries"
CALL_TRANSPARENT_RETRIES = "grpc.client.call.transparent_retries"
CALL_HEDGES = "grpc.client.call.hedges"
CALL_RETRY_DELAY = "grpc.client.call.retry_delay"

# Attribute (label) names.
METHOD = "grpc.method"
TARGET = "grpc.target"
STATUS = "grpc.status"
OTHER = "other"


@dataclass(frozen=True, slots=True)
class Instrument:
    name: str
    kind: str  # "counter", "updown" or "histogram"
    unit: str
    description: str
    buckets: tuple[float, ...] | None = None


INSTRUMENTS: dict[str, Instrument] = {
    i.name: i
    for i in (
        Instrument(
            ATTEMPT_STARTED, "counter", "{attempt}", "Number of client call attempts started."
        ),
        Instrument(
            ATTEMPT_DURATION,
            "histogram",
            "s",
            "End-to-end time taken to complete a client call attempt.",
            LATENCY_BUCKETS,
        ),
        Instrument(
            ATTEMPT_SENT_SIZE,
            "histogram",
            "By",
            "Compressed message bytes sent per client call attempt.",
            SIZE_BUCKETS,
        ),
        Instrument(
            ATTEMPT_RCVD_SIZE,
            "histogram",
            "By",
            "Compressed message bytes received per call attempt.",
            SIZE_BUCKETS,
        ),
        Instrument(
            CALL_DURATION,
            "histogram",
            "s",
            "Time taken by gRPC to complete an RPC from application's perspective.",
            LATENCY_BUCKETS,
        ),
        Instrument(
            CALL_RETRIES,
            "histogram",
            "{retry}",
            "Number of retries during the client call. If there were no retries, 0 is not "
            "reported.",
            RETRY_BUCKETS,
        ),
        Instrument(
            CALL_TRANSPARENT_RETRIES,
            "histogram",
            "{transparent_retry}",
            "Number of transparent retries during the client call. If there were no "
            "transparent retries, 0 is not reported.",
            TRANSPARENT_RETRY_BUCKETS,
        ),
        Instrument(
            CALL_HEDGES,
            "histogram",
            "{hedge}",
            "Number of hedges during the client call. If there were no hedges, 0 is not reported.",
            RETRY_BUCKETS,
        ),
        Instrument(
            CALL_RETRY_DELAY,
            "histogram",
            "s",
            "Total time of delay while there is no active attempt during the client call.",
            LATENCY_BUCKETS,
        ),
        Instrument(
            SUBCHANNEL_DISCONNECTIONS,
            "counter",
            "{disconnection}",
            "Number of times the selected subchannel becomes disconnected.",
        ),
        Instrument(
            SUBCHANNEL_ATTEMPTS_SUCCEEDED,
            "counter",
            "{attempt}",
            "Number of successful connection attempts.",
        ),
        Instrument(
            SUBCHANNEL_ATTEMPTS_FAILED,
            "counter",
            "{attempt}",
            "Number of failed connection attempts.",
        ),
        Instrument(
            SUBCHANNEL_OPEN_CONNECTIONS,
            "updown",
            "{connection}",
            "Number of open connections.",
        ),
        Instrument(
            PICK_FIRST_DISCONNECTIONS,
            "counter",
            "{disconnection}",
            "Number of times the selected subchannel becomes disconnected.",
        ),
        Instrument(
            PICK_FIRST_ATTEMPTS_SUCCEEDED,
            "counter",
            "{attempt}",
            "Number of successful connection attempts.",
        ),
        Instrument(
            PICK_FIRST_ATTEMPTS_FAILED,
            "counter",
            "{attempt}",
            "Number of failed connection attempts.",
        ),
    )
}

# Recorded through a channel's MetricsRecorder (not per call).
NON_PER_CALL = frozenset(
    {
        SUBCHANNEL_DISCONNECTIONS,
        SUBCHANNEL_ATTEMPTS_SUCCEEDED,
        SUBCHANNEL_ATTEMPTS_FAILED,
        SUBCHANNEL_OPEN_CONNECTIONS,
        PICK_FIRST_DISCONNECTIONS,
        PICK_FIRST_ATTEMPTS_SUCCEEDED,
        PICK_FIRST_ATTEMPTS_FAILED,
    }
)

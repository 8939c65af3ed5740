"""What one load run does, as plain picklable data (shared by every worker process)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._describe import MethodInfo

__all__ = ["GO_CODE_NAMES", "RunSpec", "ScheduleSpec", "TlsSpec"]

# grpc-go's codes.Code names: ghz's statusCodeDistribution keys.
GO_CODE_NAMES = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
]


@dataclass(frozen=True, slots=True)
class TlsSpec:
    roots: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    skip_verify: bool = False


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """``const|step|line`` with ghz's start/step/end/step-duration/max-duration."""

    kind: str = "const"
    value: float = 0.0  # const: rps or concurrency
    start: float = 0.0
    step: float = 0.0
    end: float = 0.0
    step_duration: float = 0.0
    max_duration: float = 0.0


@dataclass(frozen=True, slots=True)
class RunSpec:
    target: str
    method: MethodInfo
    data: str = "{}"
    metadata: str | None = None
    tls: TlsSpec | None = None
    options: tuple[tuple[str, Any], ...] = ()
    service_config: dict[str, Any] | None = None
    connections: int = 1
    total: int | None = 200  # -n; None with -z
    duration: float | None = None  # -z
    max_duration: float | None = None  # -x
    timeout: float | None = 20.0  # -t; None = no deadline
    rate: ScheduleSpec | None = None  # None: closed model (no --rps, no load schedule)
    concurrency: ScheduleSpec = field(default_factory=lambda: ScheduleSpec("const", 50))
    stream_interval: float = 0.0
    stream_call_duration: float = 0.0
    stream_call_count: int = 0
    skip_first: int = 0
    count_errors: bool = False
    details: bool = False  # keep every call (csv, influx-details)
    duration_stop: str = "wait"  # close | wait | ignore
    connect_timeout: float = 10.0
    interval: float = 1.0  # seconds between progress ticks
    busy_poll: bool = False  # --busy-poll: the workers' loops poll instead of blocking

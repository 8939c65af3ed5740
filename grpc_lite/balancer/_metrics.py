"""A balancer's metrics recorder (A79; grpc-go: ``balancer.ClientConn.MetricsRecorder``).

A `BalancerChannel` may have a ``metrics_recorder`` attribute: the channel's, when an
observability plugin (``grpc_lite.opentelemetry``) is on, else None. The channel's own
balancer channel has it, and the helpers' child channels (`GracefulSwitchBalancer`,
`ChildBalancers`) pass their parent's on. A balancer reads it with
:func:`metrics_recorder`, which also takes a channel without the attribute (a user-written
wrapper, a test fake): no metrics then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._observability import MetricsRecorder


def metrics_recorder(channel: object) -> MetricsRecorder | None:
    """``channel.metrics_recorder``, or None when it has none."""
    recorder: MetricsRecorder | None = getattr(channel, "metrics_recorder", None)
    return recorder

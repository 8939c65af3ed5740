"""Observability hooks: what a stats or tracing plugin sees of channels, calls and attempts.

No OpenTelemetry here: ``grpc_lite.opentelemetry`` is one plugin of this shape (A66's plugin
architecture, whose names are used here: a per-call ``CallTracer`` that creates one
``AttemptTracer`` per attempt; A79's non-per-call recorder for balancer and subchannel
metrics).

- A *plugin* (``ObservabilityPlugin``) is registered for every channel created afterwards
  (:func:`register_global`) or handed to one channel (``observability=[plugin]``). When a
  channel is created, each plugin in force gives it a ``ChannelObserver`` (or None); a channel
  without any keeps None and pays nothing else.
- A ``ChannelObserver`` gives a ``MethodObserver`` per method (once per multi-callable), which
  starts a ``CallTracer`` per call (``start_call``); it also owns the channel's
  ``MetricsRecorder`` (subchannel connection metrics, pick_first's).
- A ``CallTracer`` hears of each attempt as it starts, before its pick
  (``start_attempt``), of a delayed name resolution, and of the call's end.
- An ``AttemptTracer`` gives the headers to send with its attempt (trace propagation), hears
  of a delayed pick, every message sent and received (``_transport.TracedClientStream``
  reports them), and the attempt's end.

Every hook is called on the channel's event loop and must not raise: a plugin catches its own
errors (``grpc_lite.opentelemetry`` logs them).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .status import StatusCode

__all__ = [
    "AttemptTracer",
    "CallTracer",
    "ChannelObserver",
    "MethodObserver",
    "MetricsRecorder",
    "ObservabilityPlugin",
    "channel_observer",
    "deregister_global",
    "global_plugins",
    "register_global",
]


# The non-per-call metrics grpc_lite records through a MetricsRecorder.
SUBCHANNEL_DISCONNECTIONS = "grpc.subchannel.disconnections"  # A94
SUBCHANNEL_ATTEMPTS_SUCCEEDED = "grpc.subchannel.connection_attempts_succeeded"
SUBCHANNEL_ATTEMPTS_FAILED = "grpc.subchannel.connection_attempts_failed"
SUBCHANNEL_OPEN_CONNECTIONS = "grpc.subchannel.open_connections"
PICK_FIRST_DISCONNECTIONS = "grpc.lb.pick_first.disconnections"  # A78
PICK_FIRST_ATTEMPTS_SUCCEEDED = "grpc.lb.pick_first.connection_attempts_succeeded"
PICK_FIRST_ATTEMPTS_FAILED = "grpc.lb.pick_first.connection_attempts_failed"
DISCONNECT_ERROR = "grpc.disconnect_error"


class MetricsRecorder(Protocol):
    """Records a channel's non-per-call metrics (A79; grpc-go: estats.MetricsRecorder).

    ``name`` is a metric the plugin knows (``grpc.subchannel.*``, ``grpc.lb.pick_first.*``);
    ``labels`` are its labels besides ``grpc.target``, which the recorder adds. A name the
    plugin does not know, or has disabled, is ignored.
    """

    def add(self, name: str, value: int, labels: Mapping[str, str] | None = None) -> None: ...


class AttemptTracer(Protocol):
    """One attempt of a call (A66's CallAttemptTracer)."""

    def headers(self) -> Sequence[tuple[str, str]]:
        """Header fields to send with this attempt, already in wire form (a ``-bin``
        value base64-encoded): the trace context. Asked once, when its stream is created."""
        ...

    def pick_delayed(self) -> None:
        """The attempt waited for a pick and now has its transport (A72's
        "Delayed LB pick complete")."""
        ...

    def message_sent(self, frame: bytes) -> None:
        """One message framed as it is sent (5-byte prefix, payload compressed when the
        prefix's flag is 1)."""
        ...

    def message_received(self, size: int, compressed_size: int | None) -> None:
        """One message received: its size, and its size on the wire when it came
        compressed (None otherwise)."""
        ...

    def end(self, code: StatusCode, details: str) -> None:
        """The attempt is over (its status), once."""
        ...


class CallTracer(Protocol):
    """One call (A66's CallTracer); created when the call starts."""

    def start_attempt(self, transparent: bool, hedge: bool = False) -> AttemptTracer:
        """An attempt starts (before its pick). ``transparent``: a transparent retry (A6);
        ``hedge``: a hedged attempt (any but the first of a call with a hedging policy)."""
        ...

    def resolution_delayed(self) -> None:
        """The call waited for the channel's first resolver result, which has now come
        (A72's "Delayed name resolution complete")."""
        ...

    def end(self, code: StatusCode, details: str) -> None:
        """The call is over (its final status), once; every attempt has ended before."""
        ...


class MethodObserver(Protocol):
    """A plugin's view of one method of one channel (what stays the same for its calls)."""

    def start_call(self) -> CallTracer:
        """A call starts (before its request is serialized)."""
        ...


class ChannelObserver(Protocol):
    """A plugin's view of one channel."""

    @property
    def metrics_recorder(self) -> MetricsRecorder | None: ...

    def method_observer(self, path: str, registered: bool) -> MethodObserver | None:
        """For the calls on ``path`` (the full path, "/pkg.Service/Method");
        ``registered``: a method the application declared (a generated or
        ``grpc_lite.Stub`` stub), not one named at run time."""
        ...


class ObservabilityPlugin(Protocol):
    """What ``observability=[...]`` and :func:`register_global` take."""

    def channel_observer(self, target: str, canonical_target: str) -> ChannelObserver | None:
        """The observer for a new channel (``target`` as given; ``canonical_target`` with
        its scheme, as ``grpc.target`` wants it), or None to leave it alone."""
        ...


# ---------------------------------------------------------------------------------- registry

_lock = threading.Lock()
_global: tuple[ObservabilityPlugin, ...] = ()


def register_global(plugin: ObservabilityPlugin) -> None:
    """Instrument every channel created from now on with ``plugin`` (idempotent)."""
    global _global
    with _lock:
        if not any(p is plugin for p in _global):
            _global = (*_global, plugin)


def deregister_global(plugin: ObservabilityPlugin) -> None:
    """Channels created from now on are no longer instrumented by ``plugin``; channels
    already created keep it (grpc-java and grpcio-observability behave alike)."""
    global _global
    with _lock:
        _global = tuple(p for p in _global if p is not plugin)


def global_plugins() -> tuple[ObservabilityPlugin, ...]:
    return _global


def channel_observer(
    explicit: Iterable[Any] | None, target: str, canonical_target: str
) -> ChannelObserver | None:
    """The observer of a new channel: the global plugins' and ``explicit`` ones' (each plugin
    once), or None when there are none."""
    plugins: list[ObservabilityPlugin] = list(_global)
    if explicit is not None:
        if isinstance(explicit, (str, bytes)) or not isinstance(explicit, Iterable):
            raise TypeError("observability must be a list of plugins")
        for plugin in explicit:
            if not callable(getattr(plugin, "channel_observer", None)):
                raise TypeError(
                    f"observability: {plugin!r} is not an observability plugin "
                    "(for example grpc_lite.opentelemetry.OpenTelemetryPlugin)"
                )
            if not any(p is plugin for p in plugins):
                plugins.append(plugin)
    observers = [
        o for p in plugins if (o := p.channel_observer(target, canonical_target)) is not None
    ]
    if not observers:
        return None
    if len(observers) == 1:
        return observers[0]
    return _ChannelObservers(observers)


# ------------------------------------------------------------------ several plugins at once


class _Recorders:
    __slots__ = ("_recorders",)

    def __init__(self, recorders: list[MetricsRecorder]) -> None:
        self._recorders = recorders

    def add(self, name: str, value: int, labels: Mapping[str, str] | None = None) -> None:
        for r in self._recorders:
            r.add(name, value, labels)


class _ChannelObservers:
    __slots__ = ("_observers", "metrics_recorder")

    def __init__(self, observers: list[ChannelObserver]) -> None:
        self._observers = observers
        recorders = [r for o in observers if (r := o.metrics_recorder) is not None]
        self.metrics_recorder: MetricsRecorder | None = (
            None
            if not recorders
            else recorders[0]
            if len(recorders) == 1
            else _Recorders(recorders)
        )

    def method_observer(self, path: str, registered: bool) -> MethodObserver | None:
        found = [m for o in self._observers if (m := o.method_observer(path, registered))]
        if not found:
            return None
        return found[0] if len(found) == 1 else _MethodObservers(found)


class _MethodObservers:
    __slots__ = ("_observers",)

    def __init__(self, observers: list[MethodObserver]) -> None:
        self._observers = observers

    def start_call(self) -> CallTracer:
        return _CallTracers([o.start_call() for o in self._observers])


class _CallTracers:
    __slots__ = ("_tracers",)

    def __init__(self, tracers: list[CallTracer]) -> None:
        self._tracers = tracers

    def start_attempt(self, transparent: bool, hedge: bool = False) -> AttemptTracer:
        return _AttemptTracers([t.start_attempt(transparent, hedge) for t in self._tracers])

    def resolution_delayed(self) -> None:
        for t in self._tracers:
            t.resolution_delayed()

    def end(self, code: StatusCode, details: str) -> None:
        for t in self._tracers:
            t.end(code, details)


class _AttemptTracers:
    __slots__ = ("_tracers",)

    def __init__(self, tracers: list[AttemptTracer]) -> None:
        self._tracers = tracers

    def headers(self) -> Sequence[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for t in self._tracers:
            for field in t.headers():
                if field not in out:  # two plugins with one propagator send it once
                    out.append(field)
        return out

    def pick_delayed(self) -> None:
        for t in self._tracers:
            t.pick_delayed()

    def message_sent(self, frame: bytes) -> None:
        for t in self._tracers:
            t.message_sent(frame)

    def message_received(self, size: int, compressed_size: int | None) -> None:
        for t in self._tracers:
            t.message_received(size, compressed_size)

    def end(self, code: StatusCode, details: str) -> None:
        for t in self._tracers:
            t.end(code, details)

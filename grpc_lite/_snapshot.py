"""Introspection values: trace events and channel/subchannel snapshots (L0).

Frozen dataclasses, safe to hand to users and to serialise (``to_dict``).
They never carry credentials: only addresses, states and error texts.
"""

import dataclasses
import enum
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._connectivity import ConnectivityState


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceEvent:
    """One thing that happened: a state change, a resolver result, a new picker, ..."""

    timestamp: float
    subject: str
    description: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SubchannelSnapshot:
    address: str
    state: ConnectivityState
    health: str | None
    connect_attempts: int
    current_backoff: float | None
    next_attempt_at: float | None
    last_error: str | None
    calls_started: int
    calls_succeeded: int
    calls_failed: int
    proxy: str | None = None
    """The HTTP CONNECT proxy's ``host:port`` when the subchannel connects through one
    (``address`` then reads "host:port via proxy proxyhost:port")."""
    attempts_avoided: int = 0
    """Retries and hedges of calls that had an attempt on this subchannel and were sent to
    another one (``avoidPreviousHosts``)."""
    attributes: dict[str, str] = field(default_factory=dict)
    """The attributes of the subchannel's address (the one connected, else its first), each
    value as ``str()``: where a balancer placed it (xDS: ``xds.cluster``, ``xds.locality``,
    ``xds.priority``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelSnapshot:
    target: str
    state: ConnectivityState
    lb_policy: str
    addresses: list[str]
    service_config: str | None
    resolver_error: str | None
    subchannels: list[SubchannelSnapshot]
    calls_started: int
    calls_succeeded: int
    calls_failed: int
    events: list[TraceEvent] = field(default_factory=list)
    attempts_on_new_hosts: int = 0
    """Retries, hedges and transparent retries started on a subchannel their call had not
    used before (``avoidPreviousHosts``)."""
    attempts_on_previous_hosts: int = 0
    """Retries, hedges and transparent retries started on a subchannel their call had
    already used: no READY one it had not tried, or the preference is off."""
    resolver: dict[str, Any] | None = None
    """What the resolver says of itself (`Resolver.debug_info()`; the xDS resolver: its
    client's resources and their status), or None when it says nothing."""
    balancer: dict[str, Any] | None = None
    """What the policy in force says of itself (its ``debug_info()``, when it has one: the
    xDS policies give their config, children and their states), or None."""

    def to_dict(self) -> dict[str, Any]:
        """The same data, JSON-serialisable: states and other enums as their names, tuples
        and sets as lists, dataclasses as dicts, any other value a plugin's ``debug_info()``
        returned as its ``str()``."""
        result: dict[str, Any] = _plain(self)
        return result


def _plain(value: Any) -> Any:
    """``value`` made of JSON types only (see `ChannelSnapshot.to_dict`)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value.name if isinstance(value, enum.Enum) else value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, deque)):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


class TraceLog:
    """A bounded ring of trace events plus listeners told about each new one.

    Who may call: code on the channel's loop.
    """

    __slots__ = ("_events", "_listeners")

    def __init__(self, capacity: int = 512) -> None:
        self._events: deque[TraceEvent] = deque(maxlen=capacity)
        self._listeners: list[Callable[[TraceEvent], None]] = []

    def record(self, subject: str, description: str) -> None:
        event = TraceEvent(timestamp=time.time(), subject=subject, description=description)
        self._events.append(event)
        for listener in tuple(self._listeners):
            listener(event)

    def events(self) -> list[TraceEvent]:
        return list(self._events)

    def add_listener(self, listener: Callable[[TraceEvent], None]) -> Callable[[], None]:
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

"""The ``priority_experimental`` policy: the highest priority that can serve RPCs.

Spec: gRFC A56 "priority_experimental LB policy" (github.com/grpc/proposal,
A56-priority-lb-policy.md) as updated by gRFC A115 (children removed from the config are
closed at once, as grpc-go and grpc-java do; the 15-minute cache stays for deactivated
lower priorities). grpc-go counterpart: internal/xds/balancer/priority.

Config::

    {"children": {"NAME": {"config": [{"xds_cluster_impl_experimental": {...}}],
                           "ignoreReresolutionRequests": true}},
     "priorities": ["NAME", ...],
     "failoverTimeout": "10s"}

``failoverTimeout`` is a grpc_lite extension (a proto3 JSON Duration, default 10 s, A56's
failover timer): the cds policy sets it from the xds resolver's ``xds.failover_timeout``
attribute (channel option ``grpc_lite.xds_failover_timeout_s``). Every name in
``priorities`` must be a child and every child must be in ``priorities``, once.

Behaviour (A56):

- Children are created lazily, by `_choose_priority`, only when a priority is tried; each
  child gets the endpoints whose ``xds.path`` starts with its name (head removed).
- Choosing: the first priority whose child is READY or IDLE is used and every lower child
  is deactivated; else the first whose failover timer is pending is used (nothing lower is
  created); else the first CONNECTING one; else the last priority. The choice is made after
  every child report and after every config update (children's reports to an update are
  queued behind it, so the choice never sees a half-applied update).
- Failover timer (`FailoverPhase`): started when a child is created and when it moves to
  CONNECTING after READY or IDLE (not after TRANSIENT_FAILURE); cancelled by READY, IDLE,
  TRANSIENT_FAILURE or deactivation; when it fires the next priority is tried.
- Deactivation: a lower child no longer needed starts a 15-minute timer and is closed when
  it fires; choosing it again before then reactivates it (timer cancelled).
- ``ignoreReresolutionRequests``: that child's re-resolution requests are dropped.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grpc_lite._connectivity import ConnectivityState
from grpc_lite.balancer import (
    BalancerChannel,
    BalancerState,
    ChannelState,
    ErrorPicker,
    Picker,
    QueuePicker,
    TimerHandle,
)
from grpc_lite.resolver import Endpoint, ResolverState
from grpc_lite.service_config import parse_duration
from grpc_lite.status import RpcError

from ._common import (
    ChildPolicy,
    JsonObject,
    TrackedChildren,
    parse_child_policy,
    split_by_path,
    unavailable,
)

__all__ = [
    "DEACTIVATION_TIMEOUT",
    "DEFAULT_FAILOVER_TIMEOUT",
    "FAILOVER_TRANSITIONS",
    "FailoverEvent",
    "FailoverPhase",
    "PriorityBalancer",
    "PriorityBuilder",
    "PriorityChildConfig",
    "PriorityConfig",
    "duration_json",
]

_LOGGER = logging.getLogger("grpc_lite")

NAME = "priority_experimental"
DEFAULT_FAILOVER_TIMEOUT = 10.0  # A56: the failover timer
DEACTIVATION_TIMEOUT = 15 * 60.0  # A56: a deactivated child is closed after 15 minutes
_S = ConnectivityState


def duration_json(seconds: float) -> str:
    """Seconds as a proto3 JSON Duration string (``10.0`` -> ``"10s"``)."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


@dataclass(frozen=True, slots=True, kw_only=True)
class PriorityChildConfig:
    policy: ChildPolicy
    ignore_reresolution_requests: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PriorityConfig:
    children: Mapping[str, PriorityChildConfig]
    priorities: tuple[str, ...]
    failover_timeout: float = DEFAULT_FAILOVER_TIMEOUT

    def to_json(self, *, full: bool = True) -> dict[str, Any]:
        """The JSON config; with ``full=False`` child policies are given by name only."""
        return {
            "children": {
                name: {
                    "config": c.policy.as_json(full),
                    "ignoreReresolutionRequests": c.ignore_reresolution_requests,
                }
                for name, c in self.children.items()
            },
            "priorities": list(self.priorities),
            "failoverTimeout": duration_json(self.failover_timeout),
        }


class PriorityBuilder:
    name = NAME

    def build(self, channel: BalancerChannel) -> PriorityBalancer:
        return PriorityBalancer(channel)

    def parse_config(self, config: Mapping[str, Any]) -> PriorityConfig:
        top = JsonObject(config, NAME)
        children_json = top.object("children")
        priorities_json = top.array("priorities")
        timeout_json = top.raw("failoverTimeout")
        top.done()
        children: dict[str, PriorityChildConfig] = {}
        for name, child_json in children_json.items():
            where = f"{NAME}.children[{name!r}]"
            child = JsonObject(child_json, where)
            policy = parse_child_policy(child.array("config"), f"{where}.config")
            ignore = child.boolean("ignoreReresolutionRequests")
            child.done()
            children[name] = PriorityChildConfig(policy=policy, ignore_reresolution_requests=ignore)
        priorities: list[str] = []
        for i, name in enumerate(priorities_json):
            if not isinstance(name, str):
                raise ValueError(f"{NAME}.priorities[{i}]: must be a string, got {name!r}")
            if name in priorities:
                raise ValueError(f"{NAME}.priorities[{i}]: {name!r} is listed twice")
            if name not in children:
                raise ValueError(f"{NAME}.priorities[{i}]: {name!r} is not in children")
            priorities.append(name)
        unlisted = sorted(set(children) - set(priorities))
        if unlisted:
            raise ValueError(f"{NAME}.children: {unlisted} not in priorities")
        timeout = DEFAULT_FAILOVER_TIMEOUT
        if timeout_json is not None:
            timeout = parse_duration(timeout_json, f"{NAME}.failoverTimeout")
            if timeout <= 0:
                raise ValueError(f"{NAME}.failoverTimeout: must be positive, got {timeout_json!r}")
        return PriorityConfig(
            children=children, priorities=tuple(priorities), failover_timeout=timeout
        )


# -- a child's failover phase ------------------------------------------------------------


class FailoverPhase(enum.Enum):
    """Where a child is with respect to A56's failover timer."""

    NEW = "new"
    """Just created, before its first move (to WAITING)."""
    WAITING = "waiting"
    """Connecting with the failover timer pending: lower priorities wait for it."""
    SETTLED = "settled"
    """Last reported READY or IDLE."""
    FAILED = "failed"
    """Reported TRANSIENT_FAILURE more recently than READY or IDLE: a later CONNECTING does
    not restart the timer."""
    GAVE_UP = "gave_up"
    """Still connecting, but the timer fired (or was cancelled by deactivation)."""


class FailoverEvent(enum.Enum):
    READY_OR_IDLE = "ready_or_idle"
    CONNECTING = "connecting"
    TRANSIENT_FAILURE = "transient_failure"
    TIMER_FIRED = "timer_fired"
    DEACTIVATED = "deactivated"


_P, _E = FailoverPhase, FailoverEvent

FAILOVER_TRANSITIONS: Mapping[tuple[FailoverPhase, FailoverEvent], FailoverPhase] = {
    (_P.NEW, _E.CONNECTING): _P.WAITING,  # A56: the timer starts when the child is created
    (_P.WAITING, _E.READY_OR_IDLE): _P.SETTLED,
    (_P.WAITING, _E.CONNECTING): _P.WAITING,  # a duplicate CONNECTING keeps the timer
    (_P.WAITING, _E.TRANSIENT_FAILURE): _P.FAILED,
    (_P.WAITING, _E.TIMER_FIRED): _P.GAVE_UP,
    (_P.WAITING, _E.DEACTIVATED): _P.GAVE_UP,
    (_P.SETTLED, _E.READY_OR_IDLE): _P.SETTLED,
    (_P.SETTLED, _E.CONNECTING): _P.WAITING,  # restarts the timer
    (_P.SETTLED, _E.TRANSIENT_FAILURE): _P.FAILED,
    (_P.SETTLED, _E.DEACTIVATED): _P.SETTLED,
    (_P.FAILED, _E.READY_OR_IDLE): _P.SETTLED,
    (_P.FAILED, _E.CONNECTING): _P.FAILED,  # no timer after TRANSIENT_FAILURE
    (_P.FAILED, _E.TRANSIENT_FAILURE): _P.FAILED,
    (_P.FAILED, _E.DEACTIVATED): _P.FAILED,
    (_P.GAVE_UP, _E.READY_OR_IDLE): _P.SETTLED,
    (_P.GAVE_UP, _E.CONNECTING): _P.GAVE_UP,
    (_P.GAVE_UP, _E.TRANSIENT_FAILURE): _P.FAILED,
    (_P.GAVE_UP, _E.DEACTIVATED): _P.GAVE_UP,
}
"""(phase, event) -> phase. The failover timer runs exactly while the phase is WAITING:
`_Child.move`, the only writer, starts it on entering WAITING and cancels it on leaving."""


class _Child:
    """The priority policy's record of one child (A56 "Child Connectivity State Tracking")."""

    __slots__ = ("deactivation_timer", "failover_timer", "name", "phase", "picker", "state")

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = _S.CONNECTING
        self.picker: Picker = QueuePicker()
        self.phase = FailoverPhase.NEW
        self.failover_timer: TimerHandle | None = None
        self.deactivation_timer: TimerHandle | None = None

    @property
    def failover_timer_pending(self) -> bool:
        return self.phase is FailoverPhase.WAITING

    def debug_info(self) -> dict[str, Any]:
        return {
            "state": self.state.name,
            "failover": self.phase.value,
            "deactivated": self.deactivation_timer is not None,
        }


class PriorityBalancer:
    """One priority instance. Callers: the channel's serializer only."""

    def __init__(self, channel: BalancerChannel) -> None:
        # Immutable after __init__.
        self._channel = channel
        self._children: TrackedChildren[str] = TrackedChildren(
            channel, on_child_state=self._on_child_state, on_resolve_now=self._on_resolve_now
        )
        # Serializer-only.
        self._records: dict[str, _Child] = {}
        self._config: PriorityConfig | None = None
        self._endpoints: dict[str, list[Endpoint]] = {}
        self._attributes: tuple[tuple[str, Any], ...] = ()
        self._current: str | None = None
        self._reported: tuple[ConnectivityState, Picker] | None = None
        self._closed = False

    # -- Balancer --------------------------------------------------------------------------

    def update_channel_state(self, state: ChannelState) -> bool:
        if self._closed:
            return True
        config = state.config
        if not isinstance(config, PriorityConfig):
            raise TypeError(f"{NAME}: config must be a PriorityConfig, got {config!r}")
        self._config = config
        self._endpoints = split_by_path(state.resolver_state.endpoints)
        self._attributes = state.resolver_state.attributes
        for name in list(self._records):
            if name not in config.children:
                self._remove(name)  # A115: not cached
            else:
                self._update_child(name)
        self._choose_priority()
        return True

    def resolver_error(self, error: RpcError) -> None:
        if self._closed:
            return
        if not self._records:
            self._report(_S.TRANSIENT_FAILURE, ErrorPicker(error))
            return
        self._children.resolver_error(error)

    def exit_idle(self) -> None:
        if self._closed or self._current is None:
            return
        # Only the child in use serves RPCs (as C-core's priority policy).
        self._children.exit_idle_child(self._current)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for child in self._records.values():
            self._cancel_timers(child)
        self._records.clear()
        self._children.close()

    def debug_info(self) -> dict[str, Any]:
        config = self._config
        return {
            "policy": NAME,
            "state": self._reported[0].name if self._reported is not None else None,
            "config": config.to_json(full=False) if config is not None else None,
            "current": self._current,
            "children": {
                name: {**self._children.child_debug_info(name), **child.debug_info()}
                for name, child in self._records.items()
            },
        }

    # -- children --------------------------------------------------------------------------

    def _child_state(self, name: str) -> ChannelState:
        assert self._config is not None
        resolver_state = ResolverState(
            endpoints=tuple(self._endpoints.get(name, ())), attributes=self._attributes
        )
        return ChannelState(resolver_state=resolver_state)

    def _update_child(self, name: str) -> None:
        assert self._config is not None
        policy = self._config.children[name].policy
        self._children.update_policy(name, policy, self._child_state(name))

    def _create(self, name: str) -> _Child:
        child = self._records[name] = _Child(name)
        self._move(child, FailoverEvent.CONNECTING)  # A56: the timer starts at creation
        self._update_child(name)
        return child

    def _remove(self, name: str) -> None:
        child = self._records.pop(name)
        self._cancel_timers(child)
        self._children.remove(name)
        if self._current == name:
            self._current = None

    def _move(self, child: _Child, event: FailoverEvent) -> None:
        """The only writer of ``child.phase`` (and so of its failover timer)."""
        old = child.phase
        new = FAILOVER_TRANSITIONS.get((old, event))
        if new is None:
            # TIMER_FIRED outside WAITING: the timer was cancelled after it was queued.
            return
        child.phase = new
        if new is FailoverPhase.WAITING and old is not FailoverPhase.WAITING:
            assert self._config is not None
            child.failover_timer = self._channel.call_later(
                self._config.failover_timeout, self._failover_timer_fired, child
            )
        elif new is not FailoverPhase.WAITING and child.failover_timer is not None:
            child.failover_timer.cancel()
            child.failover_timer = None

    def _cancel_timers(self, child: _Child) -> None:
        for timer in (child.failover_timer, child.deactivation_timer):
            if timer is not None:
                timer.cancel()
        child.failover_timer = child.deactivation_timer = None

    def _failover_timer_fired(self, child: _Child) -> None:
        if self._closed or self._records.get(child.name) is not child:
            return
        child.failover_timer = None
        _LOGGER.debug("priority: failover timer of %s fired", child.name)
        self._move(child, FailoverEvent.TIMER_FIRED)
        self._choose_priority()

    def _deactivate(self, child: _Child) -> None:
        if child.deactivation_timer is not None:
            return
        self._move(child, FailoverEvent.DEACTIVATED)
        child.deactivation_timer = self._channel.call_later(
            DEACTIVATION_TIMEOUT, self._deactivation_timer_fired, child
        )

    def _reactivate(self, child: _Child) -> None:
        if child.deactivation_timer is not None:
            child.deactivation_timer.cancel()
            child.deactivation_timer = None

    def _deactivation_timer_fired(self, child: _Child) -> None:
        if self._closed or self._records.get(child.name) is not child:
            return
        child.deactivation_timer = None
        _LOGGER.debug("priority: closing %s, deactivated for 15 minutes", child.name)
        self._remove(child.name)

    def _on_child_state(self, name: str, state: BalancerState) -> None:
        child = self._records.get(name)
        if self._closed or child is None:
            return
        child.state = state.state
        child.picker = state.picker
        if state.state in (_S.READY, _S.IDLE):
            self._move(child, FailoverEvent.READY_OR_IDLE)
        elif state.state is _S.TRANSIENT_FAILURE:
            self._move(child, FailoverEvent.TRANSIENT_FAILURE)
        elif state.state is _S.CONNECTING:
            self._move(child, FailoverEvent.CONNECTING)
        self._choose_priority()

    def _on_resolve_now(self, name: str) -> None:
        config = self._config
        if config is None or self._closed:
            return
        child = config.children.get(name)
        if child is not None and not child.ignore_reresolution_requests:
            self._channel.resolve_now()

    # -- A56 "Algorithm for Choosing a Priority" -------------------------------------------

    def _choose_priority(self) -> None:
        config = self._config
        if config is None or self._closed:
            return
        priorities = config.priorities
        if not priorities:
            self._current = None
            self._report(
                _S.TRANSIENT_FAILURE,
                ErrorPicker(unavailable("priority policy has empty priority list")),
            )
            return
        for p, name in enumerate(priorities):
            child = self._records.get(name)
            if child is None:
                child = self._create(name)
            else:
                self._reactivate(child)
            if child.state in (_S.READY, _S.IDLE):
                self._set_current(p, deactivate_lower=True)
                return
            if child.failover_timer_pending:
                self._set_current(p, deactivate_lower=False)
                return
        for p, name in enumerate(priorities):
            if self._records[name].state is _S.CONNECTING:
                self._set_current(p, deactivate_lower=False)
                return
        self._set_current(len(priorities) - 1, deactivate_lower=False)

    def _set_current(self, priority: int, *, deactivate_lower: bool) -> None:
        config = self._config
        assert config is not None
        if deactivate_lower:
            for name in config.priorities[priority + 1 :]:
                lower = self._records.get(name)
                if lower is not None:
                    self._deactivate(lower)
        name = config.priorities[priority]
        child = self._records[name]
        if self._current != name:
            _LOGGER.debug("priority: using %s (priority %d)", name, priority)
        self._current = name
        self._report(child.state, child.picker)

    def _report(self, state: ConnectivityState, picker: Picker) -> None:
        reported = self._reported
        if reported is not None and reported[0] is state and reported[1] is picker:
            return
        self._reported = (state, picker)
        self._channel.update_state(BalancerState(state=state, picker=picker))

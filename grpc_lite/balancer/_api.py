"""The balancer extension API (grpc-go: package balancer, balancer.go).

A `BalancerBuilder` is registered under a policy name.  The channel builds one
`Balancer` per policy in force and hands it a `BalancerChannel`, the balancer's
only view of the channel: it creates `Subchannel`s, publishes `BalancerState`s
(an aggregate connectivity state plus an immutable `Picker`) and asks for
re-resolution.

Concurrency contract: every method of `Balancer`, every subchannel state
listener and every timer callback (`BalancerChannel.call_later`) is called from
the channel's callback serializer, one at a time and never re-entered.  Calls
from a balancer back into its `BalancerChannel` or a `Subchannel` are direct;
what they cause (a `connect()` moving a subchannel to CONNECTING) is queued and
reaches the balancer after the running call returns, so a balancer needs no
re-entrancy guard of its own.  `Picker.pick` is called from any coroutine of the
channel's loop, concurrently with everything above: pickers are immutable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVarTuple, Unpack

from .._clock import TimerHandle
from .._connectivity import ConnectivityState
from ..resolver import Address, ResolverState
from ..status import RpcError, StatusCode

__all__ = [
    "Balancer",
    "BalancerBuilder",
    "BalancerChannel",
    "BalancerState",
    "ChannelState",
    "DroppedRpcError",
    "ErrorPicker",
    "FixedResultPicker",
    "NoSubchannelAvailable",
    "PickInfo",
    "PickResult",
    "Picker",
    "QueuePicker",
    "Subchannel",
    "SubchannelState",
    "TimerHandle",
]

_Ts = TypeVarTuple("_Ts")


class _NoAttributes(Mapping[str, Any]):
    """The empty, hashable mapping `PickInfo.attributes` defaults to."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __hash__(self) -> int:
        return 0


_NO_ATTRIBUTES: Mapping[str, Any] = _NoAttributes()


@dataclass(frozen=True, slots=True, kw_only=True)
class SubchannelState:
    """A subchannel's state as its balancer sees it (grpc-go: balancer.SubConnState).

    With client-side health checking on, a connected but unhealthy subchannel is
    reported TRANSIENT_FAILURE.  `error` is the last connection (or health) error.
    """

    state: ConnectivityState
    error: str | None = None


class Subchannel(Protocol):
    """A connection to one backend, owned by the balancer that created it (grpc-go: SubConn)."""

    @property
    def addresses(self) -> tuple[Address, ...]: ...

    @property
    def state(self) -> ConnectivityState: ...

    def connect(self) -> None:
        """Start connecting if IDLE; a no-op otherwise."""

    def shutdown(self) -> None:
        """Close the subchannel; it reports SHUTDOWN and is never used again."""


# PickInfo and PickResult are made per RPC (a call with metadata or config selector
# attributes, a retry; cluster_impl's counted result): they keep the frozen dataclass's fields,
# equality, hash, repr and FrozenInstanceError, but their __init__ (init=False) sets the slots
# through their descriptors, where the generated one calls object.__setattr__ per field:
# about 30% fewer instructions per object (benchmarks/README.md, "xDS").


@dataclass(frozen=True, slots=True, kw_only=True, init=False)
class PickInfo:
    """What a picker knows about the RPC being picked (grpc-go: balancer.PickInfo).

    ``previous_subchannels``: for an attempt after a call's first (a retry, a hedge, a
    transparent retry), the subchannels its earlier attempts were started on, in order; empty
    for a first attempt, and when the channel option ``grpc_lite.avoid_previous_hosts`` or
    the policy's ``avoidPreviousHosts`` turned the preference off. They are the objects
    `BalancerChannel.new_subchannel` returned. A picker should prefer a READY subchannel that
    is not among them and, when it has none, pick as it would have (a grpc_lite extension
    after Envoy's ``envoy.retry_host_predicates.previous_hosts``; gRFC A6 leaves the choice of
    host for a retry to the balancer). round_robin does; pick_first has only one READY
    subchannel.
    """

    method: str
    previous_subchannels: tuple[Subchannel, ...] = ()
    metadata: tuple[tuple[str, str | bytes], ...] = ()
    """The call's metadata as the application gave it (grpc-go: PickInfo.Ctx's outgoing
    metadata): a policy that hashes or routes on a header reads it here."""
    attributes: Mapping[str, Any] = _NO_ATTRIBUTES
    """Per-call attributes set by the resolver's `ConfigSelector` (`RpcConfig.attributes`):
    the xDS cluster an RPC was routed to, say. Empty for channels without a selector."""

    def __init__(
        self,
        *,
        method: str,
        previous_subchannels: tuple[Subchannel, ...] = (),
        metadata: tuple[tuple[str, str | bytes], ...] = (),
        attributes: Mapping[str, Any] = _NO_ATTRIBUTES,
    ) -> None:
        _set_info_method(self, method)
        _set_info_previous(self, previous_subchannels)
        _set_info_metadata(self, metadata)
        _set_info_attributes(self, attributes)


_set_info_method = PickInfo.__dict__["method"].__set__
_set_info_previous = PickInfo.__dict__["previous_subchannels"].__set__
_set_info_metadata = PickInfo.__dict__["metadata"].__set__
_set_info_attributes = PickInfo.__dict__["attributes"].__set__


@dataclass(frozen=True, slots=True, kw_only=True, init=False)
class PickResult:
    """The subchannel an RPC goes to, and an optional callback with its final status.

    ``on_done`` runs exactly once for every pick that returned this result to the channel,
    with the final status of the attempt it picked for (grpc-go: balancer.DoneInfo); a pick
    the channel discarded (its subchannel not READY any more) gets UNAVAILABLE
    (grpc_lite/_picker.py says why)."""

    subchannel: Subchannel
    on_done: Callable[[StatusCode], None] | None = None

    def __init__(
        self, *, subchannel: Subchannel, on_done: Callable[[StatusCode], None] | None = None
    ) -> None:
        _set_result_subchannel(self, subchannel)
        _set_result_on_done(self, on_done)


_set_result_subchannel = PickResult.__dict__["subchannel"].__set__
_set_result_on_done = PickResult.__dict__["on_done"].__set__


class DroppedRpcError(RpcError):
    """Raised by `Picker.pick` to fail the RPC at once, wait-for-ready or not (grpc-go:
    balancer.DropRPCError): a drop the policy decided (xDS ``drop_overloads``, a circuit
    breaker), not a lack of backends. The RPC is not retried, not even transparently."""

    __slots__ = ()


class NoSubchannelAvailable(Exception):
    """Raised by `Picker.pick`: queue the RPC until the next picker.

    grpc-go: balancer.ErrNoSubConnAvailable.
    """


class Picker(Protocol):
    """Chooses a subchannel per RPC.  Immutable; rebuilt on every change (grpc-go: balancer.Picker).

    `pick` returns a `PickResult` whose subchannel should be READY, raises
    `NoSubchannelAvailable` to queue the RPC until the next picker, or raises
    `RpcError` to fail it (fail-fast RPCs only: wait-for-ready RPCs keep waiting
    unless the code is not UNAVAILABLE).
    """

    def pick(self, info: PickInfo) -> PickResult: ...


class FixedResultPicker:
    """Give every RPC the same `result` (grpc-java: LoadBalancer.FixedResultPicker).

    pick_first's picker while READY. A parent policy may read `result` instead of calling
    `pick` (round_robin does, to keep its pick to one tuple index).
    """

    __slots__ = ("result",)

    def __init__(self, result: PickResult) -> None:
        self.result = result

    def pick(self, info: PickInfo) -> PickResult:
        # Hot path: one attribute read; nothing may be added here.
        return self.result


class QueuePicker:
    """Queue every RPC: used while IDLE or CONNECTING."""

    __slots__ = ()

    def pick(self, info: PickInfo) -> PickResult:
        raise NoSubchannelAvailable()


class ErrorPicker:
    """Fail every RPC with `error` (TRANSIENT_FAILURE)."""

    __slots__ = ("error",)

    def __init__(self, error: RpcError) -> None:
        self.error = error

    def pick(self, info: PickInfo) -> PickResult:
        # Raised without the traceback of the last pick: the stored error would otherwise
        # collect one per pick (and the frames they refer to) for as long as it lives.
        raise self.error.with_traceback(None)


@dataclass(frozen=True, slots=True, kw_only=True)
class BalancerState:
    """What a balancer publishes: the channel's state and the picker for it."""

    state: ConnectivityState
    picker: Picker


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelState:
    """What the channel gives a balancer: the resolver's result and the policy's config."""

    resolver_state: ResolverState
    config: Any = None


class BalancerChannel(Protocol):
    """The balancer's view of the channel (grpc-go: balancer.ClientConn)."""

    @property
    def target(self) -> str: ...

    def new_subchannel(
        self,
        addresses: Sequence[Address],
        *,
        on_state_change: Callable[[Subchannel, SubchannelState], None],
        health_check: bool = False,
    ) -> Subchannel:
        """Create an IDLE subchannel; its state changes reach `on_state_change` (serialized).

        With ``health_check=True`` the subchannel runs client-side health checking (A17)
        when the service config has ``healthCheckConfig``: it reports READY only while the
        backend's health service says SERVING.  pick_first leaves it off (A17).
        """
        ...

    def update_state(self, state: BalancerState) -> None:
        """Publish a new aggregate state and picker."""
        ...

    def resolve_now(self) -> None:
        """Ask the resolver to re-resolve (paced by the resolver)."""
        ...

    def call_later(
        self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> TimerHandle:
        """Run ``callback(*args)`` on the channel's serializer after `delay` seconds.

        The balancer's timers (grpc-go balancers use ``time.AfterFunc`` under their own
        mutex): when the timer fires the callback is queued on the serializer, so it runs
        like any other call into the balancer, one at a time, and what it causes (a
        ``connect()`` whose state report comes back at once) is delivered after it returns.
        With ``delay <= 0`` the callback is queued at once: it runs right after the call now
        running returns (a parent policy uses this to call a child after the child's own
        call has returned). Cancel with the handle's ``cancel()``; once the balancer is
        closed its timers never run.
        """
        ...


class Balancer(Protocol):
    """A load-balancing policy instance (grpc-go: balancer.Balancer)."""

    def update_channel_state(self, state: ChannelState) -> bool:
        """New addresses and config.

        Returns False to reject it (e.g. zero addresses): the resolver backs off and retries.
        """
        ...

    def resolver_error(self, error: RpcError) -> None:
        """The resolver failed; keep using the last good addresses if there are any."""
        ...

    def exit_idle(self) -> None:
        """Start connecting (the channel left IDLE, or an RPC arrived on an IDLE picker)."""
        ...

    def close(self) -> None:
        """Shut down every subchannel; called once."""
        ...


class BalancerBuilder(Protocol):
    """Builds balancers of one policy (grpc-go: balancer.Builder + ConfigParser)."""

    @property
    def name(self) -> str: ...

    def build(self, channel: BalancerChannel) -> Balancer: ...

    def parse_config(self, config: Mapping[str, Any]) -> Any:
        """Validate the policy's JSON config object; raise ValueError naming the problem."""
        ...


def unavailable(message: str) -> RpcError:
    return RpcError(StatusCode.UNAVAILABLE, message)

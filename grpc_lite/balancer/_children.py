"""ChildBalancers: the child policies of a parent policy, and the usual aggregation.

grpc-go counterparts: internal/balancergroup (children by id, each in a graceful switch) and
balancer/endpointsharding (one child per endpoint, ``ExitIdle`` on a child that reports IDLE,
the aggregated state of gRFC A61). round_robin is built on it (one pick_first per endpoint).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar, TypeVarTuple

from .._connectivity import ConnectivityState
from ..resolver import Address
from ..status import RpcError
from ._api import (
    BalancerBuilder,
    BalancerChannel,
    BalancerState,
    ChannelState,
    Subchannel,
    SubchannelState,
)
from ._graceful_switch import ChildChannel, GracefulSwitchBalancer
from ._registry import get

if TYPE_CHECKING:
    pass

__all__ = ["ChildBalancers", "aggregate_state"]

_S = ConnectivityState
_K = TypeVar("_K", bound=Hashable)
_Ts = TypeVarTuple("_Ts")


def aggregate_state(states: Iterable[ConnectivityState]) -> ConnectivityState:
    """The state of a parent policy whose children are in `states` (A61, endpointsharding).

    READY if any child is READY, else CONNECTING if any is CONNECTING, else IDLE if any is
    IDLE, else TRANSIENT_FAILURE (also with no children at all). SHUTDOWN counts for nothing.
    """
    seen = set(states)
    for state in (_S.READY, _S.CONNECTING, _S.IDLE):
        if state in seen:
            return state
    return _S.TRANSIENT_FAILURE


class ChildBalancers(Generic[_K]):
    """Child policies owned by a parent policy, one per key the parent chooses.

    `update(key, policy, state)` creates the child the first time (by registered policy name
    or builder), switches it gracefully when a later update names another policy (each child
    is a `GracefulSwitchBalancer`), and hands it `state`. Each child sees the channel through
    its own `BalancerChannel`, which lets the parent watch and intercept:

    - ``on_child_state(key, state)``: every state and picker the child publishes. Nothing
      reaches the channel: the parent publishes its own aggregate (`aggregate_state` is the
      usual rule).
    - ``on_subchannel_state(key, subchannel, state)``: every state of a subchannel the child
      created, just before the child sees it.
    - ``on_resolve_now(key)``: the child asked for re-resolution; without this hook the
      request goes to the channel.
    - ``exit_idle_children=True``: a child that reports IDLE is asked to `exit_idle()` once
      the parent has seen the report (endpointsharding without ``DisableAutoReconnect``).

    A child's state reports and re-resolution requests are queued on the channel's serializer
    (`call_later(0, ...)`): the hooks run after the child's call (and the parent's, when the
    parent was calling the child) has returned, so the parent is never re-entered and may
    call any child from a hook. An update to many children thus ends with one report per
    child queued behind it.

    Subchannels and timers otherwise pass straight to the channel; a removed child's late
    reports, subchannel states and timers are dropped, and its subchannels are shut down.

    Callers: the parent, from the channel's serializer (where all of its own calls run).
    """

    __slots__ = (
        "_channel",
        "_children",
        "_exit_idle_children",
        "_on_child_state",
        "_on_resolve_now",
        "_on_subchannel_state",
    )

    def __init__(
        self,
        channel: BalancerChannel,
        *,
        on_child_state: Callable[[_K, BalancerState], None],
        on_subchannel_state: Callable[[_K, Subchannel, SubchannelState], None] | None = None,
        on_resolve_now: Callable[[_K], None] | None = None,
        exit_idle_children: bool = False,
    ) -> None:
        # Immutable after __init__.
        self._channel = channel
        self._on_child_state = on_child_state
        self._on_subchannel_state = on_subchannel_state
        self._on_resolve_now = on_resolve_now
        self._exit_idle_children = exit_idle_children
        # Serializer-only.
        self._children: dict[_K, _ChildChannel[_K]] = {}

    def update(self, key: _K, policy: str | BalancerBuilder, state: ChannelState) -> bool:
        """Create or update the child for `key`; returns what its `update_channel_state` did.

        `policy` is a registered policy name or a builder; ``state.config`` is the child's
        own (parsed) config. Raises ValueError for a name that is not registered.
        """
        builder = get(policy) if isinstance(policy, str) else policy
        if builder is None:
            raise ValueError(f"no balancer named {policy!r} is registered")
        child = self._children.get(key)
        if child is None:
            child = _ChildChannel(self, key)
            self._children[key] = child
        child.balancer.switch_to(builder)
        return child.balancer.update_channel_state(state)

    def remove(self, key: _K) -> None:
        """Close the child for `key` (and its subchannels); nothing if there is none."""
        child = self._children.pop(key, None)
        if child is not None:
            child.close()

    def exit_idle(self) -> None:
        """Ask every child to leave IDLE."""
        for child in list(self._children.values()):
            if not child.closed:
                child.balancer.exit_idle()

    def resolver_error(self, error: RpcError) -> None:
        """Hand a resolver error to every child."""
        for child in list(self._children.values()):
            if not child.closed:
                child.balancer.resolver_error(error)

    def close(self) -> None:
        """Close every child; later reports from them are dropped."""
        children = list(self._children.values())
        self._children.clear()
        for child in children:
            child.close()

    def state(self, key: _K) -> BalancerState | None:
        """The last state the child for `key` published (None: none yet, or no such child)."""
        child = self._children.get(key)
        return child.state if child is not None else None

    def policy(self, key: _K) -> str | None:
        """The name of the policy the child for `key` runs (None: no such child)."""
        child = self._children.get(key)
        return child.balancer.current_policy if child is not None else None

    def __contains__(self, key: object) -> bool:
        return key in self._children

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self) -> Iterator[_K]:
        return iter(list(self._children))


class _ChildChannel(ChildChannel, Generic[_K]):
    """One child's `BalancerChannel` (grpc-go: endpointsharding's endpointState)."""

    __slots__ = ("_parent", "balancer", "key", "state")

    def __init__(self, parent: ChildBalancers[_K], key: _K) -> None:
        super().__init__(parent._channel)
        self._parent = parent
        self.key = key
        self.state: BalancerState | None = None
        self.balancer = GracefulSwitchBalancer(self)

    def new_subchannel(
        self,
        addresses: Sequence[Address],
        *,
        on_state_change: Callable[[Subchannel, SubchannelState], None],
        health_check: bool = False,
    ) -> Subchannel:
        if self.closed:
            raise RuntimeError(f"new_subchannel() from the removed child {self.key!r}")
        parent = self._parent
        hook = parent._on_subchannel_state
        key = self.key

        def listener(sc: Subchannel, state: SubchannelState) -> None:
            if self.closed:
                return
            if hook is not None:
                hook(key, sc, state)
            on_state_change(sc, state)

        return self._upstream.new_subchannel(
            addresses, on_state_change=listener, health_check=health_check
        )

    def _deliver(self, state: BalancerState) -> None:
        if self.closed:
            return
        self.state = state
        parent = self._parent
        parent._on_child_state(self.key, state)
        if state.state is _S.IDLE and parent._exit_idle_children and not self.closed:
            self.balancer.exit_idle()

    def resolve_now(self) -> None:
        if self.closed:
            return
        if self._parent._on_resolve_now is not None:
            self._upstream.call_later(0, self._resolve_now_hook)
        else:
            self._upstream.resolve_now()

    def _resolve_now_hook(self) -> None:
        hook = self._parent._on_resolve_now
        if hook is not None and not self.closed:
            hook(self.key)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.balancer.close()

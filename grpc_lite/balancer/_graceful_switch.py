"""GracefulSwitchBalancer: change a child policy without dropping RPCs.

grpc-go counterpart: internal/balancer/gracefulswitch (gracefulswitch.go). The channel holds
its policy in one of these (a new ``loadBalancingConfig`` naming another policy switches
gracefully), and `ChildBalancers` holds each child in one, so a parent policy can change a
child's policy the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVarTuple, Unpack

from .._clock import TimerHandle
from .._connectivity import ConnectivityState
from ..resolver import Address
from ..status import RpcError
from ._api import (
    Balancer,
    BalancerBuilder,
    BalancerChannel,
    BalancerState,
    ChannelState,
    ErrorPicker,
    Subchannel,
    SubchannelState,
)
from ._metrics import metrics_recorder

if TYPE_CHECKING:
    from .._observability import MetricsRecorder

__all__ = ["GracefulSwitchBalancer"]

_S = ConnectivityState
_Ts = TypeVarTuple("_Ts")


class GracefulSwitchBalancer:
    """A balancer made of a *current* child policy and, during a switch, a *pending* one.

    `switch_to(builder)` builds the new policy at once as the pending child: from then on it
    gets the channel's updates and creates its own subchannels, while the current child keeps
    serving RPCs with its picker. The pending child replaces the current one, which is then
    closed (its subchannels too), when

    - the pending child reports anything but CONNECTING (READY, IDLE or TRANSIENT_FAILURE),
      or reports CONNECTING while the current one is not READY; or
    - the current child reports a state other than READY, once the pending one has
      reported: the pending child's last state and picker are published at once.

    Until then the current child's states reach the channel unchanged. A switch to the
    current child's policy abandons the switch in progress (the pending child is closed); a
    switch to the pending child's policy changes nothing; a switch to a third policy replaces
    the pending child. Each child sees the channel through its own `BalancerChannel`, which
    drops what a closed child publishes and shuts down the subchannels it leaves behind.

    A child's state reports are queued on the channel's serializer (`call_later(0, ...)`)
    and handled after the child's call returns, so a child that leaves READY is never
    closed from inside its own call, and this balancer is never re-entered.

    Routing: `update_channel_state` and `resolver_error` go to the newest child (the pending
    one during a switch), `exit_idle` to the current one (its picker serves the RPCs);
    `close` closes both (`current_policy` still names the last current one). A child's
    `resolve_now`, subchannels and timers pass straight to the channel.

    Callers: the channel's serializer, like any balancer.
    """

    __slots__ = ("_channel", "_closed", "_current", "_pending")

    def __init__(self, channel: BalancerChannel) -> None:
        # Immutable after __init__.
        self._channel = channel
        # Serializer-only.
        self._current: _Child | None = None
        self._pending: _Child | None = None
        self._closed = False

    # -- the switch ------------------------------------------------------------------------

    @property
    def current_policy(self) -> str | None:
        """The name of the policy serving RPCs, or None before the first `switch_to`."""
        return self._current.name if self._current is not None else None

    @property
    def pending_policy(self) -> str | None:
        """The name of the policy being switched to, or None when no switch is under way."""
        return self._pending.name if self._pending is not None else None

    @property
    def current(self) -> Balancer | None:
        """The child policy serving RPCs."""
        return self._current.balancer if self._current is not None else None

    @property
    def pending(self) -> Balancer | None:
        """The child policy being switched to, if any."""
        return self._pending.balancer if self._pending is not None else None

    def switch_to(self, builder: BalancerBuilder) -> None:
        """Start using `builder`'s policy (see the class docstring for when it takes over)."""
        if self._closed:
            raise RuntimeError("switch_to() on a closed GracefulSwitchBalancer")
        name = builder.name
        current, pending = self._current, self._pending
        if current is not None and current.name == name:
            if pending is not None:
                self._pending = None
                pending.close()
            return
        if pending is not None:
            if pending.name == name:
                return
            self._pending = None
            pending.close()
        child = _Child(self, name)
        if current is None:
            self._current = child
        else:
            self._pending = child
        # Build after the child is in place: a balancer may publish from its constructor.
        try:
            child.balancer = builder.build(child)
        except BaseException:
            if self._current is child:
                self._current = None
            else:
                self._pending = None
            child.abandon()
            raise

    # -- Balancer --------------------------------------------------------------------------

    def update_channel_state(self, state: ChannelState) -> bool:
        if self._closed:
            return False
        child = self._pending or self._current
        if child is None:
            raise RuntimeError("update_channel_state() before switch_to()")
        return child.balancer.update_channel_state(state)

    def resolver_error(self, error: RpcError) -> None:
        if self._closed:
            return
        child = self._pending or self._current
        if child is None:
            self._channel.update_state(
                BalancerState(state=_S.TRANSIENT_FAILURE, picker=ErrorPicker(error))
            )
            return
        child.balancer.resolver_error(error)

    def exit_idle(self) -> None:
        if self._current is not None and not self._closed:
            self._current.balancer.exit_idle()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        pending, self._pending = self._pending, None
        for child in (pending, self._current):
            if child is not None:
                child.close()

    # -- child reports ---------------------------------------------------------------------

    def _child_state(self, child: _Child, state: BalancerState) -> None:
        current, pending = self._current, self._pending
        if child is pending:
            assert current is not None
            last = current.last_state
            if state.state is _S.CONNECTING and last is not None and last.state is _S.READY:
                return  # keep serving with the current policy until the new one is ready
            self._swap()
        elif child is not current:
            return
        elif pending is not None and state.state is not _S.READY and pending.last_state is not None:
            # The current policy left READY: switch now (grpc-go gracefulswitch).
            state = pending.last_state
            self._swap()
        self._channel.update_state(state)

    def _swap(self) -> None:
        """The pending child becomes the current one; the old current one is closed."""
        old, self._current, self._pending = self._current, self._pending, None
        if old is not None:
            old.close()


class ChildChannel:
    """What a parent policy's child sees as its `BalancerChannel`: the parent's own channel,
    cut off once the child is closed. Its state reports reach the parent through the
    serializer (``call_later(0)``), so a parent is never re-entered by its child; timers of a
    closed child never run. Subclasses say what a report does (`_deliver`) and how
    subchannels and re-resolution requests go through the parent.

    Who may call: the child policy, on the channel's serializer."""

    __slots__ = ("_upstream", "closed")

    def __init__(self, upstream: BalancerChannel) -> None:
        self._upstream = upstream
        self.closed = False

    @property
    def target(self) -> str:
        return self._upstream.target

    @property
    def metrics_recorder(self) -> MetricsRecorder | None:
        return metrics_recorder(self._upstream)

    def update_state(self, state: BalancerState) -> None:
        if not self.closed:
            self._upstream.call_later(0, self._deliver, state)

    def _deliver(self, state: BalancerState) -> None:
        raise NotImplementedError

    def call_later(
        self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> TimerHandle:
        return self._upstream.call_later(delay, self._if_open, callback, args)

    def _if_open(self, callback: Callable[..., object], args: tuple[object, ...]) -> None:
        if not self.closed:
            callback(*args)


class _Child(ChildChannel):
    """One child policy's `BalancerChannel` (grpc-go: gracefulswitch's balancerWrapper)."""

    __slots__ = ("_parent", "balancer", "last_state", "name", "subchannels")

    def __init__(self, parent: GracefulSwitchBalancer, name: str) -> None:
        super().__init__(parent._channel)
        self._parent = parent
        self.name = name
        self.balancer: Balancer
        self.last_state: BalancerState | None = None
        self.subchannels: dict[Subchannel, None] = {}

    def new_subchannel(
        self,
        addresses: Sequence[Address],
        *,
        on_state_change: Callable[[Subchannel, SubchannelState], None],
        health_check: bool = False,
    ) -> Subchannel:
        if self.closed:
            raise RuntimeError(f"new_subchannel() from the closed {self.name} policy")

        def listener(sc: Subchannel, state: SubchannelState) -> None:
            if state.state is _S.SHUTDOWN:
                self.subchannels.pop(sc, None)
            if not self.closed:
                on_state_change(sc, state)

        sc = self._upstream.new_subchannel(
            addresses, on_state_change=listener, health_check=health_check
        )
        self.subchannels[sc] = None
        return sc

    def _deliver(self, state: BalancerState) -> None:
        if not self.closed:
            self.last_state = state
            self._parent._child_state(self, state)

    def resolve_now(self) -> None:
        if not self.closed:
            self._upstream.resolve_now()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.balancer.close()
        self.abandon()

    def abandon(self) -> None:
        """Cut the child off and shut down its subchannels (close without the balancer)."""
        self.closed = True
        for sc in list(self.subchannels):
            sc.shutdown()
        self.subchannels.clear()

"""Plugin timers run on the channel's serializer (`BalancerChannel.call_later`).

A balancer with a timer needs no re-entrancy guard: the timer's callback is queued on the
serializer, so the state report its `connect()` causes is delivered after it returns. Checked
with the test fake and with the channel's own `BalancerWrapper` over a subchannel that reports
synchronously, as the real one does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grpc_lite._balancer_wrapper import BalancerHost, BalancerWrapper
from grpc_lite._connectivity import ConnectivityState
from grpc_lite._serializer import CallbackSerializer
from grpc_lite._subchannel import Subchannel as _Subchannel
from grpc_lite.balancer import (
    BalancerChannel,
    BalancerState,
    ChannelState,
    QueuePicker,
    Subchannel,
    SubchannelState,
    TimerHandle,
)
from grpc_lite.resolver import Address, ResolverState
from grpc_lite.status import RpcError
from tests.fakes.balancer_channel import FakeBalancerChannel
from tests.fakes.clock import FakeClock

S = ConnectivityState
UPDATE = ChannelState(resolver_state=ResolverState((Address("10.0.0.1:1"),)))


class UnguardedBalancer:
    """Connects its subchannel from a timer; records every entry and the nesting depth.

    Deliberately has no guard: if anything called it while one of its methods runs,
    `max_depth` would be 2.
    """

    def __init__(self, channel: BalancerChannel, delay: float = 0.25) -> None:
        self.channel = channel
        self.delay = delay
        self.depth = 0
        self.max_depth = 0
        self.log: list[str] = []
        self.subchannel: Subchannel | None = None
        self.timer: TimerHandle | None = None

    def _enter(self, what: str) -> None:
        self.depth += 1
        self.max_depth = max(self.max_depth, self.depth)
        self.log.append(what)

    def update_channel_state(self, state: ChannelState) -> bool:
        self._enter("update")
        try:
            self.subchannel = self.channel.new_subchannel(
                state.resolver_state.addresses, on_state_change=self._on_state
            )
            self.timer = self.channel.call_later(self.delay, self._on_timer)
            self.channel.update_state(BalancerState(state=S.CONNECTING, picker=QueuePicker()))
        finally:
            self.depth -= 1
        return True

    def _on_timer(self) -> None:
        self._enter("timer")
        try:
            assert self.subchannel is not None
            self.subchannel.connect()  # reports CONNECTING synchronously
            self.log.append("timer: connect() returned")
        finally:
            self.depth -= 1

    def _on_state(self, _sc: Subchannel, state: SubchannelState) -> None:
        self._enter(f"state {state.state.name}")
        self.depth -= 1

    def resolver_error(self, error: RpcError) -> None:
        pass

    def exit_idle(self) -> None:
        pass

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


EXPECTED = ["update", "timer", "timer: connect() returned", "state CONNECTING"]


def test_timer_callback_is_not_reentered_with_the_fake_channel() -> None:
    clock = FakeClock()
    ch = FakeBalancerChannel(auto_connect=True, clock=clock)
    b = UnguardedBalancer(ch)
    assert ch.call(lambda: b.update_channel_state(UPDATE))
    clock.advance(0.25)
    assert b.log == EXPECTED
    assert b.max_depth == 1


class _SyncSubchannel:
    """Reports every state change synchronously from connect()/shutdown(), like
    grpc_lite._subchannel.Subchannel."""

    def __init__(
        self,
        addresses: tuple[Address, ...],
        on_state_change: Callable[[Any, ConnectivityState, str | None], None],
    ) -> None:
        self.addresses = addresses
        self.state = S.IDLE
        self._on_state_change = on_state_change

    def connect(self) -> None:
        if self.state is S.IDLE:
            self._set(S.CONNECTING)

    def shutdown(self) -> None:
        self._set(S.SHUTDOWN)

    def _set(self, state: ConnectivityState) -> None:
        self.state = state
        self._on_state_change(self, state, None)


class _Host(BalancerHost):
    target = "test:///target"

    def __init__(self) -> None:
        self.states: list[BalancerState] = []

    def new_subchannel(
        self,
        addresses: tuple[Address, ...],
        on_state_change: Callable[[_Subchannel, ConnectivityState, str | None], None],
        health_check: bool,
    ) -> _Subchannel:
        sc: Any = _SyncSubchannel(addresses, on_state_change)
        return sc  # type: ignore[no-any-return]

    def balancer_state(self, wrapper: BalancerWrapper[Any], state: BalancerState) -> None:
        self.states.append(state)

    def resolve_now(self) -> None:
        pass


def _wrapper(
    clock: FakeClock, delay: float = 0.25
) -> tuple[BalancerWrapper[UnguardedBalancer], list[Exception]]:
    errors: list[Exception] = []
    wrapper = BalancerWrapper(
        build=lambda ch: UnguardedBalancer(ch, delay),
        host=_Host(),
        serializer=CallbackSerializer(on_error=errors.append),
        clock=clock,
    )
    return wrapper, errors


def test_timer_callback_is_not_reentered_through_the_channel_wrapper() -> None:
    """The channel's own path: clock -> serializer -> balancer; the report comes after."""
    clock = FakeClock()
    wrapper, errors = _wrapper(clock)
    b = wrapper.balancer
    assert wrapper.update_channel_state(UPDATE)
    clock.advance(0.25)
    assert errors == []
    assert b.log == EXPECTED
    assert b.max_depth == 1


def test_zero_delay_runs_after_the_running_callback() -> None:
    """call_later(0, ...) from inside a serializer callback runs right after it returns."""
    clock = FakeClock()
    wrapper, errors = _wrapper(clock, delay=0)
    b = wrapper.balancer
    serializer: CallbackSerializer = wrapper._serializer
    serializer.schedule(lambda: wrapper.update_channel_state(UPDATE))
    assert errors == []
    assert b.log == ["update", *EXPECTED[1:]]
    assert b.max_depth == 1
    assert clock.pending() == []


def test_closed_balancers_timers_never_run() -> None:
    clock = FakeClock()
    wrapper, _ = _wrapper(clock)
    b = wrapper.balancer
    wrapper.update_channel_state(UPDATE)
    assert b.timer is not None
    b.timer = None  # the balancer "forgets" to cancel it: the wrapper must still drop it
    wrapper.close()
    clock.advance(1)
    assert b.log == ["update"]


def test_timer_cancelled_while_queued_does_not_run() -> None:
    """cancel() holds even after the clock fired, while the callback waits its turn."""
    clock = FakeClock()
    ch = FakeBalancerChannel(clock=clock)
    ran: list[str] = []
    handle: list[TimerHandle] = []

    def first() -> None:
        ran.append("first")
        clock.advance(1)  # fires `second`'s timer: queued behind this callback
        handle[0].cancel()

    handle.append(ch.call_later(1, ran.append, "second"))
    ch.call(first)
    assert ran == ["first"]
    assert handle[0].cancelled()

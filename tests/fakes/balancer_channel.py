"""FakeBalancerChannel and FakeSubchannel: a recording `BalancerChannel` for balancer tests.

grpc-go counterpart: internal/testutils/balancer.go (``BalancerClientConn``). Like the real
channel, the fake runs every subchannel report through a `CallbackSerializer`: a report made
while a balancer call is running (inside `FakeBalancerChannel.call`, or from another report)
is queued and delivered after it, never re-entrantly. Tests call balancer methods through
`call()` so that they run "inside the serializer" as the channel would run them. The
balancer's timers (`call_later`) run on a `FakeClock` (the channel's `clock`), and their
callbacks go through the same serializer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from grpc_lite._connectivity import ConnectivityState
from grpc_lite._serializer import CallbackSerializer, SerializedTimer
from grpc_lite.balancer import (
    BalancerState,
    Picker,
    PickInfo,
    PickResult,
    Subchannel,
    SubchannelState,
)
from grpc_lite.resolver import Address
from tests.fakes.clock import CheckingClock, FakeClock

__all__ = ["FakeBalancerChannel", "FakeSubchannel"]

_T = TypeVar("_T")
_S = ConnectivityState

PICK = PickInfo(method="/pkg.Service/Method")


class FakeSubchannel:
    """Implements `grpc_lite.balancer.Subchannel`; the test moves its state with `set_state`.

    `connect()` and `shutdown()` are counted. By default `connect()` does not change the state
    (the test says when the attempt starts, succeeds or fails); with the channel's
    `auto_connect` it moves an IDLE subchannel to CONNECTING and reports it at once, as the real
    subchannel does. `shutdown()` moves to SHUTDOWN and reports it, like the real one.
    """

    def __init__(
        self,
        channel: FakeBalancerChannel,
        addresses: Sequence[Address],
        on_state_change: Callable[[Subchannel, SubchannelState], None],
    ) -> None:
        self._channel = channel
        self._addresses = tuple(addresses)
        self._on_state_change = on_state_change
        self._state = _S.IDLE
        self.connect_count = 0
        self.shutdown_count = 0
        self.health_check = False

    @property
    def addresses(self) -> tuple[Address, ...]:
        return self._addresses

    @property
    def addr(self) -> str:
        """The first address's ``addr`` string (test convenience)."""
        return self._addresses[0].addr

    @property
    def state(self) -> ConnectivityState:
        return self._state

    @property
    def is_shutdown(self) -> bool:
        return self._state is _S.SHUTDOWN

    def connect(self) -> None:
        self.connect_count += 1
        if self._channel.auto_connect and self._state is _S.IDLE:
            self._set(_S.CONNECTING, None)

    def shutdown(self) -> None:
        self.shutdown_count += 1
        if self._state is not _S.SHUTDOWN:
            self._set(_S.SHUTDOWN, None)

    def set_state(self, state: ConnectivityState, error: str | None = None) -> None:
        """Move to `state` and report it through the channel's serializer."""
        if self._state is _S.SHUTDOWN:
            raise AssertionError(f"{self.addr}: set_state({state.name}) after shutdown")
        self._set(state, error)
        self._channel.raise_errors()

    def _set(self, state: ConnectivityState, error: str | None) -> None:
        self._state = state
        self._channel.serializer.schedule(
            self._on_state_change, self, SubchannelState(state=state, error=error)
        )

    def __repr__(self) -> str:
        return f"FakeSubchannel({self.addr!r}, {self._state.name})"


class FakeBalancerChannel:
    """Implements `grpc_lite.balancer.BalancerChannel` and records what the balancer did.

    - `subchannels`: every subchannel created, in order (`new_subchannel` calls).
    - `states`: every `BalancerState` published (`update_state` calls).
    - `resolve_now_count`: `resolve_now` calls.
    - `clock`: the FakeClock the balancer's timers run on (a new one unless given).
    """

    def __init__(
        self,
        target: str = "fake:///target",
        *,
        auto_connect: bool = False,
        clock: FakeClock | None = None,
    ) -> None:
        self._target = target
        self.auto_connect = auto_connect
        self.clock = clock if clock is not None else FakeClock()
        self._timer_clock = CheckingClock(self.clock, self.raise_errors)
        self.serializer = CallbackSerializer(on_error=self._record_error)
        self.subchannels: list[FakeSubchannel] = []
        self.states: list[BalancerState] = []
        self.resolve_now_count = 0
        self._errors: list[Exception] = []

    # -- BalancerChannel ---------------------------------------------------------------------

    @property
    def target(self) -> str:
        return self._target

    def new_subchannel(
        self,
        addresses: Sequence[Address],
        *,
        on_state_change: Callable[[Subchannel, SubchannelState], None],
        health_check: bool = False,
    ) -> FakeSubchannel:
        sc = FakeSubchannel(self, addresses, on_state_change)
        sc.health_check = health_check
        self.subchannels.append(sc)
        return sc

    def update_state(self, state: BalancerState) -> None:
        self.states.append(state)

    def resolve_now(self) -> None:
        self.resolve_now_count += 1

    def call_later(
        self, delay: float, callback: Callable[..., object], *args: object
    ) -> SerializedTimer:
        """The channel's timer: `callback` runs on the serializer once `clock` reaches it;
        what it raised is re-raised from the `clock.advance()` that fired it."""
        return SerializedTimer(self.serializer, self._timer_clock, delay, callback, *args)

    # -- test controls -----------------------------------------------------------------------

    def call(self, fn: Callable[[], _T]) -> _T:
        """Run `fn()` inside the serializer, as the channel calls a balancer, and return its
        result; exceptions (from it or from reports it queued) are re-raised here."""
        results: list[_T] = []
        self.serializer.schedule(lambda: results.append(fn()))
        self.raise_errors()
        return results[0]

    def raise_errors(self) -> None:
        if self._errors:
            errors, self._errors = self._errors, []
            raise errors[0]

    @property
    def state(self) -> ConnectivityState | None:
        """The last published connectivity state."""
        return self.states[-1].state if self.states else None

    @property
    def picker(self) -> Picker:
        return self.states[-1].picker

    @property
    def state_names(self) -> list[str]:
        return [s.state.name for s in self.states]

    def pick(self) -> PickResult:
        return self.picker.pick(PICK)

    def live(self) -> list[FakeSubchannel]:
        return [sc for sc in self.subchannels if not sc.is_shutdown]

    def subchannel(self, addr: str) -> FakeSubchannel:
        """The live subchannel for `addr` (exactly one must exist)."""
        found = [sc for sc in self.live() if sc.addr == addr]
        if len(found) != 1:
            raise AssertionError(f"{len(found)} live subchannels for {addr}: {self.subchannels}")
        return found[0]

    def _record_error(self, exc: Exception) -> None:
        self._errors.append(exc)

"""Fixtures for resolver tests: a recording ResolverChannel, a fake clock and fake DNS."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from grpc_lite._clock import Clock, LoopClock
from grpc_lite._serializer import CallbackSerializer, SerializedTimer
from grpc_lite.resolver import ResolverState
from tests.fakes.clock import CheckingClock, FakeClock
from tests.fakes.dns import FakeDns


class FakeResolverChannel:
    """Implements grpc_lite.resolver.ResolverChannel; records what the resolver pushed.

    The resolver's timers (`call_later`) run on `clock` (the real loop's unless given) and
    their callbacks on a `CallbackSerializer`, as in the channel; what a callback raised is
    re-raised from the clock step that fired it.
    """

    def __init__(self, options: Mapping[str, Any] | None = None, *, clock: Clock | None = None):
        self.clock: Clock = clock if clock is not None else LoopClock()
        self._errors: list[Exception] = []
        self.serializer = CallbackSerializer(on_error=self._errors.append)
        self._timer_clock = CheckingClock(self.clock, self.raise_errors)
        self._options = dict(options or {})
        self.states: list[ResolverState] = []
        self.errors: list[Exception] = []
        self.events: list[ResolverState | Exception] = []
        self.accept = True

    @property
    def channel_options(self) -> Mapping[str, Any]:
        return self._options

    def update_state(self, state: ResolverState) -> bool:
        self.states.append(state)
        self.events.append(state)
        return self.accept

    def report_error(self, exc: Exception) -> None:
        self.errors.append(exc)
        self.events.append(exc)

    def call_later(
        self, delay: float, callback: Callable[..., object], *args: object
    ) -> SerializedTimer:
        return SerializedTimer(self.serializer, self._timer_clock, delay, callback, *args)

    def raise_errors(self) -> None:
        if self._errors:
            errors, self._errors[:] = list(self._errors), []
            raise errors[0]

    @property
    def addresses(self) -> list[str]:
        """The addresses of the last state."""
        return [a.addr for a in self.states[-1].addresses] if self.states else []


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_dns() -> FakeDns:
    return FakeDns()


@pytest.fixture
def resolver_channel(fake_clock: FakeClock) -> FakeResolverChannel:
    return FakeResolverChannel(clock=fake_clock)

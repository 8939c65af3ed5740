"""Resolver timers (`ResolverChannel.call_later`) run on the channel's serializer.

Through the channel's own `ResolverWrapper`: the callback is queued on the serializer, so it
never runs while `resolve_now()` does, an update it pushes reaches the channel after it
returns, and a closed resolver's timers never run.
"""

from __future__ import annotations

from grpc_lite._resolver_wrapper import ResolverWrapper
from grpc_lite._serializer import CallbackSerializer
from grpc_lite.resolver import (
    Address,
    BuildOptions,
    Resolver,
    ResolverChannel,
    ResolverState,
    Target,
)
from tests.fakes.clock import FakeClock

TARGET = Target(scheme="timed", authority="", endpoint="svc", url="timed:///svc")
STATE = ResolverState((Address("10.0.0.1:1"),))


class TimedResolver(Resolver):
    def __init__(self, channel: ResolverChannel, log: list[str]) -> None:
        self.channel = channel
        self.log = log
        self.timer = channel.call_later(30.0, self._on_timer)

    def _on_timer(self) -> None:
        self.log.append("timer-start")
        self.channel.update_state(STATE)
        self.log.append("timer-end")


class TimedBuilder:
    scheme = "timed"

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.built: TimedResolver | None = None

    def build(self, target: Target, channel: ResolverChannel, options: BuildOptions) -> Resolver:
        self.built = TimedResolver(channel, self.log)
        return self.built

    def validate_target(self, target: Target) -> None:
        pass

    def default_authority(self, target: Target) -> str:
        return target.endpoint


def _wrapper(log: list[str], clock: FakeClock) -> tuple[ResolverWrapper, TimedBuilder]:
    builder = TimedBuilder(log)

    def on_state(state: ResolverState) -> bool:
        log.append("channel-update")
        return True

    wrapper = ResolverWrapper(
        builder=builder,  # type: ignore[arg-type]
        target=TARGET,
        options=BuildOptions(clock=clock),
        serializer=CallbackSerializer(),
        on_state=on_state,
        on_error=lambda exc: log.append(f"error {exc}"),
    )
    return wrapper, builder


def test_resolver_timer_runs_on_the_serializer() -> None:
    log: list[str] = []
    clock = FakeClock()
    wrapper, _ = _wrapper(log, clock)
    wrapper.start()
    assert clock.pending() == [clock.now() + 30.0]
    clock.advance(30.0)
    # The update the timer pushed was queued behind it: the channel saw it afterwards.
    assert log == ["timer-start", "timer-end", "channel-update"]


def test_closed_resolvers_timers_never_run() -> None:
    log: list[str] = []
    clock = FakeClock()
    wrapper, builder = _wrapper(log, clock)
    wrapper.start()
    wrapper.close()  # the resolver does not cancel its timer: the wrapper drops it
    clock.advance(30.0)
    assert log == []
    assert builder.built is not None and builder.built.timer.cancelled()

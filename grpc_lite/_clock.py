"""Time for the control plane.

Every piece of code that schedules or measures time (backoff, keepalive, idleness, DNS
pacing, deadlines) takes a `Clock`. `LoopClock` is the real one; tests pass
`tests.fakes.clock.FakeClock` and move time with `advance()`, so no test sleeps for real.
Nothing outside this module reads `time.monotonic()` or calls `asyncio.sleep()`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol, TypeVarTuple, Unpack

__all__ = ["Clock", "LoopClock", "TimerHandle"]

_Ts = TypeVarTuple("_Ts")


class TimerHandle(Protocol):
    """A scheduled callback; `asyncio.TimerHandle` satisfies it."""

    def cancel(self) -> None: ...

    def cancelled(self) -> bool: ...


class Clock(Protocol):
    """Monotonic time and timers.

    Callers: any code on the channel's event loop. `call_later`, `call_at` and `sleep` need
    a running loop; `now` does not.
    """

    def now(self) -> float:
        """Monotonic seconds. Only differences are meaningful."""
        ...

    def call_later(
        self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> TimerHandle:
        """Run `callback(*args)` on the loop after `delay` seconds (at once if <= 0)."""
        ...

    def call_at(
        self, when: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> TimerHandle:
        """Run `callback(*args)` on the loop once `now() >= when`."""
        ...

    async def sleep(self, delay: float) -> None:
        """Suspend the calling task for `delay` seconds."""
        ...


class LoopClock:
    """The real clock: `time.monotonic()` plus the running asyncio loop's timers.

    `now()` is `time.monotonic()` rather than `loop.time()` so that it is readable outside a
    running loop; `call_at` is expressed through `call_later` so that loops whose `time()`
    is not `time.monotonic()` (uvloop) still agree with `now()`.
    """

    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()

    def call_later(
        self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def call_at(
        self, when: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(when - time.monotonic(), callback, *args)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)

"""FakeClock: a `grpc_lite._clock.Clock` whose time moves only through `advance()`.

Timers live in a heap ordered by (due time, scheduling order). `advance(dt)` fires every
timer that falls due within the step, in order, with `now()` set to each timer's due time
while it runs; `sleep()` is a timer that resolves a future. Woken coroutines resume when the
test next yields to the loop; `advance_async()` yields between timers so that a sleeper
which re-arms itself sees the right time (trio's MockClock idea, with explicit steps).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any

__all__ = ["CheckingClock", "FakeClock", "FakeTimerHandle"]


class FakeTimerHandle:
    __slots__ = ("_args", "_callback", "_cancelled", "_when")

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]):
        self._when = when
        self._callback = callback
        self._args = args
        self._cancelled = False

    def when(self) -> float:
        """The due time, as asyncio's ``TimerHandle.when()``."""
        return self._when

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled

    def _run(self) -> None:
        self._cancelled = True  # a fired timer counts as done, like asyncio's
        self._callback(*self._args)


class FakeClock:
    """Deterministic clock for tests. Starts at 1000.0 so that 0 never means "unset"."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._heap: list[tuple[float, int, FakeTimerHandle]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(
        self, delay: float, callback: Callable[..., object], *args: Any
    ) -> FakeTimerHandle:
        return self.call_at(self._now + max(delay, 0.0), callback, *args)

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> FakeTimerHandle:
        handle = FakeTimerHandle(when, callback, args)
        heapq.heappush(self._heap, (when, next(self._seq), handle))
        return handle

    async def sleep(self, delay: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        handle = self.call_later(delay, wake)
        try:
            await fut
        finally:
            handle.cancel()

    # -- test controls ---------------------------------------------------------------------

    def pending(self) -> list[float]:
        """Due times of the live timers, soonest first."""
        return sorted(h.when() for _, _, h in self._heap if not h.cancelled())

    def next_due(self) -> float | None:
        self._drop_cancelled()
        return self._heap[0][0] if self._heap else None

    def advance(self, dt: float) -> None:
        """Move time forward by `dt`, firing due timers in order (sync)."""
        if dt < 0:
            raise ValueError("time does not go backwards")
        end = self._now + dt
        while self._fire_next(end):
            pass
        self._now = end

    async def advance_async(self, dt: float, *, settle_rounds: int = 10) -> None:
        """Like `advance`, but lets the loop run after each timer so woken tasks react."""
        if dt < 0:
            raise ValueError("time does not go backwards")
        end = self._now + dt
        await settle(settle_rounds)
        while self._fire_next(end):
            await settle(settle_rounds)
        self._now = end
        await settle(settle_rounds)

    def _drop_cancelled(self) -> None:
        heap = self._heap
        while heap and heap[0][2].cancelled():
            heapq.heappop(heap)

    def _fire_next(self, end: float) -> bool:
        self._drop_cancelled()
        if not self._heap or self._heap[0][0] > end:
            return False
        when, _, handle = heapq.heappop(self._heap)
        self._now = max(self._now, when)
        handle._run()
        return True


class CheckingClock:
    """Timers on `clock` that call `check()` after each callback.

    The fakes' channels give it to `grpc_lite._serializer.SerializedTimer`: the timer's
    callback runs on the fake's serializer, which records what it raised, and `check()`
    re-raises that from the `advance()` that fired the timer, as a plain timer would.
    """

    def __init__(self, clock: Any, check: Callable[[], None]) -> None:
        self._clock = clock
        self._check = check

    def now(self) -> float:
        return float(self._clock.now())

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Any:
        return self._clock.call_later(delay, self._fire, callback, args)

    def _fire(self, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        callback(*args)
        self._check()


async def settle(rounds: int = 10) -> None:
    """Let ready callbacks and woken tasks run (no wall-clock time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)

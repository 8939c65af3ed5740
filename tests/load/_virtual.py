"""An asyncio loop on virtual time: when nothing is ready, time jumps to the next timer.

``loop.time()`` starts at 0 and moves only when the loop would otherwise wait, by exactly
the wait, so timers fire at their due time to the nanosecond and a test of seconds of
scheduled load runs in milliseconds. ``clock_ns`` is the matching ``perf_counter_ns``.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _Selector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is not None and timeout > 0:
            self.now += timeout
        return super().select(0)  # type: ignore[no-any-return]


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual = _Selector()
        super().__init__(self._virtual)
        self._clock_resolution = 1e-9

    def time(self) -> float:
        return self._virtual.now

    def clock_ns(self) -> int:
        return round(self._virtual.now * 1e9)


def run_virtual(make: Any) -> Any:
    """Run ``make(loop)`` (a coroutine factory) on a fresh virtual-time loop."""
    loop = VirtualTimeLoop()
    try:
        coro: Coroutine[Any, Any, Any] = make(loop)
        return loop.run_until_complete(coro)
    finally:
        loop.close()


async def advance(seconds: float) -> None:
    """On a VirtualTimeLoop: let ``seconds`` of virtual time pass (no real time: the loop
    jumps its clock to each timer due meanwhile, and runs it)."""
    await asyncio.sleep(seconds)

"""An asyncio event loop whose timers fire on time (to a few microseconds, not 1 ms).

asyncio's epoll selector rounds every timeout *up* to a whole millisecond (epoll_wait's
unit), so a request scheduled by the open model would leave up to 1 ms late, and that
lateness would count in its latency. :class:`PreciseSelector` waits with ``select()`` on
the epoll descriptor itself (``select`` takes microseconds), then collects the events
with a zero-timeout epoll. The thread's timer slack is also lowered to 1 us (Linux
``prctl(PR_SET_TIMERSLACK)``; best effort).

``--busy-poll`` (:func:`set_busy_poll`) goes further: the selector never blocks, it polls
the epoll until an event arrives or the loop's next timer is due. The core then never
idles between requests, so a call at a low rate does not pay for a core that has to
wake up and caches gone cold (on the 2-core VM of benchmarks/README.md's figures that is
most of the gap between grpc-lite's and ghz's latency at 200/s), at the price of one busy
core per worker process.
"""

from __future__ import annotations

import asyncio
import select
import selectors
import sys
import time
import weakref
from typing import Any

__all__ = ["new_event_loop", "set_busy_poll"]

_PR_SET_TIMERSLACK = 29


class PreciseSelector(selectors.EpollSelector):
    #: Before blocking, poll this long (seconds) for an event, as Go's scheduler spins
    #: before it parks a thread: a reply that arrives meanwhile is seen at once instead of
    #: after the tens of microseconds a sleeping core takes to wake.
    spin = 100e-6
    #: Never block: poll until an event or the timeout (see set_busy_poll).
    busy = False

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if self.busy and (timeout is None or timeout > 0):
            poll = super().select
            clock = time.perf_counter
            end = None if timeout is None else clock() + timeout
            while True:
                ready = poll(0)
                if ready or (end is not None and clock() >= end):
                    return ready
        if timeout is None or timeout > 0:
            ready = super().select(0)
            if ready:
                return ready
            if self.spin > 0:
                end = time.perf_counter() + min(self.spin, timeout or self.spin)
                while time.perf_counter() < end:
                    ready = super().select(0)
                    if ready:
                        return ready
                if timeout is not None:
                    timeout = max(0.0, timeout - self.spin)
            if timeout is None or timeout > 0:
                try:
                    select.select([self.fileno()], [], [], timeout)
                except InterruptedError:  # pragma: no cover - retried by the loop
                    pass
            timeout = 0
        return super().select(timeout)


def _lower_timer_slack() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_TIMERSLACK, 1000, 0, 0, 0)
    except Exception:  # pragma: no cover - no prctl: default slack (50 us)
        pass


_selectors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PreciseSelector] = (
    weakref.WeakKeyDictionary()
)


def new_event_loop() -> asyncio.AbstractEventLoop:
    if not hasattr(selectors, "EpollSelector"):  # pragma: no cover - not Linux
        return asyncio.new_event_loop()
    _lower_timer_slack()
    selector = PreciseSelector()
    loop: Any = asyncio.SelectorEventLoop(selector)
    _selectors[loop] = selector
    return loop  # type: ignore[no-any-return]


def set_busy_poll(loop: asyncio.AbstractEventLoop, on: bool) -> bool:
    """Make ``loop`` (one of :func:`new_event_loop`'s) poll instead of blocking, or stop.

    False when ``loop`` is not one of ours (nothing changed).
    """
    selector = _selectors.get(loop)
    if selector is None:
        return False
    selector.busy = on
    return True

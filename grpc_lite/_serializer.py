"""CallbackSerializer: the channel's single-writer queue for control-plane callbacks.

grpc-go counterpart: internal/grpcsync.CallbackSerializer. Every call from the channel into
a resolver or balancer, and every subchannel state change, goes through one serializer per
channel. Callbacks are synchronous, run in FIFO order and never re-entered: a callback that
schedules another only enqueues it, and it runs after the current one returns.

`SerializedTimer` is a timer whose callback is queued on a serializer when it fires: the
timers `BalancerChannel.call_later` and `ResolverChannel.call_later` give plugins, so that a
plugin's own timer is serialized with every other call into it.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import TypeVarTuple, Unpack

from ._clock import Clock, TimerHandle

__all__ = ["CallbackSerializer", "SerializedTimer"]

_LOGGER = logging.getLogger("grpc_lite")

_Ts = TypeVarTuple("_Ts")


class CallbackSerializer:
    """A synchronous FIFO trampoline.

    `schedule()` appends the callback and, unless a drain is already running further up the
    stack, drains the queue right away. Exceptions raised by a callback are logged on the
    `grpc_lite` logger (and handed to `on_error` when given, a test hook) and never reach
    the caller of `schedule()`.

    `close()` makes later `schedule()` calls drop their callback and return False. Callbacks
    already queued when `close()` is called from inside a callback still run, as grpc-go runs
    what was queued before its context ended.

    Callers: any sync code on the channel's event loop. Not thread-safe.
    """

    __slots__ = ("_closed", "_draining", "_on_error", "_queue")

    def __init__(self, *, on_error: Callable[[Exception], None] | None = None) -> None:
        # Immutable after __init__.
        self._on_error = on_error
        # Mutated only by schedule()/close() on the loop.
        self._queue: collections.deque[tuple[Callable[..., object], tuple[object, ...]]] = (
            collections.deque()
        )
        self._draining = False
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def schedule(self, fn: Callable[[Unpack[_Ts]], object], *args: *_Ts) -> bool:
        """Queue `fn(*args)`; return False (and drop it) if the serializer is closed."""
        if self._closed:
            return False
        self._queue.append((fn, args))
        if not self._draining:
            self._drain()
        return True

    def close(self) -> None:
        """Drop every callback scheduled from now on. Idempotent."""
        self._closed = True

    def _drain(self) -> None:
        self._draining = True
        try:
            queue = self._queue
            while queue:
                fn, args = queue.popleft()
                try:
                    fn(*args)
                except Exception as exc:
                    _LOGGER.exception("callback %r raised", fn)
                    if self._on_error is not None:
                        self._on_error(exc)
        finally:
            # A BaseException (KeyboardInterrupt, CancelledError) propagates, but must not
            # leave the serializer believing a drain is still running.
            self._draining = False


class SerializedTimer:
    """A timer whose callback runs on a `CallbackSerializer` (satisfies `TimerHandle`).

    When the clock's timer fires, the callback is *queued* on the serializer, never called
    from the clock: it runs after whatever callback is running then, like any other
    serialized work, and whatever it causes (a subchannel report) is queued behind it. With
    ``delay <= 0`` it is queued at once: it runs as soon as the serializer callback running
    now returns (at once when none is running). `cancel()` works until the callback starts,
    including while it waits in the serializer's queue; `cancelled()` is True once it was
    cancelled or has run.

    Callers: code on the loop that owns the serializer and the clock. Not thread-safe.
    """

    __slots__ = ("_args", "_callback", "_done", "_handle", "_serializer")

    def __init__(
        self,
        serializer: CallbackSerializer,
        clock: Clock,
        delay: float,
        callback: Callable[[Unpack[_Ts]], object],
        *args: *_Ts,
    ) -> None:
        self._serializer = serializer
        self._callback: Callable[..., object] | None = callback
        self._args: tuple[object, ...] = args
        self._done = False
        self._handle: TimerHandle | None = None
        if delay > 0:
            self._handle = clock.call_later(delay, self._fire)
        else:
            self._fire()

    def cancel(self) -> None:
        self._done = True
        self._callback = None
        self._args = ()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def cancelled(self) -> bool:
        return self._done

    def _fire(self) -> None:
        self._handle = None
        if not self._done and not self._serializer.schedule(self._run):
            self.cancel()  # the serializer is closed: the callback can never run

    def _run(self) -> None:
        callback, args = self._callback, self._args
        if self._done or callback is None:
            return
        self.cancel()
        callback(*args)

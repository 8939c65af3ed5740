"""The channel's event-loop and fork guard (L5).

A channel serves the one event loop it was first used on, as in grpc.aio; a channel inherited
by a child process across ``os.fork()`` is closed there without touching the parent's
connections (grpc/grpc doc/fork_support.md: the child must make its own channels).
`LoopGuard` is the channel's base for this: the loop binding, ``check_open`` (every call's
first step) and the at-fork hook over every live channel.
"""

import asyncio
import os
import threading
import weakref
from typing import Any

from .status import UsageError

__all__ = ["FORKED", "LoopGuard", "close_socket", "other_loop"]

_running_loop = asyncio.get_running_loop
_thread_id = threading.get_ident
FORKED = (
    "this channel was inherited from the parent process across os.fork(); its "
    "connections belong to the parent.  Create a new channel in the child."
)


def other_loop(target: str, loop: asyncio.AbstractEventLoop) -> str:
    bound = "a closed event loop" if loop.is_closed() else "another event loop"
    return (
        f"channel {target!r} is bound to {bound}, the one it was first used on; a channel "
        f"serves one event loop (as in grpc.aio): create one per loop, inside it"
    )


class LoopGuard:
    """The loop a channel is bound to, and whether it may still be used.

    The channel sets ``_closed`` and ``_forked`` and implements `_inherited` (what to do in
    a child process). Who may call: the channel's coroutines; `_inherited` from the at-fork
    hook, with no loop.
    """

    target: str
    _closed: bool
    _forked: bool

    def _init_guard(self) -> None:
        # Bound on first use (a channel may be built outside a loop).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0  # the thread the loop was bound in (check_open's fast test)
        _LIVE.add(self)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
            self._loop_thread = _thread_id()
        return loop

    def check_open(self) -> None:
        """At every call's start: the channel is open and this is its event loop."""
        if self._closed:
            raise UsageError(FORKED if self._forked else "Channel is closed.")
        loop = self._loop
        # Fast test (get_running_loop() makes a getpid() call on 3.11): the loop is
        # running in the thread it was bound in, so it is this thread's running loop.
        if loop is not None and (_thread_id() != self._loop_thread or not loop.is_running()):
            self._check_loop()

    def _check_loop(self) -> None:
        """The exact test, for the channel's other coroutines: UsageError unless the running
        loop is the channel's (a closed channel is fine here)."""
        if self._forked:
            raise UsageError(FORKED)
        loop = self._loop
        if loop is not None:
            if loop is not _running_loop():
                raise UsageError(other_loop(self.target, loop))
            self._loop_thread = _thread_id()  # the same loop, now run by another thread

    def _inherited(self) -> None:
        """In a child process after os.fork(): mark the channel unusable and drop this
        process's copies of its sockets, without the event loop (the channel's override)."""
        self._forked = True
        self._closed = True


def close_socket(transport: Any) -> None:
    """Close this process's descriptor of a transport's socket without the event loop
    (nothing is sent while another process holds the socket open)."""
    raw = transport._transport
    sock = raw.get_extra_info("socket") if raw is not None else None
    sock = getattr(sock, "_sock", sock)  # asyncio's TransportSocket wraps the real one
    if sock is not None:
        try:
            sock.close()
        except OSError:
            pass


# Every channel not yet garbage-collected, for the at-fork hook.
_LIVE: "weakref.WeakSet[LoopGuard]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for channel in list(_LIVE):
        channel._inherited()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

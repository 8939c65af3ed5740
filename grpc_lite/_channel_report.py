"""What a channel shows of itself (L5): the snapshot of each subchannel, the plugins'
``debug_info()`` hooks, and the stream of trace events (``Channel.trace_events``).

grpc-go counterpart: channelz (``internal/channelz``) and the CSDS-style dumps plugins give.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from ._connectivity import ConnectivityState, ConnectivityStateManager
from ._snapshot import SubchannelSnapshot, TraceEvent, TraceLog
from ._subchannel import Subchannel

__all__ = ["address_attributes", "debug_info", "subchannel_snapshot", "trace_events"]

log = logging.getLogger("grpc_lite")


def subchannel_snapshot(sc: Subchannel) -> SubchannelSnapshot:
    return SubchannelSnapshot(
        address=sc.address if sc.proxy is None else f"{sc.address} via proxy {sc.proxy}",
        proxy=sc.proxy,
        state=sc.state,
        health=sc.health if sc._health_task is not None else None,
        connect_attempts=sc.connect_attempts,
        current_backoff=sc.current_backoff,
        next_attempt_at=sc.next_attempt_at,
        last_error=sc.last_error,
        calls_started=sc.calls_started,
        calls_succeeded=sc.calls_succeeded,
        calls_failed=sc.calls_failed,
        attempts_avoided=sc.attempts_avoided,
        attributes=address_attributes(sc),
    )


def debug_info(what: str, plugin: object) -> dict[str, Any] | None:
    """``plugin.debug_info()`` for a snapshot, when it has one; a plugin's failure is shown
    there, not raised."""
    method = getattr(plugin, "debug_info", None)
    if method is None:
        return None
    try:
        info = method()
    except Exception as exc:
        log.exception("grpc_lite: the %s's debug_info() raised", what)
        return {"error": f"debug_info() raised {exc!r}"}
    if info is not None and not isinstance(info, Mapping):
        return {"error": f"debug_info() returned a {type(info).__name__}, not a dict"}
    return dict(info) if info is not None else None


def address_attributes(sc: Subchannel) -> dict[str, str]:
    """The attributes of the subchannel's connected address (else its first), as str."""
    addresses = sc.addresses
    address = addresses[0]
    connected = sc.connected_address
    if connected is not None and len(addresses) > 1:
        address = next((a for a in addresses if a.addr == connected), address)
    return {key: str(value) for key, value in address.attributes}


async def trace_events(
    trace: TraceLog, state: ConnectivityStateManager, closed: Callable[[], bool]
) -> AsyncIterator[TraceEvent]:
    """Every new event of ``trace`` as it happens, until ``state`` goes SHUTDOWN (at once
    when ``closed()`` already)."""
    queue: asyncio.Queue[TraceEvent | None] = asyncio.Queue()
    remove = trace.add_listener(queue.put_nowait)
    shutdown = ConnectivityState.SHUTDOWN
    removed = state.add_listener(
        lambda old, new: queue.put_nowait(None) if new is shutdown else None
    )
    try:
        if closed():
            return
        while (event := await queue.get()) is not None:
            yield event
        while not queue.empty():  # events recorded while shutting down
            event = queue.get_nowait()
            if event is not None:
                yield event
    finally:
        remove()
        removed()

"""Watching a channel's trace events as they happen (issue 5: no polling loop)."""

import asyncio

import pytest

import grpc_lite
from grpc_lite.testing import Backend

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]


async def test_trace_events_iterator_sees_transitions_and_ends_at_close() -> None:
    """`async for event in channel.trace_events()` yields the channel and subchannel
    transitions in order and ends when the channel is closed."""
    async with Backend() as backend:
        channel = grpc_lite.insecure_channel(backend.address)
        seen: list[tuple[str, str]] = []

        async def consume() -> None:
            async for event in channel.trace_events():
                seen.append((event.subject, event.description))

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0)
        await channel.channel_ready()
        await channel.close()
        await asyncio.wait_for(consumer, 2)
    channel_moves = [d for s, d in seen if s == "channel" and "->" in d]
    assert channel_moves[:2] == ["IDLE -> CONNECTING", "CONNECTING -> READY"]
    assert channel_moves[-1].endswith("-> SHUTDOWN")
    assert any(s == f"subchannel {backend.address}" and d == "CONNECTING -> READY" for s, d in seen)


async def test_trace_events_on_a_closed_channel_ends_at_once() -> None:
    """Iterating a closed channel's events ends immediately."""
    channel = grpc_lite.insecure_channel("127.0.0.1:1")
    await channel.close()
    assert [e async for e in channel.trace_events()] == []

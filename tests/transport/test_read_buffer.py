"""The shared read buffer (grpc_lite/_transport/_protocol.py): every connection on a loop
reads into one buffer, so nothing may keep a view of it past a read.  Large messages with
distinct contents, interleaved across streams and across two connections on one loop, must
arrive intact.  CONFORMANCE 40/42 (message framing)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

import grpc_lite
from grpc_lite._transport import _protocol
from grpc_lite.testing import Backend, ServicerContext

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def pattern(tag: int, index: int, size: int) -> bytes:
    """Bytes no other (tag, index) shares, so a misplaced piece is always noticed."""
    seed = hashlib.sha256(b"%d/%d" % (tag, index)).digest()
    return (seed * (size // len(seed) + 1))[:size]


async def stream_patterns(request: bytes, context: ServicerContext) -> AsyncIterator[bytes]:
    tag, count, size = (int(x) for x in request.split(b","))
    for i in range(count):
        yield pattern(tag, i, size)
        if i % 2:
            await asyncio.sleep(0)  # let other streams' frames in between


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend() as b:
        b.add_unary_stream("/bench.Patterns/Stream", stream_patterns)
        yield b


async def _check(channel: grpc_lite.Channel, tag: int, count: int, size: int) -> None:
    call = channel.unary_stream("/bench.Patterns/Stream")(b"%d,%d,%d" % (tag, count, size))
    got = [msg async for msg in call]
    assert len(got) == count
    for i, msg in enumerate(got):
        assert msg == pattern(tag, i, size), f"stream {tag} message {i} corrupted"


async def test_interleaved_large_messages_on_two_connections_arrive_intact(
    backend: Backend,
) -> None:
    reads: list[int] = []
    original = _protocol.Http2Transport.buffer_updated

    def counting(self: Any, nbytes: int) -> None:
        reads.append(nbytes)
        original(self, nbytes)

    _protocol.Http2Transport.buffer_updated = counting  # type: ignore[method-assign]
    try:
        async with (
            grpc_lite.insecure_channel(backend.address) as a,
            grpc_lite.insecure_channel(backend.address) as b,
        ):
            jobs = [
                _check(ch, tag, count=4, size=size)
                for tag, (ch, size) in enumerate(
                    [(a, 300_000), (b, 300_000), (a, 70_001), (b, 1_048_577), (a, 5)] * 3
                )
            ]
            await asyncio.gather(*jobs)
    finally:
        _protocol.Http2Transport.buffer_updated = original  # type: ignore[method-assign]
    assert backend.connections_accepted == 2
    # The messages really went through the shared buffer, in many reads.
    assert sum(reads) > 15 * 1_000_000
    assert len(reads) > 50
    assert max(reads) <= len(_protocol._read_buffer.view)

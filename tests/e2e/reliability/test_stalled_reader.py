"""A server that stops reading: writers wait for window, bounded by their deadlines
(issue 7, CONFORMANCE 12 and 50)."""

import asyncio

import pytest

import grpc_lite
from tests.h2peer import H2Peer, PeerStream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(10)]

CLIENT_STREAMING = "/grpc.testing.TestService/StreamingInputCall"


async def test_writer_blocked_on_window_ends_at_its_deadline() -> None:
    """The server grants a 1000-byte window and never reads or credits more: the client
    never sends beyond the window, write() blocks once 64 KiB are queued instead of
    buffering without bound, and the call ends DEADLINE_EXCEEDED at its deadline (with the
    blocked write raising it), not later."""
    gate = asyncio.Event()

    async def handler(stream: PeerStream) -> None:
        await gate.wait()  # never reads

    async with (
        H2Peer(handler, settings={"INITIAL_WINDOW_SIZE": 1000}, auto_ack_data=False) as peer,
        grpc_lite.insecure_channel(peer.target) as ch,
    ):
        loop = asyncio.get_running_loop()
        call = ch.stream_unary(CLIENT_STREAMING)(timeout=0.5)
        start = loop.time()
        writes = 0
        with pytest.raises(grpc_lite.RpcError) as info:
            for _ in range(100):
                await call.write(b"x" * 10_000)
                writes += 1
        elapsed = loop.time() - start
        assert info.value.code() is grpc_lite.StatusCode.DEADLINE_EXCEEDED
        assert 0.4 <= elapsed < 1.0, elapsed
        assert writes < 100  # backpressure: the writer waited instead of queueing all
        assert await call.code() is grpc_lite.StatusCode.DEADLINE_EXCEEDED
        (stream,) = peer.streams
        received = sum(flow for _, flow, _ in stream.data_frames)
        assert received <= 1000  # never beyond the window (12)
        gate.set()

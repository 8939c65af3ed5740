"""Connection loss, queued cancels and retry attempts as the wire shows them
(CONFORMANCE 41, 52, 53, 121) against the scripted peer."""

from __future__ import annotations

import asyncio
import json

import pytest

import grpc_lite
from tests.e2e.transport._wire import STREAMING_OUTPUT, UNARY, decode_timeout, open_channel
from tests.h2peer import H2Peer, PeerStream

pytestmark = [pytest.mark.integration, pytest.mark.timeout(10)]

SC = grpc_lite.StatusCode


def retry_config(max_attempts: int = 2, backoff: str = "0.2s") -> str:
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [{"service": "grpc.testing.TestService"}],
                    "retryPolicy": {
                        "maxAttempts": max_attempts,
                        "initialBackoff": backoff,
                        "maxBackoff": backoff,
                        "backoffMultiplier": 1,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


async def test_connection_drop_mid_stream_is_unavailable() -> None:
    """CONFORMANCE 41: the connection dies during a server-streaming call -> UNAVAILABLE."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_message(b"one")
        await asyncio.sleep(0.05)
        stream.connection.abort()

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        call = ch.unary_stream(STREAMING_OUTPUT)(b"", timeout=5)
        assert await call.read() == b"one"
        with pytest.raises(grpc_lite.RpcError) as ei:
            await call.read()
        assert ei.value.code() == SC.UNAVAILABLE


async def test_cancel_while_queued_opens_no_stream() -> None:
    """CONFORMANCE 52: a wait_for_ready call queued on a silent server, then cancelled or
    timed out: CANCELLED / DEADLINE_EXCEEDED and no HEADERS ever reaches the server."""
    async with H2Peer(silent=True) as peer, open_channel(peer) as ch:
        mc = ch.unary_unary(UNARY)
        call = mc(b"x", timeout=5, wait_for_ready=True)
        await peer.wait_for_connections(1)
        await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await call.code() == SC.CANCELLED
        with pytest.raises(grpc_lite.RpcError) as ei:
            await mc(b"y", timeout=0.2, wait_for_ready=True)
        assert ei.value.code() == SC.DEADLINE_EXCEEDED
        assert not peer.frames_of("HEADERS")


async def test_refused_once_then_unavailable_with_policy() -> None:
    """CONFORMANCE 121: refused once, then UNAVAILABLE every time with maxAttempts 2 -> 3
    streams in total (1 refused + 2 counted attempts), final status UNAVAILABLE."""
    seen: list[int] = []

    async def handler(stream: PeerStream) -> None:
        seen.append(stream.stream_id)
        if len(seen) == 1:
            await stream.reset(7)
        else:
            await stream.trailers_only(14, "try again")

    async with (
        H2Peer(handler) as peer,
        open_channel(peer, service_config=retry_config(2, "0.01s")) as ch,
    ):
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"x", timeout=5)
        assert ei.value.code() == SC.UNAVAILABLE
        await asyncio.sleep(0.1)
        assert len(peer.streams) == 3


async def test_retry_attempt_carries_remaining_time() -> None:
    """CONFORMANCE 53: the second attempt's grpc-timeout is smaller than the first's by at
    least the backoff (200 ms here, jitter makes it 0-200 ms; so check >= 0 and decreasing)."""
    seen: list[PeerStream] = []

    async def handler(stream: PeerStream) -> None:
        seen.append(stream)
        await stream.wait_end()
        if len(seen) == 1:
            await stream.trailers_only(14, "retry me")
        else:
            await stream.send_message(b"ok")
            await stream.send_trailers(0)

    async with (
        H2Peer(handler) as peer,
        open_channel(peer, service_config=retry_config(2, "0.2s")) as ch,
    ):
        assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"ok"
        assert len(peer.streams) == 2
        t1, _ = decode_timeout(peer.streams[0].header("grpc-timeout") or "")
        t2, _ = decode_timeout(peer.streams[1].header("grpc-timeout") or "")
        h1 = peer.connection.frames_of("HEADERS", peer.streams[0].stream_id)[0].time
        h2_ = peer.connection.frames_of("HEADERS", peer.streams[1].stream_id)[0].time
        gap = h2_ - h1
        assert t2 < t1
        # The remaining time shrank by about the time between the attempts.
        assert t1 - t2 >= gap - 0.05, (t1, t2, gap)

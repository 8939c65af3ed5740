"""GOAWAY drain, transparent retry of unprocessed streams, malformed GOAWAY, REFUSED_STREAM
and deadline/RST interplay (CONFORMANCE 49, 121, 122, 161, 163) against the scripted peer."""

from __future__ import annotations

import asyncio

import pytest

import grpc_lite
from tests.e2e.transport._wire import UNARY, open_channel
from tests.h2peer import H2Peer, PeerConnection, PeerStream, echo_unary

pytestmark = [pytest.mark.integration, pytest.mark.timeout(10)]

SC = grpc_lite.StatusCode


async def goaway_and_sync(conn: PeerConnection, last_stream_id: int, code: int = 0) -> None:
    """Send GOAWAY, then a PING; once the PING is ACKed the client has processed the GOAWAY
    (frames are handled in order), so no race with calls started afterwards."""
    conn.goaway(last_stream_id, code)
    conn.ping()
    await conn.wait_ping_acks(timeout=3)


async def test_goaway_drain_open_stream_completes_new_call_new_connection() -> None:
    """CONFORMANCE 161: GOAWAY(last=stream) while the stream is open: the stream still
    completes (a 200 KB response, so WINDOW_UPDATEs flow on the draining connection); a call
    started after the GOAWAY goes to a new connection (the peer sees 2 connections)."""
    release = asyncio.Event()
    big = bytes(range(256)) * 800

    async def handler(stream: PeerStream) -> None:
        if stream.connection.index == 0:
            await stream.wait_end()
            await release.wait()
            await stream.send_headers()
            await stream.send_message(big)
            await stream.send_trailers(0)
        else:
            await echo_unary(stream)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        mc = ch.unary_unary(UNARY)
        first = asyncio.ensure_future(mc(b"first", timeout=8))
        (st,) = await peer.wait_for_streams(1)
        conn0 = st.connection
        await goaway_and_sync(conn0, st.stream_id)
        second = await mc(b"second", timeout=5)
        assert second == b"second"
        assert peer.connection_count == 2
        assert peer.streams[1].connection.index == 1
        release.set()
        assert await first == big
        # Nothing new was opened on the draining connection; credit kept flowing there.
        assert [r.stream_id for r in conn0.frames_of("HEADERS")] == [st.stream_id]
        assert conn0.frames_of("WINDOW_UPDATE")
        assert not peer.errors


async def test_goaway_max_stream_id_then_final() -> None:
    """CONFORMANCE 161: grpcio's shutdown sequence: GOAWAY(2^31-1), PING, GOAWAY(last=1),
    then stream 1 finishes; a new call never goes to the old connection."""
    release = asyncio.Event()

    async def handler(stream: PeerStream) -> None:
        if stream.connection.index == 0:
            await stream.wait_end()
            await release.wait()
            await stream.send_message(b"done")
            await stream.send_trailers(0)
        else:
            await echo_unary(stream)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        mc = ch.unary_unary(UNARY)
        first = asyncio.ensure_future(mc(b"", timeout=8))
        (st,) = await peer.wait_for_streams(1)
        await goaway_and_sync(st.connection, 2**31 - 1)
        await goaway_and_sync(st.connection, st.stream_id)
        assert await mc(b"new", timeout=5) == b"new"
        release.set()
        assert await first == b"done"
        assert len(peer.connections[0].frames_of("HEADERS")) == 1
        assert peer.connection_count == 2


async def test_goaway_below_open_stream_is_retried_transparently() -> None:
    """CONFORMANCE 122: GOAWAY(last=1) while stream 3 is open: stream 3 was not processed,
    so that call is retried on a fresh connection and succeeds; stream 1 completes."""
    release = asyncio.Event()

    async def handler(stream: PeerStream) -> None:
        if stream.connection.index == 0:
            req = await stream.read_message()
            await stream.wait_end()
            if req == b"A":
                await release.wait()
                await stream.send_message(b"A-done")
                await stream.send_trailers(0)
            else:
                await stream.wait_reset(None)  # "unprocessed": never answered here
        else:
            await echo_unary(stream)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        mc = ch.unary_unary(UNARY)
        a = asyncio.ensure_future(mc(b"A", timeout=8))
        await peer.wait_for_streams(1)
        b = asyncio.ensure_future(mc(b"B", timeout=8))
        await peer.wait_for_streams(2)
        conn0 = peer.connections[0]
        ids = sorted(conn0.streams)
        assert len(ids) == 2
        await peer.wait_until(lambda: all(s.messages for s in conn0.streams.values()))
        first_id = next(s.stream_id for s in conn0.streams.values() if s.messages[0][1] == b"A")
        assert first_id == ids[0]
        conn0.goaway(first_id)
        assert await b == b"B"
        assert peer.connection_count == 2
        assert [s.messages for s in peer.connections[1].streams.values()] == [[(0, b"B")]]
        release.set()
        assert await a == b"A-done"


async def test_goaway_even_last_stream_id_is_connection_error() -> None:
    """CONFORMANCE 163: GOAWAY with a non-zero even last_stream_id: connection error, the open
    stream fails UNAVAILABLE (quickly, not at its deadline)."""

    async def handler(stream: PeerStream) -> None:
        if stream.connection.index == 0:
            await stream.wait_end()
            stream.connection.goaway(2)
            await stream.wait_reset(None)
        else:
            await echo_unary(stream)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"x", timeout=5)
        assert ei.value.code() == SC.UNAVAILABLE
        assert loop.time() - start < 3
        assert await ch.unary_unary(UNARY)(b"y", timeout=5) == b"y"


async def test_goaway_increasing_last_stream_id_is_connection_error() -> None:
    """CONFORMANCE 163: a later GOAWAY with a larger last_stream_id than an earlier one is a
    connection error: the open stream fails UNAVAILABLE."""

    async def handler(stream: PeerStream) -> None:
        if stream.connection.index == 0:
            await stream.wait_end()
            await goaway_and_sync(stream.connection, stream.stream_id)
            stream.connection.goaway(stream.stream_id + 2)
            await stream.wait_reset(None)
        else:
            await echo_unary(stream)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"x", timeout=5)
        assert ei.value.code() == SC.UNAVAILABLE
        assert loop.time() - start < 3


async def test_refused_stream_once_is_retried() -> None:
    """CONFORMANCE 121: REFUSED_STREAM before any headers: retried once, immediately, with no
    retry policy; the call succeeds and the peer saw exactly 2 streams."""
    seen = []

    async def handler(stream: PeerStream) -> None:
        seen.append(stream.stream_id)
        if len(seen) == 1:
            await stream.reset(7)
        else:
            await echo_unary(stream)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        assert await ch.unary_unary(UNARY)(b"again", timeout=5) == b"again"
        assert len(peer.streams) == 2
        assert [s.messages for s in peer.streams] == [[(0, b"again")], [(0, b"again")]]


async def test_refused_stream_twice_is_unavailable() -> None:
    """CONFORMANCE 121: refused twice with no policy -> UNAVAILABLE after 2 streams."""

    async def handler(stream: PeerStream) -> None:
        await stream.reset(7)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"x", timeout=5)
        assert ei.value.code() == SC.UNAVAILABLE
        await asyncio.sleep(0.1)
        assert len(peer.streams) == 2


async def test_server_rst_cancel_after_deadline_is_deadline_exceeded() -> None:
    """CONFORMANCE 49: the server sends RST_STREAM(CANCEL) 5 ms after the client's deadline:
    the client reports DEADLINE_EXCEEDED (not CANCELLED)."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        await asyncio.sleep(0.205)
        await stream.reset(8)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"x", timeout=0.2)
        assert ei.value.code() == SC.DEADLINE_EXCEEDED


async def test_server_rst_cancel_before_deadline_is_cancelled() -> None:
    """CONFORMANCE 49/34: RST_STREAM(CANCEL) well before the deadline -> CANCELLED."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.reset(8)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"x", timeout=5)
        assert ei.value.code() == SC.CANCELLED


async def test_deadline_fires_even_if_server_answers_late() -> None:
    """CONFORMANCE 49: the deadline is enforced locally whatever the server does; a late
    answer does not turn it into OK."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        await asyncio.sleep(0.3)
        await stream.send_message(b"late")
        await stream.send_trailers(0)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"x", timeout=0.15)
        assert ei.value.code() == SC.DEADLINE_EXCEEDED
        assert loop.time() - start < 0.28
        assert await peer.streams[0].wait_reset(2.0) == 8

"""Flow control, frame sizes, concurrency limits, PING/SETTINGS and the server preface
(CONFORMANCE 12-17, 40, 46, 47), checked against the scripted h2 peer."""

from __future__ import annotations

import asyncio

import pytest

import grpc_lite
from tests.e2e.transport._wire import (
    STREAMING_OUTPUT,
    UNARY,
    check_stream_windows,
    open_channel,
    warm_up,
)
from tests.h2peer import H2Peer, PeerStream, echo_unary, grpc_frame

pytestmark = [pytest.mark.integration, pytest.mark.timeout(10)]


async def test_outbound_flow_control_small_window_1k_grants() -> None:
    """CONFORMANCE 12: INITIAL_WINDOW_SIZE=1000, credit granted 1 KiB at a time; a
    271828-byte request still succeeds and no frame exceeds a window or MAX_FRAME_SIZE."""

    async def handler(stream: PeerStream) -> None:
        conn = stream.connection
        granted = {"stream": 1000, "conn": 65535}

        def received() -> int:
            return sum(flow for _, flow, _ in stream.data_frames)

        def conn_received() -> int:
            return sum(flow for s in conn.streams.values() for _, flow, _ in s.data_frames)

        def stream_low() -> bool:
            return granted["stream"] - received() < 512

        def conn_low() -> bool:
            return granted["conn"] - conn_received() < 512

        while not stream.done:
            await conn.peer.wait_until(lambda: stream.done or stream_low() or conn_low(), 5)
            if stream.done:
                break
            if stream_low():
                conn.send_window_update(1024, stream.stream_id)
                granted["stream"] += 1024
            if conn_low():
                conn.send_window_update(1024, 0)
                granted["conn"] += 1024
        msgs = [p for _, p in stream.messages]
        await stream.send_headers()
        await stream.send_message(len(msgs[0]).to_bytes(4, "big") if msgs else b"")
        await stream.send_trailers(0)

    async with (
        H2Peer(handler, settings={"INITIAL_WINDOW_SIZE": 1000}, auto_ack_data=False) as peer,
        open_channel(peer) as ch,
    ):
        await warm_up(ch, peer)
        payload = bytes(i % 251 for i in range(271828))
        assert await ch.unary_unary(UNARY)(payload, timeout=8) == (271828).to_bytes(4, "big")
        st = peer.streams[1]
        assert bytes(st.data[5:]) == payload
        assert not peer.errors
        data = [r for r in peer.connection.frames_of("DATA") if r.stream_id == st.stream_id]
        assert all(r.length <= 16384 for r in data)
        assert all(r.length <= 1024 + 1000 for r in data)
        check_stream_windows(peer.connection, 1000)


async def test_outbound_respects_max_frame_size_and_conn_window() -> None:
    """CONFORMANCE 12: large request against default windows: frames <= 16384, windows kept."""
    async with H2Peer(echo_unary) as peer, open_channel(peer) as ch:
        payload = b"\x07" * 271828
        assert await ch.unary_unary(UNARY)(payload, timeout=8) == payload
        assert all(r.length <= 16384 for r in peer.frames_of("DATA"))
        check_stream_windows(peer.connection, 65535)
        assert not peer.errors


def padded_reply(total: int, frame: int, pad: int | None):  # type: ignore[no-untyped-def]
    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        await stream.send_message(b"\x05" * total, max_frame=frame, pad_length=pad)
        await stream.send_trailers(0)

    return handler


async def test_inbound_flow_control_counts_padding() -> None:
    """CONFORMANCE 13 (data_frame_padding): 5-byte DATA frames each with 255 bytes of padding,
    ~1.5 MB of flow-control debt; the client must return credit including padding."""
    total = 30000  # 6001 frames * 261 flow-controlled bytes = 1.57 MB
    async with H2Peer(padded_reply(total, 5, 255)) as peer, open_channel(peer) as ch:
        assert await ch.unary_unary(UNARY)(b"", timeout=8) == b"\x05" * total
        sent = [r for r in peer.connection.sent_frames if r.type_name == "DATA"]
        assert sum(r.length for r in sent) > 1_500_000
        assert all(r.pad_length == 255 for r in sent)
        assert not peer.errors


async def test_inbound_no_padding_sanity() -> None:
    """CONFORMANCE 13 (no_df_padding_sanity_test): 5-byte frames, no padding."""
    total = 20000
    async with H2Peer(padded_reply(total, 5, None)) as peer, open_channel(peer) as ch:
        assert await ch.unary_unary(UNARY)(b"", timeout=8) == b"\x05" * total
        assert not peer.errors


async def test_inbound_large_response() -> None:
    """CONFORMANCE 13: a 314159-byte response (above the 65535 initial window) completes."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_message(b"\x01" * 314159)
        await stream.send_trailers(0)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        assert await ch.unary_unary(UNARY)(b"", timeout=8) == b"\x01" * 314159
        assert peer.connection.frames_of("WINDOW_UPDATE")


async def test_max_concurrent_streams_one() -> None:
    """CONFORMANCE 14 (max_streams): MCS=1; a warm-up call, then 10 concurrent calls all
    succeed with their own payloads (extra calls wait; nothing is refused by h2)."""

    async def handler(stream: PeerStream) -> None:
        req = await stream.read_message()
        await stream.wait_end()
        await asyncio.sleep(0.01)
        await stream.send_headers()
        await stream.send_message(req or b"")
        await stream.send_trailers(0)

    async with (
        H2Peer(handler, settings={"MAX_CONCURRENT_STREAMS": 1}) as peer,
        open_channel(peer) as ch,
    ):
        await warm_up(ch, peer)
        mc = ch.unary_unary(UNARY)
        got = await asyncio.gather(*(mc(b"req-%d" % i, timeout=8) for i in range(10)))
        assert got == [b"req-%d" % i for i in range(10)]
        assert not peer.errors
        # At most one stream open at a time, as the peer saw it.
        open_now = 0
        peak = 0
        for r in peer.connection.timeline:
            if r.direction == "in" and r.type_name == "HEADERS":
                open_now += 1
                peak = max(peak, open_now)
            elif r.direction == "out" and r.type_name == "HEADERS" and r.end_stream:
                open_now -= 1
        assert peak == 1


async def test_ping_acked_before_and_after_headers_and_data() -> None:
    """CONFORMANCE 16 (negative test ping): PINGs around headers and data are all ACKed and
    the call succeeds."""

    async def handler(stream: PeerStream) -> None:
        conn = stream.connection
        req = await stream.read_message()
        await stream.wait_end()
        conn.ping()
        await stream.send_headers()
        conn.ping()
        await stream.send_message(req or b"")
        conn.ping()
        await conn.wait_ping_acks(3, timeout=3)
        await stream.send_trailers(0)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        assert await ch.unary_unary(UNARY)(b"p", timeout=5) == b"p"
        assert peer.connection.outstanding_pings == 0
        acks = [r for r in peer.connection.frames_of("PING") if r.ack]
        assert len(acks) == 3


async def test_ping_acked_while_idle() -> None:
    """CONFORMANCE 16: a PING on an idle connection (no RPC writing) is ACKed promptly."""
    async with H2Peer(echo_unary) as peer, open_channel(peer) as ch:
        await warm_up(ch, peer)
        peer.ping(b"idle-pin")
        await peer.connection.wait_ping_acks(timeout=2)
        ack = [r for r in peer.connection.frames_of("PING") if r.ack]
        assert ack and ack[-1].frame.opaque_data == b"idle-pin"  # type: ignore[union-attr]


async def test_settings_acked_initial_and_mid_connection() -> None:
    """CONFORMANCE 16: SETTINGS are ACKed, the initial ones and a later update."""
    async with H2Peer(echo_unary) as peer, open_channel(peer) as ch:
        await warm_up(ch, peer)
        assert peer.connection.settings_acks_received >= 1
        peer.update_settings({"MAX_CONCURRENT_STREAMS": 50, "INITIAL_WINDOW_SIZE": 70000})
        await peer.connection.wait_settings_acked(2, timeout=2)
        assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"x"
        assert not peer.errors


async def test_silent_server_never_ready() -> None:
    """CONFORMANCE 17: a server that accepts and never sends SETTINGS: the channel never
    becomes READY, a 0.5 s call ends DEADLINE_EXCEEDED and no HEADERS is sent."""
    async with H2Peer(silent=True) as peer, open_channel(peer) as ch:
        states = []

        async def watch() -> None:
            while True:
                states.append(ch.get_state())
                await asyncio.sleep(0.02)

        watcher = asyncio.create_task(watch())
        try:
            for wfr in (True, None):
                with pytest.raises(grpc_lite.RpcError) as ei:
                    await ch.unary_unary(UNARY)(b"x", timeout=0.5, wait_for_ready=wfr)
                assert ei.value.code() == grpc_lite.StatusCode.DEADLINE_EXCEEDED
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        assert grpc_lite.ChannelConnectivity.READY not in states
        assert peer.connection_count >= 1
        assert not peer.frames_of("HEADERS")


async def test_message_split_into_one_byte_frames() -> None:
    """CONFORMANCE 40: a response delivered in 1-byte DATA frames is reassembled."""

    async def handler(stream: PeerStream) -> None:
        req = await stream.read_message()
        await stream.wait_end()
        await stream.send_message(req or b"", max_frame=1)
        await stream.send_trailers(0)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        payload = bytes(range(200))
        assert await ch.unary_unary(UNARY)(payload, timeout=5) == payload
        data = [r for r in peer.connection.sent_frames if r.type_name == "DATA"]
        assert len(data) == 205 and all(r.length == 1 for r in data)


async def test_three_messages_in_one_frame() -> None:
    """CONFORMANCE 40: one DATA frame holding three server-streaming messages."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        await stream.send_data(grpc_frame(b"one") + grpc_frame(b"") + grpc_frame(b"three"))
        await stream.send_trailers(0)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        call = ch.unary_stream(STREAMING_OUTPUT)(b"", timeout=5)
        assert [m async for m in call] == [b"one", b"", b"three"]
        assert await call.code() == grpc_lite.StatusCode.OK


async def test_partial_message_at_end_stream_is_internal() -> None:
    """CONFORMANCE 40: a partial message when the stream ends -> INTERNAL."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        await stream.send_data(grpc_frame(b"0123456789")[:8])
        await stream.send_trailers(0)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"", timeout=5)
        assert ei.value.code() == grpc_lite.StatusCode.INTERNAL


async def test_receive_limit_from_length_prefix() -> None:
    """CONFORMANCE 46: a message declared larger than 4 MiB fails RESOURCE_EXHAUSTED from the
    length prefix alone (the peer sends only the prefix and holds the stream)."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        await stream.send_data(b"\x00" + (5 * 1024 * 1024).to_bytes(4, "big"))
        await stream.wait_reset(None)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"", timeout=3)
        assert ei.value.code() == grpc_lite.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize(
    "size,compress,ok",
    [(100, False, True), (101, False, False), (200, True, False), (100, True, True)],
)
async def test_receive_limit_option(size: int, compress: bool, ok: bool) -> None:
    """CONFORMANCE 46: grpc.max_receive_message_length applies, also after decompression."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        extra = [("grpc-encoding", "gzip")] if compress else []
        await stream.send_headers(extra=extra)
        await stream.send_message(b"\x00" * size, compress=compress)
        await stream.send_trailers(0)

    async with (
        H2Peer(handler) as peer,
        open_channel(peer, options=[("grpc.max_receive_message_length", 100)]) as ch,
    ):
        call = ch.unary_unary(UNARY)(b"", timeout=5)
        if ok:
            assert await call == b"\x00" * size
        else:
            with pytest.raises(grpc_lite.RpcError) as ei:
                await call
            assert ei.value.code() == grpc_lite.StatusCode.RESOURCE_EXHAUSTED


async def test_receive_limit_5mib_default_and_raised() -> None:
    """CONFORMANCE 46: a 5 MiB message fails by default and passes with the limit raised."""
    big = b"\x02" * (5 * 1024 * 1024)

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_message(big)
        await stream.send_trailers(0)

    async with H2Peer(handler, connection_window=16 << 20) as peer:
        async with open_channel(peer) as ch:
            with pytest.raises(grpc_lite.RpcError) as ei:
                await ch.unary_unary(UNARY)(b"", timeout=5)
            assert ei.value.code() == grpc_lite.StatusCode.RESOURCE_EXHAUSTED
        async with open_channel(peer, options=[("grpc.max_receive_message_length", -1)]) as ch:
            assert await ch.unary_unary(UNARY)(b"", timeout=8) == big


async def test_send_limit() -> None:
    """CONFORMANCE 47: with grpc.max_send_message_length set, an oversize request fails
    RESOURCE_EXHAUSTED before any of it is sent."""
    async with (
        H2Peer(echo_unary) as peer,
        open_channel(peer, options=[("grpc.max_send_message_length", 100)]) as ch,
    ):
        assert await ch.unary_unary(UNARY)(b"\x01" * 100, timeout=5) == b"\x01" * 100
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"\x01" * 101, timeout=5)
        assert ei.value.code() == grpc_lite.StatusCode.RESOURCE_EXHAUSTED
        assert await ch.unary_unary(UNARY)(b"after", timeout=5) == b"after"
        assert all(len(s.data) != 106 for s in peer.streams)
        assert all(r.length < 106 for r in peer.frames_of("DATA"))

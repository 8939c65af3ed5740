"""What the client puts on the wire (CONFORMANCE A and B), checked frame by frame with the
scripted h2 peer. Every test names its CONFORMANCE item."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re

import pytest

import grpc_lite
from tests.e2e.transport._wire import (
    EMPTY,
    FULL_DUPLEX,
    UNARY,
    decode_timeout,
    open_channel,
    warm_up,
)
from tests.h2peer import H2Peer, PeerStream, echo_stream, echo_unary, hold_open

pytestmark = [pytest.mark.integration, pytest.mark.timeout(10)]

CALL_DEFINITION = ("te", "content-type", "grpc-encoding", "grpc-accept-encoding", "user-agent")


async def one_call(metadata=None, deadline=5.0, **kw):  # type: ignore[no-untyped-def]
    """Run one EmptyCall against an echo peer; return the peer stream."""
    async with H2Peer(echo_unary) as peer, open_channel(peer) as ch:
        assert await ch.unary_unary(EMPTY)(b"", timeout=deadline, metadata=metadata, **kw) == b""
        return peer.streams[0]


async def test_request_pseudo_headers() -> None:
    """CONFORMANCE 1: :method POST, :scheme http, exact :path, :authority; pseudo first."""
    st = await one_call()
    names = [k for k, _ in st.headers]
    pseudo = [k for k in names if k.startswith(":")]
    assert sorted(pseudo) == [":authority", ":method", ":path", ":scheme"]
    assert names[: len(pseudo)] == pseudo, names
    assert st.header(":method") == "POST"
    assert st.header(":scheme") == "http"
    assert st.header(":path") == EMPTY
    assert st.header(":authority")


async def test_te_trailers() -> None:
    """CONFORMANCE 2: every request carries te: trailers."""
    st = await one_call()
    assert st.header_values("te") == ["trailers"]


async def test_content_type() -> None:
    """CONFORMANCE 3: content-type application/grpc or application/grpc+proto."""
    st = await one_call()
    assert st.header_values("content-type") in (["application/grpc"], ["application/grpc+proto"])


async def test_header_order() -> None:
    """CONFORMANCE 4: grpc-timeout and call-definition headers come before custom metadata."""
    st = await one_call(metadata=[("x-custom", "1"), ("a-first", "2")], deadline=3.0)
    names = [k for k, _ in st.headers]
    first_custom = min(names.index("x-custom"), names.index("a-first"))
    assert names.index("grpc-timeout") < first_custom
    for h in CALL_DEFINITION:
        if h in names:
            assert names.index(h) < first_custom, (h, names)


@pytest.mark.parametrize(
    "deadline",
    [0.001, 0.02, 1.5, 100.0, 3600.0, 30 * 86400.0],
    ids=["1ms", "20ms", "1.5s", "100s", "1h", "30d"],
)
async def test_grpc_timeout_encoding(deadline: float) -> None:
    """CONFORMANCE 5: 1-8 digits + unit, rounded up, never shorter than the remaining time."""
    async with H2Peer(echo_unary) as peer, open_channel(peer) as ch:
        await warm_up(ch, peer)
        loop = asyncio.get_running_loop()
        start = loop.time()
        call = ch.unary_unary(EMPTY)(b"", timeout=deadline)
        with contextlib.suppress(grpc_lite.RpcError):
            await call
        if deadline < 0.05 and len(peer.streams) < 2:
            return  # 1 ms may be gone before the stream exists (CONFORMANCE 7 then applies)
        st = peer.streams[1]
        rec = next(r for r in peer.connection.frames_of("HEADERS", st.stream_id))
        elapsed = rec.time - start
        value = st.header("grpc-timeout")
        assert value is not None
        assert re.fullmatch(r"[0-9]{1,8}[HMSmun]", value), value
        seconds, unit = decode_timeout(value)
        # The remaining time when the stream was created lies in [deadline - elapsed, timeout].
        assert seconds >= deadline - elapsed - 1e-9, (value, deadline, elapsed)
        assert seconds <= deadline + unit + 1e-9, (value, deadline)


async def test_no_deadline_no_grpc_timeout() -> None:
    """CONFORMANCE 6: no deadline means no grpc-timeout header."""
    st = await one_call(deadline=None)
    assert st.header("grpc-timeout") is None


@pytest.mark.parametrize("deadline", [0.0, -1.0])
async def test_deadline_already_past_sends_nothing(deadline: float) -> None:
    """CONFORMANCE 7: an expired deadline fails DEADLINE_EXCEEDED locally; no HEADERS."""
    async with H2Peer(echo_unary) as peer, open_channel(peer) as ch:
        await warm_up(ch, peer)
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"x", timeout=deadline)
        assert ei.value.code() == grpc_lite.StatusCode.DEADLINE_EXCEEDED
        # Barrier: a later call arrives, and it is only the second stream the peer saw.
        assert await ch.unary_unary(UNARY)(b"after", timeout=5) == b"after"
        assert [s.messages for s in peer.streams] == [[(0, b"warm")], [(0, b"after")]]
        assert len(peer.connection.frames_of("HEADERS")) == 2


async def test_user_agent() -> None:
    """CONFORMANCE 8: user-agent contains grpc-<language>[-variant]/<version>."""
    st = await one_call()
    ua = st.header("user-agent")
    assert ua is not None and re.search(r"(^|\s)grpc-[a-z0-9-]+/\d", ua), ua


async def test_encoding_headers_default() -> None:
    """CONFORMANCE 9: grpc-accept-encoding lists codings the client decodes (gzip included);
    no grpc-encoding when the client does not compress."""
    st = await one_call()
    accept = st.header("grpc-accept-encoding")
    assert accept is not None
    codings = [c.strip() for c in accept.split(",")]
    assert "gzip" in codings
    assert set(codings) <= {"identity", "gzip", "deflate"}
    assert st.header("grpc-encoding") in (None, "identity")


async def test_encoding_header_when_compressing() -> None:
    """CONFORMANCE 9/45: a call with compression=Gzip sends grpc-encoding: gzip."""
    st = await one_call(compression=grpc_lite.Compression.Gzip)
    assert st.header("grpc-encoding") == "gzip"


async def test_empty_message_framing() -> None:
    """CONFORMANCE 10: an empty request message is exactly 00 00 00 00 00."""
    st = await one_call()
    assert bytes(st.data) == b"\x00\x00\x00\x00\x00"


async def test_length_prefix() -> None:
    """CONFORMANCE 10: flag byte 0 + 4-byte big-endian length + payload."""
    async with H2Peer(echo_unary) as peer, open_channel(peer) as ch:
        payload = bytes(range(256)) * 3
        assert await ch.unary_unary(UNARY)(payload, timeout=5) == payload
        assert bytes(peer.streams[0].data) == b"\x00" + len(payload).to_bytes(4, "big") + payload


async def test_unary_half_close_frames() -> None:
    """CONFORMANCE 11: unary = HEADERS without END_STREAM, then DATA with END_STREAM;
    never a trailing HEADERS from the client."""
    async with H2Peer(echo_unary) as peer, open_channel(peer) as ch:
        await ch.unary_unary(UNARY)(b"abc", timeout=5)
        sid = peer.streams[0].stream_id
        recs = [
            r
            for r in peer.connection.frames
            if r.stream_id == sid and r.type_name in ("HEADERS", "CONTINUATION", "DATA")
        ]
        assert recs[0].type_name == "HEADERS" and not recs[0].end_stream
        data = [r for r in recs if r.type_name == "DATA"]
        assert data and data[-1].end_stream and not any(r.end_stream for r in data[:-1])
        assert recs[-1].type_name == "DATA"
        assert len([r for r in recs if r.type_name == "HEADERS"]) == 1
        assert peer.streams[0].client_trailers is None


async def test_empty_bidi_half_close() -> None:
    """CONFORMANCE 11: empty_stream = one HEADERS + one 0-length DATA with END_STREAM."""
    async with H2Peer(echo_stream) as peer, open_channel(peer) as ch:
        call = ch.stream_stream(FULL_DUPLEX)(timeout=5)
        await call.done_writing()
        assert [m async for m in call] == []
        assert await call.code() == grpc_lite.StatusCode.OK
        sid = peer.streams[0].stream_id
        recs = [
            r
            for r in peer.connection.frames
            if r.stream_id == sid and r.type_name in ("HEADERS", "CONTINUATION", "DATA")
        ]
        assert [r.type_name for r in recs] == ["HEADERS", "DATA"], recs
        assert not recs[0].end_stream
        assert recs[1].length == 0 and recs[1].end_stream


async def test_stream_ids_odd_increasing() -> None:
    """CONFORMANCE 15: client stream ids are odd, strictly increasing, never reused."""
    async with H2Peer(echo_unary) as peer, open_channel(peer) as ch:
        mc = ch.unary_unary(UNARY)
        for i in range(3):
            assert await mc(bytes([i]), timeout=5) == bytes([i])
        got = await asyncio.gather(*(mc(bytes([i]), timeout=5) for i in range(5)))
        assert got == [bytes([i]) for i in range(5)]
        ids = [r.stream_id for r in peer.connection.frames_of("HEADERS")]
        assert len(ids) == 8
        assert all(i % 2 == 1 for i in ids)
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert peer.connection_count == 1


async def test_request_header_list_too_large() -> None:
    """CONFORMANCE 19: headers above the peer's MAX_HEADER_LIST_SIZE fail INTERNAL locally
    and no HEADERS frame is sent."""
    async with (
        H2Peer(echo_unary, settings={"MAX_HEADER_LIST_SIZE": 1024}) as peer,
        open_channel(peer) as ch,
    ):
        await warm_up(ch, peer)
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"x", timeout=2, metadata=[("x-big", "a" * 2048)])
        assert ei.value.code() == grpc_lite.StatusCode.INTERNAL
        assert await ch.unary_unary(UNARY)(b"after", timeout=5) == b"after"
        assert len(peer.connection.frames_of("HEADERS")) == 2
        assert not peer.errors


@pytest.mark.parametrize("key", ["Bad Key", "x y", "UPPER", "k\x00", ""])
async def test_invalid_metadata_key_rejected(key: str) -> None:
    """CONFORMANCE 20: an invalid key raises before anything is sent."""
    async with H2Peer(echo_unary) as peer, open_channel(peer) as ch:
        await warm_up(ch, peer)
        with pytest.raises((ValueError, TypeError, grpc_lite.RpcError)) as ei:
            await ch.unary_unary(UNARY)(b"x", timeout=2, metadata=[(key, "v")])
        if isinstance(ei.value, grpc_lite.RpcError):
            assert ei.value.code() == grpc_lite.StatusCode.INTERNAL
        assert len(peer.connection.frames_of("HEADERS")) == 1


@pytest.mark.parametrize(
    "key,value",
    [
        ("grpc-status", "0"),
        ("content-type", "text/plain"),
        ("te", "gzip"),
        ("grpc-timeout", "1n"),
        (":path", "/evil/Path"),
        ("connection", "close"),
    ],
)
async def test_reserved_metadata_does_not_override(key: str, value: str) -> None:
    """CONFORMANCE 20: reserved / transport keys set by the application are rejected or
    dropped; they never override the protocol headers."""
    async with H2Peer(echo_unary) as peer, open_channel(peer) as ch:
        await warm_up(ch, peer)
        try:
            await ch.unary_unary(UNARY)(b"x", timeout=5, metadata=[(key, value)])
        except (ValueError, TypeError, grpc_lite.RpcError):
            assert len(peer.connection.frames_of("HEADERS")) == 1
            return
        st = peer.streams[1]
        assert value not in st.header_values(key)
        assert st.header(":path") == UNARY
        assert st.header_values("content-type") in (
            ["application/grpc"],
            ["application/grpc+proto"],
        )
        assert st.header_values("te") == ["trailers"]
        assert st.header("grpc-status") is None
        assert not peer.errors


@pytest.mark.parametrize("value", ["\x01", "caf\u00e9", "a\nb", "\x7f"])
async def test_non_printable_ascii_value_rejected(value: str) -> None:
    """CONFORMANCE 21: a non -bin value outside 0x20-0x7E raises locally."""
    async with H2Peer(echo_unary) as peer, open_channel(peer) as ch:
        await warm_up(ch, peer)
        with pytest.raises((ValueError, TypeError, grpc_lite.RpcError)):
            await ch.unary_unary(UNARY)(b"x", timeout=2, metadata=[("x-k", value)])
        assert len(peer.connection.frames_of("HEADERS")) == 1


async def test_binary_metadata_sent_unpadded_base64() -> None:
    """CONFORMANCE 22: -bin values go out base64, without padding."""
    raw = b"\x01\x02\x03\x04"
    st = await one_call(metadata=[("x-bin", raw), ("y-bin", b"\xab\xab\xab")])
    assert st.header("x-bin") == "AQIDBA"
    assert st.header("y-bin") == "q6ur"
    v = st.header("x-bin") or ""
    assert base64.b64decode(v + "=" * (-len(v) % 4)) == raw


async def test_repeated_keys_all_sent_in_order() -> None:
    """CONFORMANCE 23: repeated keys are all sent, in order."""
    st = await one_call(metadata=[("x-r", "1"), ("x-other", "z"), ("x-r", "2"), ("x-r", "3")])
    joined = ",".join(st.header_values("x-r")).split(",")
    assert [v.strip() for v in joined] == ["1", "2", "3"]


async def test_deadline_expiry_sends_rst_cancel() -> None:
    """CONFORMANCE 49: on deadline the client sends RST_STREAM(CANCEL) and reports
    DEADLINE_EXCEEDED."""
    async with H2Peer(hold_open()) as peer, open_channel(peer) as ch:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"x", timeout=0.3)
        assert ei.value.code() == grpc_lite.StatusCode.DEADLINE_EXCEEDED
        assert loop.time() - start < 1.5
        st = peer.streams[0]
        assert await st.wait_reset(2.0) == 8


async def test_app_cancel_sends_rst_cancel() -> None:
    """CONFORMANCE 51: an application cancel sends RST_STREAM(CANCEL); the call is CANCELLED."""
    async with H2Peer(hold_open()) as peer, open_channel(peer) as ch:
        call = ch.unary_unary(UNARY)(b"x", timeout=5)
        (st,) = await peer.wait_for_streams(1)
        assert call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await call.code() == grpc_lite.StatusCode.CANCELLED
        assert await st.wait_reset(2.0) == 8


async def test_app_cancel_after_first_response() -> None:
    """CONFORMANCE 51: cancel a server stream after the first message; RST(CANCEL) on the wire."""

    async def handler(stream: PeerStream) -> None:
        await stream.send_headers()
        await stream.send_message(b"first")
        await stream.wait_reset(None)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        call = ch.unary_stream("/grpc.testing.TestService/StreamingOutputCall")(b"", timeout=5)
        assert await call.read() == b"first"
        call.cancel()
        assert await call.code() == grpc_lite.StatusCode.CANCELLED
        assert await peer.streams[0].wait_reset(2.0) == 8

"""Response parsing, status mapping, response metadata and compression (CONFORMANCE B/C/D:
21, 22, 24-37, 39, 42-45) plus malformed HTTP/2 from the server, against the scripted peer."""

from __future__ import annotations

import asyncio
import gzip

import pytest
from google.protobuf import wrappers_pb2
from hyperframe.frame import HeadersFrame

import grpc_lite
from tests.e2e.transport._wire import (
    STREAMING_INPUT,
    STREAMING_OUTPUT,
    UNARY,
    metadata_values,
    open_channel,
)
from tests.h2peer import H2Peer, PeerStream, status_reply, unary_reply

pytestmark = [pytest.mark.integration, pytest.mark.timeout(10)]

SC = grpc_lite.StatusCode


async def unary_error(handler, deadline: float = 3.0) -> grpc_lite.RpcError:  # type: ignore[no-untyped-def]
    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"req", timeout=deadline)
        return ei.value


# ------------------------------------------------------------------ metadata (B)


async def test_incoming_non_ascii_value_does_not_fail() -> None:
    """CONFORMANCE 21: a response header value with 0x80-0xFF bytes does not fail the call."""
    handler = unary_reply(b"ok", initial=[("x-weird", b"caf\xe9\xff")], trailing=[("x-t", b"\x80")])
    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        assert await ch.unary_unary(UNARY)(b"", timeout=3) == b"ok"


async def test_incoming_bin_padded_unpadded_comma_joined() -> None:
    """CONFORMANCE 22: trailer `x-bin: AQ==,Ag` yields [b"\\x01", b"\\x02"]."""
    handler = unary_reply(b"ok", trailing=[("x-bin", "AQ==,Ag"), ("y-bin", "q6ur")])
    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        call = ch.unary_unary(UNARY)(b"", timeout=3)
        assert await call == b"ok"
        md = await call.trailing_metadata()
        assert metadata_values(md, "x-bin") == [b"\x01", b"\x02"]
        assert metadata_values(md, "y-bin") == [b"\xab\xab\xab"]


async def test_incoming_invalid_base64_is_internal() -> None:
    """CONFORMANCE 22: invalid base64 in a -bin response header is malformed -> INTERNAL."""
    err = await unary_error(unary_reply(b"ok", initial=[("x-bin", "!!!not base64!!!")]))
    assert err.code() == SC.INTERNAL


async def test_initial_and_trailing_metadata_split() -> None:
    """CONFORMANCE 24: initial = headers minus protocol headers; trailing = trailers minus
    grpc-status/grpc-message (grpc-status-details-bin stays)."""
    handler = unary_reply(
        b"ok",
        initial=[("x-init", "1"), ("grpc-accept-encoding", "gzip")],
        trailing=[("x-trail", "2"), ("grpc-status-details-bin", "AQ")],
    )
    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        call = ch.unary_unary(UNARY)(b"", timeout=3)
        assert await call == b"ok"
        initial = list(await call.initial_metadata())
        trailing = list(await call.trailing_metadata())
        keys = [k for k, _ in initial]
        assert ("x-init", "1") in initial and keys.count("x-init") == 1
        for k in (":status", "content-type", "grpc-encoding", "grpc-accept-encoding"):
            assert k not in keys
        tkeys = [k for k, _ in trailing]
        assert ("x-trail", "2") in trailing
        assert "grpc-status" not in tkeys and "grpc-message" not in tkeys
        assert ("grpc-status-details-bin", b"\x01") in trailing


async def test_trailers_only_metadata_is_trailing() -> None:
    """CONFORMANCE 24/27: Trailers-Only with `k: v`: initial metadata empty, k trailing."""
    async with H2Peer(status_reply(5, "missing", [("k", "v")])) as peer, open_channel(peer) as ch:
        call = ch.unary_unary(UNARY)(b"", timeout=3)
        with pytest.raises(grpc_lite.RpcError) as ei:
            await call
        assert ei.value.code() == SC.NOT_FOUND
        assert ei.value.details() == "missing"
        assert metadata_values(ei.value.trailing_metadata(), "k") == ["v"]
        assert list(await call.initial_metadata()) == []
        assert metadata_values(await call.trailing_metadata(), "k") == ["v"]


# ------------------------------------------------------------------ status (C)


async def test_status_from_trailers() -> None:
    """CONFORMANCE 25: code and message come from the trailers."""
    err = await unary_error(unary_reply(b"x", status=2, message="test status message"))
    assert err.code() == SC.UNKNOWN
    assert err.details() == "test status message"


async def test_status_from_trailers_bidi() -> None:
    """CONFORMANCE 25: the same for a bidi stream; a missing grpc-message means ''."""

    async def handler(stream: PeerStream) -> None:
        await stream.send_headers()
        await stream.wait_end()
        await stream.send_trailers(2)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        call = ch.stream_stream("/grpc.testing.TestService/FullDuplexCall")(timeout=3)
        await call.done_writing()
        assert await call.code() == SC.UNKNOWN
        assert (await call.details()) in ("", None)


@pytest.mark.parametrize(
    "wire,expected",
    [
        ("abc%ZZ%4", "abc%ZZ%4"),
        ("%E2%98%BA", "\u263a"),
        ("100%25", "100%"),
        (
            "%09%0Atest with whitespace%0D%0Aand Unicode BMP %E2%98%BA"
            " and non-BMP %F0%9F%98%88%09%0A",
            "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n",
        ),
        ("plain", "plain"),
    ],
)
async def test_grpc_message_percent_decoding(wire: str, expected: str) -> None:
    """CONFORMANCE 26: %XX decoding, then UTF-8; invalid escapes left as they are."""

    async def handler(stream: PeerStream) -> None:
        await stream.trailers_only(3, None, [("grpc-message", wire)])

    err = await unary_error(handler)
    assert err.code() == SC.INVALID_ARGUMENT
    assert err.details() == expected


async def test_grpc_message_invalid_utf8_never_errors() -> None:
    """CONFORMANCE 26: bytes that are not UTF-8 after decoding still give a message."""

    async def handler(stream: PeerStream) -> None:
        await stream.trailers_only(3, None, [("grpc-message", "bad %FF%FE end")])

    err = await unary_error(handler)
    assert err.code() == SC.INVALID_ARGUMENT
    assert err.details() and err.details().startswith("bad ")  # type: ignore[union-attr]


async def test_trailers_only_status() -> None:
    """CONFORMANCE 27: Trailers-Only with code 5 -> NOT_FOUND with the message."""
    err = await unary_error(status_reply(5, "no such thing"))
    assert err.code() == SC.NOT_FOUND
    assert err.details() == "no such thing"


async def test_trailers_only_unimplemented() -> None:
    """CONFORMANCE 27: grpcio's unknown-method answer -> UNIMPLEMENTED."""
    err = await unary_error(status_reply(12, "Method not found!"))
    assert err.code() == SC.UNIMPLEMENTED


async def test_missing_grpc_status_is_unknown() -> None:
    """CONFORMANCE 28: trailers without grpc-status -> UNKNOWN, never OK."""
    err = await unary_error(unary_reply(b"x", status=None, trailing=[("x-k", "v")]))  # type: ignore[arg-type]
    assert err.code() == SC.UNKNOWN


@pytest.mark.parametrize("value", ["abc", "1.5", "17", "99", "-1", ""])
async def test_unparseable_grpc_status_is_unknown(value: str) -> None:
    """CONFORMANCE 29: non-integer or out-of-range grpc-status -> UNKNOWN, no crash."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_message(b"x")
        await stream.send_trailers(value)

    err = await unary_error(handler)
    assert err.code() == SC.UNKNOWN


@pytest.mark.parametrize(
    "http_status,code",
    [
        (400, SC.INTERNAL),
        (401, SC.UNAUTHENTICATED),
        (403, SC.PERMISSION_DENIED),
        (404, SC.UNIMPLEMENTED),
        (429, SC.UNAVAILABLE),
        (431, SC.INTERNAL),
        (502, SC.UNAVAILABLE),
        (503, SC.UNAVAILABLE),
        (504, SC.UNAVAILABLE),
        (200, SC.UNKNOWN),
        (500, SC.UNKNOWN),
        (302, SC.UNKNOWN),
    ],
)
async def test_http_status_mapping(http_status: int, code: grpc_lite.StatusCode) -> None:
    """CONFORMANCE 30: with no grpc-status, :status maps per http-grpc-status-mapping.md."""

    async def handler(stream: PeerStream) -> None:
        await stream.trailers_only(None, http_status=http_status, content_type="text/html")

    err = await unary_error(handler)
    assert err.code() == code


async def test_grpc_status_wins_over_http_status() -> None:
    """CONFORMANCE 30: a Trailers-Only response with :status 503 and grpc-status 0 is OK
    (server streaming, so zero messages is a valid OK response)."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.trailers_only(0, http_status=503)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        call = ch.unary_stream(STREAMING_OUTPUT)(b"", timeout=3)
        assert [m async for m in call] == []
        assert await call.code() == SC.OK


@pytest.mark.parametrize(
    "http_status,ctype,code", [(200, "text/html", SC.UNKNOWN), (503, "text/plain", SC.UNAVAILABLE)]
)
async def test_non_grpc_response_with_body(
    http_status: int, ctype: str, code: grpc_lite.StatusCode
) -> None:
    """CONFORMANCE 31: a non-gRPC response with a body; the message names the HTTP status."""

    async def handler(stream: PeerStream) -> None:
        await stream.send_headers([(":status", str(http_status)), ("content-type", ctype)])
        await stream.send_data(b"<html>nope</html>", end_stream=True)

    err = await unary_error(handler)
    assert err.code() == code
    assert str(http_status) in (err.details() or "")


async def test_informational_1xx_skipped() -> None:
    """CONFORMANCE 32: a 100 HEADERS is skipped; the real response follows -> OK."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers([(":status", "100")])
        await stream.send_headers()
        await stream.send_message(b"after-100")
        await stream.send_trailers(0)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        assert await ch.unary_unary(UNARY)(b"", timeout=3) == b"after-100"


async def test_informational_1xx_with_end_stream_is_internal() -> None:
    """CONFORMANCE 32: a 1xx HEADERS with END_STREAM is a protocol error -> INTERNAL."""

    async def handler(stream: PeerStream) -> None:
        conn = stream.connection
        block = conn.encode_headers([(":status", "100")])
        conn.write_frame(
            HeadersFrame(stream.stream_id, data=block, flags=["END_HEADERS", "END_STREAM"])
        )

    err = await unary_error(handler)
    assert err.code() == SC.INTERNAL


async def test_headers_in_mid_stream_is_internal() -> None:
    """CONFORMANCE 33: a second HEADERS without END_STREAM after the response headers."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        await stream.send_message(b"x")
        conn = stream.connection
        block = conn.encode_headers([("x-again", "1")])
        conn.write_frame(HeadersFrame(stream.stream_id, data=block, flags=["END_HEADERS"]))
        await stream.wait_reset(None)

    err = await unary_error(handler)
    assert err.code() == SC.INTERNAL


@pytest.mark.parametrize(
    "rst,code",
    [
        (0, SC.INTERNAL),
        (1, SC.INTERNAL),
        (2, SC.INTERNAL),
        (3, SC.INTERNAL),
        (4, SC.INTERNAL),
        (6, SC.INTERNAL),
        (7, SC.UNAVAILABLE),
        (8, SC.CANCELLED),
        (9, SC.INTERNAL),
        (10, SC.INTERNAL),
        (11, SC.RESOURCE_EXHAUSTED),
        (12, SC.PERMISSION_DENIED),
    ],
)
async def test_rst_stream_code_mapping(rst: int, code: grpc_lite.StatusCode) -> None:
    """CONFORMANCE 34: RST_STREAM after the response headers maps to a status (3 may be
    RESOURCE_EXHAUSTED as in grpc-go)."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        await stream.reset(rst)

    err = await unary_error(handler)
    if rst == 3:
        assert err.code() in (SC.INTERNAL, SC.RESOURCE_EXHAUSTED)
    else:
        assert err.code() == code


async def test_rst_no_error_after_message_without_trailers_fails() -> None:
    """CONFORMANCE 35: headers + full message + RST(NO_ERROR) without trailers -> INTERNAL."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        await stream.send_message(b"complete")
        await stream.reset(0)

    err = await unary_error(handler)
    assert err.code() == SC.INTERNAL


async def test_rst_no_error_after_trailers_keeps_status() -> None:
    """CONFORMANCE 35: RST(NO_ERROR) after complete trailers does not change the status."""

    async def handler(stream: PeerStream) -> None:
        await stream.trailers_only(9, "precondition")
        stream.connection.send_rst(stream.stream_id, 0)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        call = ch.stream_stream("/grpc.testing.TestService/FullDuplexCall")(timeout=3)
        assert await call.code() == SC.FAILED_PRECONDITION
        assert await call.details() == "precondition"


async def test_early_server_closure_client_sends_rst_no_error() -> None:
    """CONFORMANCE 36: trailers before the client half-closed: the client sends
    RST_STREAM(NO_ERROR), later writes do not raise protocol errors, the status is the
    server's."""

    async def handler(stream: PeerStream) -> None:
        await stream.read_message()
        await stream.trailers_only(9, "stop early")
        await stream.wait_reset(None)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        call = ch.stream_unary(STREAMING_INPUT)(timeout=3)
        await call.write(b"first")
        with pytest.raises(grpc_lite.RpcError) as ei:
            await call
        assert ei.value.code() == SC.FAILED_PRECONDITION
        assert ei.value.details() == "stop early"
        try:
            await call.write(b"late")
        except (grpc_lite.RpcError, asyncio.InvalidStateError, RuntimeError):
            pass
        st = peer.streams[0]
        assert await st.wait_reset(2.0) == 0
        assert not peer.errors


@pytest.mark.parametrize("messages", [0, 2])
async def test_unary_response_cardinality(messages: int) -> None:
    """CONFORMANCE 37: OK with zero or two messages on a unary call is an error."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        for i in range(messages):
            await stream.send_message(b"m%d" % i)
        await stream.send_trailers(0)

    err = await unary_error(handler)
    assert err.code() in (SC.INTERNAL, SC.UNIMPLEMENTED)


async def test_undecodable_response_is_internal() -> None:
    """CONFORMANCE 39: a response that fails to parse -> INTERNAL (trailers say OK)."""
    async with H2Peer(unary_reply(b"\x0a\xff\x01")) as peer, open_channel(peer) as ch:
        mc = ch.unary_unary(UNARY, response_deserializer=wrappers_pb2.StringValue.FromString)
        with pytest.raises(grpc_lite.RpcError) as ei:
            await mc(b"", timeout=3)
        assert ei.value.code() == SC.INTERNAL


async def test_undecodable_response_is_internal_and_cancels() -> None:
    """CONFORMANCE 39: a response that fails to parse -> INTERNAL and RST_STREAM(CANCEL)."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        await stream.send_message(b"\x0a\xff\x01")  # field 1, length 255, truncated
        await stream.wait_reset(None)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        mc = ch.unary_unary(UNARY, response_deserializer=wrappers_pb2.StringValue.FromString)
        with pytest.raises(grpc_lite.RpcError) as ei:
            await mc(b"", timeout=3)
        assert ei.value.code() == SC.INTERNAL
        assert await peer.streams[0].wait_reset(2.0) == 8


# ------------------------------------------------------------------ compression (D)


@pytest.mark.parametrize(
    "encoding,flag",
    [(None, 1), ("identity", 1), (None, 2), ("gzip", 7)],
    ids=["flag1-no-encoding", "flag1-identity", "flag2", "flag7-gzip"],
)
async def test_compressed_flag_must_match_encoding(encoding: str | None, flag: int) -> None:
    """CONFORMANCE 42: flag=1 without a real encoding, or a flag other than 0/1 -> INTERNAL."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers(extra=[("grpc-encoding", encoding)] if encoding else [])
        await stream.send_message(b"payload", flag=flag)
        await stream.send_trailers(0)

    err = await unary_error(handler)
    assert err.code() == SC.INTERNAL


async def test_unsupported_response_encoding() -> None:
    """CONFORMANCE 43: grpc-encoding snappy with a compressed message -> INTERNAL."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers(extra=[("grpc-encoding", "snappy")])
        await stream.send_message(b"whatever", flag=1)
        await stream.send_trailers(0)

    err = await unary_error(handler)
    assert err.code() == SC.INTERNAL


async def test_gzip_responses_mixed_flags() -> None:
    """CONFORMANCE 44: per-message gzip (no shared context) mixed with flag-0 messages."""
    payloads = [b"a" * 1000, b"plain", b"b" * 3000, b"", b"c" * 10]

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers(extra=[("grpc-encoding", "gzip")])
        for i, p in enumerate(payloads):
            await stream.send_message(p, compress=i % 2 == 0)
        await stream.send_trailers(0)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        call = ch.unary_stream(STREAMING_OUTPUT)(b"", timeout=3)
        assert [m async for m in call] == payloads
        sent = peer.connection.sent_frames
        assert any(r.type_name == "DATA" and r.data[:1] == b"\x01" for r in sent)


async def test_gzip_unary_response() -> None:
    """CONFORMANCE 44: a unary gzip response is decompressed."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers(extra=[("grpc-encoding", "gzip")])
        await stream.send_message(b"z" * 5000, compress=True)
        await stream.send_trailers(0)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        assert await ch.unary_unary(UNARY)(b"", timeout=3) == b"z" * 5000


@pytest.mark.parametrize("where", ["call", "channel"])
async def test_client_compression_gzip(where: str) -> None:
    """CONFORMANCE 45: grpc-encoding: gzip; flag-1 messages gunzip to the request, flag-0
    messages are plain."""
    payloads = [b"\x00" * 2000, b"x", b"y" * 500]

    async def handler(stream: PeerStream) -> None:
        got = await stream.read_all()
        await stream.send_message(b"".join(got))
        await stream.send_trailers(0)

    kw = {"compression": grpc_lite.Compression.Gzip}
    async with (
        H2Peer(handler) as peer,
        open_channel(peer, **(kw if where == "channel" else {})) as ch,
    ):

        async def gen():  # type: ignore[no-untyped-def]
            for p in payloads:
                yield p

        call = ch.stream_unary(STREAMING_INPUT)(gen(), timeout=3, **(kw if where == "call" else {}))
        assert await call == b"".join(payloads)
        st = peer.streams[0]
        assert st.header("grpc-encoding") == "gzip"
        assert len(st.messages) == 3
        for (flag, raw), p in zip(st.messages, payloads, strict=True):
            assert flag in (0, 1)
            assert (gzip.decompress(raw) if flag else raw) == p


# ------------------------------------------------------------------ HTTP/2 framing from the server


async def test_continuation_frames_on_response_headers_and_trailers() -> None:
    """CONFORMANCE 40 family: header blocks split into HEADERS + CONTINUATION frames."""
    big = "v" * 600

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers(extra=[("x-big", big)], split=20)
        await stream.send_message(b"ok")
        await stream.send_trailers(0, "fine", [("x-tbig", big)], split=33)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        call = ch.unary_unary(UNARY)(b"", timeout=3)
        assert await call == b"ok"
        assert metadata_values(await call.initial_metadata(), "x-big") == [big]
        assert metadata_values(await call.trailing_metadata(), "x-tbig") == [big]
        cont = [r for r in peer.connection.sent_frames if r.type_name == "CONTINUATION"]
        assert len(cont) > 20


async def test_unknown_frame_types_ignored() -> None:
    """RFC 7540 §4.1: frames of unknown type (connection and stream level) are ignored."""

    async def handler(stream: PeerStream) -> None:
        conn = stream.connection
        conn.write_unknown_frame(0xFA, 0, b"connection-level", flags=0x3)
        await stream.wait_end()
        await stream.send_headers()
        conn.write_unknown_frame(0xFB, stream.stream_id, b"stream-level")
        await stream.send_message(b"ok")
        conn.write_unknown_frame(0x20, stream.stream_id, b"", flags=0xFF)
        await stream.send_trailers(0)

    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        assert await ch.unary_unary(UNARY)(b"", timeout=3) == b"ok"
        assert await ch.unary_unary(UNARY)(b"", timeout=3) == b"ok"
        assert peer.connection_count == 1


async def _expect_prompt_failure(handler) -> None:  # type: ignore[no-untyped-def]
    async with H2Peer(handler) as peer, open_channel(peer) as ch:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(grpc_lite.RpcError) as ei:
            await ch.unary_unary(UNARY)(b"", timeout=3)
        assert ei.value.code() in (SC.UNAVAILABLE, SC.INTERNAL), ei.value
        assert loop.time() - start < 2.0


async def test_bad_hpack_fails_call_quickly() -> None:
    """A header block that does not decode (COMPRESSION_ERROR) fails the call UNAVAILABLE or
    INTERNAL at once; it never hangs."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        bad = b"\xff\xff\xff\xff\xff\x7f"  # indexed field, index far beyond any table
        stream.connection.write_frame(
            HeadersFrame(stream.stream_id, data=bad, flags=["END_HEADERS"])
        )
        await stream.wait_reset(None)

    await _expect_prompt_failure(handler)


async def test_corrupt_settings_frame_fails_call_quickly() -> None:
    """A SETTINGS frame whose length is not a multiple of 6 (FRAME_SIZE_ERROR) fails the call
    UNAVAILABLE or INTERNAL quickly."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        stream.connection.write_raw(b"\x00\x00\x05\x04\x00\x00\x00\x00\x00" + b"\x00" * 5)
        await stream.wait_reset(None)

    await _expect_prompt_failure(handler)


async def test_data_on_stream_zero_fails_call_quickly() -> None:
    """DATA on stream 0 is a connection PROTOCOL_ERROR: the call fails quickly."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        stream.connection.write_raw(b"\x00\x00\x05\x00\x00\x00\x00\x00\x00" + b"\x00" * 5)
        await stream.wait_reset(None)

    await _expect_prompt_failure(handler)


async def test_settings_ack_with_payload_fails_call_quickly() -> None:
    """A SETTINGS ACK carrying a payload is a FRAME_SIZE_ERROR connection error."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        stream.connection.write_raw(
            b"\x00\x00\x06\x04\x01\x00\x00\x00\x00" + b"\x00\x03\x00\x00\x00\x01"
        )
        await stream.wait_reset(None)

    await _expect_prompt_failure(handler)


async def test_garbage_frame_sizes_fail_quickly() -> None:
    """A frame header announcing more than MAX_FRAME_SIZE fails the call quickly."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.send_headers()
        stream.connection.write_raw(b"\xff\xff\xff\x00\x00\x00\x00\x00\x01" + b"\x00" * 100)
        await stream.wait_reset(None)

    await _expect_prompt_failure(handler)

"""Sans-IO tests of the HTTP/2 client connection (grpc_lite/_transport/_connection.py) and
the gRPC stream on top of it (_stream.py), against a real ``h2`` server connection with no
event loop and no sockets (tests/fakes/h2server.py). CONFORMANCE items are cited per test."""

from __future__ import annotations

import base64
import struct

import h2.events
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from grpc_lite._transport import _frames as fr
from grpc_lite._transport._connection import ConnectionState, StreamState
from grpc_lite._transport._stream import ClientStream
from grpc_lite.status import StatusCode as SC
from tests.fakes.h2server import Pair, RecordingStreamListener, grpc_message, parse_frames

MAX_CONCURRENT_STREAMS = fr.SETTINGS_MAX_CONCURRENT_STREAMS
INITIAL_WINDOW_SIZE = fr.SETTINGS_INITIAL_WINDOW_SIZE
MAX_FRAME_SIZE = fr.SETTINGS_MAX_FRAME_SIZE
MAX_HEADER_LIST_SIZE = fr.SETTINGS_MAX_HEADER_LIST_SIZE


def data_bytes(frames: list, stream_id: int) -> int:
    return sum(len(f.data) for f in frames if isinstance(f, DataFrame) and f.stream_id == stream_id)


def last_goaway(pair: Pair) -> GoAwayFrame:
    goaways = pair.server.frames_of(fr.GOAWAY)
    assert goaways, "the client wrote no GOAWAY"
    return goaways[-1]


def assert_connection_error(pair: Pair, code: int) -> None:
    assert pair.conn.state is ConnectionState.CLOSED
    assert last_goaway(pair).error_code == code
    assert pair.listener.of("closed")


def wu_total(pair: Pair, stream_id: int) -> int:
    return sum(f.window_increment for f in pair.server.frames_of(fr.WINDOW_UPDATE, stream_id))


# ---------------------------------------------------------------------------- preface (17)


def test_initiate_writes_preface_settings_and_window_update() -> None:
    pair = Pair(stream_window=300_000, connection_window=5_000_000, handshake=False)
    pair.conn.initiate()
    assert len(pair.writes) == 1  # one write per public call
    raw = pair.writes[0]
    assert raw.startswith(fr.PREFACE)
    settings, wu = parse_frames(raw[len(fr.PREFACE) :])
    assert isinstance(settings, SettingsFrame)
    assert "ACK" not in settings.flags
    assert settings.settings[fr.SETTINGS_ENABLE_PUSH] == 0
    assert settings.settings[INITIAL_WINDOW_SIZE] == 300_000
    assert MAX_HEADER_LIST_SIZE in settings.settings
    assert isinstance(wu, WindowUpdateFrame)
    assert (wu.stream_id, wu.window_increment) == (0, 5_000_000 - 65535)
    pair.to_server()
    assert pair.server.errors == []
    changed = [e for e in pair.server.events if isinstance(e, h2.events.RemoteSettingsChanged)]
    assert changed[0].changed_settings[INITIAL_WINDOW_SIZE].new_value == 300_000


def test_default_connection_window_sends_no_window_update() -> None:
    pair = Pair(connection_window=65535, handshake=False)
    pair.conn.initiate()
    frames = parse_frames(pair.writes[0][len(fr.PREFACE) :])
    assert [type(f) for f in frames] == [SettingsFrame]


def test_not_ready_until_server_settings() -> None:
    """CONFORMANCE 17: READY only once the server's SETTINGS frame has arrived, however the
    bytes are split; nothing is sent for a stream before that."""
    pair = Pair(handshake=False)
    pair.conn.initiate()
    pair.to_server()
    assert pair.conn.state is ConnectionState.CONNECTING
    assert not pair.conn.accepting_streams
    early = pair.stream()
    early.send(grpc_message(b"x"), True)
    before = len(pair.writes)
    pair.conn.start_stream(early)
    assert len(pair.writes) == before  # not sent
    assert early.id == 0
    server_bytes = pair.server.data_to_send()
    (settings_length,) = struct.unpack(">I", b"\0" + server_bytes[:3])
    assert server_bytes[3] == fr.SETTINGS
    rest = server_bytes[9 + settings_length :]
    server_bytes = server_bytes[: 9 + settings_length]
    for i in range(len(server_bytes) - 1):
        pair.conn.receive_data(server_bytes[i : i + 1])
        assert pair.conn.state is ConnectionState.CONNECTING
        assert pair.listener.of("ready") == []
    pair.conn.receive_data(server_bytes[-1:])
    assert pair.conn.state is ConnectionState.READY
    assert pair.listener.of("ready") == [("ready",)]
    pair.conn.receive_data(rest)
    pair.pump()
    assert pair.server.frames_of(fr.HEADERS) == []
    assert pair.server.errors == []


def test_first_server_frame_not_settings_is_connection_error() -> None:
    pair = Pair(handshake=False)
    pair.conn.initiate()
    pair.conn.receive_data(fr.encode_ping(b"\0" * 8))
    assert pair.conn.state is ConnectionState.CLOSED
    goaway = parse_frames(pair.writes[-1])[-1]
    assert isinstance(goaway, GoAwayFrame)
    assert goaway.error_code == fr.PROTOCOL_ERROR
    assert pair.listener.of("ready") == []


# ---------------------------------------------------------------------------- SETTINGS / PING (16)


def test_server_settings_are_acked() -> None:
    pair = Pair()
    acks = [e for e in pair.server.events if isinstance(e, h2.events.SettingsAcknowledged)]
    assert len(acks) == 1
    pair.server.update_settings({MAX_CONCURRENT_STREAMS: 7})
    pair.pump()
    acks = [e for e in pair.server.events if isinstance(e, h2.events.SettingsAcknowledged)]
    assert len(acks) == 2
    assert pair.conn.peer_max_concurrent_streams == 7
    assert pair.listener.of("ready") == [("ready",)]  # once only
    assert pair.server.errors == []


def test_server_ping_is_acked_even_when_idle() -> None:
    pair = Pair()
    pair.server.ping(b"abcdefgh")
    new = pair.pump()
    pings = [f for f in new if isinstance(f, PingFrame)]
    assert len(pings) == 1
    assert "ACK" in pings[0].flags
    assert pings[0].opaque_data == b"abcdefgh"
    assert any(isinstance(e, h2.events.PingAckReceived) for e in pair.server.events)


def test_ping_between_headers_and_data_and_client_ping_ack() -> None:
    pair = Pair()
    s = pair.start(b"q")
    pair.pump()
    pair.server.ping(b"11111111")
    pair.server.send_headers(1)
    pair.server.ping(b"22222222")
    pair.server.send_message(1, b"a")
    pair.server.ping(b"33333333")
    pair.server.send_trailers(1)
    pair.pump()
    assert s.code is SC.OK
    acked = [f.opaque_data for f in pair.server.frames_of(fr.PING) if "ACK" in f.flags]
    assert acked == [b"11111111", b"22222222", b"33333333"]
    pair.conn.ping(b"clientpg")
    pair.pump()
    assert pair.listener.of("ping_acked") == [("ping_acked", b"clientpg")]


def test_bad_ping_and_settings_are_connection_errors() -> None:
    pair = Pair()
    pair.server.raw(fr.PING, 0, 0, b"short")
    pair.pump()
    assert_connection_error(pair, fr.FRAME_SIZE_ERROR)
    pair = Pair()
    pair.server.raw(fr.SETTINGS, fr.FLAG_ACK, 0, b"\0" * 6)
    pair.pump()
    assert_connection_error(pair, fr.FRAME_SIZE_ERROR)
    pair = Pair()
    pair.server.raw(fr.SETTINGS, 0, 1, b"")
    pair.pump()
    assert_connection_error(pair, fr.PROTOCOL_ERROR)


# ---------------------------------------------------------------------------- flow control (12)


def test_unary_is_headers_then_data_with_end_stream_in_one_write() -> None:
    """CONFORMANCE 11."""
    pair = Pair()
    before = len(pair.writes)
    pair.start(b"hello")
    assert len(pair.writes) == before + 1
    headers, data = parse_frames(pair.writes[-1])
    assert isinstance(headers, HeadersFrame)
    assert "END_STREAM" not in headers.flags
    assert isinstance(data, DataFrame)
    assert "END_STREAM" in data.flags
    assert data.data == grpc_message(b"hello")


def test_half_close_is_empty_data_with_end_stream() -> None:
    """CONFORMANCE 11: nothing left to send -> an empty DATA frame with END_STREAM."""
    pair = Pair()
    s = pair.start(None, unary=False)
    pair.pump()
    s.send(grpc_message(b"a"), False)
    s.send(b"", True)
    new = pair.pump()
    data = [f for f in new if isinstance(f, DataFrame)]
    assert [(f.data, "END_STREAM" in f.flags) for f in data] == [
        (grpc_message(b"a"), False),
        (b"", True),
    ]
    assert s.h2_state is StreamState.HALF_CLOSED_LOCAL
    assert not [f for f in pair.server.frames if isinstance(f, HeadersFrame) and f.stream_id > 1]
    assert pair.server.requests[1].ended


def test_initial_window_size_changes_apply_to_open_streams_including_negative() -> None:
    """CONFORMANCE 12; RFC 9113 6.9.2: a SETTINGS change adjusts every open stream's send
    window by the delta, which may leave it negative."""
    pair = Pair({INITIAL_WINDOW_SIZE: 100}, auto_ack_data=False)
    s = pair.start(None)
    s.send(b"x" * 300, True)
    frames = pair.pump()
    assert data_bytes(frames, 1) == 100
    assert s.send_buffered == 200
    pair.server.update_settings({INITIAL_WINDOW_SIZE: 50})  # window: 0 - 50 = -50
    assert data_bytes(pair.pump(), 1) == 0
    pair.server.window_update(1, 60)  # window: -50 + 60 = 10
    assert data_bytes(pair.pump(), 1) == 10
    pair.server.update_settings({INITIAL_WINDOW_SIZE: 1000})  # window: 10 - 10 + 950 = 950
    frames = pair.pump()
    assert data_bytes(frames, 1) == 190
    assert [f for f in frames if isinstance(f, DataFrame)][-1].flags == {"END_STREAM"}
    assert pair.server.requests[1].data == b"x" * 300
    assert pair.server.errors == []


def test_initial_window_size_applies_to_streams_opened_later() -> None:
    pair = Pair({INITIAL_WINDOW_SIZE: 10}, auto_ack_data=False)
    s = pair.start(None)
    s.send(b"y" * 50, False)
    assert data_bytes(pair.pump(), 1) == 10
    pair.server.update_settings({INITIAL_WINDOW_SIZE: 20})
    assert data_bytes(pair.pump(), 1) == 10  # delta +10
    s2 = pair.start(None)
    s2.send(b"z" * 50, False)
    assert data_bytes(pair.pump(), 3) == 20
    assert pair.server.errors == []


def test_initial_window_size_too_large_is_flow_control_error() -> None:
    pair = Pair()
    s = pair.start(b"x")
    pair.pump()
    pair.server.raw(fr.SETTINGS, 0, 0, struct.pack(">HI", INITIAL_WINDOW_SIZE, 2**31))
    pair.pump()
    assert_connection_error(pair, fr.FLOW_CONTROL_ERROR)
    assert s.code is not None


def test_connection_window_blocks_and_resumes() -> None:
    """CONFORMANCE 12: the connection window (65535) is never exceeded; sending resumes on a
    connection-level WINDOW_UPDATE, and the RPC does not fail meanwhile."""
    pair = Pair({INITIAL_WINDOW_SIZE: 1 << 20}, auto_ack_data=False)
    s = pair.start(None)
    s.send(b"d" * 100_000, True)
    assert data_bytes(pair.pump(), 1) == 65535
    assert s.code is None
    pair.server.window_update(0, 40_000)
    assert data_bytes(pair.pump(), 1) == 100_000 - 65535
    assert pair.server.requests[1].ended
    assert pair.server.errors == []


@pytest.mark.parametrize("max_frame_size", [None, 20_000, 16_777_215])
def test_max_frame_size_respected_when_splitting_data(max_frame_size: int | None) -> None:
    settings = {INITIAL_WINDOW_SIZE: 1 << 22}
    if max_frame_size is not None:
        settings[MAX_FRAME_SIZE] = max_frame_size
    limit = max_frame_size or fr.DEFAULT_MAX_FRAME_SIZE
    pair = Pair(settings)
    pair.server.window_update(0, 1 << 22)
    pair.pump()
    s = pair.start(None)
    payload = bytes(range(256)) * 1000  # 256000 bytes
    s.send(payload, True)
    pair.pump()
    frames = pair.server.frames_of(fr.DATA, 1)
    assert all(len(f.data) <= limit for f in frames)
    assert max(len(f.data) for f in frames) == min(limit, len(payload))
    assert pair.server.requests[1].data == payload
    assert pair.server.errors == []


def test_large_request_headers_use_continuation_frames() -> None:
    pair = Pair()
    big = "a" * 40_000
    s = pair.start(b"x", metadata=[("x-big", big)])
    pair.pump()
    headers = pair.server.frames_of(fr.HEADERS, 1)
    conts = pair.server.frames_of(fr.CONTINUATION, 1)
    assert len(headers) == 1
    assert len(conts) >= 2
    assert all(f.wire_length <= fr.DEFAULT_MAX_FRAME_SIZE for f in [*headers, *conts])
    assert "END_HEADERS" not in headers[0].flags
    assert "END_HEADERS" in conts[-1].flags
    assert ("x-big", big) in pair.server.requests[1].headers
    assert pair.server.errors == []
    assert s.code is None


# ---------------------------------------------------------------------------- streams (14, 15)


def test_max_concurrent_streams_queues_extra_streams() -> None:
    """CONFORMANCE 14: with MCS=1 only one HEADERS is on the wire; the next stream starts
    when the first closes; none fails."""
    pair = Pair({MAX_CONCURRENT_STREAMS: 1})
    streams = [pair.start(b"req%d" % i) for i in range(3)]
    pair.pump()
    assert [f.stream_id for f in pair.server.frames_of(fr.HEADERS)] == [1]
    assert pair.conn.active_streams == 1
    assert pair.conn.pending_streams == 2
    assert [s.h2_state for s in streams] == [StreamState.HALF_CLOSED_LOCAL] + [
        StreamState.PENDING
    ] * 2
    for i, sid in enumerate([1, 3, 5]):
        assert streams[i].id == sid
        assert pair.server.requests[sid].data == grpc_message(b"req%d" % i)
        pair.server.respond(sid, b"resp%d" % i)
        pair.pump()
        assert streams[i].code is SC.OK
        assert streams[i].listener.taken == [b"resp%d" % i]
        expected_headers = [1, 3, 5][: i + 2]
        assert [f.stream_id for f in pair.server.frames_of(fr.HEADERS)] == expected_headers
    assert pair.conn.pending_streams == 0
    assert pair.server.errors == []


def test_max_concurrent_streams_raised_starts_pending() -> None:
    pair = Pair({MAX_CONCURRENT_STREAMS: 1})
    streams = [pair.start(b"r") for _ in range(4)]
    pair.pump()
    assert pair.conn.pending_streams == 3
    pair.server.update_settings({MAX_CONCURRENT_STREAMS: 3})
    pair.pump()
    assert [f.stream_id for f in pair.server.frames_of(fr.HEADERS)] == [1, 3, 5]
    assert pair.conn.pending_streams == 1
    pair.server.respond(3, b"x")
    pair.pump()
    assert streams[3].id == 7
    assert pair.server.errors == []


def test_cancelled_pending_stream_is_never_sent() -> None:
    pair = Pair({MAX_CONCURRENT_STREAMS: 1})
    s1 = pair.start(b"a")
    s2 = pair.start(b"b")
    s3 = pair.start(b"c")
    pair.pump()
    s2.cancel(SC.CANCELLED, "cancelled")
    assert s2.code is SC.CANCELLED
    pair.server.respond(1, b"1")
    pair.pump()
    assert s1.code is SC.OK
    assert [f.stream_id for f in pair.server.frames_of(fr.HEADERS)] == [1, 3]
    assert s3.id == 3
    assert pair.server.frames_of(fr.RST_STREAM) == []


def test_stream_ids_odd_and_increasing() -> None:
    """CONFORMANCE 15."""
    pair = Pair()
    first = [pair.start(b"x") for _ in range(5)]
    pair.pump()
    for s in first:
        pair.server.respond(s.id, b"y")
    pair.pump()
    later = [pair.start(b"x") for _ in range(3)]
    pair.pump()
    ids = [f.stream_id for f in pair.server.frames_of(fr.HEADERS)]
    assert ids == [1, 3, 5, 7, 9, 11, 13, 15]
    assert [s.id for s in first + later] == ids
    assert pair.server.errors == []


# ---------------------------------------------------------------------------- inbound flow (13)


@pytest.mark.parametrize("unary", [False, True])
def test_window_update_credit_includes_padding(unary: bool) -> None:
    """CONFORMANCE 13 (data_frame_padding): 5-byte frames each with 255 bytes of padding,
    far beyond both receive windows; credit is returned for the full flow-controlled length
    (a unary stream holds back what the rest of its message does not need, and never
    stalls)."""
    pair = Pair(stream_window=1000, connection_window=65535)
    s = pair.start(b"q", unary=unary)
    pair.pump()
    pair.server.send_headers(1)
    message = grpc_message(bytes(i % 256 for i in range(1500)))
    total_flow = 0
    pos = 0
    while pos < len(message):
        if pair.server.h2.local_flow_control_window(1) < 261:
            pair.pump()
            assert pair.server.h2.local_flow_control_window(1) >= 261, "server stalled"
        chunk = message[pos : pos + 5]
        pair.server.send_data(1, chunk, pad_length=255)
        total_flow += 1 + len(chunk) + 255
        pos += 5
    pair.server.send_trailers(1)
    pair.pump()
    assert s.code is SC.OK, s.details
    assert s.listener.taken == [message[5:]]
    assert total_flow > 65535 + 1000
    held_back = total_flow - wu_total(pair, 1)
    assert 0 <= held_back < (1000 if unary else 1000 // 4)
    assert 0 <= total_flow - wu_total(pair, 0) < 65535 // 4
    assert pair.server.errors == []


def test_streaming_credit_returned_when_messages_are_taken() -> None:
    """CONFORMANCE 13: a streaming reader that lags holds back stream credit; taking the
    messages returns it."""
    listener = RecordingStreamListener(take=False)
    pair = Pair(stream_window=1000)
    s = pair.start(b"q", unary=False, listener=listener)
    pair.pump()
    pair.server.send_headers(1)
    for _ in range(3):
        pair.server.send_message(1, b"m" * 300)
    pair.pump()
    assert len(s.messages) == 3
    assert wu_total(pair, 1) == 0
    assert pair.server.h2.local_flow_control_window(1) == 1000 - 3 * 305
    while s.take_message() is not None:
        pass
    pair.pump()
    assert wu_total(pair, 1) == 3 * 305
    pair.server.send_message(1, b"n" * 900)
    pair.server.send_trailers(1)
    pair.pump()
    assert s.take_message() == b"n" * 900
    assert s.code is SC.OK
    assert pair.server.errors == []


def test_data_beyond_stream_window_is_stream_error() -> None:
    pair = Pair(stream_window=100)
    s = pair.start(b"q")
    pair.pump()
    pair.server.send_headers(1)
    pair.server.raw_data(1, b"\0" * 200)
    pair.pump()
    assert s.code is SC.INTERNAL
    rst = pair.server.frames_of(fr.RST_STREAM, 1)
    assert [f.error_code for f in rst] == [fr.FLOW_CONTROL_ERROR]
    assert pair.conn.state is ConnectionState.READY


# ----------------------------------------------------------------------- GOAWAY (161, 122, 163)


def test_goaway_drain_lower_streams_complete_higher_unprocessed() -> None:
    """CONFORMANCE 161/122: streams <= last_stream_id run to completion (DATA, trailers and
    WINDOW_UPDATE still processed and sent); streams above are reported unprocessed; a
    stream started after the GOAWAY is unprocessed and never written; the connection closes
    once drained."""
    pair = Pair(stream_window=1000)
    s1, s3, s5 = (pair.start(b"r%d" % i) for i in range(3))
    pair.pump()
    for sid in (1, 3, 5):
        pair.server.send_headers(sid)
    pair.pump()
    pair.server.goaway(3, fr.NO_ERROR, b"bye")
    pair.pump()
    assert pair.conn.state is ConnectionState.DRAINING
    assert not pair.conn.accepting_streams
    assert pair.listener.of("goaway") == [("goaway", 3, fr.NO_ERROR, b"bye")]
    assert s5.code is SC.UNAVAILABLE
    assert s5.unprocessed
    assert s1.code is None and s3.code is None
    assert not s1.unprocessed and not s3.unprocessed
    # A new stream after GOAWAY is unprocessed and not written.
    before = len(pair.writes)
    late = pair.start(b"late")
    assert late.code is SC.UNAVAILABLE and late.unprocessed
    assert len(pair.writes) == before
    # Stream 1 gets a response larger than its window: WINDOW_UPDATEs must flow.
    big = grpc_message(b"B" * 5000)
    pos = 0
    while pos < len(big):
        room = pair.server.h2.local_flow_control_window(1)
        if room == 0:
            pair.pump()
            room = pair.server.h2.local_flow_control_window(1)
            assert room > 0, "no WINDOW_UPDATE during drain"
        pair.server.send_data(1, big[pos : pos + room])
        pos += room
    pair.server.send_trailers(1)
    pair.pump()
    assert s1.code is SC.OK, s1.details
    assert s1.listener.taken == [b"B" * 5000]
    assert wu_total(pair, 1) > 0
    assert pair.conn.state is ConnectionState.DRAINING
    pair.server.send_message(3, b"three")
    pair.server.send_trailers(3)
    pair.pump()
    assert s3.code is SC.OK
    assert s3.listener.taken == [b"three"]
    assert pair.conn.state is ConnectionState.CLOSED
    assert last_goaway(pair).error_code == fr.NO_ERROR
    assert max(f.stream_id for f in pair.server.frames_of(fr.HEADERS)) == 5


def test_goaway_max_id_stops_new_streams_but_keeps_open_ones() -> None:
    """CONFORMANCE 161: even GOAWAY(2^31-1) stops new streams on this connection."""
    pair = Pair()
    s1 = pair.start(b"a")
    pair.pump()
    pair.server.goaway(fr.MAX_STREAM_ID)
    pair.pump()
    assert pair.conn.state is ConnectionState.DRAINING
    s3 = pair.start(b"b")
    assert s3.unprocessed and s3.code is SC.UNAVAILABLE
    pair.server.respond(1, b"ok")
    pair.pump()
    assert s1.code is SC.OK
    assert pair.conn.state is ConnectionState.CLOSED


def test_second_goaway_with_smaller_id_fails_streams_above() -> None:
    """CONFORMANCE 161: GOAWAY(2^31-1) then GOAWAY(1): stream 3 unprocessed, 1 completes."""
    pair = Pair()
    s1, s3 = pair.start(b"a"), pair.start(b"b")
    pair.pump()
    pair.server.goaway(fr.MAX_STREAM_ID, fr.NO_ERROR, b"shutdown")
    pair.server.ping(b"pingpong")
    pair.pump()
    assert s1.code is None and s3.code is None
    pair.server.goaway(1)
    pair.pump()
    assert s3.code is SC.UNAVAILABLE and s3.unprocessed
    assert s1.code is None
    assert [e[1] for e in pair.listener.of("goaway")] == [fr.MAX_STREAM_ID, 1]
    pair.server.respond(1, b"done")
    pair.pump()
    assert s1.code is SC.OK
    assert s1.listener.taken == [b"done"]
    assert pair.conn.state is ConnectionState.CLOSED


def test_goaway_zero_with_no_streams_closes() -> None:
    pair = Pair()
    pair.server.goaway(0, fr.ENHANCE_YOUR_CALM, b"too_many_pings")
    pair.pump()
    assert pair.listener.of("goaway") == [("goaway", 0, fr.ENHANCE_YOUR_CALM, b"too_many_pings")]
    assert pair.conn.state is ConnectionState.CLOSED
    assert pair.listener.of("closed")


@pytest.mark.parametrize("second", [3, 5])
def test_goaway_with_larger_id_is_connection_error(second: int) -> None:
    """CONFORMANCE 163: a later GOAWAY with a larger last_stream_id: connection error, the
    streams fail UNAVAILABLE."""
    pair = Pair()
    s1, s3 = pair.start(b"a", unary=False), pair.start(b"b")
    pair.pump()
    pair.server.goaway(1)
    pair.pump()
    assert s3.unprocessed
    pair.server.goaway(second)
    pair.pump()
    assert_connection_error(pair, fr.PROTOCOL_ERROR)
    assert s1.code is SC.UNAVAILABLE, s1.details


@pytest.mark.parametrize("last", [2, 4, 2**31 - 2])
def test_goaway_with_even_id_is_connection_error(last: int) -> None:
    """CONFORMANCE 163: GOAWAY with a non-zero even last_stream_id: connection error, the
    open streams fail UNAVAILABLE."""
    pair = Pair()
    s1, s3 = pair.start(b"a"), pair.start(b"b")
    pair.pump()
    pair.server.goaway(last)
    pair.pump()
    assert_connection_error(pair, fr.PROTOCOL_ERROR)
    assert s1.code is SC.UNAVAILABLE, s1.details
    assert s3.code is SC.UNAVAILABLE, s3.details


def test_goaway_on_stream_or_short_is_connection_error() -> None:
    pair = Pair()
    pair.server.raw(fr.GOAWAY, 0, 1, b"\0" * 8)
    pair.pump()
    assert_connection_error(pair, fr.PROTOCOL_ERROR)
    pair = Pair()
    pair.server.raw(fr.GOAWAY, 0, 0, b"\0" * 7)
    pair.pump()
    assert_connection_error(pair, fr.FRAME_SIZE_ERROR)


# ---------------------------------------------------------------------------- RST_STREAM (34, 35)

RST_TABLE = [
    (fr.NO_ERROR, SC.INTERNAL),
    (fr.PROTOCOL_ERROR, SC.INTERNAL),
    (fr.INTERNAL_ERROR, SC.INTERNAL),
    (fr.FLOW_CONTROL_ERROR, SC.INTERNAL),
    (fr.SETTINGS_TIMEOUT, SC.INTERNAL),
    (fr.STREAM_CLOSED, SC.INTERNAL),
    (fr.FRAME_SIZE_ERROR, SC.INTERNAL),
    (fr.REFUSED_STREAM, SC.UNAVAILABLE),
    (fr.CANCEL, SC.CANCELLED),
    (fr.COMPRESSION_ERROR, SC.INTERNAL),
    (fr.CONNECT_ERROR, SC.INTERNAL),
    (fr.ENHANCE_YOUR_CALM, SC.RESOURCE_EXHAUSTED),
    (fr.INADEQUATE_SECURITY, SC.PERMISSION_DENIED),
    (fr.HTTP_1_1_REQUIRED, SC.INTERNAL),
    (0x1234, SC.INTERNAL),
]


@pytest.mark.parametrize(("code", "status"), RST_TABLE)
def test_rst_stream_after_headers_maps_code(code: int, status: SC) -> None:
    """CONFORMANCE 34."""
    pair = Pair()
    s = pair.start(b"a")
    other = pair.start(b"b")
    pair.pump()
    pair.server.send_headers(1)
    pair.server.reset(1, code)
    pair.pump()
    assert s.code is status
    assert fr.error_name(code) in s.details
    assert not s.unprocessed
    assert pair.server.frames_of(fr.RST_STREAM, 1) == []  # never answer RST with RST
    assert pair.conn.state is ConnectionState.READY
    assert other.code is None
    pair.server.respond(3, b"fine")
    pair.pump()
    assert other.code is SC.OK


def test_refused_stream_before_headers_is_unprocessed() -> None:
    """CONFORMANCE 34/121: REFUSED_STREAM before headers -> UNAVAILABLE, retryable."""
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    pair.server.reset(1, fr.REFUSED_STREAM)
    pair.pump()
    assert s.code is SC.UNAVAILABLE
    assert s.unprocessed


def test_rst_no_error_after_trailers_keeps_status() -> None:
    """CONFORMANCE 35/36: trailers before the client half-closed -> the client sends
    RST_STREAM(NO_ERROR); a RST_STREAM(NO_ERROR) from the server after trailers does not
    change the status."""
    pair = Pair()
    s = pair.start(None)
    s.send(grpc_message(b"first"), False)
    pair.pump()
    pair.server.send_headers(1)
    pair.server.send_trailers(1, 9, "precondition%20failed")
    pair.server.rst(1, fr.NO_ERROR)
    pair.pump()
    assert s.code is SC.FAILED_PRECONDITION
    assert s.details == "precondition failed"
    assert [f.error_code for f in pair.server.frames_of(fr.RST_STREAM, 1)] == [fr.NO_ERROR]
    assert pair.conn.state is ConnectionState.READY


def test_trailers_only_then_rst_no_error_keeps_status() -> None:
    """CONFORMANCE 35: grpcio's abort before half-close: Trailers-Only + RST(NO_ERROR)."""
    pair = Pair()
    s = pair.start(None, unary=False)
    pair.pump()
    pair.server.trailers_only(1, 9, "nope")
    pair.server.rst(1, fr.NO_ERROR)
    pair.pump()
    assert s.code is SC.FAILED_PRECONDITION
    assert s.details == "nope"


def test_rst_no_error_before_trailers_fails_call() -> None:
    """CONFORMANCE 35: headers + a full message + RST(NO_ERROR) without trailers -> INTERNAL."""
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    pair.server.send_headers(1)
    pair.server.send_message(1, b"complete")
    pair.server.reset(1, fr.NO_ERROR)
    pair.pump()
    assert s.code is SC.INTERNAL


# ---------------------------------------------------------------------------- response shapes


def test_trailers_only_response() -> None:
    """CONFORMANCE 27."""
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    pair.server.h2.send_headers(
        1,
        [
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "5"),
            ("grpc-message", "not%20found"),
            ("x-extra", "1"),
        ],
        end_stream=True,
    )
    pair.pump()
    assert s.code is SC.NOT_FOUND
    assert s.details == "not found"
    assert not s.initial_metadata  # None or empty: everything in Trailers-Only is trailers
    assert s.trailing_metadata is not None and s.trailing_metadata.get("x-extra") == "1"
    assert s.listener.events[-1] == "done"
    # The client had half-closed: no RST needed.
    assert pair.server.frames_of(fr.RST_STREAM) == []


def test_early_server_closure_client_sends_rst_no_error() -> None:
    """CONFORMANCE 36: trailers before the client half-closed: RST_STREAM(NO_ERROR), the
    status from the trailers, later sends do nothing."""
    pair = Pair()
    s = pair.start(None)
    s.send(grpc_message(b"one"), False)
    pair.pump()
    pair.server.respond(1, b"answer")
    pair.pump()
    assert s.code is SC.OK
    assert s.listener.taken == [b"answer"]
    rst = pair.server.frames_of(fr.RST_STREAM, 1)
    assert [f.error_code for f in rst] == [fr.NO_ERROR]
    assert pair.server.requests[1].reset_code == fr.NO_ERROR
    before = len(pair.writes)
    s.send(grpc_message(b"two"), False)
    s.send(b"", True)
    pair.conn.send_data(s, b"raw", True)
    assert len(pair.writes) == before
    assert pair.conn.state is ConnectionState.READY
    assert pair.server.errors == []


def test_data_before_headers_is_internal() -> None:
    """CONFORMANCE 33 (DATA before HEADERS): INTERNAL, the stream is reset."""
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    pair.server.raw_data(1, grpc_message(b"x"))
    pair.pump()
    assert s.code is SC.INTERNAL
    assert [f.error_code for f in pair.server.frames_of(fr.RST_STREAM, 1)] == [fr.PROTOCOL_ERROR]
    assert pair.conn.state is ConnectionState.READY


def test_headers_mid_stream_is_internal() -> None:
    """CONFORMANCE 33: a second HEADERS without END_STREAM -> INTERNAL."""
    pair = Pair()
    s = pair.start(b"a", unary=False)
    s2 = pair.start(b"b")
    pair.pump()
    pair.server.send_headers(1)
    pair.server.send_message(1, b"m1")
    pair.server.raw_headers(1, [("x-again", "1")])
    pair.pump()
    assert s.code is SC.INTERNAL
    # A malformed response is a stream error of type PROTOCOL_ERROR (RFC 9113 §8.1.1).
    assert [f.error_code for f in pair.server.frames_of(fr.RST_STREAM, 1)] == [fr.PROTOCOL_ERROR]
    # The HPACK state stayed in sync: the other stream still decodes its headers.
    pair.server.h2.send_headers(3, [(":status", "200"), ("content-type", "application/grpc")])
    pair.server.send_message(3, b"ok")
    pair.server.send_trailers(3, extra=[("x-again", "2")])
    pair.pump()
    assert s2.code is SC.OK
    assert s2.trailing_metadata is not None and s2.trailing_metadata.get("x-again") == "2"


def test_informational_headers_are_skipped() -> None:
    """CONFORMANCE 32."""
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    pair.server.h2.send_headers(1, [(":status", "100")])
    pair.server.respond(1, b"real")
    pair.pump()
    assert s.code is SC.OK
    assert s.listener.taken == [b"real"]
    assert s.listener.events.count("headers") == 1


def test_informational_headers_with_end_stream_is_internal() -> None:
    """CONFORMANCE 32: a 1xx with END_STREAM is a protocol error (INTERNAL)."""
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    pair.server.raw_headers(1, [(":status", "100")], end_stream=True)
    pair.pump()
    assert s.code is SC.INTERNAL
    assert pair.server.frames_of(fr.RST_STREAM, 1) == []  # both sides ended: nothing to reset


def test_large_response_headers_in_continuation_frames() -> None:
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    big = base64.b64encode(bytes(range(256)) * 120).decode()  # ~40 KB
    pair.server.h2.send_headers(
        1, [(":status", "200"), ("content-type", "application/grpc"), ("x-big", big)]
    )
    sent = pair.server.data_to_send()
    assert any(isinstance(f, ContinuationFrame) for f in parse_frames(sent))
    for i in range(0, len(sent), 1000):
        pair.conn.receive_data(sent[i : i + 1000])
    pair.server.send_message(1, b"m")
    pair.server.send_trailers(1)
    pair.pump()
    assert s.code is SC.OK
    assert s.initial_metadata is not None and s.initial_metadata.get("x-big") == big


def test_frame_interleaved_in_header_block_is_connection_error() -> None:
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    block = pair.server.header_block([(":status", "200"), ("content-type", "application/grpc")])
    pair.server.raw(fr.HEADERS, 0, 1, block[:2])
    pair.server.raw(fr.PING, 0, 0, b"\0" * 8)
    pair.pump()
    assert_connection_error(pair, fr.PROTOCOL_ERROR)
    assert s.code is not None


def test_continuation_for_another_stream_is_connection_error() -> None:
    pair = Pair()
    pair.start(b"a")
    pair.start(b"b")
    pair.pump()
    block = pair.server.header_block([(":status", "200")])
    pair.server.raw(fr.HEADERS, 0, 1, block[:1])
    pair.server.raw(fr.CONTINUATION, fr.FLAG_END_HEADERS, 3, block[1:])
    pair.pump()
    assert_connection_error(pair, fr.PROTOCOL_ERROR)


def test_bad_hpack_is_compression_error() -> None:
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    pair.server.raw(fr.HEADERS, fr.FLAG_END_HEADERS, 1, b"\xff\xff\xff\xff\x7f")
    pair.pump()
    assert_connection_error(pair, fr.COMPRESSION_ERROR)
    assert s.code is not None


# ---------------------------------------------------------------------------- illegal frames


@pytest.mark.parametrize("stream_id", [0, 2, 3, 7, 101])
def test_data_on_never_opened_stream_is_connection_error(stream_id: int) -> None:
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    pair.server.raw_data(stream_id, b"stray")
    pair.pump()
    assert_connection_error(pair, fr.PROTOCOL_ERROR)
    assert s.code in (SC.UNAVAILABLE, SC.INTERNAL)
    assert pair.listener.of("closed")


@pytest.mark.parametrize("stream_id", [2, 5])
def test_headers_on_never_opened_stream_is_connection_error(stream_id: int) -> None:
    pair = Pair()
    pair.start(b"a")
    pair.pump()
    pair.server.raw_headers(stream_id, [(":status", "200")])
    pair.pump()
    assert_connection_error(pair, fr.PROTOCOL_ERROR)


def test_frames_on_a_stream_we_reset_are_ignored() -> None:
    """RFC 9113 5.1: frames already in flight for a stream we reset are ignored; the HPACK
    state stays in sync and the connection stays usable."""
    pair = Pair()
    s1 = pair.start(b"a")
    s3 = pair.start(b"b")
    pair.pump()
    s1.cancel(SC.CANCELLED, "client cancelled")
    pair.pump()
    assert [f.error_code for f in pair.server.frames_of(fr.RST_STREAM, 1)] == [fr.CANCEL]
    before = len(pair.server.frames_of(fr.GOAWAY))
    pair.server.raw_headers(1, [(":status", "200"), ("x-late", "v")])
    pair.server.raw_data(1, b"late data", end_stream=True)
    pair.server.raw(fr.WINDOW_UPDATE, 0, 1, struct.pack(">I", 100))
    pair.server.rst(1, fr.CANCEL)
    pair.pump()
    assert pair.conn.state is ConnectionState.READY
    assert len(pair.server.frames_of(fr.GOAWAY)) == before
    assert s1.code is SC.CANCELLED
    pair.server.respond(3, b"three")
    pair.pump()
    assert s3.code is SC.OK
    assert s3.listener.taken == [b"three"]


def test_frames_after_close_are_ignored() -> None:
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    pair.conn.close()
    pair.to_server()
    assert s.code is SC.UNAVAILABLE
    assert last_goaway(pair).error_code == fr.NO_ERROR
    writes = len(pair.writes)
    events = list(pair.listener.events)
    pair.conn.receive_data(fr.encode_ping(b"x" * 8))
    pair.conn.receive_data(fr.encode_settings({MAX_CONCURRENT_STREAMS: 1}))
    pair.conn.receive_data(fr.encode_data(1, b"x", True))
    pair.conn.receive_data(b"\xff" * 100)
    pair.conn.close()
    pair.conn.connection_lost("gone")
    assert len(pair.writes) == writes
    assert pair.listener.events == events
    late = pair.start(b"b")
    assert late.code is SC.UNAVAILABLE
    assert len(pair.writes) == writes


def test_connection_lost_fails_streams_unavailable() -> None:
    """CONFORMANCE 41: open streams fail UNAVAILABLE; queued ones are unprocessed."""
    pair = Pair({MAX_CONCURRENT_STREAMS: 1})
    s1, s3 = pair.start(b"a"), pair.start(b"b")
    pair.pump()
    pair.conn.connection_lost("connection reset by peer")
    assert s1.code is SC.UNAVAILABLE and not s1.unprocessed
    assert s3.code is SC.UNAVAILABLE and s3.unprocessed
    assert pair.conn.state is ConnectionState.CLOSED
    assert pair.listener.of("closed") == [("closed", "connection reset by peer")]


def test_request_headers_above_peer_limit_fail_internal_and_send_nothing() -> None:
    """CONFORMANCE 19: 2 KiB of metadata against MAX_HEADER_LIST_SIZE=1024 -> INTERNAL, no
    HEADERS frame; the connection stays usable."""
    pair = Pair({MAX_HEADER_LIST_SIZE: 1024})
    before = len(pair.writes)
    s = pair.start(b"a", metadata=[("x-big", "v" * 2048)])
    assert s.code is SC.INTERNAL
    assert len(pair.writes) == before
    pair.pump()
    assert pair.server.frames_of(fr.HEADERS) == []
    ok = pair.start(b"b")
    pair.pump()
    pair.server.respond(ok.id, b"fine")
    pair.pump()
    assert ok.code is SC.OK
    assert pair.server.errors == []


def test_push_promise_is_connection_error() -> None:
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    block = pair.server.header_block([(":method", "GET"), (":path", "/")])
    pair.server.raw(fr.PUSH_PROMISE, fr.FLAG_END_HEADERS, 1, struct.pack(">I", 2) + block)
    pair.pump()
    assert_connection_error(pair, fr.PROTOCOL_ERROR)
    assert s.code is not None


def test_unknown_frame_types_are_ignored() -> None:
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    pair.server.raw(0xEE, 0xFF, 1, b"whatever")
    pair.server.raw(0x0A, 0, 0, b"altsvc?")
    pair.server.respond(1, b"ok")
    pair.pump()
    assert s.code is SC.OK
    assert pair.conn.state is ConnectionState.READY


def test_window_update_zero_and_overflow() -> None:
    pair = Pair()
    s = pair.start(None)
    pair.pump()
    pair.server.raw(fr.WINDOW_UPDATE, 0, 1, struct.pack(">I", 0))
    pair.pump()
    assert s.code is SC.INTERNAL
    assert [f.error_code for f in pair.server.frames_of(fr.RST_STREAM, 1)] == [fr.PROTOCOL_ERROR]
    pair.server.raw(fr.WINDOW_UPDATE, 0, 0, struct.pack(">I", fr.MAX_WINDOW))
    pair.pump()
    assert_connection_error(pair, fr.FLOW_CONTROL_ERROR)


def test_stream_listener_sees_headers_message_done_in_order() -> None:
    listener = RecordingStreamListener()
    pair = Pair()
    s: ClientStream = pair.start(b"a", listener=listener)
    pair.pump()
    pair.server.send_headers(
        1, [(":status", "200"), ("content-type", "application/grpc"), ("k", "v")]
    )
    pair.pump()
    assert listener.events == ["headers"]
    assert s.initial_metadata is not None and s.initial_metadata.get("k") == "v"
    pair.server.send_message(1, b"x")
    pair.server.send_trailers(1)
    pair.pump()
    assert listener.events == ["headers", "message", "done"]


# ---------------------------------------------------------------------------- messages (37-40)


def test_unary_cardinality_violations_are_internal() -> None:
    """CONFORMANCE 37: OK with zero or two messages on a unary response -> INTERNAL."""
    pair = Pair()
    none, two = pair.start(b"a"), pair.start(b"b")
    pair.pump()
    pair.server.send_headers(1)
    pair.server.send_trailers(1)
    pair.server.send_headers(3)
    pair.server.send_data(3, grpc_message(b"x") + grpc_message(b"y"))
    pair.server.send_trailers(3)
    pair.pump()
    assert none.code is SC.INTERNAL
    assert two.code is SC.INTERNAL
    assert pair.conn.state is ConnectionState.READY


def test_message_then_error_status_fails_with_trailer_status() -> None:
    """CONFORMANCE 38."""
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    pair.server.respond(1, b"ignored", status=13)
    pair.pump()
    assert s.code is SC.INTERNAL


def test_messages_reassembled_from_one_byte_frames_and_packed_frames() -> None:
    """CONFORMANCE 40: messages span DATA frames; one DATA frame holds several messages."""
    pair = Pair()
    s = pair.start(b"a", unary=False)
    pair.pump()
    pair.server.send_headers(1)
    wire = grpc_message(b"first") + grpc_message(b"") + grpc_message(b"third" * 10)
    for i in range(len(wire)):
        pair.server.send_data(1, wire[i : i + 1])
    pair.server.send_data(1, grpc_message(b"p1") + grpc_message(b"p2") + grpc_message(b"p3"))
    pair.server.send_trailers(1)
    pair.pump()
    assert s.code is SC.OK
    assert s.listener.taken == [b"first", b"", b"third" * 10, b"p1", b"p2", b"p3"]


def test_partial_message_at_end_of_stream_is_internal() -> None:
    """CONFORMANCE 40: a partial message at END_STREAM -> INTERNAL."""
    pair = Pair()
    s = pair.start(b"a", unary=False)
    pair.pump()
    pair.server.send_headers(1)
    pair.server.send_data(1, grpc_message(b"complete") + grpc_message(b"cut")[:6])
    pair.server.send_trailers(1)
    pair.pump()
    assert s.code is SC.INTERNAL


def test_hpack_state_stays_in_sync_across_table_evictions() -> None:
    """Responses whose header blocks become all-indexed once h2's table is warm, with
    insertions and evictions in between, decode to the right fields every time."""
    pair = Pair()
    values = ["a" * 900, "b" * 900, "c" * 900, "a" * 900, "d" * 900, "b" * 900]
    streams = []
    for i, value in enumerate(values * 3):
        s = pair.start(b"x")
        pair.pump()
        streams.append((s, value, i))
        pair.server.send_headers(
            s.id, [(":status", "200"), ("content-type", "application/grpc"), ("x-v", value)]
        )
        pair.server.send_message(s.id, b"r")
        pair.server.send_trailers(s.id, 0, extra=[("x-v", value), ("x-i", str(i % 2))])
        pair.pump()
    for s, value, i in streams:
        assert s.code is SC.OK
        assert s.initial_metadata is not None and s.initial_metadata.get("x-v") == value
        assert s.trailing_metadata is not None
        assert s.trailing_metadata.get("x-v") == value
        assert s.trailing_metadata.get("x-i") == str(i % 2)


# ---------------------------------------------------------------------------- id exhaustion (15)


def test_stream_ids_exhausted_drains_and_refuses_queued_streams() -> None:
    """CONFORMANCE 15: when the id space runs out, no more streams on this connection: the
    stream that would need id 2^31+1 and every stream queued behind it are reported
    unprocessed at once (to be retried on a new connection), not held until the open
    streams finish."""
    pair = Pair({MAX_CONCURRENT_STREAMS: 2})
    pair.conn._next_stream_id = fr.MAX_STREAM_ID - 2
    pair.server.h2.highest_inbound_stream_id = fr.MAX_STREAM_ID - 4
    s1, s2 = pair.start(b"a"), pair.start(b"b", unary=False)
    s3, s4 = pair.start(b"c"), pair.start(b"d")
    pair.pump()
    assert (s1.id, s2.id) == (fr.MAX_STREAM_ID - 2, fr.MAX_STREAM_ID)
    assert pair.conn.pending_streams == 2
    pair.server.respond(s1.id, b"one")
    pair.pump()
    assert s1.code is SC.OK
    assert s3.code is SC.UNAVAILABLE and s3.unprocessed
    assert pair.conn.state is ConnectionState.DRAINING
    assert pair.listener.of("goaway")
    assert s4.code is SC.UNAVAILABLE and s4.unprocessed, "queued stream held during drain"
    assert pair.conn.pending_streams == 0
    pair.server.respond(s2.id, b"two")
    pair.pump()
    assert s2.code is SC.OK
    assert pair.conn.state is ConnectionState.CLOSED


def test_priority_frames_ignored_but_not_on_stream_zero() -> None:
    """RFC 9113 6.3: PRIORITY is ignored, but one on stream 0 is a PROTOCOL_ERROR."""
    pair = Pair()
    s = pair.start(b"a")
    pair.pump()
    pair.server.raw(fr.PRIORITY, 0, 1, b"\0\0\0\0\x10")
    pair.server.raw(fr.PRIORITY, 0, 9, b"\0\0\0\0\x10")  # idle stream: allowed
    pair.server.respond(1, b"ok")
    pair.pump()
    assert s.code is SC.OK
    assert pair.conn.state is ConnectionState.READY
    pair.server.raw(fr.PRIORITY, 0, 0, b"\0\0\0\0\x10")
    pair.pump()
    assert_connection_error(pair, fr.PROTOCOL_ERROR)


def test_connection_state_moves_follow_the_table() -> None:
    """The connection's state has one writer (`Lifecycle.move`) that checks
    CONNECTION_TRANSITIONS: CONNECTING -> READY on the server's SETTINGS, READY -> DRAINING
    on GOAWAY, DRAINING -> CLOSED once drained; nothing leaves CLOSED."""
    from grpc_lite._transport._connection import CONNECTION_TRANSITIONS, ConnectionState

    states = list(ConnectionState)
    for old in states:
        assert (old, old) not in CONNECTION_TRANSITIONS
        assert (ConnectionState.CLOSED, old) not in CONNECTION_TRANSITIONS
    for new in (ConnectionState.READY, ConnectionState.DRAINING, ConnectionState.CLOSED):
        assert (ConnectionState.CONNECTING, new) in CONNECTION_TRANSITIONS
    assert (ConnectionState.DRAINING, ConnectionState.READY) not in CONNECTION_TRANSITIONS

    pair = Pair()
    assert pair.conn.state is ConnectionState.READY
    s = pair.start(b"a")
    pair.pump()
    pair.server.send_headers(1)
    pair.pump()
    pair.server.goaway(1, fr.NO_ERROR, b"bye")
    pair.pump()
    assert pair.conn.state is ConnectionState.DRAINING
    with pytest.raises(AssertionError, match="illegal connection state change DRAINING -> READY"):
        pair.conn._life.move(ConnectionState.READY)
    pair.conn.close()
    assert s.code is SC.UNAVAILABLE
    assert pair.conn.state is ConnectionState.CLOSED
    with pytest.raises(AssertionError, match="CLOSED -> DRAINING"):
        pair.conn._life.move(ConnectionState.DRAINING)

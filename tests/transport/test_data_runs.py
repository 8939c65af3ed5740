"""Large messages on the receive path: FrameReader's DATA runs, the connection's run
handling (the same outcome as frame by frame, errors included), the message decoder's
assembly of split messages, and the credit a unary stream returns.  CONFORMANCE 13 (flow
control), 40/42 (message framing)."""

from __future__ import annotations

import itertools
import random
import tracemalloc
from typing import Any

import pytest
from hyperframe.frame import WindowUpdateFrame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpc_lite import _codec
from grpc_lite._transport import _frames as fr
from grpc_lite._transport._connection import Connection, ConnectionState
from grpc_lite.status import StatusCode as SC
from tests.fakes.h2server import (
    Pair,
    RecordingConnListener,
    RecordingStreamListener,
    grpc_message,
    parse_frames,
)


def flatten(frames: list[tuple[int, int, int, Any]]) -> list[tuple[int, int, int, bytes]]:
    out = []
    for ftype, flags, sid, payload in frames:
        if ftype == fr.DATA_RUN:
            out.extend((fr.DATA, 0, sid, bytes(p)) for p in payload)
        else:
            out.append((ftype, flags, sid, bytes(payload)))
    return out


_frame = st.tuples(
    st.sampled_from([fr.DATA, fr.DATA, fr.DATA, fr.HEADERS, fr.WINDOW_UPDATE]),
    st.sampled_from([0, 0, fr.FLAG_END_STREAM, fr.FLAG_PADDED]),
    st.sampled_from([1, 3]),
    st.binary(max_size=40),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(_frame, max_size=30), cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_coalescing_reader_flattens_to_the_plain_reader(
    frames: list[tuple[int, int, int, bytes]], cuts: list[int]
) -> None:
    raw = b"".join(fr.frame_header(len(p), t, f, s) + p for t, f, s, p in frames)
    plain, coalescing = fr.FrameReader(), fr.FrameReader(coalesce_data=True)
    got_plain: list[tuple[int, int, int, Any]] = []
    got_runs: list[tuple[int, int, int, Any]] = []
    bounds = sorted({0, len(raw), *(c for c in cuts if c < len(raw))})
    for a, b in itertools.pairwise(bounds):
        got_plain += plain.feed(raw[a:b])
        entries = coalescing.feed(raw[a:b])
        got_runs += entries
        # Within one read, a run holds >= 2 flagless DATA frames of one stream, and no
        # flagless DATA entry could have joined the entry before it.
        for i, (ftype, flags, sid, payload) in enumerate(entries):
            if ftype == fr.DATA_RUN:
                assert flags == 0 and len(payload) >= 2
            if i and ftype in (fr.DATA, fr.DATA_RUN) and not flags:
                prev = entries[i - 1]
                assert not (prev[0] in (fr.DATA, fr.DATA_RUN) and not prev[1] and prev[2] == sid)
    assert flatten(got_runs) == flatten(got_plain) == [(t, f, s, p) for t, f, s, p in frames]


def test_one_read_of_a_large_message_is_one_run_per_stream() -> None:
    chunks = [bytes([i]) * 16384 for i in range(6)]
    raw = b"".join(fr.encode_data(1, c, False) for c in chunks[:4])
    raw += fr.encode_data(3, chunks[4], False) + fr.encode_data(1, chunks[5], True)
    entries = fr.FrameReader(coalesce_data=True).feed(raw)
    assert [(t, f, s) for t, f, s, _ in entries] == [
        (fr.DATA_RUN, 0, 1),
        (fr.DATA, 0, 3),
        (fr.DATA, fr.FLAG_END_STREAM, 1),
    ]
    assert [bytes(p) for p in entries[0][3]] == chunks[:4]


# ------------------------------------------------------------------ connection: run == frames


def _scenario(pair: Pair, frames: list[tuple[int, int, int, bytes]]) -> bytes:
    return b"".join(fr.frame_header(len(p), t, f, s) + p for t, f, s, p in frames)


def _outcome(pair: Pair, streams: list[Any]) -> tuple[Any, ...]:
    pair.to_server()
    sent = [
        (type(f).__name__, f.stream_id, getattr(f, "error_code", None))
        for f in pair.server.frames
        if not isinstance(f, WindowUpdateFrame)
    ]
    return (
        pair.conn.state,
        sent,
        [(s.code, s.details, list(s.listener.taken)) for s in streams],
    )


def _run_both_ways(build: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The same server bytes, once in one read (runs) and once a frame per read."""
    results = []
    for whole in (True, False):
        pair, streams, frames = build()
        if whole:
            pair.conn.receive_data(_scenario(pair, frames))
        else:
            for frame in frames:
                pair.conn.receive_data(_scenario(pair, [frame]))
        results.append(_outcome(pair, streams))
    return results[0], results[1]


def _message_frames(stream_id: int, payload: bytes, size: int = 1000) -> list[Any]:
    msg = grpc_message(payload)
    return [(fr.DATA, 0, stream_id, msg[i : i + size]) for i in range(0, len(msg), size)]


def _headers_then(pair: Pair, sid: int = 1) -> None:
    pair.server.send_headers(sid)
    pair.to_client()


def _trailers(pair: Pair, sid: int = 1) -> tuple[int, int, int, bytes]:
    block = pair.server.header_block([("grpc-status", "0")])
    return (fr.HEADERS, fr.FLAG_END_HEADERS | fr.FLAG_END_STREAM, sid, block)


def test_run_delivers_the_same_message_as_single_frames() -> None:
    payload = bytes(i % 251 for i in range(10_000))

    def build() -> tuple[Pair, list[Any], list[Any]]:
        pair = Pair(stream_window=100_000)
        s = pair.start(b"q")
        pair.pump()
        _headers_then(pair)
        return pair, [s], [*_message_frames(1, payload), _trailers(pair)]

    whole, split = _run_both_ways(build)
    assert whole == split
    assert whole[2] == [(SC.OK, "", [payload])]


def test_run_past_the_stream_window_fails_at_the_same_frame() -> None:
    """CONFORMANCE 13: the frame that exceeds the stream window is a stream error
    (FLOW_CONTROL_ERROR) whether or not it came in a run."""

    def build() -> tuple[Pair, list[Any], list[Any]]:
        pair = Pair(stream_window=2500)
        # A streaming reader that does not take its messages holds its credit back.
        lagging = RecordingStreamListener(take=False)
        s = pair.start(b"q", unary=False, listener=lagging)
        s3 = pair.start(b"r")
        pair.pump()
        _headers_then(pair, 1)
        _headers_then(pair, 3)
        # Three 905-byte messages: the third frame goes past the 2500-byte window.
        frames = [(fr.DATA, 0, 1, grpc_message(b"x" * 900))] * 3
        return pair, [s, s3], [*frames, *_message_frames(3, b"ok"), _trailers(pair, 3)]

    whole, split = _run_both_ways(build)
    assert whole == split
    state, sent, streams = whole
    assert state is ConnectionState.READY
    assert ("RstStreamFrame", 1, fr.FLOW_CONTROL_ERROR) in sent
    assert streams[0][0] is SC.INTERNAL
    assert streams[1] == (SC.OK, "", [b"ok"])


def test_run_larger_than_the_connection_window_is_taken_frame_by_frame() -> None:
    """CONFORMANCE 13: connection credit goes back as frames arrive, so five 16 KiB frames
    in one read fit a 64 KiB connection window; a run larger than the window must not be
    rejected as a whole."""

    def build() -> tuple[Pair, list[Any], list[Any]]:
        pair = Pair(stream_window=1 << 20, connection_window=65535)
        s = pair.start(b"q")
        pair.pump()
        _headers_then(pair)
        frames = _message_frames(1, b"\1" * (5 * 16384 - 5), 16384)
        return pair, [s], [*frames, _trailers(pair)]

    whole, split = _run_both_ways(build)
    assert whole == split
    assert whole[0] is ConnectionState.READY
    assert whole[2] == [(SC.OK, "", [b"\1" * (5 * 16384 - 5)])]


@pytest.mark.parametrize("case", ["reset", "before_headers", "idle", "stream0"])
def test_run_on_a_stream_that_cannot_take_data(case: str) -> None:
    def build() -> tuple[Pair, list[Any], list[Any]]:
        pair = Pair(stream_window=100_000)
        s = pair.start(b"q")
        pair.pump()
        sid = {"idle": 5, "stream0": 0}.get(case, 1)
        if case == "reset":
            _headers_then(pair)
            s.cancel(SC.CANCELLED, "cancelled by the test")
        return pair, [s], _message_frames(sid, b"y" * 3000)

    whole, split = _run_both_ways(build)
    assert whole == split
    state, sent, streams = whole
    if case == "reset":  # ignored: a stream we reset may still have data in flight
        assert state is ConnectionState.READY and streams[0][0] is SC.CANCELLED
    elif case == "before_headers":
        assert streams[0][0] is SC.INTERNAL
    else:
        assert state is ConnectionState.CLOSED
        assert ("GoAwayFrame", 0, fr.PROTOCOL_ERROR) in sent


def test_run_credits_the_connection_for_every_byte() -> None:
    pair = Pair(stream_window=1 << 20, connection_window=65535)
    s = pair.start(b"q", unary=False)
    pair.pump()
    _headers_then(pair)
    pair.conn.receive_data(_scenario(pair, _message_frames(1, b"z" * 40_000, 16384)))
    pair.to_server()
    credited = sum(
        f.window_increment
        for f in pair.server.frames
        if isinstance(f, WindowUpdateFrame) and f.stream_id == 0
    )
    assert 40_005 - 65535 // 4 <= credited <= 40_005
    assert s.listener.taken == [b"z" * 40_000]


def _send_in_frames(pair: Pair, stream_id: int, payload: bytes) -> None:
    message = grpc_message(payload)
    for pos in range(0, len(message), 16384):
        pair.server.send_data(stream_id, message[pos : pos + 16384])


def test_connection_credit_rides_with_the_next_request_until_half_the_window() -> None:
    """CONFORMANCE 13: connection credit from a quarter of the window waits for the next
    frame the client sends anyway (no write of its own); from half of it, it goes out
    at once, so the server is never held up."""
    window = 100_000
    pair = Pair(stream_window=1 << 20, connection_window=window)
    pair.start(b"q")
    pair.pump()
    preface_updates = len(pair.server.frames_of(fr.WINDOW_UPDATE, 0))
    pair.server.send_headers(1)
    _send_in_frames(pair, 1, b"a" * 30_000)  # 30 % of the window: no write
    pair.server.send_trailers(1)
    before = len(pair.writes)
    pair.pump()
    assert len(pair.writes) == before
    assert len(pair.server.frames_of(fr.WINDOW_UPDATE, 0)) == preface_updates
    pair.start(b"next")  # one write: the request with the credit
    assert len(pair.writes) == before + 1
    new = pair.to_server()
    assert [type(f).__name__ for f in new] == ["HeadersFrame", "DataFrame", "WindowUpdateFrame"]
    assert new[2].stream_id == 0 and new[2].window_increment == 30_005
    pair.pump()
    # Half the window in one go: credited at once, with no request to carry it.
    pair.server.send_headers(3)
    _send_in_frames(pair, 3, b"b" * 50_000)
    before = len(pair.writes)
    pair.to_client()
    assert len(pair.writes) == before + 1
    [credit] = pair.to_server()
    assert credit.stream_id == 0 and credit.window_increment == 50_005


# ------------------------------------------------------------------ credit of unary streams


def _send_as_credit_allows(
    pair: Pair, stream_id: int, message: bytes, piece: int | None = None
) -> None:
    """The server sends ``message`` as fast as the client's credit allows (at most
    ``piece`` bytes a frame), the client reading after each frame; it must never stall."""
    pos = 0
    while pos < len(message):
        room = pair.server.h2.local_flow_control_window(stream_id)
        assert room > 0, "server stalled: no credit for an incomplete message"
        take = room if piece is None else min(room, piece)
        pair.server.send_data(stream_id, message[pos : pos + take])
        pos += take
        pair.pump()


def test_unary_stream_returns_no_credit_once_its_message_is_complete() -> None:
    """CONFORMANCE 13: credit while the one response message is still arriving; none after
    it (only trailers follow).  A streaming call is credited for the same bytes."""
    for unary, expect_credit in ((True, False), (False, True)):
        pair = Pair(stream_window=1000)
        s = pair.start(b"q", unary=unary)
        pair.pump()
        pair.server.send_headers(1)
        pair.server.send_message(1, b"m" * 900)
        pair.pump()
        stream_credit = [f for f in pair.server.frames_of(fr.WINDOW_UPDATE, 1)]
        assert bool(stream_credit) is expect_credit
        assert s.listener.taken == [b"m" * 900]
    # A unary message larger than the window still gets the credit it needs.
    pair = Pair(stream_window=1000)
    s = pair.start(b"q")
    pair.pump()
    pair.server.send_headers(1)
    _send_as_credit_allows(pair, 1, grpc_message(b"L" * 3000))
    pair.server.send_trailers(1)
    pair.pump()
    assert s.code is SC.OK and s.listener.taken == [b"L" * 3000]


def test_unary_stream_returns_no_credit_while_the_rest_fits_in_its_window() -> None:
    """CONFORMANCE 13: a unary response that arrives in pieces but fits in the stream
    window costs no WINDOW_UPDATE (a 1 MiB response in the 4 MiB default window sent
    one half the time, right before its last piece, on the critical path).  A streaming
    call given the same pieces is credited."""
    for unary, expect_credit in ((True, False), (False, True)):
        pair = Pair(stream_window=2000)
        s = pair.start(b"q", unary=unary)
        pair.pump()
        pair.server.send_headers(1)
        message = grpc_message(b"p" * 900)
        for pos in range(0, len(message), 100):
            pair.server.send_data(1, message[pos : pos + 100])
            pair.pump()
        stream_credit = pair.server.frames_of(fr.WINDOW_UPDATE, 1)
        assert bool(stream_credit) is expect_credit
        assert s.listener.taken == [b"p" * 900]
    # Once the rest of a larger message fits (with room for one frame's padding, 256
    # bytes), credit stops: the server was given about what it needed to finish.
    pair = Pair(stream_window=1000)
    s = pair.start(b"q")
    pair.pump()
    pair.server.send_headers(1)
    message = grpc_message(b"R" * 1500)
    _send_as_credit_allows(pair, 1, message, piece=100)
    pair.server.send_trailers(1)
    pair.pump()
    assert s.code is SC.OK and s.listener.taken == [b"R" * 1500]
    credited = sum(f.window_increment for f in pair.server.frames_of(fr.WINDOW_UPDATE, 1))
    assert len(message) - 1000 <= credited <= len(message) - 1000 + 256 + 1000 // 4


def test_default_stream_window_is_4_mib() -> None:
    writes: list[bytes] = []
    conn = Connection(RecordingConnListener(), writes.append)
    conn.initiate()
    settings_frame = parse_frames(writes[0][len(fr.PREFACE) :])[0]
    assert settings_frame.settings[fr.SETTINGS_INITIAL_WINDOW_SIZE] == 4 << 20


# ------------------------------------------------------------------ decoder and its buffers


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 5000), max_size=20),
    groups=st.lists(st.integers(1, 5), max_size=20),
)
def test_feed_run_matches_feed_and_keeps_no_reference_to_its_input(
    payloads: list[bytes], cuts: list[int], groups: list[int]
) -> None:
    """CONFORMANCE 40/42: any split and any grouping into runs gives the same messages; the
    input buffers may be overwritten right after each call (the decoder copies)."""
    stream = b"".join(grpc_message(p) for p in payloads)
    chunks = _split(stream, cuts)
    plain = _codec.MessageDecoder(None, None)
    expected = [m for c in chunks for m in plain.feed(c)]
    assert expected == payloads
    runs = _codec.MessageDecoder(None, None)
    got: list[bytes] = []
    i = 0
    for size in [*groups, len(chunks)]:
        group = [bytearray(c) for c in chunks[i : i + size]]
        if not group:
            break
        views = [memoryview(b) for b in group]
        got += runs.feed_run(list(views), sum(map(len, group)))
        for b in group:  # the socket buffer is reused for the next read
            b[:] = b"\xee" * len(b)
        i += size
    assert got == payloads
    assert not runs.has_partial


def test_split_message_costs_one_allocation_of_its_size() -> None:
    """A 1 MiB message in 16 KiB pieces: the pieces are written into the message's own
    buffer as they come and that buffer becomes the message, so assembling it never holds
    more than about the message itself (a final join or copy would peak at twice that)."""
    msg = grpc_message(bytes(range(256)) * 4096)
    pieces = [msg[i : i + 16384] for i in range(0, len(msg), 16384)]
    dec = _codec.MessageDecoder(None, None)
    out: list[bytes] = []
    tracemalloc.start()
    try:
        for piece in pieces:
            out += dec.feed(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out == [bytes(range(256)) * 4096]
    assert peak < (1 << 20) + (128 << 10), f"assembling 1 MiB peaked at {peak} bytes"


def test_compressed_split_message_is_decompressed_from_its_buffer() -> None:
    dec = _codec.MessageDecoder(None, "gzip")
    body = random.Random(1).randbytes(20_000)  # incompressible: stays 20 KB on the wire
    msg = grpc_message(_codec.compress(body, "gzip"), compressed=True)
    out = []
    for i in range(0, len(msg), 1000):
        out += dec.feed(msg[i : i + 1000])
    assert out == [body]
    assert not dec.has_partial


def test_feed_run_checks_the_size_limit_at_the_prefix() -> None:
    """CONFORMANCE 46: a run starting an oversize message fails before any body is kept."""
    dec = _codec.MessageDecoder(10, None)
    with pytest.raises(_codec.CodecError) as ei:
        dec.feed_run([memoryview(grpc_message(b"q" * 50))[:20]], 20)
    assert ei.value.code is SC.RESOURCE_EXHAUSTED


def test_a_length_prefix_alone_does_not_allocate_a_huge_buffer() -> None:
    """Bad input: with no receive limit, a server that announces a 4 GiB message and sends
    ten bytes costs us ten bytes, not 4 GiB (and a large message that does arrive is
    whole)."""
    dec = _codec.MessageDecoder(None, None)
    tracemalloc.start()
    try:
        assert dec.feed(b"\x00\xff\xff\xff\xff" + b"0123456789") == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert dec.has_partial
    big = bytes(range(256)) * (20 << 12)  # 20 MiB, above the presized size
    msg = grpc_message(big)
    dec = _codec.MessageDecoder(None, None)
    out: list[bytes] = []
    for i in range(0, len(msg), 1 << 20):
        out += dec.feed(msg[i : i + (1 << 20)])
    assert out == [big]

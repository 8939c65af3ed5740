"""Fuzz of the client's receive path (Connection.receive_data + ClientStream parsing).

A READY connection with two open streams (one half-closed unary, one open client stream)
and one stream queued behind MAX_CONCURRENT_STREAMS=2 is fed arbitrary bytes: raw
garbage, frame-shaped garbage (random type/flags/stream/payload, context-free HPACK
blocks of response-like headers) and mutated valid frame sequences produced by an h2
server, all in arbitrary splits. Whatever arrives:

- ``receive_data`` never raises;
- everything the client wrote parses as well-formed HTTP/2 frames;
- the connection is either still usable or CLOSED with a GOAWAY whose code says which rule
  the server broke (never INTERNAL_ERROR, which would mean a bug in our receive path);
- once the connection is CLOSED every stream, queued ones included, has a final status.
"""

from __future__ import annotations

import struct
from typing import Any

import h2.exceptions
from hyperframe.frame import GoAwayFrame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grpc_lite._transport import _frames as fr
from grpc_lite._transport._connection import ConnectionState
from grpc_lite._transport._hpack import encode_fields
from grpc_lite._transport._stream import ClientStream
from grpc_lite.status import StatusCode
from tests.fakes.h2server import Pair, grpc_message, parse_frames

FUZZ_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ALLOWED_GOAWAY = {
    fr.PROTOCOL_ERROR,
    fr.FRAME_SIZE_ERROR,
    fr.COMPRESSION_ERROR,
    fr.FLOW_CONTROL_ERROR,
    fr.STREAM_CLOSED,
    fr.ENHANCE_YOUR_CALM,
}


class Setup:
    """A READY connection: stream 1 (unary, half-closed), stream 3 (open client stream),
    and a third stream queued behind MAX_CONCURRENT_STREAMS=2."""

    def __init__(self) -> None:
        self.pair = Pair({fr.SETTINGS_MAX_CONCURRENT_STREAMS: 2}, stream_window=4096)
        self.streams: list[ClientStream] = [
            self.pair.start(b"unary"),
            self.pair.start(None, unary=False),
            self.pair.start(b"queued"),
        ]
        self.streams[1].send(grpc_message(b"first"), False)
        self.pair.pump()
        assert [s.id for s in self.streams[:2]] == [1, 3]
        assert self.pair.conn.pending_streams == 1
        self.mark = len(self.pair.writes)

    def feed(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.pair.conn.receive_data(chunk)  # must never raise

    def check(self) -> None:
        conn = self.pair.conn
        written = b"".join(self.pair.writes[self.mark :])
        frames = parse_frames(written)  # well-formed output
        if conn.state is ConnectionState.CLOSED:
            goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
            assert goaways, "CLOSED without writing GOAWAY"
            code = goaways[-1].error_code
            allowed = set(ALLOWED_GOAWAY)
            if self.pair.listener.of("goaway"):
                allowed.add(fr.NO_ERROR)  # drained after the server's GOAWAY
            assert code in allowed, (fr.error_name(code), goaways[-1].additional_data)
            assert self.pair.listener.of("closed")
            self.assert_all_done()
            return
        assert conn.state in (ConnectionState.READY, ConnectionState.DRAINING)
        assert not self.pair.listener.of("closed")
        # Still usable: a new stream starts (or is queued / refused), sends do not raise.
        extra = self.pair.start(b"after")
        self.streams.append(extra)
        for s in self.streams:
            s.send(grpc_message(b"more"), False)
        conn.ping(b"pingpong")
        conn.close()
        assert conn.state is ConnectionState.CLOSED
        parse_frames(b"".join(self.pair.writes[self.mark :]))
        self.assert_all_done()

    def assert_all_done(self) -> None:
        for s in self.streams:
            assert s.code is not None, f"stream {s.id} left without a status"
            assert isinstance(s.code, StatusCode)
        assert self.pair.conn.active_streams == 0
        assert self.pair.conn.pending_streams == 0


def split(data: bytes, draw: Any) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    chunks = []
    prev = 0
    for cut in [*cuts, len(data)]:
        chunks.append(data[prev:cut])
        prev = cut
    return chunks


# ---------------------------------------------------------------------------- strategies

header_fields = st.lists(
    st.one_of(
        st.sampled_from(
            [
                (":status", "200"),
                (":status", "100"),
                (":status", "404"),
                (":status", "abc"),
                ("content-type", "application/grpc"),
                ("content-type", "text/html"),
                ("grpc-encoding", "gzip"),
                ("grpc-encoding", "br"),
                ("grpc-status", "0"),
                ("grpc-status", "13"),
                ("grpc-status", "99"),
                ("grpc-message", "%ZZ%e2%98"),
                ("x-bin", "!!"),
                ("x-md-bin", "AAE="),
                ("Upper", "bad"),
            ]
        ),
        st.tuples(
            st.text("abcxyz-:", min_size=1, max_size=8),
            st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=20),
        ),
    ),
    max_size=6,
)

stream_id_choice = st.one_of(
    st.sampled_from([0, 1, 2, 3, 5, 7, fr.MAX_STREAM_ID]), st.integers(0, 2**32 - 1)
)


@st.composite
def payloads(draw: st.DrawFn, ftype: int) -> bytes:
    if ftype in (fr.HEADERS, fr.CONTINUATION, fr.PUSH_PROMISE) and draw(st.booleans()):
        block = encode_fields(draw(header_fields))
        if ftype == fr.PUSH_PROMISE:
            block = struct.pack(">I", draw(stream_id_choice)) + block
        return block
    if ftype == fr.DATA and draw(st.booleans()):
        body = draw(st.binary(max_size=30))
        return grpc_message(body, compressed=draw(st.booleans()))[: draw(st.integers(0, 40))]
    if ftype == fr.SETTINGS and draw(st.booleans()):
        items = draw(
            st.lists(
                st.tuples(
                    st.integers(0, 8),
                    st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 16384, 2**31])),
                ),
                max_size=4,
            )
        )
        return b"".join(struct.pack(">HI", k, v) for k, v in items)
    if ftype in (fr.WINDOW_UPDATE, fr.RST_STREAM) and draw(st.booleans()):
        return struct.pack(">I", draw(st.integers(0, 2**32 - 1)))
    if ftype == fr.GOAWAY and draw(st.booleans()):
        return struct.pack(">II", draw(stream_id_choice), draw(st.integers(0, 14)))
    if ftype == fr.PING and draw(st.booleans()):
        return draw(st.binary(min_size=8, max_size=8))
    return draw(st.binary(max_size=48))


@st.composite
def frame_shaped(draw: st.DrawFn) -> bytes:
    ftype = draw(st.one_of(st.integers(0, 10), st.integers(0, 255)))
    flags = draw(st.one_of(st.sampled_from([0, 1, 4, 5, 8, 0x20, 0x2D]), st.integers(0, 255)))
    sid = draw(stream_id_choice)
    payload = draw(payloads(ftype))
    return struct.pack(">IBI", (len(payload) << 8) | ftype, flags, sid) + payload


# ---------------------------------------------------------------------------- raw fuzz


@FUZZ_SETTINGS
@given(garbage=st.binary(max_size=200), data=st.data())
def test_fuzz_raw_bytes(garbage: bytes, data: st.DataObject) -> None:
    setup = Setup()
    setup.feed(split(garbage, data.draw))
    setup.check()


@FUZZ_SETTINGS
@given(frames=st.lists(frame_shaped(), min_size=1, max_size=12), data=st.data())
def test_fuzz_frame_shaped(frames: list[bytes], data: st.DataObject) -> None:
    setup = Setup()
    setup.feed(split(b"".join(frames), data.draw))
    setup.check()


# ---------------------------------------------------------------------------- mutated valid


ACTIONS = st.lists(
    st.sampled_from(
        [
            "headers1",
            "message1",
            "trailers1",
            "headers3",
            "message3",
            "big3",
            "padded3",
            "trailers3",
            "trailers_only3",
            "rst3",
            "ping",
            "settings",
            "window",
            "goaway1",
            "goaway_max",
        ]
    ),
    min_size=1,
    max_size=10,
)


# Actions that h2 refuses, after encoding their header block, unless headers went first.
NEEDS_HEADERS = {
    "message1": 1,
    "trailers1": 1,
    "message3": 3,
    "big3": 3,
    "padded3": 3,
    "trailers3": 3,
}


def server_bytes(setup: Setup, actions: list[str]) -> bytes:
    server = setup.pair.server
    opened: set[int] = set()
    for action in actions:
        needs = NEEDS_HEADERS.get(action)
        if needs is not None and needs not in opened:
            continue  # h2 would encode the block, then refuse it (table out of sync)
        if action in ("headers1", "headers3"):
            opened.add(int(action[-1]))
        if action == "goaway_max" and 0 in opened:
            continue  # a larger last_stream_id after GOAWAY(1) is itself a protocol error
        if action == "goaway1":
            opened.add(0)
        try:
            if action == "headers1":
                server.send_headers(1)
            elif action == "message1":
                server.send_message(1, b"reply")
            elif action == "trailers1":
                server.send_trailers(1, 0, "done", extra=[("x-t", "1")])
            elif action == "headers3":
                server.send_headers(
                    3, [(":status", "200"), ("content-type", "application/grpc"), ("x-h", "v")]
                )
            elif action == "message3":
                server.send_message(3, b"m" * 20)
            elif action == "big3":
                server.send_data(3, grpc_message(b"B" * 3000))
            elif action == "padded3":
                server.send_data(3, grpc_message(b"p"), pad_length=40)
            elif action == "trailers3":
                server.send_trailers(3, 5, "not%20found")
            elif action == "trailers_only3":
                server.trailers_only(3, 14, "unavailable")
            elif action == "rst3":
                server.reset(3, fr.CANCEL)
            elif action == "ping":
                server.ping(b"12345678")
            elif action == "settings":
                server.update_settings(
                    {fr.SETTINGS_INITIAL_WINDOW_SIZE: 100, fr.SETTINGS_MAX_CONCURRENT_STREAMS: 5}
                )
            elif action == "window":
                server.window_update(0, 1000)
            elif action == "goaway1":
                server.goaway(1, fr.NO_ERROR, b"drain")
            elif action == "goaway_max":
                server.goaway(fr.MAX_STREAM_ID)
        except (h2.exceptions.H2Error, KeyError, ValueError):
            # Not legal for h2 in its current state. h2 may have encoded a header block
            # before refusing it, so its HPACK table can no longer be trusted: stop here.
            break
    return server.data_to_send()


def frame_bounds(data: bytes) -> list[tuple[int, int]]:
    bounds = []
    pos = 0
    while len(data) - pos >= 9:
        length = int.from_bytes(data[pos : pos + 3], "big")
        bounds.append((pos, min(len(data), pos + 9 + length)))
        pos += 9 + length
    return bounds


MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "length", "type", "flags", "sid", "truncate", "insert", "dup"]),
        st.integers(0, 2**16),
        st.integers(0, 2**32 - 1),
        st.binary(max_size=12),
    ),
    min_size=1,
    max_size=4,
)


def mutate(data: bytes, ops: list[tuple[str, int, int, bytes]]) -> bytes:
    buf = bytearray(data)
    for op, where, value, blob in ops:
        bounds = frame_bounds(bytes(buf))
        if op == "flip" and buf:
            i = where % len(buf)
            buf[i] ^= (value % 255) + 1
            continue
        if op == "truncate" and buf:
            del buf[where % len(buf) :]
            continue
        if op == "insert":
            i = where % (len(buf) + 1)
            buf[i:i] = blob
            continue
        if not bounds:
            continue
        start, stop = bounds[where % len(bounds)]
        if op == "length":
            new = value % 40000 if value % 3 else value % 64
            buf[start : start + 3] = new.to_bytes(3, "big")
        elif op == "type":
            buf[start + 3] = value % 12 if value % 4 else value % 256
        elif op == "flags":
            buf[start + 4] = value % 256
        elif op == "sid":
            buf[start + 5 : start + 9] = struct.pack(">I", value % 8 if value % 2 else value)
        elif op == "dup":
            buf[stop:stop] = buf[start:stop]
    return bytes(buf)


@FUZZ_SETTINGS
@given(actions=ACTIONS, ops=MUTATIONS, data=st.data())
def test_fuzz_mutated_server_frames(
    actions: list[str], ops: list[tuple[str, int, int, bytes]], data: st.DataObject
) -> None:
    setup = Setup()
    valid = server_bytes(setup, actions)
    setup.feed(split(mutate(valid, ops), data.draw))
    setup.check()


@FUZZ_SETTINGS
@given(actions=ACTIONS, data=st.data())
def test_unmutated_server_frames_never_break_the_connection(
    actions: list[str], data: st.DataObject
) -> None:
    """Control for the mutation fuzz: valid h2 output, in any split, is never a connection
    error (only a drain after GOAWAY may close the connection)."""
    setup = Setup()
    valid = server_bytes(setup, actions)
    setup.feed(split(valid, data.draw))
    written = parse_frames(b"".join(setup.pair.writes[setup.mark :]))
    for frame in written:
        if isinstance(frame, GoAwayFrame):
            assert frame.error_code == fr.NO_ERROR, frame.additional_data
    setup.check()

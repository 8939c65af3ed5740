"""A sans-IO HTTP/2 server peer for testing :class:`grpc_lite._transport.Connection`.

No event loop and no sockets: :class:`H2Server` is the sans-IO h2 server core that
``grpc_lite.testing`` and ``tests/h2peer.py`` run on (``grpc_lite/testing/_h2core.py``:
``h2.H2Connection(client_side=False)``, the independent implementation: it raises on
flow-control, frame-size, stream-id and header violations by the client, which land in
``H2Server.errors``), with shortcuts for scripting replies; :class:`Pair` moves bytes
between it and a client ``Connection`` until both sides are quiet.

Every byte the client writes is also parsed with ``hyperframe`` *before* h2 sees it (the
core's frame record) and kept in ``H2Server.frames`` so tests can assert on the exact
frames (sizes, flags, RST codes, WINDOW_UPDATE increments, GOAWAY codes).

Frames h2 will not produce (GOAWAY that keeps streams alive, DATA before HEADERS, frames
on unknown streams, PUSH_PROMISE, malformed frames) are written raw with :meth:`H2Server.raw`;
raw header blocks are encoded with h2's own HPACK encoder (:meth:`H2Server.header_block`)
so the client's decoder stays in sync with h2's dynamic table.

Who may call: test code, synchronously.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import h2.events
import h2.settings
from hyperframe.frame import Frame

from grpc_lite._transport import _frames as fr
from grpc_lite._transport._connection import Connection, ConnectionState
from grpc_lite._transport._hpack import encode_fields
from grpc_lite._transport._stream import ClientStream
from grpc_lite.testing._h2core import FrameRecord, FrameTap, H2ServerCore

UNARY = "/grpc.testing.TestService/UnaryCall"


def grpc_message(payload: bytes, compressed: bool = False) -> bytes:
    """The 5-byte gRPC length prefix plus ``payload``."""
    return struct.pack(">BI", int(compressed), len(payload)) + payload


def request_fields(
    path: str = UNARY, metadata: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("te", "trailers"),
        ("content-type", "application/grpc"),
        *metadata,
    ]


def _frame(record: FrameRecord) -> Frame:
    """The hyperframe frame of a record; a malformed frame fails the test."""
    assert record.frame is not None, f"malformed frame: {record.error}"
    frame = record.frame
    frame.wire_length = record.length  # type: ignore[attr-defined]
    return frame


def parse_frames(data: bytes) -> list[Frame]:
    """Parse a complete sequence of frames with hyperframe (independent of our codec)."""
    tap = FrameTap("out", expect_preface=False)
    frames = [_frame(r) for r in tap.feed(data)]
    assert tap.pending == 0, f"truncated frame: {tap.pending} bytes left"
    return frames


# ---------------------------------------------------------------------------- listeners


class RecordingConnListener:
    """A ``ConnectionListener`` that records every callback."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def connection_ready(self) -> None:
        self.events.append(("ready",))

    def connection_goaway(self, last_stream_id: int, code: int, debug: bytes) -> None:
        self.events.append(("goaway", last_stream_id, code, debug))

    def connection_closed(self, reason: str) -> None:
        self.events.append(("closed", reason))

    def ping_acked(self, data: bytes) -> None:
        self.events.append(("ping_acked", data))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[0] == kind]


class RecordingStreamListener:
    """A ``StreamListener`` that records every callback (and takes messages when asked)."""

    def __init__(self, take: bool = True) -> None:
        self.events: list[str] = []
        self.take = take
        self.taken: list[bytes] = []

    def stream_headers(self, stream: ClientStream) -> None:
        self.events.append("headers")

    def stream_message(self, stream: ClientStream) -> None:
        self.events.append("message")
        if self.take:
            while (msg := stream.take_message()) is not None:
                self.taken.append(msg)

    def stream_done(self, stream: ClientStream) -> None:
        self.events.append("done")

    def stream_writable(self, stream: ClientStream) -> None:
        self.events.append("writable")


# ---------------------------------------------------------------------------- the server


@dataclass
class Request:
    """What the server saw on one stream."""

    stream_id: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset_code: int | None = None


class H2Server(H2ServerCore):
    """The sans-IO h2 server core, fed with the client's bytes, recording what it saw."""

    def __init__(
        self,
        settings: dict[int, int] | None = None,
        *,
        auto_ack_data: bool = True,
        max_outbound_frame_size: int | None = None,
    ) -> None:
        # h2's own defaults for header validation, both ways.
        super().__init__(validate_outbound_headers=True, normalize_outbound_headers=True)
        self._in = FrameTap("in", expect_preface=True)
        codes = h2.settings.SettingCodes
        initial: dict[int, int] = {
            codes.MAX_CONCURRENT_STREAMS: 100,
            codes.MAX_HEADER_LIST_SIZE: self.h2.DEFAULT_MAX_HEADER_LIST_SIZE,
        }
        initial.update(settings or {})
        self.initiate(initial, apply_limits=True)
        if max_outbound_frame_size is not None:
            self.h2.max_outbound_frame_size = max_outbound_frame_size
        self.auto_ack_data = auto_ack_data
        self.frames: list[Frame] = []
        self.events: list[h2.events.Event] = []
        self.requests: dict[int, Request] = {}
        self.terminated: h2.events.ConnectionTerminated | None = None

    # -- input from the client
    def receive(self, data: bytes, *, feed_h2: bool = True) -> list[Frame]:  # type: ignore[override]
        """Parse and record the client's frames, then feed the bytes to h2 (its protocol
        errors land in ``errors``); returns the new frames."""
        new = [_frame(r) for r in self._in.feed(data)]
        self.frames.extend(new)
        for event in super().receive(data, feed_h2=feed_h2):
            self._record(event)
        return new

    def _record(self, event: h2.events.Event) -> None:
        self.events.append(event)
        if isinstance(event, h2.events.RequestReceived):
            req = self.requests.setdefault(event.stream_id, Request(event.stream_id))
            req.headers = [(k.decode(), v.decode()) for k, v in event.headers]
        elif isinstance(event, h2.events.DataReceived):
            self.requests[event.stream_id].data += event.data
            if self.auto_ack_data and event.flow_controlled_length:
                self.ack(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.requests[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            req = self.requests.setdefault(event.stream_id, Request(event.stream_id))
            req.reset_code = int(event.error_code)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = event

    # -- output to the client (data_to_send() from the core)
    def raw(self, ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> None:
        """Write one frame exactly as given (after whatever h2 has queued)."""
        self.queue_raw(fr.frame_header(len(payload), ftype, flags, stream_id) + payload)

    def raw_bytes(self, data: bytes) -> None:
        self.queue_raw(data)

    def header_block(self, fields: Iterable[tuple[str, str]]) -> bytes:
        """A header block from h2's own encoder, so the client's HPACK state stays in sync."""
        return bytes(self.h2.encoder.encode(list(fields)))

    def raw_headers(
        self, stream_id: int, fields: Iterable[tuple[str, str]], end_stream: bool = False
    ) -> None:
        flags = fr.FLAG_END_HEADERS | (fr.FLAG_END_STREAM if end_stream else 0)
        self.raw(fr.HEADERS, flags, stream_id, self.header_block(fields))

    def raw_data(
        self, stream_id: int, data: bytes, end_stream: bool = False, pad: int | None = None
    ) -> None:
        flags = fr.FLAG_END_STREAM if end_stream else 0
        if pad is not None:
            flags |= fr.FLAG_PADDED
            data = bytes((pad,)) + data + b"\0" * pad
        self.raw(fr.DATA, flags, stream_id, data)

    def goaway(self, last_stream_id: int, code: int = fr.NO_ERROR, debug: bytes = b"") -> None:
        """A raw GOAWAY: h2 4.4 would close its own state (python-hyper/h2 #1181)."""
        self.queue_goaway(last_stream_id, code, debug)

    def rst(self, stream_id: int, code: int) -> None:
        self.raw(fr.RST_STREAM, 0, stream_id, struct.pack(">I", code))

    # -- h2-driven responses
    def send_headers(
        self,
        stream_id: int,
        fields: Sequence[tuple[str, str]] | None = None,
        end_stream: bool = False,
    ) -> None:
        if fields is None:
            fields = [(":status", "200"), ("content-type", "application/grpc")]
        self.h2.send_headers(stream_id, list(fields), end_stream=end_stream)

    def send_data(
        self,
        stream_id: int,
        data: bytes,
        end_stream: bool = False,
        pad_length: int | None = None,
    ) -> None:
        self.h2.send_data(stream_id, data, end_stream=end_stream, pad_length=pad_length)

    def send_message(self, stream_id: int, payload: bytes) -> None:
        self.send_data(stream_id, grpc_message(payload))

    def send_trailers(
        self,
        stream_id: int,
        status: int = 0,
        message: str | None = None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> None:
        fields = [("grpc-status", str(status))]
        if message is not None:
            fields.append(("grpc-message", message))
        fields.extend(extra)
        self.h2.send_headers(stream_id, fields, end_stream=True)

    def respond(self, stream_id: int, payload: bytes, status: int = 0) -> None:
        """Headers, one message, trailers."""
        self.send_headers(stream_id)
        self.send_message(stream_id, payload)
        self.send_trailers(stream_id, status)

    def trailers_only(self, stream_id: int, status: int, message: str | None = None) -> None:
        fields = [(":status", "200"), ("content-type", "application/grpc")]
        fields.append(("grpc-status", str(status)))
        if message is not None:
            fields.append(("grpc-message", message))
        self.h2.send_headers(stream_id, fields, end_stream=True)

    def reset(self, stream_id: int, code: int) -> None:
        self.h2.reset_stream(stream_id, code)

    def ping(self, data: bytes) -> None:
        self.h2.ping(data)

    def update_settings(self, settings: dict[int, int]) -> None:
        self.h2.update_settings(settings)

    def window_update(self, stream_id: int, increment: int) -> None:
        self.h2.increment_flow_control_window(increment, stream_id=stream_id or None)

    # -- what the client sent
    def frames_of(self, ftype: int, stream_id: int | None = None) -> list[Any]:
        return [
            f
            for f in self.frames
            if f.type == ftype and (stream_id is None or f.stream_id == stream_id)
        ]


# ---------------------------------------------------------------------------- client + server


class Pair:
    """A client ``Connection`` wired to an :class:`H2Server` through explicit pumping."""

    def __init__(
        self,
        settings: dict[int, int] | None = None,
        *,
        stream_window: int = 1 << 20,
        connection_window: int = 1 << 24,
        auto_ack_data: bool = True,
        handshake: bool = True,
    ) -> None:
        self.listener = RecordingConnListener()
        self.writes: list[bytes] = []
        self.conn = Connection(
            self.listener,
            self.writes.append,
            stream_window=stream_window,
            connection_window=connection_window,
        )
        self.server = H2Server(settings, auto_ack_data=auto_ack_data)
        self._delivered = 0
        if handshake:
            self.conn.initiate()
            self.pump()
            assert self.conn.state is ConnectionState.READY

    def to_server(self) -> list[Frame]:
        """Deliver the client's unsent writes to the server; returns the new frames."""
        new: list[Frame] = []
        while self._delivered < len(self.writes):
            data = self.writes[self._delivered]
            self._delivered += 1
            new.extend(self.server.receive(data))
        return new

    def to_client(self) -> bool:
        data = self.server.data_to_send()
        if data:
            self.conn.receive_data(data)
        return bool(data)

    def pump(self, limit: int = 10_000) -> list[Frame]:
        """Exchange bytes until both sides are quiet; returns the client frames seen."""
        seen: list[Frame] = []
        for _ in range(limit):
            seen.extend(self.to_server())
            if not self.to_client() and self._delivered == len(self.writes):
                return seen
        raise AssertionError("pump did not settle")

    def stream(
        self,
        *,
        path: str = UNARY,
        metadata: Sequence[tuple[str, str]] = (),
        unary: bool = True,
        listener: RecordingStreamListener | None = None,
        max_receive: int | None = None,
    ) -> ClientStream:
        """A new (not yet started) ClientStream with a normal request header block."""
        fields = request_fields(path, metadata)
        size = sum(len(k) + len(v) + 32 for k, v in fields)
        return ClientStream(
            listener or RecordingStreamListener(),
            encode_fields(fields),
            size,
            max_receive=max_receive,
            unary_response=unary,
        )

    def start(self, payload: bytes | None = b"req", **kwargs: Any) -> ClientStream:
        """Create and start a stream; a unary request (one message + END_STREAM) unless
        ``payload`` is None (then nothing is sent after HEADERS)."""
        stream = self.stream(**kwargs)
        if payload is not None:
            stream.send(grpc_message(payload), True)
        self.conn.start_stream(stream)
        return stream

# ruff: noqa: ASYNC109  (timeouts on the helpers keep every wait in a test bounded)
"""A scripted raw HTTP/2 gRPC server for frame-level client tests (CONFORMANCE harness [H]).

A thin scripting layer over the h2 server core that ``grpc_lite.testing`` runs on
(``grpc_lite/testing/_h2core.py``): h2 is the independent implementation that checks the
client's frames (it raises on flow-control, frame-size, stream-id and header violations;
those land in ``PeerConnection.errors``). Every byte the client sends is also parsed with
``hyperframe`` *before* it is fed to h2 and kept as a ``FrameRecord`` so tests can assert on
padding, frame sizes, RST codes, WINDOW_UPDATEs, PINGs and GOAWAYs exactly as they were on
the wire. Everything the peer writes is recorded the same way (direction ``"out"``), in one
timeline per connection.

Usage::

    async def handler(stream: PeerStream) -> None:
        req = await stream.read_message()
        await stream.send_headers()
        await stream.send_message(req)
        await stream.send_trailers(0)

    async with H2Peer(handler, settings={"INITIAL_WINDOW_SIZE": 1000}) as peer:
        ...  # connect a client to peer.target ("127.0.0.1:PORT")
        assert peer.streams[0].headers[0] == (":method", "POST")

Who may call what: everything runs on the test's event loop. Stream send methods are
coroutines (DATA waits for flow-control credit); connection-level operations (GOAWAY, PING,
SETTINGS, WINDOW_UPDATE, raw writes) write at once. Sends on a stream the client reset, or
on a closed connection, are silently dropped (they return False), so a handler that races
a client cancel does not fail the test.

h2 4.4 moves its connection to CLOSED when it *sends* or receives GOAWAY (python-hyper/h2
#1181), so ``PeerConnection.goaway`` writes the GOAWAY frame itself (the core's
``queue_goaway``) and h2 keeps serving the streams that are still open (graceful drain,
CONFORMANCE 161/122).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import ssl
import struct
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    ExtensionFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from grpc_lite.testing._h2core import FRAME_NAMES, PREFACE, FrameRecord, FrameTap, H2ServerProtocol
from grpc_lite.testing._listener import Listener

__all__ = [
    "FRAME_NAMES",
    "PREFACE",
    "FrameRecord",
    "H2Peer",
    "PeerConnection",
    "PeerStream",
    "echo_stream",
    "echo_unary",
    "grpc_frame",
    "hold_open",
    "percent_encode",
    "status_reply",
    "stream_reply",
    "unary_reply",
]

Header = tuple[str | bytes, str | bytes]
Handler = Callable[["PeerStream"], Awaitable[None]]


# --------------------------------------------------------------------------- helpers


def grpc_frame(payload: bytes, flag: int = 0, *, compress: bool = False) -> bytes:
    """Length-prefixed message (PROTOCOL-HTTP2 Length-Prefixed-Message).

    ``compress=True`` gzips the payload and sets the flag to 1 unless a flag is given."""
    if compress:
        payload = gzip.compress(payload)
        flag = flag or 1
    return struct.pack(">BI", flag, len(payload)) + payload


def percent_encode(message: str) -> str:
    """grpc-message encoding: UTF-8, then %XX for bytes outside 0x20-0x7E and for '%'."""
    out = []
    for b in message.encode("utf-8"):
        if 0x20 <= b <= 0x7E and b != 0x25:
            out.append(chr(b))
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def _setting_code(key: Any) -> int:
    if isinstance(key, str):
        return int(h2.settings.SettingCodes[key.upper().removeprefix("SETTINGS_")])
    return int(key)


def _text(v: str | bytes) -> str:
    return v.decode("latin-1") if isinstance(v, bytes) else v


class _Notifier:
    """Wakes every coroutine waiting for "something changed"."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(None)

    async def wait(self) -> None:
        f: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(f)
        await f

    async def wait_until(self, predicate: Callable[[], bool], timeout: float | None) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await self.wait()


# --------------------------------------------------------------------------- stream


class PeerStream:
    """One request stream as the server sees it. Created when the client's HEADERS arrive."""

    def __init__(self, conn: PeerConnection, stream_id: int, headers: list[tuple[str, str]]):
        self.connection = conn
        self.stream_id = stream_id
        #: request headers in wire order, names and values decoded as latin-1
        self.headers: list[tuple[str, str]] = headers
        #: raw DATA payload bytes received (padding stripped), in order
        self.data = bytearray()
        #: per DATA frame: (payload length, flow-controlled length incl. padding, END_STREAM)
        self.data_frames: list[tuple[int, int, bool]] = []
        #: every complete gRPC message as (compressed flag, payload as on the wire)
        self.messages: list[tuple[int, bytes]] = []
        self.end_stream = False
        #: RST_STREAM error code the client sent, if any
        self.reset_code: int | None = None
        #: trailers the client sent (a conforming client never sends any; CONFORMANCE 11)
        self.client_trailers: list[tuple[str, str]] | None = None
        self.headers_sent = False
        self.closed_by_peer = False  # the peer sent END_STREAM or RST_STREAM
        self._read_index = 0
        self._deframe_buf = bytearray()
        self.deframe_error: str | None = None

    # ---------------------------------------------------------------- request side

    def header(self, name: str) -> str | None:
        """The first value of a request header, or None."""
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    @property
    def path(self) -> str | None:
        return self.header(":path")

    @property
    def done(self) -> bool:
        """No more frames will come from the client on this stream."""
        return self.end_stream or self.reset_code is not None or self.connection.closed

    def _on_data(self, data: bytes, flow_len: int, end: bool) -> None:
        self.data += data
        self.data_frames.append((len(data), flow_len, end))
        self._deframe_buf += data
        while len(self._deframe_buf) >= 5:
            flag, n = struct.unpack(">BI", self._deframe_buf[:5])
            if len(self._deframe_buf) < 5 + n:
                break
            self.messages.append((flag, bytes(self._deframe_buf[5 : 5 + n])))
            del self._deframe_buf[: 5 + n]

    async def read_message(self, timeout: float | None = 5.0) -> bytes | None:
        """Next request message (gzip-decompressed when flagged), or None at END_STREAM/reset."""
        await self.connection.peer.wait_until(
            lambda: self._read_index < len(self.messages) or self.done, timeout
        )
        if self._read_index >= len(self.messages):
            return None
        flag, payload = self.messages[self._read_index]
        self._read_index += 1
        if flag == 1 and self.header("grpc-encoding") == "gzip":
            payload = gzip.decompress(payload)
        return payload

    async def read_all(self, timeout: float | None = 5.0) -> list[bytes]:
        out = []
        while (m := await self.read_message(timeout)) is not None:
            out.append(m)
        return out

    async def wait_end(self, timeout: float | None = 5.0) -> None:
        """Until the client half-closed (END_STREAM), reset the stream, or the connection closed."""
        await self.connection.peer.wait_until(lambda: self.done, timeout)

    async def wait_reset(self, timeout: float | None = 5.0) -> int | None:
        """Until the client sent RST_STREAM (returns its code) or the connection closed."""
        await self.connection.peer.wait_until(
            lambda: self.reset_code is not None or self.connection.closed, timeout
        )
        return self.reset_code

    # ---------------------------------------------------------------- response side

    def _writable(self) -> bool:
        return (
            self.reset_code is None
            and not self.closed_by_peer
            and not self.connection.closed
            and not self.connection.h2_dead
        )

    async def send_headers(
        self,
        headers: Sequence[Header] | None = None,
        end_stream: bool = False,
        *,
        extra: Iterable[Header] = (),
        split: int | None = None,
    ) -> bool:
        """Send a HEADERS block. ``headers=None`` means ``:status 200`` +
        ``content-type: application/grpc``; ``extra`` is appended. ``split=N`` re-cuts the
        encoded header block into a HEADERS frame and CONTINUATION frames of N bytes each."""
        if not self._writable():
            return False
        hdrs: list[Header] = (
            [(":status", "200"), ("content-type", "application/grpc")]
            if headers is None
            else list(headers)
        )
        hdrs += list(extra)
        conn = self.connection
        conn.flush()
        conn.h2.send_headers(self.stream_id, hdrs, end_stream=end_stream)
        self.headers_sent = True
        if end_stream:
            self.closed_by_peer = True
        out = conn.h2.data_to_send()
        if split is not None:
            out = _split_header_block(out, split)
        conn.queue_raw(out)
        conn.flush()
        return True

    async def send_data(
        self,
        data: bytes,
        end_stream: bool = False,
        pad_length: int | None = None,
        *,
        max_frame: int | None = None,
    ) -> bool:
        """Send DATA, cut into frames that fit the client's windows and MAX_FRAME_SIZE
        (waiting for WINDOW_UPDATE as needed). ``pad_length`` pads every frame;
        ``max_frame`` caps the payload per frame (e.g. 1 for one-byte frames)."""
        sent = await self.connection.send_data(
            self.stream_id,
            data,
            end_stream=end_stream,
            pad_length=pad_length,
            max_frame=max_frame,
            writable=self._writable,
        )
        if sent and end_stream:
            self.closed_by_peer = True
        return sent

    async def send_message(
        self,
        payload: bytes,
        *,
        flag: int | None = None,
        compress: bool = False,
        end_stream: bool = False,
        pad_length: int | None = None,
        max_frame: int | None = None,
    ) -> bool:
        """One gRPC length-prefixed message (``compress=True``: gzip, flag 1)."""
        framed = grpc_frame(payload, 0 if flag is None else flag, compress=compress)
        if flag is not None and compress:
            framed = bytes([flag]) + framed[1:]
        if not self.headers_sent:
            await self.send_headers()
        return await self.send_data(
            framed, end_stream=end_stream, pad_length=pad_length, max_frame=max_frame
        )

    async def send_trailers(
        self,
        status: int | str | None = 0,
        message: str | None = None,
        extra: Iterable[Header] = (),
        *,
        split: int | None = None,
    ) -> bool:
        """Trailers with END_STREAM: ``grpc-status`` (omitted when None; a str is sent as is),
        ``grpc-message`` (percent-encoded), then ``extra``. Sends default response headers
        first if none were sent (use ``trailers_only`` for a Trailers-Only response)."""
        if not self.headers_sent:
            await self.send_headers()
        hdrs: list[Header] = []
        if status is not None:
            hdrs.append(("grpc-status", str(status)))
        if message is not None:
            hdrs.append(("grpc-message", percent_encode(message)))
        hdrs += list(extra)
        return await self.send_headers(hdrs, end_stream=True, split=split)

    async def trailers_only(
        self,
        status: int | str | None,
        message: str | None = None,
        extra: Iterable[Header] = (),
        *,
        http_status: int = 200,
        content_type: str | None = "application/grpc",
    ) -> bool:
        """A Trailers-Only response: one HEADERS frame with END_STREAM."""
        hdrs: list[Header] = [(":status", str(http_status))]
        if content_type is not None:
            hdrs.append(("content-type", content_type))
        if status is not None:
            hdrs.append(("grpc-status", str(status)))
        if message is not None:
            hdrs.append(("grpc-message", percent_encode(message)))
        hdrs += list(extra)
        return await self.send_headers(hdrs, end_stream=True)

    async def reset(self, code: int = h2.errors.ErrorCodes.CANCEL) -> bool:
        """Send RST_STREAM with ``code``."""
        if not self._writable():
            return False
        conn = self.connection
        conn.h2.reset_stream(self.stream_id, code)
        self.closed_by_peer = True
        conn.flush()
        return True

    def __repr__(self) -> str:
        return (
            f"<PeerStream {self.stream_id} {self.path} end={self.end_stream} rst={self.reset_code}>"
        )


def _split_header_block(out: bytes, split: int) -> bytes:
    """Re-cut the HEADERS frame(s) in ``out`` into HEADERS + CONTINUATION frames."""
    recs = FrameTap("out", False).feed(out)
    result = bytearray()
    block = bytearray()
    first: HeadersFrame | None = None
    for r in recs:
        if isinstance(r.frame, HeadersFrame):
            first = r.frame
            block = bytearray(r.frame.data)
            if "END_HEADERS" in r.flags:
                result += _emit_split(first, bytes(block), split)
                first = None
        elif isinstance(r.frame, ContinuationFrame) and first is not None:
            block += r.frame.data
            if "END_HEADERS" in r.flags:
                result += _emit_split(first, bytes(block), split)
                first = None
        elif r.frame is not None:
            result += r.frame.serialize()
    return bytes(result)


def _emit_split(h: HeadersFrame, block: bytes, split: int) -> bytes:
    chunks = [block[i : i + split] for i in range(0, len(block), split)] or [b""]
    flags = {"END_STREAM"} & set(h.flags)
    out = bytearray()
    hf = HeadersFrame(h.stream_id, data=chunks[0], flags=flags)
    if len(chunks) == 1:
        hf.flags.add("END_HEADERS")
    out += hf.serialize()
    for i, c in enumerate(chunks[1:], start=1):
        cf = ContinuationFrame(h.stream_id, data=c)
        if i == len(chunks) - 1:
            cf.flags.add("END_HEADERS")
        out += cf.serialize()
    return bytes(out)


# --------------------------------------------------------------------------- connection


class PeerConnection(H2ServerProtocol):
    """One accepted client connection."""

    def __init__(self, peer: H2Peer, index: int) -> None:
        super().__init__(
            validate_inbound_headers=peer.validate_inbound_headers,
            normalize_inbound_headers=False,
            record_in=True,
            record_out=True,
        )
        self.peer = peer
        self.index = index
        # From the core: ``h2``, ``transport``, ``closed``, ``h2_dead`` (h2 refuses further
        # input: protocol error or the client's GOAWAY), ``errors`` (h2 protocol errors and
        # handler exceptions) and ``timeline`` (every frame, both directions, in order).
        #: streams by id, in arrival order
        self.streams: dict[int, PeerStream] = {}
        #: the client's SETTINGS as h2 saw them (code -> value)
        self.client_settings: dict[int, int] = {}
        self.settings_acks_received = 0
        self.pings_sent = 0
        self.ping_acks_received = 0
        self.pings_received = 0
        #: GOAWAY frames the client sent: (last_stream_id, error_code, debug)
        self.goaways_received: list[tuple[int, int, bytes]] = []
        self.goaways_sent: list[tuple[int, int, bytes]] = []
        self._ping_ids = itertools.count(1)
        #: bytes written with write_raw (not parsed into the timeline)
        self.raw_writes: list[bytes] = []

    # ---------------------------------------------------------------- views

    @property
    def frames(self) -> list[FrameRecord]:
        """Frames the client sent (raw, parsed before h2 saw them)."""
        return [r for r in self.timeline if r.direction == "in"]

    @property
    def sent_frames(self) -> list[FrameRecord]:
        return [r for r in self.timeline if r.direction == "out"]

    def frames_of(self, type_name: str, stream_id: int | None = None) -> list[FrameRecord]:
        return [
            r
            for r in self.frames
            if r.type_name == type_name and (stream_id is None or r.stream_id == stream_id)
        ]

    @property
    def outstanding_pings(self) -> int:
        return self.pings_sent - self.ping_acks_received

    # ---------------------------------------------------------------- the core's hooks

    def connection_started(self) -> None:
        peer = self.peer
        if peer.close_on_accept:
            assert self.transport is not None
            self.transport.close()
            return
        if peer.silent:
            return
        self.initiate(
            {
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
                **{_setting_code(k): v for k, v in peer.settings.items()},
            },
            connection_window=peer.connection_window,
        )
        self.flush()

    def data_received(self, data: bytes) -> None:
        if self.peer.silent:
            self.receive(data, feed_h2=False)  # recorded, never answered
            self.changed()
            return
        super().data_received(data)

    def changed(self) -> None:
        self.wake_senders()
        self.peer._changed()

    def event_received(self, ev: h2.events.Event) -> None:
        if isinstance(ev, h2.events.RequestReceived):
            assert ev.stream_id is not None and ev.headers is not None
            hdrs = [(_text(k), _text(v)) for k, v in ev.headers]
            st = PeerStream(self, ev.stream_id, hdrs)
            self.streams[ev.stream_id] = st
            self.peer.streams.append(st)
            self.peer._start_handler(st)
        elif isinstance(ev, h2.events.DataReceived):
            assert ev.stream_id is not None
            st = self.streams.get(ev.stream_id)
            flow = ev.flow_controlled_length or 0
            if st is not None:
                st._on_data(bytes(ev.data or b""), flow, False)
            if self.peer.auto_ack_data and flow:
                with contextlib.suppress(h2.exceptions.StreamClosedError):
                    self.h2.acknowledge_received_data(flow, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            st = self.streams.get(ev.stream_id or 0)
            if st is not None:
                st.end_stream = True
                if st.data_frames:
                    a, b, _ = st.data_frames[-1]
                    st.data_frames[-1] = (a, b, True)
        elif isinstance(ev, h2.events.StreamReset):
            st = self.streams.get(ev.stream_id or 0)
            if st is not None and ev.remote_reset:
                st.reset_code = int(ev.error_code or 0)
        elif isinstance(ev, h2.events.TrailersReceived):
            st = self.streams.get(ev.stream_id or 0)
            if st is not None:
                st.client_trailers = [(_text(k), _text(v)) for k, v in ev.headers or []]
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for code, ch in ev.changed_settings.items():
                self.client_settings[int(code)] = ch.new_value
        elif isinstance(ev, h2.events.SettingsAcknowledged):
            self.settings_acks_received += 1
        elif isinstance(ev, h2.events.PingAckReceived):
            self.ping_acks_received += 1
        elif isinstance(ev, h2.events.PingReceived):
            self.pings_received += 1
        elif isinstance(ev, h2.events.ConnectionTerminated):
            # h2 #1181: h2 rejects every later frame (the core has set h2_dead).
            self.goaways_received.append(
                (int(ev.last_stream_id or 0), int(ev.error_code or 0), ev.additional_data or b"")
            )

    # ---------------------------------------------------------------- writing

    def write_raw(self, data: bytes) -> None:
        """Escape hatch: write bytes as they are (malformed frames, bad HPACK...).
        Not parsed into the timeline (``raw_writes`` keeps them)."""
        self.raw_writes.append(data)
        self.queue_raw(data, record=False)
        self.flush()

    def write_frame(self, frame: Frame) -> None:
        """Serialize a hyperframe frame and write it, bypassing h2 (recorded in the timeline)."""
        self.queue_frame(frame)
        self.flush()

    def write_unknown_frame(
        self, frame_type: int, stream_id: int, payload: bytes = b"", flags: int = 0
    ) -> None:
        """A frame of a type the client must ignore (RFC 7540 §4.1)."""
        self.write_frame(ExtensionFrame(frame_type, stream_id, flags, payload))

    def goaway(self, last_stream_id: int | None = None, code: int = 0, debug: bytes = b"") -> None:
        """Send GOAWAY without closing h2's state, so open streams keep being served.
        ``last_stream_id=None`` means the highest stream id the client opened so far."""
        if last_stream_id is None:
            last_stream_id = self.h2.highest_inbound_stream_id
        self.goaways_sent.append((last_stream_id, code, debug))
        self.queue_goaway(last_stream_id, code, debug)
        self.flush()

    def ping(self, data: bytes | None = None) -> bytes:
        """Send a PING (8 opaque bytes); ``ping_acks_received`` counts the ACKs."""
        if data is None:
            data = next(self._ping_ids).to_bytes(8, "big")
        if self.h2_dead:
            self.write_frame(PingFrame(0, opaque_data=data))
        else:
            self.h2.ping(data)
            self.flush()
        self.pings_sent += 1
        return data

    def update_settings(self, settings: dict[Any, int]) -> None:
        self.h2.update_settings({_setting_code(k): v for k, v in settings.items()})
        self.flush()

    def send_window_update(self, increment: int, stream_id: int = 0) -> None:
        """WINDOW_UPDATE for a stream (or the connection with 0), kept in h2's books."""
        try:
            self.h2.increment_flow_control_window(increment, None if stream_id == 0 else stream_id)
            self.flush()
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            self.write_frame(WindowUpdateFrame(stream_id, window_increment=increment))

    def send_rst(self, stream_id: int, code: int) -> None:
        """RST_STREAM written raw (any stream id, bypassing h2)."""
        self.write_frame(RstStreamFrame(stream_id, error_code=code))

    def send_settings_raw(self, settings: dict[Any, int], ack: bool = False) -> None:
        f = SettingsFrame(0, settings={_setting_code(k): v for k, v in settings.items()})
        if ack:
            f.flags.add("ACK")
        self.write_frame(f)

    def write_data_raw(
        self, stream_id: int, data: bytes, end_stream: bool = False, pad_length: int | None = None
    ) -> None:
        """DATA frame bypassing h2 and flow control."""
        f = DataFrame(stream_id, data=data)
        if end_stream:
            f.flags.add("END_STREAM")
        if pad_length is not None:
            f.flags.add("PADDED")
            f.pad_length = pad_length
        self.write_frame(f)

    def encode_headers(self, headers: Sequence[Header]) -> bytes:
        """HPACK-encode with h2's own encoder (keeps the client's dynamic table in sync)."""
        return bytes(self.h2.encoder.encode(list(headers)))

    # close() (FIN after what is queued) and abort() (at once) come from the core.

    async def wait_closed(self, timeout: float | None = 5.0) -> None:
        async with asyncio.timeout(timeout):
            await asyncio.shield(self.lost)

    async def wait_settings_acked(self, n: int = 1, timeout: float | None = 5.0) -> None:
        await self.peer.wait_until(lambda: self.settings_acks_received >= n, timeout)

    async def wait_ping_acks(self, n: int | None = None, timeout: float | None = 5.0) -> None:
        target = self.pings_sent if n is None else n
        await self.peer.wait_until(lambda: self.ping_acks_received >= target, timeout)


# --------------------------------------------------------------------------- server


class H2Peer:
    """Scripted gRPC-over-h2 server on 127.0.0.1:0. Use as ``async with``.

    Parameters:
    - ``handler``: ``async def handler(stream: PeerStream)``, run as a task per request
      stream (default ``echo_unary``). Can be replaced at any time via ``peer.handler``.
    - ``settings``: local SETTINGS, keys as ``h2.settings.SettingCodes``, ints or names
      (``"INITIAL_WINDOW_SIZE"``, ``"MAX_CONCURRENT_STREAMS"``, ``"MAX_HEADER_LIST_SIZE"``,
      ``"MAX_FRAME_SIZE"``...).
    - ``connection_window``: connection-level receive window (> 65535 grows it at start).
    - ``silent``: accept and never write a byte (no SETTINGS); frames are still recorded.
    - ``close_on_accept``: close each connection right after accept.
    - ``auto_ack_data``: return flow-control credit as DATA arrives (h2's
      acknowledge_received_data). False: the test grants credit with ``send_window_update``.
    - ``validate_inbound_headers``: let h2 reject malformed request headers (recorded in
      ``errors``).
    - ``port``: the port to listen on (default 0: a free one; ``peer.port`` says which).
    - ``unix_path``: listen on this Unix socket path instead of TCP.
    - ``ssl_context``: serve behind TLS with this server context (set its ALPN to h2).
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        settings: dict[Any, int] | None = None,
        connection_window: int | None = None,
        silent: bool = False,
        close_on_accept: bool = False,
        auto_ack_data: bool = True,
        validate_inbound_headers: bool = True,
        raise_handler_errors: bool = True,
        port: int = 0,
        unix_path: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.handler: Handler = handler or echo_unary
        self.settings = dict(settings or {})
        self.connection_window = connection_window
        self.silent = silent
        self.close_on_accept = close_on_accept
        self.auto_ack_data = auto_ack_data
        self.validate_inbound_headers = validate_inbound_headers
        self.raise_handler_errors = raise_handler_errors
        self.connections: list[PeerConnection] = []
        #: every request stream, all connections, in arrival order
        self.streams: list[PeerStream] = []
        self.handler_errors: list[BaseException] = []
        # The accept path Backend uses too (grpc_lite/testing/_listener.py).
        self._listener = Listener(
            self._make_protocol, "127.0.0.1", port, unix_path=unix_path, ssl_context=ssl_context
        )
        self._notifier = _Notifier()
        self._tasks: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        """The port listened on: the one given, else the free one chosen at :meth:`start`."""
        return self._listener.port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> H2Peer:
        await self._listener.start()
        return self

    async def stop(self) -> None:
        self._listener.close()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for c in self.connections:
            c.close()
        for c in self.connections:
            if c.transport is not None:
                try:
                    await c.wait_closed(2.0)
                except TimeoutError:
                    c.abort()
        await self._listener.wait_closed()

    async def __aenter__(self) -> H2Peer:
        return await self.start()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.stop()
        if exc_type is None and self.raise_handler_errors and self.handler_errors:
            raise self.handler_errors[0]

    def _make_protocol(self) -> PeerConnection:
        c = PeerConnection(self, len(self.connections))
        self.connections.append(c)
        self._changed()
        return c

    def _start_handler(self, st: PeerStream) -> None:
        t = asyncio.get_running_loop().create_task(self._run_handler(st))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _run_handler(self, st: PeerStream) -> None:
        try:
            await self.handler(st)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.handler_errors.append(exc)
            st.connection.errors.append(exc)
            with contextlib.suppress(Exception):
                await st.reset(h2.errors.ErrorCodes.INTERNAL_ERROR)
        finally:
            self._changed()

    # ---------------------------------------------------------------- waiting

    def _changed(self) -> None:
        self._notifier.notify()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float | None = 5.0) -> None:
        """Re-check ``predicate`` after every change (bytes in, connection opened/closed)."""
        await self._notifier.wait_until(predicate, timeout)

    async def wait_for_streams(self, n: int, timeout: float | None = 5.0) -> list[PeerStream]:
        await self.wait_until(lambda: len(self.streams) >= n, timeout)
        return self.streams[:n]

    async def wait_for_connections(self, n: int, timeout: float | None = 5.0) -> None:
        await self.wait_until(lambda: len(self.connections) >= n, timeout)

    # ---------------------------------------------------------------- views

    @property
    def connection_count(self) -> int:
        return len(self.connections)

    @property
    def connection(self) -> PeerConnection:
        """The most recently accepted connection."""
        if not self.connections:
            raise RuntimeError("no connection accepted yet")
        return self.connections[-1]

    @property
    def frames(self) -> list[FrameRecord]:
        """Client frames from every connection, connection by connection."""
        return [r for c in self.connections for r in c.frames]

    def frames_of(self, type_name: str) -> list[FrameRecord]:
        return [r for r in self.frames if r.type_name == type_name]

    @property
    def errors(self) -> list[BaseException]:
        """h2 protocol errors (client misbehaviour) on every connection."""
        return [e for c in self.connections for e in c.errors]

    @property
    def protocol_errors(self) -> list[BaseException]:
        return [e for e in self.errors if isinstance(e, h2.exceptions.ProtocolError)]

    # Connection-level shortcuts on the latest connection.
    def goaway(self, last_stream_id: int | None = None, code: int = 0, debug: bytes = b"") -> None:
        self.connection.goaway(last_stream_id, code, debug)

    def ping(self, data: bytes | None = None) -> bytes:
        return self.connection.ping(data)

    def update_settings(self, settings: dict[Any, int]) -> None:
        self.connection.update_settings(settings)

    def send_window_update(self, increment: int, stream_id: int = 0) -> None:
        self.connection.send_window_update(increment, stream_id)

    def write_raw(self, data: bytes) -> None:
        self.connection.write_raw(data)


# --------------------------------------------------------------------------- handlers


async def echo_unary(stream: PeerStream) -> None:
    """Reply with the (first) request message, status OK."""
    req = await stream.read_message()
    await stream.wait_end()
    await stream.send_headers()
    await stream.send_message(req or b"")
    await stream.send_trailers(0)


async def echo_stream(stream: PeerStream) -> None:
    """Echo every request message as it arrives; OK when the client half-closes."""
    await stream.send_headers()
    while (m := await stream.read_message(timeout=None)) is not None:
        await stream.send_message(m)
    await stream.send_trailers(0)


def unary_reply(
    payload: bytes = b"",
    *,
    status: int = 0,
    message: str | None = None,
    initial: Iterable[Header] = (),
    trailing: Iterable[Header] = (),
    wait_end: bool = True,
) -> Handler:
    """Handler: headers (+``initial``), one message, trailers (``status``, ``trailing``)."""
    initial, trailing = list(initial), list(trailing)

    async def handler(stream: PeerStream) -> None:
        if wait_end:
            await stream.wait_end()
        await stream.send_headers(extra=initial)
        await stream.send_message(payload)
        await stream.send_trailers(status, message, trailing)

    return handler


def stream_reply(
    payloads: Iterable[bytes], *, status: int = 0, message: str | None = None
) -> Handler:
    """Handler for server streaming: send every payload, then the status."""
    payloads = list(payloads)

    async def handler(stream: PeerStream) -> None:
        await stream.send_headers()
        for p in payloads:
            await stream.send_message(p)
        await stream.send_trailers(status, message)

    return handler


def status_reply(status: int, message: str | None = None, extra: Iterable[Header] = ()) -> Handler:
    """Handler: a Trailers-Only response."""
    extra = list(extra)

    async def handler(stream: PeerStream) -> None:
        await stream.trailers_only(status, message, extra)

    return handler


def hold_open(event: asyncio.Event | None = None) -> Handler:
    """Handler: never answer (until ``event`` is set, then reply OK with an empty message)."""

    async def handler(stream: PeerStream) -> None:
        if event is None:
            await asyncio.Event().wait()
        else:
            await event.wait()
            await stream.send_headers()
            await stream.send_message(b"")
            await stream.send_trailers(0)

    return handler

"""The server side of one HTTP/2 connection on ``h2``: the core every h2 peer shares.

:class:`~grpc_lite.testing.Backend` serves gRPC on it (``_h2server.ServerConnection``), and
grpc_lite's own test suite scripts it frame by frame (``tests/h2peer.py``, asyncio) or drives
it without an event loop (``tests/fakes/h2server.py``). h2 is the independent implementation:
it raises on flow-control, frame-size, stream-id and header violations by the client.

Two layers:

- :class:`H2ServerCore`, sans-IO: ``h2.H2Connection(client_side=False)``, the server
  preface, bytes in (:meth:`~H2ServerCore.receive`, which returns h2's events) and bytes out
  (:meth:`~H2ServerCore.data_to_send`), plus what h2 will not do: frames written as they are
  (a GOAWAY that keeps the connection serving: h2 4.4 moves its whole connection to CLOSED
  when it sends or receives one, python-hyper/h2 #1181), and an optional record of every
  frame as it was on the wire (:class:`FrameRecord`), parsed with hyperframe before h2 sees
  it.
- :class:`H2ServerProtocol`, the asyncio edge: an ``asyncio.Protocol`` that writes what the
  core queues, sends DATA within the client's flow-control windows
  (:meth:`~H2ServerProtocol.send_data`, RFC 9113 6.9), and closes or aborts. Subclasses
  handle h2's events (:meth:`~H2ServerProtocol.event_received`) and the lifecycle hooks.

Who may call what: the core from one thread, synchronously; the protocol on its event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import ExtensionFrame, Frame, GoAwayFrame

__all__ = [
    "FRAME_NAMES",
    "PREFACE",
    "FrameRecord",
    "FrameTap",
    "H2ServerCore",
    "H2ServerProtocol",
]

#: The client connection preface (RFC 9113 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

FRAME_NAMES = {
    0x0: "DATA",
    0x1: "HEADERS",
    0x2: "PRIORITY",
    0x3: "RST_STREAM",
    0x4: "SETTINGS",
    0x5: "PUSH_PROMISE",
    0x6: "PING",
    0x7: "GOAWAY",
    0x8: "WINDOW_UPDATE",
    0x9: "CONTINUATION",
    0xA: "ALTSVC",
}

_DEFAULT_WINDOW = 65535  # RFC 9113 6.9.2: every window starts here


# --------------------------------------------------------------------------- frame records


@dataclass(slots=True)
class FrameRecord:
    """One frame as it was on the wire. ``direction`` is "in" (from the client) or "out"."""

    direction: str
    type: int
    flags: frozenset[str]
    stream_id: int
    length: int  # payload length from the 9-byte frame header
    frame: Frame | None  # the parsed hyperframe object (None if the body did not parse)
    error: str | None = None
    time: float = 0.0

    @property
    def type_name(self) -> str:
        return FRAME_NAMES.get(self.type, f"UNKNOWN_0x{self.type:02x}")

    @property
    def end_stream(self) -> bool:
        return "END_STREAM" in self.flags

    @property
    def ack(self) -> bool:
        return "ACK" in self.flags

    @property
    def pad_length(self) -> int | None:
        """Pad Length field of a padded DATA/HEADERS frame, None when not padded."""
        if "PADDED" not in self.flags or self.frame is None:
            return None
        return int(getattr(self.frame, "pad_length", 0))

    @property
    def data(self) -> bytes:
        return bytes(getattr(self.frame, "data", b"")) if self.type == 0 else b""

    @property
    def error_code(self) -> int | None:
        """RST_STREAM / GOAWAY error code."""
        if self.type in (0x3, 0x7) and self.frame is not None:
            return int(self.frame.error_code)  # type: ignore[attr-defined]
        return None

    @property
    def increment(self) -> int | None:
        if self.type == 0x8 and self.frame is not None:
            return int(self.frame.window_increment)  # type: ignore[attr-defined]
        return None

    @property
    def last_stream_id(self) -> int | None:
        if self.type == 0x7 and self.frame is not None:
            return int(self.frame.last_stream_id)  # type: ignore[attr-defined]
        return None

    @property
    def settings(self) -> dict[int, int]:
        if self.type == 0x4 and self.frame is not None:
            return dict(self.frame.settings)  # type: ignore[attr-defined]
        return {}

    def __repr__(self) -> str:
        return (
            f"<{self.direction} {self.type_name} sid={self.stream_id} len={self.length} "
            f"flags={sorted(self.flags)}{' err=' + self.error if self.error else ''}>"
        )


class FrameTap:
    """Splits one direction's bytes into :class:`FrameRecord` objects, incrementally.

    A malformed frame is recorded (``frame=None``, ``error`` says why), never raised; a bad
    client preface stops the tap (``broken``)."""

    def __init__(self, direction: str, expect_preface: bool) -> None:
        self.direction = direction
        self._buf = bytearray()
        self._need_preface = expect_preface
        self.broken: str | None = None

    @property
    def pending(self) -> int:
        """Bytes held back: an incomplete frame (or preface) at the end of the input."""
        return len(self._buf)

    def feed(self, data: bytes, now: float = 0.0) -> list[FrameRecord]:
        if self.broken:
            return []
        self._buf += data
        out: list[FrameRecord] = []
        if self._need_preface:
            if len(self._buf) < len(PREFACE):
                if not PREFACE.startswith(bytes(self._buf)):
                    self.broken = "bad client preface"
                return out
            if bytes(self._buf[: len(PREFACE)]) != PREFACE:
                self.broken = "bad client preface"
                return out
            del self._buf[: len(PREFACE)]
            self._need_preface = False
        while len(self._buf) >= 9:
            length = int.from_bytes(self._buf[:3], "big")
            if len(self._buf) < 9 + length:
                break
            header = bytes(self._buf[:9])
            body = bytes(self._buf[9 : 9 + length])
            del self._buf[: 9 + length]
            out.append(_parse_frame(self.direction, header, body, now))
        return out


def _parse_frame(direction: str, header: bytes, body: bytes, now: float) -> FrameRecord:
    length = int.from_bytes(header[:3], "big")
    ftype = header[3]
    stream_id = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
    frame: Frame | None = None
    error: str | None = None
    flags: frozenset[str] = frozenset()
    try:
        frame, _ = Frame.parse_frame_header(memoryview(header))
        flags = frozenset(frame.flags)
        frame.parse_body(memoryview(body))
    except Exception as exc:  # malformed frames are recorded, not raised
        error = f"{type(exc).__name__}: {exc}"
        if frame is not None:
            flags = frozenset(frame.flags)
        frame = None
    return FrameRecord(direction, ftype, flags, stream_id, length, frame, error, now)


# --------------------------------------------------------------------------- sans-IO core


class H2ServerCore:
    """One server-side HTTP/2 connection, without I/O.

    ``h2`` is the ``H2Connection``; use it directly for what h2 does well (headers, DATA,
    RST_STREAM, PING, SETTINGS), then take the bytes with :meth:`data_to_send`. Bytes h2
    must not produce go through :meth:`queue_raw` / :meth:`queue_frame` /
    :meth:`queue_goaway`, in order with h2's own.

    With ``record_in`` / ``record_out`` every frame of that direction lands in
    :attr:`timeline` as a :class:`FrameRecord` (the client's before h2 parses them, ours as
    they leave); ``clock`` stamps them.
    """

    def __init__(
        self,
        *,
        validate_inbound_headers: bool = True,
        normalize_inbound_headers: bool = True,
        validate_outbound_headers: bool = False,
        normalize_outbound_headers: bool = False,
        record_in: bool = False,
        record_out: bool = False,
        clock: Callable[[], float] | None = None,
    ) -> None:
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=validate_inbound_headers,
            normalize_inbound_headers=normalize_inbound_headers,
            validate_outbound_headers=validate_outbound_headers,
            normalize_outbound_headers=normalize_outbound_headers,
        )
        self.h2 = h2.connection.H2Connection(config)
        #: h2 refuses further input: the client broke HTTP/2 or sent GOAWAY (h2 #1181).
        self.h2_dead = False
        #: h2 protocol errors (the client broke HTTP/2); subclasses add their own.
        self.errors: list[BaseException] = []
        #: every recorded frame, both directions, in the order the connection saw them
        self.timeline: list[FrameRecord] = []
        self._clock = clock
        self._in_tap = FrameTap("in", expect_preface=True) if record_in else None
        self._out_tap = FrameTap("out", expect_preface=False) if record_out else None
        self._out: list[tuple[bytes, bool]] = []  # (bytes, record them) in write order

    # -- the server preface

    def initiate(
        self,
        settings: Mapping[Any, int],
        *,
        enforce: Mapping[Any, int] | None = None,
        connection_window: int | None = None,
        apply_limits: bool = False,
    ) -> None:
        """Queue the server preface: a SETTINGS frame with ``settings`` (and h2's defaults
        for the rest), then a WINDOW_UPDATE growing the connection window to
        ``connection_window`` when that is larger than the default.

        ``enforce``: the settings h2 holds the client to from here on, when they differ
        from the advertised ones (a limit this server enforces itself, such as
        MAX_CONCURRENT_STREAMS with a stream error instead of h2's connection error).
        ``apply_limits``: h2 reads MAX_FRAME_SIZE and MAX_HEADER_LIST_SIZE for its inbound
        checks only in its constructor; this applies the advertised ones at once.
        """
        self.h2.local_settings = _settings(settings)
        if apply_limits:
            local = self.h2.local_settings
            self.h2.max_inbound_frame_size = local.max_frame_size
            if local.max_header_list_size is not None:
                self.h2.decoder.max_header_list_size = local.max_header_list_size
        self.h2.initiate_connection()
        if enforce is not None:
            self.h2.local_settings = _settings(enforce)
        if connection_window is not None and connection_window > _DEFAULT_WINDOW:
            self.h2.increment_flow_control_window(connection_window - _DEFAULT_WINDOW)

    # -- bytes in

    def receive(self, data: bytes, *, feed_h2: bool = True) -> list[h2.events.Event]:
        """Record the client's frames (when recording), then feed ``data`` to h2 and return
        its events. A protocol error lands in :attr:`errors` and makes the connection
        :attr:`h2_dead` (h2 has queued its GOAWAY); so does the client's GOAWAY, after its
        ``ConnectionTerminated`` event. ``feed_h2=False`` only records."""
        if self._in_tap is not None:
            self.timeline.extend(self._in_tap.feed(data, self._now()))
        if not feed_h2 or self.h2_dead:
            return []
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self.h2_dead = True
            self.errors.append(exc)
            self.protocol_error(exc)
            return []
        if any(isinstance(e, h2.events.ConnectionTerminated) for e in events):
            self.h2_dead = True
        return events

    def protocol_error(self, exc: h2.exceptions.ProtocolError) -> None:
        """The client broke HTTP/2 (already in :attr:`errors`); a hook for subclasses."""

    # -- bytes out

    def _take_h2(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self._out.append((data, True))

    def queue_raw(self, data: bytes, *, record: bool = True) -> None:
        """Queue ``data`` as it is, after what h2 has queued. ``record=False`` keeps it out
        of the timeline (bytes that are not frames)."""
        self._take_h2()
        if data:
            self._out.append((data, record))

    def queue_frame(self, frame: Frame) -> None:
        """Queue a hyperframe frame, bypassing h2 (h2's books do not see it)."""
        if isinstance(frame, ExtensionFrame):
            frame.body_len = len(frame.body)  # hyperframe leaves it 0 for new frames
        self.queue_raw(frame.serialize())

    def queue_goaway(self, last_stream_id: int, code: int = 0, debug: bytes = b"") -> None:
        """Queue GOAWAY without closing h2's state, so open streams keep being served."""
        self.queue_frame(
            GoAwayFrame(0, last_stream_id=last_stream_id, error_code=code, additional_data=debug)
        )

    def data_to_send(self) -> bytes:
        """Everything queued, in order (and recorded as it leaves, when recording)."""
        self._take_h2()
        if not self._out:
            return b""
        chunks, self._out = self._out, []
        if self._out_tap is not None:
            now = self._now()
            for data, record in chunks:
                if record:
                    self.timeline.extend(self._out_tap.feed(data, now))
        return b"".join(data for data, _ in chunks)

    def discard_output(self) -> None:
        """Drop what is queued (the connection cannot send any more)."""
        self._take_h2()
        self._out.clear()

    # -- flow control

    def ack(self, flow: int, stream_id: int) -> None:
        """Return ``flow`` bytes of receive window to the client (stream and connection),
        unless the connection or the stream is gone."""
        if flow and not self.h2_dead:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.acknowledge_received_data(flow, stream_id)

    def send_room(self, stream_id: int) -> int | None:
        """How many DATA payload bytes may go out on ``stream_id`` now (the client's stream
        and connection windows, and its MAX_FRAME_SIZE); None when h2 has closed the stream."""
        try:
            window = self.h2.local_flow_control_window(stream_id)
        except h2.exceptions.ProtocolError:
            return None
        return min(window, self.h2.max_outbound_frame_size)

    def _now(self) -> float:
        return self._clock() if self._clock is not None else 0.0


def _settings(values: Mapping[Any, int]) -> h2.settings.Settings:
    """h2 Settings from codes (``SettingCodes`` or plain ints, unknown ones included)."""
    initial: dict[Any, int] = dict(values)
    return h2.settings.Settings(client=False, initial_values=initial)


# --------------------------------------------------------------------------- asyncio edge


class H2ServerProtocol(H2ServerCore, asyncio.Protocol):
    """An :class:`H2ServerCore` on an asyncio transport.

    Subclasses send the preface in :meth:`connection_started`, handle h2's events in
    :meth:`event_received` and clean up in :meth:`connection_ended`; :meth:`changed` runs
    after anything that may have changed what a waiter waits for. A :meth:`send_data`
    waiting for flow-control credit re-checks after every batch of input and when the
    connection closes (and whenever :meth:`wake_senders` is called).
    """

    def __init__(self, **core: Any) -> None:
        loop = asyncio.get_running_loop()
        super().__init__(clock=loop.time, **core)
        self.transport: asyncio.Transport | None = None
        #: connection_lost has run
        self.closed = False
        #: resolved by connection_lost
        self.lost: asyncio.Future[None] = loop.create_future()
        self._waiters: list[asyncio.Future[None]] = []
        self._write_paused = False
        self._write_waiters: list[asyncio.Future[None]] = []

    # -- hooks

    def connection_started(self) -> None:
        """The transport is up: send the preface (``initiate`` then ``flush``)."""

    def event_received(self, event: h2.events.Event) -> None:
        """One h2 event, in order; what is queued is flushed after the batch."""

    def connection_ended(self, exc: Exception | None) -> None:
        """``connection_lost``: ``closed`` is set; waiters are woken after this."""

    def changed(self) -> None:
        """Bytes came in or went out, or the connection closed."""

    def protocol_error(self, exc: h2.exceptions.ProtocolError) -> None:
        """The client broke HTTP/2: send h2's GOAWAY and close."""
        self.flush()
        self.close()

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.connection_started()

    def data_received(self, data: bytes) -> None:
        for event in self.receive(data):
            self.event_received(event)
        self.flush()
        self.wake_senders()
        self.changed()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.connection_ended(exc)
        self.wake_senders()
        self._wake_writers()
        if not self.lost.done():
            self.lost.set_result(None)
        self.changed()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writers()

    # -- writing

    def flush(self) -> None:
        """Write what is queued; dropped when the transport is closing or gone."""
        transport = self.transport
        if transport is None or transport.is_closing():
            self.discard_output()
            return
        data = self.data_to_send()
        if data:
            transport.write(data)
            self.changed()

    async def wait_writable(self) -> None:
        """Until the transport's buffer is below its high-water mark (or the connection is
        gone)."""
        while self._write_paused and not self.closed:
            fut = asyncio.get_running_loop().create_future()
            self._write_waiters.append(fut)
            await fut

    async def send_data(
        self,
        stream_id: int,
        data: bytes,
        *,
        end_stream: bool = False,
        pad_length: int | None = None,
        max_frame: int | None = None,
        writable: Callable[[], bool] | None = None,
        respect_write_pause: bool = False,
    ) -> bool:
        """Send ``data`` on a stream in DATA frames that fit the client's windows and
        MAX_FRAME_SIZE, waiting for WINDOW_UPDATE / SETTINGS as needed (RFC 9113 6.9).

        ``pad_length`` pads every frame; ``max_frame`` caps the payload per frame. Returns
        False, having sent what fitted so far, once ``writable()`` says no, the connection
        is gone, or h2 has closed the stream; True when everything (and END_STREAM, if
        asked) went out. ``respect_write_pause`` also waits while the transport is paused.
        """
        overhead = 0 if pad_length is None else pad_length + 1

        def ok() -> bool:
            return not self.closed and not self.h2_dead and (writable is None or writable())

        def room() -> int | None:
            r = self.send_room(stream_id)
            return None if r is None else r - overhead

        view = memoryview(data)
        first = True
        while first or len(view):
            first = False
            if respect_write_pause:
                await self.wait_writable()
            if not ok():
                return False
            want = len(view)
            if want == 0 and not end_stream:
                return True
            need = 1 if want else 0
            while ok() and (r := room()) is not None and r < need:
                await self._wait_change()
            if not ok() or (r := room()) is None:
                return False
            n = min(want, r)
            if max_frame is not None:
                n = min(n, max_frame)
            chunk = bytes(view[:n])
            view = view[n:]
            last = end_stream and not len(view)
            try:
                self.h2.send_data(stream_id, chunk, end_stream=last, pad_length=pad_length)
            except h2.exceptions.ProtocolError:
                return False
            self.flush()
        return True

    async def _wait_change(self) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        await fut

    def wake_senders(self) -> None:
        """Make every :meth:`send_data` waiting for credit check again."""
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _wake_writers(self) -> None:
        waiters, self._write_waiters = self._write_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    # -- closing

    def close(self) -> None:
        """Close after writing what is queued (FIN)."""
        if self.transport is not None and not self.transport.is_closing():
            self.flush()
            self.transport.close()

    def abort(self, *, rst: bool = False) -> None:
        """Close at once, discarding what is buffered; ``rst=True`` makes a TCP connection
        end with RST (SO_LINGER 0) rather than FIN."""
        transport = self.transport
        if transport is None:
            return
        if rst:
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

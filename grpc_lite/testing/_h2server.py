"""One server-side gRPC connection and its streams, on the shared h2 core (``_h2core``).

The test server is deliberately built on h2 (not on grpc_lite's own frame codec), so it is
an independent peer for the client: h2 checks the client's frames and raises on
flow-control, frame-size, stream-id and header violations.

Beyond what the core does (GOAWAY written by hand so a drain keeps serving, DATA within the
client's windows), one thing is done by hand here: MAX_CONCURRENT_STREAMS. h2 treats a
client that exceeds it as a *connection* error; RFC 9113 5.1.2 asks for a stream error. h2
is told "unlimited" once the SETTINGS frame has gone out and the limit is enforced here
with RST_STREAM(REFUSED_STREAM).

Who may call what: everything runs on the server's event loop. ``ServerConnection`` is the
asyncio Protocol (callbacks from the transport); ``ServerStream.run`` is one task per RPC.
What a connection needs from the server that accepted it is the :class:`ServerHost`
Protocol (``Backend`` implements it), as the client transport's ``Connection`` sees its
owner only through ``ConnectionListener``: this module imports neither ``Backend`` nor
anything of the client.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import logging
import socket
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any, Protocol

import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from .._codec import ACCEPT_ENCODING, SUPPORTED_ENCODINGS, CodecError, MessageDecoder, frame_message
from .._codec import compress as _compress
from ..metadata import Metadata, MetadataType, decode_incoming, decode_timeout
from ..status import StatusCode, encode_grpc_message
from ._context import END_OF_STREAM, AbortError, MethodHandler, ServicerContext
from ._h2core import H2ServerProtocol

_log = logging.getLogger("grpc_lite.testing")

_SC = h2.settings.SettingCodes
_UNLIMITED_STREAMS = 2**31 - 1
_MAX_STREAM_ID = 2**31 - 1
# Request headers that are protocol, not call metadata (grpc-go isReservedHeader).
_RESERVED = frozenset(
    {
        "content-type",
        "te",
        "grpc-timeout",
        "grpc-encoding",
        "grpc-accept-encoding",
        "grpc-message-type",
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "connection",
    }
)
# How long a drain waits for the client's PING ACK before sending the final GOAWAY.
_DRAIN_PING_TIMEOUT = 1.0


class ServerHost(Protocol):
    """What a :class:`ServerConnection` needs from the server that accepted it.

    ``Backend`` implements it; everything is called on the server's event loop.
    """

    #: Advertised SETTINGS_MAX_CONCURRENT_STREAMS (None = no limit), enforced per connection.
    max_concurrent_streams: int | None
    #: SETTINGS_INITIAL_WINDOW_SIZE.
    initial_window_size: int
    #: The connection-level receive window.
    connection_window_size: int
    #: Largest request message accepted after decompression (None = no limit).
    max_receive_message_length: int | None
    #: Calls per full method path; the connection counts every call that reaches it.
    calls: Counter[str]

    def lookup_method(self, path: str) -> MethodHandler | None:
        """The handler for a full method path, or None (UNIMPLEMENTED)."""
        ...

    def has_service(self, service: str) -> bool:
        """Whether any method of ``service`` (full name) is served."""
        ...

    async def before_call(self, path: str) -> None:
        """Run on the call's task before its handler (injected faults raise AbortError)."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a call's handler as a task the host cancels when it stops."""
        ...

    def connection_opened(self, conn: ServerConnection) -> None:
        """``conn`` was accepted and has sent its SETTINGS."""
        ...

    def connection_closed(self, conn: ServerConnection) -> None:
        """``conn`` is gone (``connection_lost``)."""
        ...


class _StreamGone(Exception):
    """The stream was reset or its connection lost; nothing more can be sent."""


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


class ServerStream:
    """One RPC: request queue, response sending with flow control, status.

    Created by :class:`ServerConnection` on a request HEADERS; :meth:`run` is its task.
    """

    def __init__(
        self,
        conn: ServerConnection,
        stream_id: int,
        path: str,
        handler: MethodHandler,
        metadata: Metadata,
        *,
        encoding: str | None,
        accept_encodings: frozenset[str],
        timeout: float | None,
    ) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.path = path
        self.handler = handler
        self._decoder = MessageDecoder(conn.host.max_receive_message_length, encoding)
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._unacked = 0
        self.headers_sent = False
        self.finished = False  # status sent (or the stream is gone)
        self.remote_ended = False
        self.reset = False
        self._forced: tuple[StatusCode, str, tuple[tuple[str, Any], ...]] | None = None
        self.task: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        self._deadline: float | None = None
        self._deadline_timer: asyncio.TimerHandle | None = None
        if timeout is not None:
            self._deadline = loop.time() + timeout
            self._deadline_timer = loop.call_at(self._deadline, self._on_deadline)
        self.context = ServicerContext(
            backend=conn.host,
            method=path,
            invocation_metadata=metadata,
            peer=conn.peer,
            sink=self,
            accept_encodings=accept_encodings,
        )

    # -- events from the connection ---------------------------------------------------

    def on_data(self, data: bytes, flow: int) -> None:
        if self.finished:
            self.conn.ack(flow, self.stream_id)
            return
        try:
            messages = self._decoder.feed(data)
        except CodecError as exc:
            self.conn.ack(flow, self.stream_id)
            self.fail(exc.code, exc.message)
            return
        for m in messages:
            self._queue.put_nowait(m)
        # Acknowledge at once while the handler keeps up; otherwise when it reads, so a
        # handler that stops reading pushes back on the client (stream flow control).
        if self._queue.qsize() <= 1:
            self.conn.ack(flow, self.stream_id)
        else:
            self._unacked += flow

    def on_end(self) -> None:
        self.remote_ended = True
        if self._decoder.has_partial:
            self.fail(StatusCode.INTERNAL, "grpc: request stream ended inside a message")
            return
        self._queue.put_nowait(None)

    def on_reset(self) -> None:
        """The client reset the stream (cancel) or the connection went away."""
        self.reset = True
        self.remote_ended = True
        self._queue.put_nowait(None)
        if not self.finished:
            self.finished = True
            self._release()
            self.context._finish(cancelled=True)
            if self.task is not None and not self.task.done():
                self.task.cancel()

    def _on_deadline(self) -> None:
        self._deadline_timer = None
        self.fail(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")

    def fail(
        self, code: StatusCode, details: str, trailing: tuple[tuple[str, Any], ...] = ()
    ) -> None:
        """End the call with this status now, cancelling the handler."""
        if self.finished:
            return
        self._forced = (code, details, trailing)
        if code == StatusCode.DEADLINE_EXCEEDED:
            self.context._cancelled = True
        if self.task is not None and not self.task.done():
            self.task.cancel()
        else:
            self._send_status(code, details, trailing)

    # -- the sink a ServicerContext writes to -----------------------------------------

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - asyncio.get_running_loop().time())

    async def read_raw(self) -> bytes | None:
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)  # stays at EOF
        if self._unacked and self._queue.empty():
            self.conn.ack(self._unacked, self.stream_id)
            self._unacked = 0
        return item

    async def read_request(self) -> Any:
        if not self.handler.kind.request_streaming:
            raise RuntimeError("read() is only for streaming-request methods")
        raw = await self.read_raw()
        if raw is None:
            return END_OF_STREAM
        return self._deserialize(raw)

    async def send_initial_metadata(self, metadata: MetadataType | Metadata) -> None:
        if self.headers_sent:
            raise RuntimeError("initial metadata was already sent")
        self._send_headers(_encode_metadata(metadata))

    async def write_response(self, message: Any) -> None:
        if not self.handler.kind.response_streaming:
            raise RuntimeError("write() is only for streaming-response methods")
        await self._send_message(message)

    # -- the handler task -------------------------------------------------------------

    async def run(self) -> None:
        ctx = self.context
        status: tuple[StatusCode, str, tuple[tuple[str, Any], ...]]
        try:
            try:
                await self.conn.host.before_call(self.path)
                await self._invoke()
                code = ctx.code() or StatusCode.OK
                status = (code, ctx.details() or "", ctx.trailing_metadata())
            except AbortError as exc:
                status = (exc.code, exc.details, exc.trailing_metadata)
            except CodecError as exc:
                status = (exc.code, exc.message, ())
            except asyncio.CancelledError:
                if self._forced is None or self.reset:
                    raise  # client cancel, connection lost or server stop: no status to send
                status = self._forced
            except _StreamGone:
                return
            except Exception as exc:
                _log.debug("handler for %s raised", self.path, exc_info=True)
                status = (StatusCode.UNKNOWN, f"Unexpected {type(exc).__name__}: {exc}", ())
            if self._forced is not None:
                status = self._forced  # the deadline (or a decode error) came first
            self._send_status(*status)
        finally:
            self._end()

    def _end(self) -> None:
        """The call is over: release the stream and take it out of the table (idempotent)."""
        if not self.finished:
            self.finished = True
            self._release()
        self.context._finish(cancelled=self.reset)
        self.conn.stream_done(self)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """The handler task ended.  One cancelled before its first step (a RST_STREAM in
        the same read as the HEADERS, a deadline, a server stop) never ran ``run``, so its
        ending is done here: the forced status if one is due, then ``_end``."""
        if not self.finished and self._forced is not None and not self.reset:
            self._send_status(*self._forced)
        self._end()

    def _deserialize(self, raw: bytes) -> Any:
        deserializer = self.handler.request_deserializer
        if deserializer is None:
            return raw
        try:
            return deserializer(raw)
        except Exception as exc:
            raise AbortError(
                StatusCode.INTERNAL, f"Exception deserializing request: {exc}"
            ) from None

    async def _requests(self) -> AsyncIterator[Any]:
        while True:
            raw = await self.read_raw()
            if raw is None:
                return
            yield self._deserialize(raw)

    async def _invoke(self) -> None:
        handler = self.handler
        ctx = self.context
        request: Any
        if handler.kind.request_streaming:
            request = self._requests()
        else:
            raw = await self.read_raw()
            if raw is None:
                raise AbortError(StatusCode.INTERNAL, "grpc: server received no request message")
            request = self._deserialize(raw)
        result = handler.handler(request, ctx)
        if handler.kind.response_streaming:
            if hasattr(result, "__aiter__"):
                async for response in result:
                    await self._send_message(response)
            elif inspect.isawaitable(result):
                await result
            elif result is not None:
                for response in result:
                    await self._send_message(response)
            return
        if inspect.isawaitable(result):
            result = await result
        code = ctx.code()
        if code is not None and code != StatusCode.OK:
            return  # set_code() with an error: status only
        if result is None:
            raise AbortError(StatusCode.INTERNAL, "handler returned no response")
        await self._send_message(result)

    # -- sending ----------------------------------------------------------------------

    def _send_headers(self, metadata: list[tuple[str, str]]) -> None:
        if self.finished or self.conn.closed:
            raise _StreamGone
        headers = [(":status", "200"), ("content-type", "application/grpc")]
        encoding = self.context.response_encoding
        if encoding is not None:
            headers.append(("grpc-encoding", encoding))
        headers.append(("grpc-accept-encoding", ACCEPT_ENCODING))
        headers.extend(metadata)
        self.headers_sent = True
        try:
            self.conn.h2.send_headers(self.stream_id, headers)
        except h2.exceptions.ProtocolError:
            raise _StreamGone from None
        self.conn.flush()

    async def _send_message(self, message: Any) -> None:
        serializer = self.handler.response_serializer
        try:
            payload = serializer(message) if serializer is not None else bytes(message)
        except Exception as exc:
            raise AbortError(
                StatusCode.INTERNAL, f"Exception serializing response: {exc}"
            ) from None
        if not self.headers_sent:
            self._send_headers([])
        encoding = self.context.response_encoding
        if encoding is not None:
            data = frame_message(_compress(payload, encoding), compressed=True)
        else:
            data = frame_message(payload)
        await self._send_data(data)

    async def _send_data(self, data: bytes) -> None:
        """Write DATA within the client's flow-control windows (RFC 9113 6.9), and while
        the transport takes more."""
        sent = await self.conn.send_data(
            self.stream_id, data, writable=lambda: not self.finished, respect_write_pause=True
        )
        if not sent:
            raise _StreamGone

    def _send_status(
        self, code: StatusCode, details: str, trailing: tuple[tuple[str, Any], ...] | list[Any]
    ) -> None:
        """Trailers (or Trailers-Only when nothing was sent yet), then done."""
        if self.finished:
            return
        self.finished = True
        conn = self.conn
        headers: list[tuple[str, str]] = []
        if not self.headers_sent:
            # Trailers-Only (PROTOCOL-HTTP2): one HEADERS frame with END_STREAM.
            headers += [(":status", "200"), ("content-type", "application/grpc")]
        headers.append(("grpc-status", str(int(code))))
        if details:
            headers.append(("grpc-message", encode_grpc_message(details)))
        try:
            headers.extend(_encode_metadata(trailing))
        except ValueError as exc:
            _log.warning("dropping invalid trailing metadata: %s", exc)
        if not conn.closed:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                conn.h2.send_headers(self.stream_id, headers, end_stream=True)
                if not self.remote_ended:
                    # The client may still be sending: stop it (grpc-go finishStream).
                    conn.h2.reset_stream(self.stream_id, h2.errors.ErrorCodes.NO_ERROR)
            conn.flush()
        self._release()

    def _release(self) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        if self._unacked:
            self.conn.ack(self._unacked, self.stream_id)
            self._unacked = 0


class ServerConnection(H2ServerProtocol):
    """One accepted connection (asyncio Protocol callbacks + drain/abort from the host)."""

    def __init__(self, host: ServerHost) -> None:
        super().__init__()
        self.host = host
        self.peer = "unknown"
        self.streams: dict[int, ServerStream] = {}
        self._goaway_last: int | None = None  # set by the final GOAWAY of a drain
        self._draining = False
        self._ping_ack: asyncio.Future[None] | None = None
        self._all_done: asyncio.Event = asyncio.Event()
        self._all_done.set()

    # -- the core's hooks -------------------------------------------------------------

    def connection_started(self) -> None:
        assert self.transport is not None
        self.peer = _peer_name(self.transport)
        host = self.host
        mcs = host.max_concurrent_streams
        advertised = {
            _SC.MAX_CONCURRENT_STREAMS: _UNLIMITED_STREAMS if mcs is None else mcs,
            _SC.INITIAL_WINDOW_SIZE: host.initial_window_size,
            _SC.MAX_HEADER_LIST_SIZE: 16384,
        }
        # h2 must not enforce the limit itself (a connection error); see the module doc.
        enforced = {**advertised, _SC.MAX_CONCURRENT_STREAMS: _UNLIMITED_STREAMS}
        self.initiate(advertised, enforce=enforced, connection_window=host.connection_window_size)
        self.flush()
        host.connection_opened(self)

    def protocol_error(self, exc: h2.exceptions.ProtocolError) -> None:
        _log.debug("client broke HTTP/2 (%s); closing the connection", exc)
        super().protocol_error(exc)  # h2's GOAWAY, then close

    def connection_ended(self, exc: Exception | None) -> None:
        for stream in list(self.streams.values()):
            stream.on_reset()
        if self._ping_ack is not None and not self._ping_ack.done():
            self._ping_ack.set_result(None)
        self.host.connection_closed(self)

    # -- h2 events --------------------------------------------------------------------

    def event_received(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._on_request(event)
        elif isinstance(event, h2.events.DataReceived):
            sid = event.stream_id or 0
            flow = event.flow_controlled_length or 0
            stream = self.streams.get(sid)
            if stream is None:
                self.ack(flow, sid)
            else:
                stream.on_data(bytes(event.data or b""), flow)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None:
                stream.on_end()
        elif isinstance(event, h2.events.TrailersReceived):
            pass  # a client has no trailers in gRPC; StreamEnded follows
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None:
                stream.on_reset()
        elif isinstance(event, h2.events.PingAckReceived):
            if self._ping_ack is not None and not self._ping_ack.done():
                self._ping_ack.set_result(None)
        elif isinstance(event, h2.events.ConnectionTerminated):
            # The client sent GOAWAY: h2 accepts nothing more (h2 #1181, so the core marks
            # the connection h2_dead); the client is going away, so its streams end here.
            self.close()

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        sid = event.stream_id or 0
        ended = event.stream_ended is not None
        headers = [(_text(k), _text(v)) for k, v in event.headers or []]
        host = self.host
        if self._goaway_last is not None and sid > self._goaway_last:
            self._reset(sid, h2.errors.ErrorCodes.REFUSED_STREAM)  # after our final GOAWAY
            return
        mcs = host.max_concurrent_streams
        if mcs is not None and len(self.streams) >= mcs:
            self._reset(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        pseudo = {k: v for k, v in headers if k.startswith(":")}
        fields = [(k, v) for k, v in headers if not k.startswith(":")]
        first: dict[str, str] = {}
        for k, v in fields:
            first.setdefault(k, v)
        if pseudo.get(":method") != "POST":
            self._http_error(sid, 405, ended=ended)
            return
        content_type = first.get("content-type", "")
        if not content_type.startswith("application/grpc"):
            self._http_error(sid, 415, ended=ended)
            return
        path = pseudo.get(":path", "")
        host.calls[path] += 1
        md_pairs = [(k, v) for k, v in fields if k not in _RESERVED]
        try:
            metadata = decode_incoming(md_pairs)
        except ValueError as exc:
            self._status_only(sid, StatusCode.INTERNAL, str(exc), ended=ended)
            return
        timeout: float | None = None
        if "grpc-timeout" in first:
            try:
                timeout = decode_timeout(first["grpc-timeout"])
            except ValueError:
                self._status_only(
                    sid,
                    StatusCode.INTERNAL,
                    f"malformed grpc-timeout {first['grpc-timeout']!r}",
                    ended=ended,
                )
                return
        encoding = first.get("grpc-encoding", "identity")
        if encoding not in SUPPORTED_ENCODINGS:
            self._status_only(
                sid,
                StatusCode.UNIMPLEMENTED,
                f'grpc: Decompressor is not installed for grpc-encoding "{encoding}"',
                [("grpc-accept-encoding", ACCEPT_ENCODING)],
                ended=ended,
            )
            return
        accept = frozenset(
            e.strip() for e in first.get("grpc-accept-encoding", "").split(",") if e.strip()
        )
        handler = host.lookup_method(path)
        if handler is None:
            service, _, method = path.lstrip("/").rpartition("/")
            if host.has_service(service):
                details = f"unknown method {method} for service {service}"
            else:
                details = f"unknown service {service}"
            self._status_only(sid, StatusCode.UNIMPLEMENTED, details, ended=ended)
            return
        stream = ServerStream(
            self,
            sid,
            path,
            handler,
            metadata,
            encoding=encoding,
            accept_encodings=accept,
            timeout=timeout,
        )
        self.streams[sid] = stream
        self._all_done.clear()
        if ended:
            stream.on_end()
        stream.task = host.spawn(stream.run())
        stream.task.add_done_callback(stream._task_done)

    # -- helpers for streams ----------------------------------------------------------

    def ack(self, flow: int, stream_id: int) -> None:
        if flow and not self.closed:
            super().ack(flow, stream_id)
            self.flush()

    def stream_done(self, stream: ServerStream) -> None:
        if self.streams.get(stream.stream_id) is stream:
            del self.streams[stream.stream_id]
        if not self.streams:
            self._all_done.set()
            if self._goaway_last is not None:
                self.close()  # drained

    def _reset(self, sid: int, code: h2.errors.ErrorCodes) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.h2.reset_stream(sid, code)
        self.flush()

    def _http_error(self, sid: int, status: int, *, ended: bool) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.h2.send_headers(sid, [(":status", str(status))], end_stream=True)
            if not ended:
                self.h2.reset_stream(sid, h2.errors.ErrorCodes.NO_ERROR)
        self.flush()

    def _status_only(
        self,
        sid: int,
        code: StatusCode,
        details: str,
        extra: list[tuple[str, str]] | None = None,
        *,
        ended: bool,
    ) -> None:
        """Trailers-Only for a call that never reaches a handler."""
        headers = [
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", str(int(code))),
            ("grpc-message", encode_grpc_message(details)),
            *(extra or []),
        ]
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.h2.send_headers(sid, headers, end_stream=True)
            if not ended:
                self.h2.reset_stream(sid, h2.errors.ErrorCodes.NO_ERROR)
        self.flush()

    # -- connection-level operations (from the host) ----------------------------------

    async def drain(self, deadline: float | None) -> None:
        """Graceful GOAWAY drain (grpc-go http2Server.drain): GOAWAY(2^31-1), PING,
        GOAWAY(last stream id) after the PING ACK, wait for in-flight streams until
        ``deadline`` (loop time; None = no limit), then close."""
        if self.closed or self._draining:
            await self.wait_closed(deadline)
            return
        self._draining = True
        loop = asyncio.get_running_loop()
        if not self.h2_dead:
            self.queue_goaway(_MAX_STREAM_ID)
            self.flush()
            self._ping_ack = loop.create_future()
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.ping(b"gl-drain")
            self.flush()
            wait = _DRAIN_PING_TIMEOUT
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - loop.time()))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._ping_ack), wait)
            self._goaway_last = self.h2.highest_inbound_stream_id
            self.queue_goaway(self._goaway_last)
            self.flush()
        else:
            self._goaway_last = 0
        if not self.streams:
            self.close()
        await self.wait_closed(deadline)

    async def wait_closed(self, deadline: float | None) -> None:
        """Wait for in-flight streams until ``deadline``, then close (cancelling the rest)."""
        loop = asyncio.get_running_loop()
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._all_done.wait(), timeout)
        self.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.lost), 1.0)
        if not self.lost.done():
            self.abort()

    def abort(self, *, rst: bool = True) -> None:
        """Abrupt close: RST (SO_LINGER 0) on TCP, discard buffered output."""
        super().abort(rst=rst)


def _encode_metadata(metadata: Iterable[tuple[str, Any]]) -> list[tuple[str, str]]:
    """Metadata to header pairs. Unlike the client's ``encode_outgoing`` this lets a server
    send ``grpc-*`` keys such as ``grpc-retry-pushback-ms``; a ``-bin`` value is sent as
    unpadded base64."""
    out: list[tuple[str, str]] = []
    for key, value in metadata:
        key = key.lower()
        if key.endswith("-bin"):
            raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            out.append((key, base64.b64encode(raw).rstrip(b"=").decode("ascii")))
        elif isinstance(value, str) and value.isascii() and value.isprintable():
            out.append((key, value))
        else:
            raise ValueError(f"metadata value for {key!r} must be printable ASCII")
    return out


def _peer_name(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    sock = transport.get_extra_info("socket")
    family = getattr(sock, "family", None)
    if family == socket.AF_INET and isinstance(peer, tuple):
        return f"ipv4:{peer[0]}:{peer[1]}"
    if family == socket.AF_INET6 and isinstance(peer, tuple):
        return f"ipv6:[{peer[0]}]:{peer[1]}"
    if family == socket.AF_UNIX:
        name = transport.get_extra_info("sockname") or ""
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return f"unix:{name}"
    return str(peer)


__all__ = ["ServerConnection", "ServerHost", "ServerStream"]

"""Sans-IO HTTP/2 client connection (RFC 9113) specialised for gRPC.

grpc-go counterpart: ``internal/transport/http2_client.go`` (reader + loopy writer).

The connection owns the frame reader and both flow-control windows, and runs the
stream state machine; its collaborators are the HPACK decoder
(``_headers.HeaderDecoder``), the stream table with the MAX_CONCURRENT_STREAMS queue
(``_streams.StreamTable``), the server's SETTINGS and GOAWAY
(``_peer.PeerAnnouncements``) and the connection's state machine with its endings: drain,
GOAWAY, close, connection errors (``_connstate.Lifecycle``).  It does no I/O:
bytes come in through :meth:`Connection.receive_data` and go out through the
``write`` callable given by the owner, at most once per public call (all frames
produced by one call are joined into one write).  Streams are
:class:`H2Stream` objects; the gRPC layer subclasses it and receives the
``_on_*`` callbacks below.

Who may call: the owning asyncio protocol (receive path) and the streams/calls
running on the same event loop.  Nothing here is thread-safe and nothing blocks.
The connection's states and their moves are in ``_connstate.py``.
"""

import logging
from collections.abc import Callable
from typing import Any

from . import _frames as fr
from ._connstate import CONNECTION_TRANSITIONS, ConnectionListener, ConnectionState, Lifecycle
from ._headers import (
    _PHASE_HEADERS,
    HeaderBlock,
    HeaderDecoder,
)
from ._hpack import TABLE_SIZE_ZERO
from ._peer import PeerAnnouncements, client_preface
from ._streams import StreamState, StreamTable

log = logging.getLogger("grpc_lite")

# Our receive windows.  The stream window bounds what one slow reader can make us
# buffer; the connection window is larger so several streams progress at once.  4 MiB
# is gRPC's default largest message: a message up to that size arrives without a
# WINDOW_UPDATE round trip (credit goes back in quarter-window batches).
DEFAULT_STREAM_WINDOW = 4 << 20
DEFAULT_CONNECTION_WINDOW = 1 << 24
# Largest header list we accept from the server (SETTINGS_MAX_HEADER_LIST_SIZE).
DEFAULT_MAX_HEADER_LIST = 1 << 20
# Outbound bytes queued on one stream above which writers are asked to wait.
SEND_HIGH_WATER = 1 << 16


__all__ = [
    "CONNECTION_TRANSITIONS",
    "SEND_HIGH_WATER",
    "Connection",
    "ConnectionListener",
    "ConnectionState",
    "H2Stream",
]

# The per-call paths compare the lifecycle's state with these.
_READY = ConnectionState.READY
_CONNECTING = ConnectionState.CONNECTING
_DRAINING = ConnectionState.DRAINING
_HALF_CLOSED_REMOTE = 3  # StreamState.HALF_CLOSED_REMOTE; CLOSED (4) is above it


class H2Stream:
    """HTTP/2 state of one client stream.  Subclassed by the gRPC stream.

    The ``_on_*`` methods are called by the connection, from its receive path
    or from a public connection method; they must not raise.
    """

    __slots__ = (
        "_conn",
        "_header_block",
        "_header_list_size",
        "_out",
        "_out_bytes",
        "_out_end",
        "_phase",
        "_recv_credit",
        "_recv_window",
        "_send_window",
        "h2_state",
        "id",
    )

    def __init__(self, header_block: bytes, header_list_size: int) -> None:
        self.id = 0
        self.h2_state = StreamState.PENDING
        self._conn: Connection | None = None
        self._header_block = header_block
        self._header_list_size = header_list_size
        self._out: list[bytes | memoryview] = []
        self._out_bytes = 0
        self._out_end = False
        self._phase = _PHASE_HEADERS  # which header block may come next (HeaderBlock)
        self._send_window = 0
        self._recv_window = 0
        self._recv_credit = 0

    def rest_fits_window(self) -> bool:
        """True when what the server still has to send on this stream is known to fit
        in its receive window, so credit can be held back (the gRPC layer knows)."""
        return False

    # -- callbacks from the connection (overridden by the gRPC layer)
    def _on_headers(self, block: HeaderBlock, end_stream: bool) -> None:
        raise NotImplementedError

    def _on_data(self, data: bytes | memoryview, end_stream: bool) -> None:
        raise NotImplementedError

    def _on_data_run(self, chunks: list[bytes | memoryview], total: int) -> None:
        """Several DATA payloads in a row, none ending the stream (``total`` bytes)."""
        for chunk in chunks:
            self._on_data(chunk, False)

    def _on_reset(self, code: int) -> None:
        """The server reset the stream (RST_STREAM received)."""
        raise NotImplementedError

    def _on_unprocessed(self, reason: str) -> None:
        """The server never processed this stream: safe to retry transparently."""
        raise NotImplementedError

    def _on_error(self, code: int, message: str) -> None:
        """The stream failed locally or with its connection; ``code`` is a gRPC status code."""
        raise NotImplementedError

    def _on_send_drained(self) -> None:
        """Queued outbound bytes fell below the high-water mark."""

    # -- helpers for the gRPC layer
    @property
    def send_buffered(self) -> int:
        return self._out_bytes


_GRPC_INTERNAL = 13


class Connection:
    """One HTTP/2 client connection.  See the module docstring."""

    def __init__(
        self,
        listener: ConnectionListener,
        write: Callable[[bytes], None],
        *,
        writev: Callable[[list[bytes | memoryview]], None] | None = None,
        stream_window: int = DEFAULT_STREAM_WINDOW,
        connection_window: int = DEFAULT_CONNECTION_WINDOW,
        max_header_list_size: int = DEFAULT_MAX_HEADER_LIST,
    ) -> None:
        # Immutable after __init__.
        self._listener = listener
        self._write = write
        # When given, flushes hand over their pieces unjoined (the asyncio edge joins
        # them into a reused buffer); sans-IO users get one bytes object per flush.
        self._writev = writev
        self._local_stream_window = stream_window
        self._local_connection_window = connection_window
        self._credit_threshold = stream_window >> 2
        # Connection credit (returned on receipt): from a quarter of the window it goes
        # out with the next frame we send anyway (the next request, usually), from half
        # of it at once.  A download loop then never spends a write on it.
        self._conn_credit_soft = connection_window >> 2
        self._conn_credit_now = connection_window >> 1
        # Mutable, owned by this object.
        self._reader = fr.FrameReader(coalesce_data=True)
        self._headers = HeaderDecoder(max_header_list_size)
        # The hot path looks the decoded-block cache up itself (HeaderDecoder's own dict).
        self._block_cache = self._headers.cache
        self._decode_uncached = self._headers.decode_uncached
        self._out: list[bytes | memoryview] = []
        self._receiving = False
        # The stream table's containers, used directly (never replaced, see StreamTable).
        self._table = table = StreamTable()
        self._streams = table.open
        self._pending = table.pending
        self._blocked = table.blocked
        self._next_stream_id = 1
        self._first_block = True
        self._continuation: tuple[int, int, list[bytes]] | None = None
        # The server's settings, copied from PeerAnnouncements for the send path.
        self._peer = peer = PeerAnnouncements()
        self.peer_max_concurrent_streams = peer.max_concurrent_streams
        self.peer_initial_window = peer.initial_window
        self.peer_max_frame_size = peer.max_frame_size
        self.peer_max_header_list_size = peer.max_header_list_size
        # The state machine and the endings (drain, GOAWAY, close, connection errors).
        self._life = life = Lifecycle(table, peer, listener, lambda frame: self._out.append(frame))
        # Flow control.
        self._send_window = fr.DEFAULT_WINDOW
        self._recv_window = connection_window
        self._recv_credit = 0
        self._handlers: dict[int, Callable[[int, int, Any], None]] = {
            fr.DATA: self._recv_data,
            fr.DATA_RUN: self._recv_data_run,
            fr.HEADERS: self._recv_headers,
            fr.PRIORITY: peer.priority,
            fr.RST_STREAM: self._recv_rst_stream,
            fr.SETTINGS: self._recv_settings,
            fr.PUSH_PROMISE: peer.push_promise,
            fr.PING: self._recv_ping,
            fr.GOAWAY: life.recv_goaway,
            fr.WINDOW_UPDATE: self._recv_window_update,
            fr.CONTINUATION: self._recv_continuation,
        }

    # ------------------------------------------------------------------ public API

    def initiate(self) -> None:
        """Send the client preface: magic, SETTINGS and the connection window."""
        self._out.append(
            client_preface(
                self._local_stream_window,
                self._local_connection_window,
                self._headers.max_header_list_size,
            )
        )
        self._flush()

    @property
    def state(self) -> ConnectionState:
        return self._life.state

    @property
    def closed(self) -> bool:
        return self._life.dead

    @property
    def close_reason(self) -> str:
        return self._life.close_reason

    @property
    def active_streams(self) -> int:
        return len(self._streams)

    @property
    def pending_streams(self) -> int:
        return len(self._pending)

    @property
    def accepting_streams(self) -> bool:
        """True while new streams may be started (READY, not draining, ids left)."""
        return self._life.state is _READY

    def start_stream(self, stream: H2Stream) -> None:
        """Open ``stream`` now, or queue it for a MAX_CONCURRENT_STREAMS slot (RFC 9113 §5.1.2)."""
        stream._conn = self
        if self._life.state is not _READY:
            stream._on_unprocessed(f"connection is {self._life.state.name.lower()}")
            return
        limit = self.peer_max_header_list_size
        if limit is not None and stream._header_list_size > limit:
            # Fail locally, send nothing (as grpc-go's http2_client does).
            stream._on_error(
                _GRPC_INTERNAL,
                f"header list size {stream._header_list_size} exceeds the server's "
                f"limit of {limit}",
            )
            return
        if self._pending or len(self._streams) >= self.peer_max_concurrent_streams:
            self._pending.append(stream)
            return
        self._open(stream)
        self._flush()

    def send_data(self, stream: H2Stream, data: bytes, end_stream: bool) -> None:
        """Queue ``data`` on ``stream`` and send what the windows allow."""
        if stream.h2_state >= StreamState.HALF_CLOSED_LOCAL and stream.h2_state != (
            StreamState.HALF_CLOSED_REMOTE
        ):
            return
        if stream._out_end:
            return
        if data:
            stream._out.append(data)
            stream._out_bytes += len(data)
        if end_stream:
            stream._out_end = True
        if stream.h2_state is StreamState.OPEN:
            self._send_stream_data(stream)
            self._flush()

    def reset_stream(self, stream: H2Stream, code: int) -> None:
        """Send RST_STREAM(code) for ``stream`` and forget it."""
        if stream.h2_state is StreamState.PENDING:
            self._table.remove_pending(stream)
            return
        if stream.h2_state is StreamState.CLOSED:
            return
        if not self._life.dead:
            self._out.append(fr.encode_rst_stream(stream.id, code))
        self._table.remember_reset(stream.id)
        self._close_stream(stream)
        self._flush()

    def consumed(self, stream: H2Stream, nbytes: int) -> None:
        """The application read ``nbytes`` of ``stream``'s data: return credit (RFC 9113 §5.2)."""
        credit = stream._recv_credit + nbytes
        stream._recv_credit = credit
        if credit < self._credit_threshold or stream.h2_state >= _HALF_CLOSED_REMOTE:
            return  # batched; a stream the server finished needs no credit
        if stream.rest_fits_window():
            return  # the rest of its one message can come without it
        self._out.append(fr.encode_window_update(stream.id, credit))
        stream._recv_window += credit
        stream._recv_credit = 0
        self._flush()

    def drain(self, reason: str) -> None:
        """Start no new streams; close once the open ones finish (grpc-go: GracefulClose)."""
        self._life.drain(reason)
        self._flush()

    def ping(self, data: bytes) -> None:
        if not self._life.dead:
            self._out.append(fr.encode_ping(data))
            self._flush()

    def close(self, code: int = fr.NO_ERROR, reason: str = "connection closed by client") -> None:
        """Close now: GOAWAY to the server, every stream fails UNAVAILABLE."""
        self._life.close(code, reason)
        self._flush()

    def connection_lost(self, reason: str) -> None:
        """The socket is gone (EOF, reset, keepalive timeout): fail everything UNAVAILABLE."""
        self._life.lost(reason)

    def receive_data(self, data: bytes | memoryview) -> None:
        """Process bytes from the server.  Never raises: errors close the connection."""
        life = self._life
        if life.dead:
            return
        self._receiving = True
        try:
            frames = self._reader.feed(data)
            handlers = self._handlers
            for ftype, flags, stream_id, payload in frames:
                if self._continuation is not None and ftype != fr.CONTINUATION:
                    raise fr.FrameError(
                        fr.PROTOCOL_ERROR,
                        f"{fr.FRAME_NAMES.get(ftype, ftype)} frame while "
                        "a header block was still open (CONTINUATION expected)",
                    )
                if life.state is _CONNECTING and ftype != fr.SETTINGS:
                    raise fr.FrameError(
                        fr.PROTOCOL_ERROR, "server preface must start with a SETTINGS frame"
                    )
                handler = handlers.get(ftype)
                if handler is not None:  # unknown frame types are ignored (RFC 9113 4.1)
                    handler(flags, stream_id, payload)
                if life.dead:  # a handler may have closed the connection
                    break
        except fr.FrameError as exc:
            life.connection_error(exc.code, exc.message)
        except Exception as exc:  # a bug must not escape data_received
            log.exception("grpc_lite: unexpected error in the HTTP/2 receive path")
            life.connection_error(fr.INTERNAL_ERROR, f"internal error: {exc!r}")
        finally:
            self._receiving = False
        self._flush()

    # ------------------------------------------------------------------ sending

    def _flush(self) -> None:
        if self._receiving or not self._out:
            return
        if self._recv_credit >= self._conn_credit_soft:
            self._return_connection_credit()  # rides along (see __init__)
        out = self._out
        if self._writev is not None:
            self._out = []
            self._writev(out)
            return
        first = out[0]
        data = first if len(out) == 1 and isinstance(first, bytes) else b"".join(out)
        out.clear()
        self._write(data)

    def _open(self, stream: H2Stream) -> None:
        stream_id = self._next_stream_id
        if stream_id > fr.MAX_STREAM_ID:  # ids exhausted (RFC 9113 5.1.1)
            self._life.ids_exhausted(stream)
            return
        self._next_stream_id = stream_id + 2
        stream.id = stream_id
        stream.h2_state = StreamState.OPEN
        stream._send_window = self.peer_initial_window
        stream._recv_window = self._local_stream_window
        self._streams[stream_id] = stream
        block = stream._header_block
        if self._first_block:
            self._first_block = False
            block = TABLE_SIZE_ZERO + block
        self._out.append(fr.encode_headers(stream_id, block, False, self.peer_max_frame_size))
        if stream._out or stream._out_end:
            self._send_stream_data(stream)

    def _send_stream_data(self, stream: H2Stream) -> None:
        """Send queued DATA within both windows and the peer's frame size (RFC 9113 §6.9, §4.2)."""
        out = stream._out
        if len(out) == 1 and stream._out_end:
            # Hot path: a whole unary request (or last message) that fits every limit.
            chunk = out[0]
            n = len(chunk)
            if (
                n <= stream._send_window
                and n <= self._send_window
                and (n <= self.peer_max_frame_size)
            ):
                out.clear()
                self._out.append(fr.encode_data(stream.id, chunk, True))
                stream._send_window -= n
                self._send_window -= n
                stream._out_bytes -= n
                if stream.h2_state is StreamState.OPEN:
                    stream.h2_state = StreamState.HALF_CLOSED_LOCAL
                else:
                    self._local_end(stream)
                return
        append = self._out.append
        max_frame = self.peer_max_frame_size
        before = stream._out_bytes
        while out:
            chunk = out[0]
            allowed = min(stream._send_window, self._send_window, max_frame)
            if allowed <= 0:
                self._blocked[stream] = None
                break
            n = len(chunk)
            if n <= allowed:
                del out[0]
                last = not out and stream._out_end
                piece: bytes | memoryview = chunk
            else:
                view = memoryview(chunk)
                out[0] = view[allowed:]
                n = allowed
                last = False
                piece = view[:allowed]
            # Header and payload go out as separate pieces: a large message is copied
            # once, into the socket buffer, not once more per frame.
            append(fr.frame_header(n, fr.DATA, fr.FLAG_END_STREAM if last else 0, stream.id))
            append(piece)
            stream._send_window -= n
            self._send_window -= n
            stream._out_bytes -= n
            if last:
                self._local_end(stream)
                break
        else:
            if stream._out_end and stream.h2_state in (
                StreamState.OPEN,
                StreamState.HALF_CLOSED_REMOTE,
            ):
                # The half-close: an empty DATA frame (PROTOCOL-HTTP2.md, Requests).
                append(fr.encode_data(stream.id, b"", True))
                self._local_end(stream)
        if not out:
            self._blocked.pop(stream, None)
        if before >= SEND_HIGH_WATER > stream._out_bytes:
            stream._on_send_drained()

    def _local_end(self, stream: H2Stream) -> None:
        if stream.h2_state is StreamState.HALF_CLOSED_REMOTE:
            self._close_stream(stream)
        else:
            stream.h2_state = StreamState.HALF_CLOSED_LOCAL

    def _unblock_streams(self) -> None:
        for stream in list(self._blocked):
            if self._send_window <= 0:
                break
            if stream._send_window > 0:
                self._send_stream_data(stream)

    def _close_stream(self, stream: H2Stream) -> None:
        # Hot path (every stream ends here): skip the bookkeeping that has nothing to do.
        stream.h2_state = StreamState.CLOSED
        self._streams.pop(stream.id, None)
        if self._blocked:
            self._blocked.pop(stream, None)
        if stream._out:
            stream._out.clear()
            stream._out_bytes = 0
        if self._pending:
            self._start_pending()
        if self._life.state is _DRAINING:
            self._life.finish_drain()

    def _start_pending(self) -> None:
        while (
            self._pending
            and self._life.state is _READY
            and len(self._streams) < self.peer_max_concurrent_streams
        ):
            self._open(self._pending.popleft())

    # ------------------------------------------------------------------ errors

    def _stream_error(self, stream: H2Stream, code: int, message: str) -> None:
        text = f"stream error: {fr.error_name(code)}: {message}"
        self._out.append(fr.encode_rst_stream(stream.id, code))
        self._table.remember_reset(stream.id)
        self._close_stream(stream)
        stream._on_error(_GRPC_INTERNAL, text)

    # ------------------------------------------------------------------ frame handlers

    def _recv_data(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        flow_len = len(payload)
        if stream_id == 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, "DATA frame on stream 0")
        # Connection-level flow control counts every DATA byte, padding included (RFC 9113 §6.1).
        if flow_len > self._recv_window:
            raise fr.FrameError(fr.FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        self._connection_flow(flow_len)
        stream = self._streams.get(stream_id) or self._table.lookup(
            stream_id, "DATA", self._next_stream_id
        )
        if stream is None:
            return
        if stream.h2_state >= _HALF_CLOSED_REMOTE:
            self._stream_error(stream, fr.STREAM_CLOSED, "DATA after END_STREAM")
            return
        if flow_len > stream._recv_window:
            self._stream_error(stream, fr.FLOW_CONTROL_ERROR, "DATA beyond the stream window")
            return
        stream._recv_window -= flow_len
        data = fr.strip_padding(flags, payload, fr.DATA) if flags & fr.FLAG_PADDED else payload
        padding = flow_len - len(data)
        end_stream = bool(flags & fr.FLAG_END_STREAM)
        if padding and not end_stream:
            # Padding is never consumed by the application: credit it now.
            self.consumed(stream, padding)
        if end_stream:
            self._remote_end(stream)
        stream._on_data(data, end_stream)

    def _connection_flow(self, flow_len: int) -> None:
        """Count received DATA bytes against the connection window; return credit in
        batches (see __init__).  The connection window is credited on receipt, not on
        consumption (as grpc-go does), so one slow stream cannot stall the others."""
        self._recv_window -= flow_len
        credit = self._recv_credit + flow_len
        self._recv_credit = credit
        if credit >= self._conn_credit_now:
            self._return_connection_credit()

    def _return_connection_credit(self) -> None:
        credit = self._recv_credit
        self._out.append(fr.encode_window_update(0, credit))
        self._recv_window += credit
        self._recv_credit = 0

    def _recv_data_run(
        self, flags: int, stream_id: int, payloads: list[bytes | memoryview]
    ) -> None:
        """Flagless DATA frames of one stream back to back (FrameReader's DATA_RUN).

        The usual case (an open stream with window for all of them) is accounted once and
        handed to the stream as one run; anything else goes frame by frame through
        ``_recv_data``, so errors are raised at exactly the frame that causes them."""
        total = sum(map(len, payloads))
        stream = self._streams.get(stream_id)
        if (
            stream is None
            or total > self._recv_window
            or total > stream._recv_window
            or stream.h2_state >= _HALF_CLOSED_REMOTE
        ):
            for payload in payloads:
                self._recv_data(0, stream_id, payload)
                if self._life.dead:
                    return
            return
        self._connection_flow(total)
        stream._recv_window -= total
        stream._on_data_run(payloads, total)

    def _recv_headers(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        if stream_id == 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, "HEADERS frame on stream 0")
        fragment = (
            fr.strip_padding(flags, payload, fr.HEADERS) if flags & fr.FLAG_PADDED else payload
        )
        if flags & fr.FLAG_PRIORITY:
            if len(fragment) < 5:
                raise fr.FrameError(fr.FRAME_SIZE_ERROR, "HEADERS priority fields truncated")
            fragment = fragment[5:]
        if not flags & fr.FLAG_END_HEADERS:
            self._continuation = (stream_id, flags, [bytes(fragment)])
            return
        self._header_block_done(stream_id, flags, bytes(fragment))

    def _recv_continuation(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        cont = self._continuation
        if cont is None or cont[0] != stream_id:
            raise fr.FrameError(fr.PROTOCOL_ERROR, f"unexpected CONTINUATION on stream {stream_id}")
        cont[2].append(bytes(payload))
        if sum(map(len, cont[2])) > self._headers.max_header_list_size + 65536:
            raise fr.FrameError(fr.ENHANCE_YOUR_CALM, "header block too large")
        if flags & fr.FLAG_END_HEADERS:
            self._continuation = None
            self._header_block_done(stream_id, cont[1], b"".join(cont[2]))

    def _header_block_done(self, stream_id: int, flags: int, block: bytes) -> None:
        # Decode first, whatever the stream: the HPACK table must stay in sync.
        decoded = self._block_cache.get(block) or self._decode_uncached(block)
        stream = self._streams.get(stream_id) or self._table.lookup(
            stream_id, "HEADERS", self._next_stream_id
        )
        if stream is None:
            return
        if stream.h2_state >= _HALF_CLOSED_REMOTE:
            self._stream_error(stream, fr.STREAM_CLOSED, "HEADERS after END_STREAM")
            return
        if decoded.valid_in != stream._phase:
            # Malformed (RFC 9113 8.1.1): reset with PROTOCOL_ERROR even if the block
            # ended the stream; the call fails INTERNAL naming the field (as grpc-go).
            self._stream_error(stream, fr.PROTOCOL_ERROR, decoded.malformed_message(stream._phase))
            return
        stream._phase = decoded.then
        end_stream = bool(flags & fr.FLAG_END_STREAM)
        if end_stream:
            if stream.h2_state is StreamState.HALF_CLOSED_LOCAL:
                self._close_stream(stream)  # _remote_end's usual case, inline
            else:
                self._remote_end(stream)
        stream._on_headers(decoded, end_stream)

    def _remote_end(self, stream: H2Stream) -> None:
        if stream.h2_state is StreamState.HALF_CLOSED_LOCAL:
            self._close_stream(stream)
        else:
            # The server finished before our half-close (PROTOCOL-HTTP2.md, Early Server
            # Closure): stop sending and reset with NO_ERROR.
            self._out.append(fr.encode_rst_stream(stream.id, fr.NO_ERROR))
            self._table.remember_reset(stream.id)
            self._close_stream(stream)

    def _recv_rst_stream(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        code = self._peer.reset_code(stream_id, payload)
        stream = self._streams.get(stream_id)
        if stream is None:
            self._table.check_not_idle(stream_id, "RST_STREAM", self._next_stream_id)
            return  # already closed on our side
        self._close_stream(stream)
        stream._on_reset(code)

    def _recv_settings(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        peer = self._peer
        delta = peer.apply_settings(flags, stream_id, payload)
        if delta is None:
            return  # our SETTINGS acknowledged
        self.peer_initial_window = peer.initial_window
        self.peer_max_frame_size = peer.max_frame_size
        self.peer_max_concurrent_streams = peer.max_concurrent_streams
        self.peer_max_header_list_size = peer.max_header_list_size
        if delta:
            self._table.shift_send_windows(delta)
        self._out.append(fr.SETTINGS_ACK)
        self._life.settings_received()
        self._start_pending()
        self._unblock_streams()

    def _recv_ping(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        data = self._peer.ping_data(stream_id, payload)
        if flags & fr.FLAG_ACK:
            self._listener.ping_acked(data)
        else:
            self._out.append(fr.encode_ping(data, ack=True))  # RFC 9113 §6.7

    def _recv_window_update(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        increment = self._peer.window_increment(stream_id, payload)
        if stream_id == 0:
            self._send_window += increment
            if self._send_window > fr.MAX_WINDOW:
                raise fr.FrameError(fr.FLOW_CONTROL_ERROR, "connection window overflow")
            self._unblock_streams()
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            self._table.check_not_idle(stream_id, "WINDOW_UPDATE", self._next_stream_id)
            return
        if increment == 0:
            self._stream_error(stream, fr.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            return
        stream._send_window += increment
        if stream._send_window > fr.MAX_WINDOW:
            self._stream_error(stream, fr.FLOW_CONTROL_ERROR, "stream window overflow")
            return
        if stream._out or stream._out_end:
            self._send_stream_data(stream)

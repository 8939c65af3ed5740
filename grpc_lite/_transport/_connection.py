"""Sans-IO HTTP/2 client connection (RFC 9113) specialised for gRPC.

grpc-go counterpart: ``internal/transport/http2_client.go`` (reader + loopy writer).

The connection owns the frame reader, the HPACK decoder, both flow-control
windows, the stream table and the MAX_CONCURRENT_STREAMS queue.  It does no I/O:
bytes come in through :meth:`Connection.receive_data` and go out through the
``write`` callable given by the owner, at most once per public call (all frames
produced by one call are joined into one write).  Streams are
:class:`H2Stream` objects; the gRPC layer subclasses it and receives the
``_on_*`` callbacks below.

Who may call: the owning asyncio protocol (receive path) and the streams/calls
running on the same event loop.  Nothing here is thread-safe and nothing blocks.

Connection states::

    CONNECTING --server SETTINGS--> READY --GOAWAY--> DRAINING --last stream--> CLOSED
         |                            |                                     ^
         +------------ error / connection lost / close ---------------------+
"""

import enum
import logging
import re
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import hpack
import hpack.exceptions

from . import _frames as fr
from ._hpack import TABLE_SIZE_ZERO

log = logging.getLogger("grpc_lite")

# Our receive windows.  The stream window bounds what one slow reader can make us
# buffer; the connection window is larger so several streams progress at once.  4 MiB
# is gRPC's default largest message: a message up to that size arrives without a
# WINDOW_UPDATE round trip (credit goes back in quarter-window batches).
DEFAULT_STREAM_WINDOW = 4 << 20
DEFAULT_CONNECTION_WINDOW = 1 << 24
# Largest header list we accept from the server (SETTINGS_MAX_HEADER_LIST_SIZE).
DEFAULT_MAX_HEADER_LIST = 1 << 20
# Stream ids we reset ourselves: the server may still send frames for them
# (RFC 9113 5.1, "closed"), which are ignored rather than treated as errors.
_RECENTLY_RESET_LIMIT = 4096
# Bytes that, alone in a header block, each encode one indexed field (RFC 7541 6.1).
_INDEXED_BYTES = bytes(range(0x81, 0xFF))
# Outbound bytes queued on one stream above which writers are asked to wait.
SEND_HIGH_WATER = 1 << 16


class ConnectionState(enum.Enum):
    CONNECTING = "CONNECTING"
    READY = "READY"
    DRAINING = "DRAINING"
    CLOSED = "CLOSED"


_C = ConnectionState
#: The connection's legal moves; `Connection._set_state` is the only writer and checks them.
#: CONNECTING until the server's SETTINGS (the preface, RFC 9113 3.4); DRAINING after a
#: GOAWAY either way or when stream ids run out (RFC 9113 6.8: streams up to the last id
#: finish, no new ones start); CLOSED from anywhere (a connection error, 5.4.1, or close).
CONNECTION_TRANSITIONS: frozenset[tuple[ConnectionState, ConnectionState]] = frozenset(
    {
        (_C.CONNECTING, _C.READY),
        (_C.CONNECTING, _C.DRAINING),
        (_C.CONNECTING, _C.CLOSED),
        (_C.READY, _C.DRAINING),
        (_C.READY, _C.CLOSED),
        (_C.DRAINING, _C.CLOSED),
    }
)


class StreamState(enum.IntEnum):
    """HTTP/2 stream states as a client sees them (RFC 9113 5.1)."""

    PENDING = 0  # created, waiting for a MAX_CONCURRENT_STREAMS slot or the preface
    OPEN = 1
    HALF_CLOSED_LOCAL = 2  # we sent END_STREAM
    HALF_CLOSED_REMOTE = 3  # the server sent END_STREAM, we have not
    CLOSED = 4


_HALF_CLOSED_REMOTE = 3  # StreamState.HALF_CLOSED_REMOTE; CLOSED (4) is above it


class ConnectionListener(Protocol):
    """What the owner of a connection is told (grpc-go: OnGoAway / OnClose)."""

    def connection_ready(self) -> None: ...

    def connection_goaway(self, last_stream_id: int, code: int, debug: bytes) -> None: ...

    def connection_closed(self, reason: str) -> None: ...

    def ping_acked(self, data: bytes) -> None: ...


# Where a response is, as far as HTTP/2 header blocks go (``H2Stream._phase``): waiting for
# the response headers (informational 1xx blocks keep it there), or past them, where the
# only block left is the trailers.
_PHASE_HEADERS = 1
_PHASE_TRAILERS = 2
_PHASE_MALFORMED = 0  # a block valid nowhere (HeaderBlock.valid_in)

# RFC 9113 8.2.1 and RFC 9110 5.1: a field name is a token, in lower case on the HTTP/2
# wire (grpc-go, through x/net/http2, accepts exactly these).
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+").fullmatch
# RFC 9113 8.2.1: a value with NUL, CR or LF, or starting or ending with SP or HTAB, is
# malformed; like grpc-go, so is one with any other control character but HTAB (RFC 9110
# 5.5 makes them invalid too).  0x80-0xFF stay valid (obs-text; PROTOCOL-HTTP2.md,
# ASCII-Value).  Only grpc-message may have surrounding whitespace (see _check_fields).
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|\A[ \t]|[ \t]\Z").search
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]").search
# RFC 9113 8.2.2: connection-specific fields; ``te`` is allowed only as "trailers".
_CONNECTION_SPECIFIC = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
)
_REQUEST_PSEUDO = frozenset({":method", ":scheme", ":authority", ":path", ":protocol"})
# RFC 9110 15: a status code is three digits.
_STATUSES = frozenset(f"{code:03d}" for code in range(1000))
# Regular fields already found valid (a pure function of name and value): the usual ones
# (content-type, grpc-status 0, ...) then cost a set lookup when a block is checked.  Small
# values only, and cleared when full, so it stays small.
_VALID_FIELDS: set[tuple[str, str]] = set()
_VALID_FIELDS_MAX = 1024
_VALID_FIELD_VALUE_MAX = 128


def _quote(text: str) -> str:
    """A field name for an error message, quoted like Go's %q (control bytes escaped)."""
    escaped = text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return f'"{escaped}"'


class HeaderBlock:
    """One decoded header block.  Identical blocks that leave the HPACK table alone
    are decoded once and shared (see ``Connection._decode_block``), so ``parsed``
    lets the stream layer cache its own reading of the fields too.

    The block is checked once, here, against the rules for a response of RFC 9113 8.2
    and 8.3 that need no context: ``problem`` names the first violation (None when there
    is none), ``valid_in`` says where in a response the block may come (the response
    headers, which carry ``:status``, or the trailers, which carry no pseudo-header; 0
    when malformed) and ``then`` where the response is after it (1xx blocks leave it
    waiting for the real headers)."""

    __slots__ = ("fields", "parsed", "problem", "then", "valid_in")

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields
        self.parsed: object = None
        status, problem = _check_fields(fields)
        self.problem = problem
        if problem is not None:
            self.valid_in = self.then = _PHASE_MALFORMED
        elif status is None:
            self.valid_in = self.then = _PHASE_TRAILERS
        else:
            self.valid_in = _PHASE_HEADERS
            self.then = _PHASE_HEADERS if status[0] == "1" else _PHASE_TRAILERS


def _check_fields(fields: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """``(:status value, first problem)`` of a response header block (RFC 9113 8.2.1,
    8.2.2, 8.3, 8.3.2).  The messages follow grpc-go's (x/net/http2) where it has one."""
    status: str | None = None
    regular = False
    valid = _VALID_FIELDS
    for field in fields:
        name = field[0]
        if name[:1] == ":":
            if name != ":status" or regular or status is not None or field[1] not in _STATUSES:
                return status, _pseudo_problem(name, field[1], regular)
            status = field[1]
            continue
        regular = True
        if field in valid:
            continue
        problem = _field_problem(name, field[1])
        if problem is not None:
            return status, problem
        if len(field[1]) <= _VALID_FIELD_VALUE_MAX:
            if len(valid) >= _VALID_FIELDS_MAX:
                valid.clear()
            valid.add(field)
    return status, None


def _pseudo_problem(name: str, value: str, after_regular: bool) -> str:
    if after_regular:
        return f"pseudo-header field {_quote(name)} after regular header fields"
    if name in _REQUEST_PSEUDO:
        return f"request pseudo-header {_quote(name)} in a response"
    if name != ":status":
        return f"invalid pseudo-header {_quote(name)}"
    if value in _STATUSES:
        return 'duplicate pseudo-header ":status"'
    return f'invalid ":status" value {_quote(value)}'


def _field_problem(name: str, value: str) -> str | None:
    """What is wrong with one regular field, or None."""
    if _FIELD_NAME(name) is None:
        return f"invalid header field name {_quote(name)}"
    if name in _CONNECTION_SPECIFIC or (name == "te" and value != "trailers"):
        return f"connection-specific header field {_quote(name)}"
    if value and _BAD_VALUE(value) is not None:
        if _CONTROL(value) is not None:
            return f"invalid header field value for {_quote(name)} (control character)"
        if name != "grpc-message":
            # grpc-message is exempt: gRPC servers (grpc-go, grpc-java, C-core) send a
            # status message's spaces unescaped, and their clients take it as is.
            return f"invalid header field value for {_quote(name)} (leading or trailing whitespace)"
    return None


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
_GRPC_UNAVAILABLE = 14


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
        self.state = ConnectionState.CONNECTING
        self._dead = False  # state is CLOSED (a plain flag for the receive loop)
        self.close_reason = ""
        self._reader = fr.FrameReader(coalesce_data=True)
        self._decoder = hpack.Decoder(max_header_list_size=max_header_list_size)
        self._decoder.max_allowed_table_size = 4096
        self._out: list[bytes | memoryview] = []
        self._block_cache: dict[bytes, HeaderBlock] = {}
        self._receiving = False
        self._streams: dict[int, H2Stream] = {}
        self._pending: deque[H2Stream] = deque()
        self._blocked: dict[H2Stream, None] = {}
        self._recently_reset: set[int] = set()
        self._next_stream_id = 1
        self._first_block = True
        self._continuation: tuple[int, int, list[bytes]] | None = None
        self._goaway_last_id: int | None = None
        # Peer settings (RFC 9113 6.5.2 defaults).
        self.peer_max_concurrent_streams = 2**31 - 1
        self.peer_initial_window = fr.DEFAULT_WINDOW
        self.peer_max_frame_size = fr.DEFAULT_MAX_FRAME_SIZE
        self.peer_max_header_list_size: int | None = None
        # Flow control.
        self._send_window = fr.DEFAULT_WINDOW
        self._recv_window = connection_window
        self._recv_credit = 0
        self._handlers: dict[int, Callable[[int, int, Any], None]] = {
            fr.DATA: self._recv_data,
            fr.DATA_RUN: self._recv_data_run,
            fr.HEADERS: self._recv_headers,
            fr.PRIORITY: self._recv_priority,
            fr.RST_STREAM: self._recv_rst_stream,
            fr.SETTINGS: self._recv_settings,
            fr.PUSH_PROMISE: self._recv_push_promise,
            fr.PING: self._recv_ping,
            fr.GOAWAY: self._recv_goaway,
            fr.WINDOW_UPDATE: self._recv_window_update,
            fr.CONTINUATION: self._recv_continuation,
        }

    # ------------------------------------------------------------------ public API

    def initiate(self) -> None:
        """Send the client preface: magic, SETTINGS and the connection window."""
        settings = {
            fr.SETTINGS_ENABLE_PUSH: 0,
            fr.SETTINGS_INITIAL_WINDOW_SIZE: self._local_stream_window,
            fr.SETTINGS_MAX_HEADER_LIST_SIZE: self._decoder.max_header_list_size,
        }
        self._out.append(fr.PREFACE + fr.encode_settings(settings))
        extra = self._local_connection_window - fr.DEFAULT_WINDOW
        if extra > 0:
            self._out.append(fr.encode_window_update(0, extra))
        self._flush()

    @property
    def closed(self) -> bool:
        return self.state is ConnectionState.CLOSED

    @property
    def active_streams(self) -> int:
        return len(self._streams)

    @property
    def pending_streams(self) -> int:
        return len(self._pending)

    @property
    def accepting_streams(self) -> bool:
        """True while new streams may be started (READY, not draining, ids left)."""
        return self.state is ConnectionState.READY

    def start_stream(self, stream: H2Stream) -> None:
        """Open ``stream`` now, or queue it for a MAX_CONCURRENT_STREAMS slot (RFC 9113 §5.1.2)."""
        stream._conn = self
        if self.state is not ConnectionState.READY:
            stream._on_unprocessed(f"connection is {self.state.name.lower()}")
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
            try:
                self._pending.remove(stream)
            except ValueError:
                pass
            stream.h2_state = StreamState.CLOSED
            return
        if stream.h2_state is StreamState.CLOSED:
            return
        if self.state is not ConnectionState.CLOSED:
            self._out.append(fr.encode_rst_stream(stream.id, code))
        self._remember_reset(stream.id)
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

    def _set_state(self, new: ConnectionState) -> None:
        """The one writer of ``state``: checks the move against CONNECTION_TRANSITIONS."""
        old = self.state
        if (old, new) not in CONNECTION_TRANSITIONS:
            raise AssertionError(f"illegal connection state change {old.name} -> {new.name}")
        self.state = new

    def drain(self, reason: str) -> None:
        """Start no new streams; close once the open ones finish (grpc-go: GracefulClose)."""
        if self.state is ConnectionState.CLOSED:
            return
        if self.state is not ConnectionState.DRAINING:
            self._set_state(ConnectionState.DRAINING)
            self._refuse_pending(reason)
        self._maybe_finish_drain()
        self._flush()

    def ping(self, data: bytes) -> None:
        if self.state is not ConnectionState.CLOSED:
            self._out.append(fr.encode_ping(data))
            self._flush()

    def close(self, code: int = fr.NO_ERROR, reason: str = "connection closed by client") -> None:
        """Close now: GOAWAY to the server, every stream fails UNAVAILABLE."""
        if self.state is ConnectionState.CLOSED:
            return
        self._out.append(fr.encode_goaway(0, code, reason.encode()[:256]))
        self._terminate(_GRPC_UNAVAILABLE, reason)
        self._flush()

    def connection_lost(self, reason: str) -> None:
        """The socket is gone (EOF, reset, keepalive timeout): fail everything UNAVAILABLE.

        PROTOCOL-HTTP2.md, Connection failure.
        """
        if self.state is ConnectionState.CLOSED:
            return
        self._terminate(_GRPC_UNAVAILABLE, reason)

    def receive_data(self, data: bytes | memoryview) -> None:
        """Process bytes from the server.  Never raises: errors close the connection."""
        if self.state is ConnectionState.CLOSED:
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
                if self.state is ConnectionState.CONNECTING and ftype != fr.SETTINGS:
                    raise fr.FrameError(
                        fr.PROTOCOL_ERROR, "server preface must start with a SETTINGS frame"
                    )
                handler = handlers.get(ftype)
                if handler is not None:  # unknown frame types are ignored (RFC 9113 4.1)
                    handler(flags, stream_id, payload)
                if self._dead:  # a handler may have closed the connection
                    break
        except fr.FrameError as exc:
            self._connection_error(exc.code, exc.message)
        except Exception as exc:  # a bug must not escape data_received
            log.exception("grpc_lite: unexpected error in the HTTP/2 receive path")
            self._connection_error(fr.INTERNAL_ERROR, f"internal error: {exc!r}")
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
        if stream_id > fr.MAX_STREAM_ID:
            # Ids exhausted (RFC 9113 §5.1.1): no more streams here; the owner dials a new one.
            if self.state is not ConnectionState.DRAINING:
                self._set_state(ConnectionState.DRAINING)
            reason = "stream ids exhausted on this connection"
            stream.h2_state = StreamState.CLOSED
            stream._on_unprocessed(reason)
            self._refuse_pending(reason)
            self._listener.connection_goaway(fr.MAX_STREAM_ID, fr.NO_ERROR, b"stream ids exhausted")
            self._maybe_finish_drain()
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
        if self.state is ConnectionState.DRAINING:
            self._maybe_finish_drain()

    def _start_pending(self) -> None:
        while (
            self._pending
            and self.state is ConnectionState.READY
            and len(self._streams) < self.peer_max_concurrent_streams
        ):
            self._open(self._pending.popleft())

    def _remember_reset(self, stream_id: int) -> None:
        if len(self._recently_reset) >= _RECENTLY_RESET_LIMIT:
            self._recently_reset.clear()
        self._recently_reset.add(stream_id)

    def _maybe_finish_drain(self) -> None:
        if self.state is ConnectionState.DRAINING and not self._streams:
            self._out.append(fr.encode_goaway(0, fr.NO_ERROR, b"drained"))
            self._terminate(_GRPC_UNAVAILABLE, "connection drained after GOAWAY")

    # ------------------------------------------------------------------ errors

    def _connection_error(self, code: int, message: str) -> None:
        """The server broke the protocol: GOAWAY(code) and close (RFC 9113 5.4.1)."""
        if self.state is ConnectionState.CLOSED:
            return
        text = f"connection error: {fr.error_name(code)}: {message}"
        log.warning("grpc_lite: %s", text)
        self._out.append(fr.encode_goaway(0, code, message.encode()[:256]))
        self._terminate(_GRPC_UNAVAILABLE, text)

    def _stream_error(self, stream: H2Stream, code: int, message: str) -> None:
        text = f"stream error: {fr.error_name(code)}: {message}"
        self._out.append(fr.encode_rst_stream(stream.id, code))
        self._remember_reset(stream.id)
        self._close_stream(stream)
        stream._on_error(_GRPC_INTERNAL, text)

    def _terminate(self, grpc_code: int, reason: str) -> None:
        self._set_state(ConnectionState.CLOSED)
        self._dead = True
        self.close_reason = reason
        streams = list(self._streams.values())
        pending = list(self._pending)
        self._streams.clear()
        self._pending.clear()
        self._blocked.clear()
        for stream in streams:
            stream.h2_state = StreamState.CLOSED
            stream._on_error(grpc_code, reason)
        for stream in pending:
            stream.h2_state = StreamState.CLOSED
            stream._on_unprocessed(reason)
        self._listener.connection_closed(reason)

    # ------------------------------------------------------------------ frame handlers

    def _lookup(self, stream_id: int, kind: str) -> H2Stream | None:
        """The open stream for a DATA/HEADERS frame, or None to ignore the frame."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            return stream
        if stream_id == 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, f"{kind} frame on stream 0")
        if stream_id % 2 == 0 or stream_id >= self._next_stream_id:
            raise fr.FrameError(fr.PROTOCOL_ERROR, f"{kind} frame on idle stream {stream_id}")
        if stream_id in self._recently_reset:
            return None
        raise fr.FrameError(fr.STREAM_CLOSED, f"{kind} frame on closed stream {stream_id}")

    def _recv_data(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        flow_len = len(payload)
        if stream_id == 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, "DATA frame on stream 0")
        # Connection-level flow control counts every DATA byte, padding included (RFC 9113 §6.1).
        if flow_len > self._recv_window:
            raise fr.FrameError(fr.FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        self._connection_flow(flow_len)
        stream = self._streams.get(stream_id) or self._lookup(stream_id, "DATA")
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
                if self._dead:
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
        if sum(map(len, cont[2])) > self._decoder.max_header_list_size + 65536:
            raise fr.FrameError(fr.ENHANCE_YOUR_CALM, "header block too large")
        if flags & fr.FLAG_END_HEADERS:
            self._continuation = None
            self._header_block_done(stream_id, cont[1], b"".join(cont[2]))

    def _decode_block(self, block: bytes) -> HeaderBlock:
        """HPACK-decode ``block``, with a cache for blocks that cannot change the table.

        A block whose every byte is in 0x81-0xFE is a run of one-byte *indexed*
        fields (RFC 7541 6.1): decoding it reads the dynamic table but never
        changes it, so its result stays valid until some other block is decoded.
        Servers send such blocks for nearly every response once their table is
        warm (``:status 200``, ``content-type``, ``grpc-status 0``).  Any other
        block may insert or evict entries, which renumbers the dynamic table, so
        it clears the cache.  (``_header_block_done`` does the same lookup inline.)
        """
        return self._block_cache.get(block) or self._decode_uncached(block)

    def _decode_uncached(self, block: bytes) -> HeaderBlock:
        """``_decode_block`` for a block not in the cache (only table-neutral blocks are
        ever cached, so a hit needs no other check)."""
        cache = self._block_cache
        if cache and block.translate(None, _INDEXED_BYTES):
            cache.clear()
        try:
            raw = self._decoder.decode(block, raw=True)
        except hpack.exceptions.OversizedHeaderListError as exc:
            raise fr.FrameError(fr.PROTOCOL_ERROR, f"header list too large: {exc}") from None
        except (hpack.exceptions.HPACKError, IndexError, ValueError) as exc:
            raise fr.FrameError(fr.COMPRESSION_ERROR, f"HPACK decoding failed: {exc}") from None
        decoded = HeaderBlock([(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw])
        if not block.translate(None, _INDEXED_BYTES) and len(cache) < 256:
            cache[block] = decoded
        return decoded

    def _header_block_done(self, stream_id: int, flags: int, block: bytes) -> None:
        # Decode first, whatever the stream: the HPACK table must stay in sync.
        decoded = self._block_cache.get(block) or self._decode_uncached(block)
        stream = self._streams.get(stream_id) or self._lookup(stream_id, "HEADERS")
        if stream is None:
            return
        if stream.h2_state >= _HALF_CLOSED_REMOTE:
            self._stream_error(stream, fr.STREAM_CLOSED, "HEADERS after END_STREAM")
            return
        if decoded.valid_in != stream._phase:
            self._malformed(stream, decoded)
            return
        stream._phase = decoded.then
        end_stream = bool(flags & fr.FLAG_END_STREAM)
        if end_stream:
            if stream.h2_state is StreamState.HALF_CLOSED_LOCAL:
                self._close_stream(stream)  # _remote_end's usual case, inline
            else:
                self._remote_end(stream)
        stream._on_headers(decoded, end_stream)

    def _malformed(self, stream: H2Stream, block: HeaderBlock) -> None:
        """A malformed response (RFC 9113 8.1.1): a stream error of type PROTOCOL_ERROR,
        the call fails INTERNAL naming the offending field (grpc-go: closeStream with
        ErrCodeProtocol).  Reset even when the block carried END_STREAM, as grpc-go does."""
        if stream._phase == _PHASE_HEADERS:
            what = "response headers"
            problem = block.problem or 'missing ":status" pseudo-header'
        else:
            what = "trailers"
            problem = block.problem or 'pseudo-header ":status" in trailers'
        self._stream_error(stream, fr.PROTOCOL_ERROR, f"malformed {what}: {problem}")

    def _remote_end(self, stream: H2Stream) -> None:
        if stream.h2_state is StreamState.HALF_CLOSED_LOCAL:
            self._close_stream(stream)
        else:
            # The server finished before our half-close (PROTOCOL-HTTP2.md, Early Server
            # Closure): stop sending and reset with NO_ERROR.
            self._out.append(fr.encode_rst_stream(stream.id, fr.NO_ERROR))
            self._remember_reset(stream.id)
            self._close_stream(stream)

    def _recv_priority(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        if stream_id == 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, "PRIORITY frame on stream 0")
        if len(payload) != 5:
            raise fr.FrameError(fr.FRAME_SIZE_ERROR, "PRIORITY frame must be 5 bytes")

    def _recv_rst_stream(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        if len(payload) != 4:
            raise fr.FrameError(fr.FRAME_SIZE_ERROR, "RST_STREAM frame must be 4 bytes")
        if stream_id == 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, "RST_STREAM on stream 0")
        stream = self._streams.get(stream_id)
        if stream is None:
            if stream_id % 2 == 0 or stream_id >= self._next_stream_id:
                raise fr.FrameError(fr.PROTOCOL_ERROR, f"RST_STREAM on idle stream {stream_id}")
            return  # already closed on our side
        self._close_stream(stream)
        stream._on_reset(fr.parse_u32(payload))

    def _recv_settings(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        if stream_id != 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & fr.FLAG_ACK:
            if payload:
                raise fr.FrameError(fr.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            return
        for ident, value in fr.parse_settings(payload):
            if ident == fr.SETTINGS_INITIAL_WINDOW_SIZE:
                if value > fr.MAX_WINDOW:
                    raise fr.FrameError(fr.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE too large")
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for stream in self._streams.values():
                    stream._send_window += delta
                    if stream._send_window > fr.MAX_WINDOW:
                        raise fr.FrameError(fr.FLOW_CONTROL_ERROR, "stream window overflow")
            elif ident == fr.SETTINGS_MAX_FRAME_SIZE:
                if not fr.DEFAULT_MAX_FRAME_SIZE <= value <= fr.MAX_MAX_FRAME_SIZE:
                    raise fr.FrameError(fr.PROTOCOL_ERROR, f"invalid MAX_FRAME_SIZE {value}")
                self.peer_max_frame_size = value
            elif ident == fr.SETTINGS_MAX_CONCURRENT_STREAMS:
                self.peer_max_concurrent_streams = value
            elif ident == fr.SETTINGS_MAX_HEADER_LIST_SIZE:
                self.peer_max_header_list_size = value
            elif ident == fr.SETTINGS_ENABLE_PUSH and value > 1:
                raise fr.FrameError(fr.PROTOCOL_ERROR, f"invalid ENABLE_PUSH {value}")
            # HEADER_TABLE_SIZE needs nothing: our encoder never uses the dynamic table.
        self._out.append(fr.SETTINGS_ACK)
        if self.state is ConnectionState.CONNECTING:
            # READY only once the server's SETTINGS arrived (grpc-go's NewHTTP2Client waits too).
            self._set_state(ConnectionState.READY)
            self._listener.connection_ready()
        self._start_pending()
        self._unblock_streams()

    def _recv_push_promise(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        raise fr.FrameError(fr.PROTOCOL_ERROR, "PUSH_PROMISE received with push disabled")

    def _recv_ping(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        if len(payload) != 8:
            raise fr.FrameError(fr.FRAME_SIZE_ERROR, "PING frame must be 8 bytes")
        if stream_id != 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, "PING on a stream")
        if flags & fr.FLAG_ACK:
            self._listener.ping_acked(bytes(payload))
        else:
            self._out.append(fr.encode_ping(bytes(payload), ack=True))  # RFC 9113 §6.7

    def _recv_goaway(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        if stream_id != 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, "GOAWAY on a stream")
        last, code, debug = fr.parse_goaway(payload)
        if last and last % 2 == 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, f"GOAWAY with even last_stream_id {last}")
        previous = self._goaway_last_id
        if previous is not None and last > previous:
            raise fr.FrameError(
                fr.PROTOCOL_ERROR,
                f"GOAWAY last_stream_id increased from {previous} to {last}",
            )
        self._goaway_last_id = last
        if self.state is ConnectionState.CONNECTING or self.state is ConnectionState.READY:
            self._set_state(ConnectionState.DRAINING)
        # Streams above last_stream_id were never processed: retry them elsewhere
        # (PROTOCOL-HTTP2.md, GOAWAY Frame; A6 §Transparent Retries).
        reason = f"GOAWAY {fr.error_name(code)}"
        if debug:
            reason += f" ({debug.decode('utf-8', 'replace')})"
        for sid in [sid for sid in self._streams if sid > last]:
            stream = self._streams[sid]
            self._remember_reset(sid)
            self._close_stream_quiet(stream)
            stream._on_unprocessed(reason)
        self._refuse_pending(reason)
        self._listener.connection_goaway(last, code, debug)
        self._maybe_finish_drain()

    def _refuse_pending(self, reason: str) -> None:
        """Streams still waiting for a slot will never start here: retry them elsewhere."""
        pending = list(self._pending)
        self._pending.clear()
        for stream in pending:
            stream.h2_state = StreamState.CLOSED
            stream._on_unprocessed(reason)

    def _close_stream_quiet(self, stream: H2Stream) -> None:
        stream.h2_state = StreamState.CLOSED
        self._streams.pop(stream.id, None)
        self._blocked.pop(stream, None)

    def _recv_window_update(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        if len(payload) != 4:
            raise fr.FrameError(fr.FRAME_SIZE_ERROR, "WINDOW_UPDATE frame must be 4 bytes")
        increment = fr.parse_u32(payload) & fr.MAX_WINDOW
        if stream_id == 0:
            if increment == 0:
                raise fr.FrameError(fr.PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection")
            self._send_window += increment
            if self._send_window > fr.MAX_WINDOW:
                raise fr.FrameError(fr.FLOW_CONTROL_ERROR, "connection window overflow")
            self._unblock_streams()
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            if stream_id % 2 == 0 or stream_id >= self._next_stream_id:
                raise fr.FrameError(fr.PROTOCOL_ERROR, f"WINDOW_UPDATE on idle stream {stream_id}")
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

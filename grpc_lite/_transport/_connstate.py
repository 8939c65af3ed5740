"""The lifecycle of one HTTP/2 client connection: its state machine and how it ends
(RFC 9113 3.4 the preface, 6.8 GOAWAY, 5.4.1 connection errors, 5.1.1 stream ids).

grpc-go counterpart: ``internal/transport/http2_client.go`` (``state``, ``GracefulClose``,
``handleGoAway``, ``Close``).

:class:`Lifecycle` is owned by one :class:`~._connection.Connection` and called only by it,
on its event loop.  It holds the connection's state and is its one writer; it decides what
each move does to the streams (the connection's :class:`~._streams.StreamTable`) and tells
the owner (:class:`ConnectionListener`).  The frames it sends (GOAWAY) go through the
``emit`` callable the connection gives it; the connection flushes them.  Per-call paths of
the connection read ``state`` and ``dead`` directly, never anything else here.

Connection states::

    CONNECTING --server SETTINGS--> READY --GOAWAY--> DRAINING --last stream--> CLOSED
         |                            |                                     ^
         +------------ error / connection lost / close ---------------------+
"""

import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from . import _frames as fr
from ._peer import PeerAnnouncements
from ._streams import StreamState, StreamTable

if TYPE_CHECKING:
    from ._connection import H2Stream

log = logging.getLogger("grpc_lite")

_GRPC_UNAVAILABLE = 14


class ConnectionState(enum.Enum):
    CONNECTING = "CONNECTING"
    READY = "READY"
    DRAINING = "DRAINING"
    CLOSED = "CLOSED"


_C = ConnectionState
#: The connection's legal moves; `Lifecycle.move` is the only writer and checks them.
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


class ConnectionListener(Protocol):
    """What the owner of a connection is told (grpc-go: OnGoAway / OnClose)."""

    def connection_ready(self) -> None: ...

    def connection_goaway(self, last_stream_id: int, code: int, debug: bytes) -> None: ...

    def connection_closed(self, reason: str) -> None: ...

    def ping_acked(self, data: bytes) -> None: ...


class Lifecycle:
    """One connection's state and its moves.  See the module docstring for who may call."""

    __slots__ = ("_emit", "_listener", "_peer", "_table", "close_reason", "dead", "state")

    def __init__(
        self,
        table: StreamTable,
        peer: PeerAnnouncements,
        listener: ConnectionListener,
        emit: Callable[[bytes], None],
    ) -> None:
        self.state = ConnectionState.CONNECTING
        self.dead = False  # state is CLOSED (a plain flag for the receive loop)
        self.close_reason = ""
        self._table = table
        self._peer = peer
        self._listener = listener
        self._emit = emit

    def move(self, new: ConnectionState) -> None:
        """The one writer of ``state``: checks the move against CONNECTION_TRANSITIONS."""
        old = self.state
        if (old, new) not in CONNECTION_TRANSITIONS:
            raise AssertionError(f"illegal connection state change {old.name} -> {new.name}")
        self.state = new
        self.dead = new is ConnectionState.CLOSED

    def settings_received(self) -> None:
        """The server's SETTINGS arrived: READY if this was its preface (grpc-go's
        NewHTTP2Client waits for it too)."""
        if self.state is ConnectionState.CONNECTING:
            self.move(ConnectionState.READY)
            self._listener.connection_ready()

    def drain(self, reason: str) -> None:
        """Start no new streams; close once the open ones finish (grpc-go: GracefulClose)."""
        if self.dead:
            return
        if self.state is not ConnectionState.DRAINING:
            self.move(ConnectionState.DRAINING)
            self._table.refuse_pending(reason)
        self.finish_drain()

    def finish_drain(self) -> None:
        """Close a draining connection once its last stream is gone."""
        if self.state is ConnectionState.DRAINING and not self._table.open:
            self._emit(fr.encode_goaway(0, fr.NO_ERROR, b"drained"))
            self._terminate("connection drained after GOAWAY")

    def recv_goaway(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        """A GOAWAY frame (a frame handler): streams above its last id were never
        processed and retry elsewhere; the others finish (RFC 9113 6.8)."""
        if stream_id != 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, "GOAWAY on a stream")
        last, code, debug, reason = self._peer.goaway(payload)
        if self.state is ConnectionState.CONNECTING or self.state is ConnectionState.READY:
            self.move(ConnectionState.DRAINING)
        self._table.refuse_above(last, reason)
        self._table.refuse_pending(reason)
        self._listener.connection_goaway(last, code, debug)
        self.finish_drain()

    def ids_exhausted(self, stream: "H2Stream") -> None:
        """No stream id is left for ``stream`` (RFC 9113 5.1.1): no more streams here,
        the owner dials a new connection; this one drains."""
        if self.state is not ConnectionState.DRAINING:
            self.move(ConnectionState.DRAINING)
        reason = "stream ids exhausted on this connection"
        stream.h2_state = StreamState.CLOSED
        stream._on_unprocessed(reason)
        self._table.refuse_pending(reason)
        self._listener.connection_goaway(fr.MAX_STREAM_ID, fr.NO_ERROR, b"stream ids exhausted")
        self.finish_drain()

    def close(self, code: int, reason: str) -> None:
        """Close now: GOAWAY to the server, every stream fails UNAVAILABLE."""
        if self.dead:
            return
        self._emit(fr.encode_goaway(0, code, reason.encode()[:256]))
        self._terminate(reason)

    def lost(self, reason: str) -> None:
        """The socket is gone (EOF, reset, keepalive timeout): fail everything UNAVAILABLE
        (grpc/grpc doc/PROTOCOL-HTTP2.md, Connection failure)."""
        if not self.dead:
            self._terminate(reason)

    def connection_error(self, code: int, message: str) -> None:
        """The server broke the protocol: GOAWAY(code) and close (RFC 9113 5.4.1)."""
        if self.dead:
            return
        text = f"connection error: {fr.error_name(code)}: {message}"
        log.warning("grpc_lite: %s", text)
        self._emit(fr.encode_goaway(0, code, message.encode()[:256]))
        self._terminate(text)

    def _terminate(self, reason: str) -> None:
        self.move(ConnectionState.CLOSED)
        self.close_reason = reason
        self._table.fail_all(_GRPC_UNAVAILABLE, reason)
        self._listener.connection_closed(reason)

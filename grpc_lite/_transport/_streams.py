"""The stream table of one HTTP/2 client connection (RFC 9113 5.1, 5.1.2).

grpc-go counterpart: ``http2_client.go``'s ``activeStreams`` with loopy's stream quota.

:class:`StreamTable` holds the connection's streams: the open ones by id, those queued for
a MAX_CONCURRENT_STREAMS slot, those blocked on flow control, and the ids we reset
recently.  Who may call: the owning :class:`~._connection.Connection` only, on its event
loop.  The connection keeps direct references to ``open``, ``pending`` and ``blocked`` for
its per-call path (they are never replaced, only mutated in place); the cold cases (a
frame for an unknown id, refusing queued streams, failing everything) are methods here.
"""

import enum
from collections import deque
from typing import TYPE_CHECKING

from . import _frames as fr

if TYPE_CHECKING:
    from ._connection import H2Stream

# Stream ids we reset ourselves: the server may still send frames for them
# (RFC 9113 5.1, "closed"), which are ignored rather than treated as errors.
_RECENTLY_RESET_LIMIT = 4096


class StreamState(enum.IntEnum):
    """HTTP/2 stream states as a client sees them (RFC 9113 5.1)."""

    PENDING = 0  # created, waiting for a MAX_CONCURRENT_STREAMS slot or the preface
    OPEN = 1
    HALF_CLOSED_LOCAL = 2  # we sent END_STREAM
    HALF_CLOSED_REMOTE = 3  # the server sent END_STREAM, we have not
    CLOSED = 4


class StreamTable:
    """One connection's streams.  See the module docstring for who may call."""

    __slots__ = ("_recently_reset", "blocked", "open", "pending")

    def __init__(self) -> None:
        self.open: dict[int, H2Stream] = {}
        self.pending: deque[H2Stream] = deque()
        self.blocked: dict[H2Stream, None] = {}  # insertion-ordered set
        self._recently_reset: set[int] = set()

    def lookup(self, stream_id: int, kind: str, next_stream_id: int) -> "H2Stream | None":
        """The stream a DATA/HEADERS frame is for, when it is not open: None to ignore
        the frame (a stream we reset), else FrameError (RFC 9113 5.1)."""
        stream = self.open.get(stream_id)
        if stream is not None:
            return stream
        if stream_id == 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, f"{kind} frame on stream 0")
        self.check_not_idle(stream_id, kind, next_stream_id)
        if stream_id in self._recently_reset:
            return None
        raise fr.FrameError(fr.STREAM_CLOSED, f"{kind} frame on closed stream {stream_id}")

    @staticmethod
    def check_not_idle(stream_id: int, kind: str, next_stream_id: int) -> None:
        """A frame on a stream we never opened is a connection error (RFC 9113 5.1)."""
        if stream_id % 2 == 0 or stream_id >= next_stream_id:
            raise fr.FrameError(fr.PROTOCOL_ERROR, f"{kind} on idle stream {stream_id}")

    def shift_send_windows(self, delta: int) -> None:
        """The server changed its initial window: every open stream's send window moves
        by ``delta`` (RFC 9113 6.9.2); overflow is a connection error."""
        for stream in self.open.values():
            stream._send_window += delta
            if stream._send_window > fr.MAX_WINDOW:
                raise fr.FrameError(fr.FLOW_CONTROL_ERROR, "stream window overflow")

    def remember_reset(self, stream_id: int) -> None:
        recent = self._recently_reset
        if len(recent) >= _RECENTLY_RESET_LIMIT:
            recent.clear()
        recent.add(stream_id)

    def remove_pending(self, stream: "H2Stream") -> None:
        """A queued stream is cancelled before it started."""
        try:
            self.pending.remove(stream)
        except ValueError:
            pass
        stream.h2_state = StreamState.CLOSED

    def refuse_pending(self, reason: str) -> None:
        """Streams still waiting for a slot will never start here: retry them elsewhere."""
        pending = list(self.pending)
        self.pending.clear()
        for stream in pending:
            stream.h2_state = StreamState.CLOSED
            stream._on_unprocessed(reason)

    def refuse_above(self, last_stream_id: int, reason: str) -> None:
        """Open streams above a GOAWAY's last id were never processed (PROTOCOL-HTTP2.md,
        GOAWAY Frame; A6 Transparent Retries): forget them, tell them to retry elsewhere."""
        for sid in [sid for sid in self.open if sid > last_stream_id]:
            stream = self.open.pop(sid)
            self.remember_reset(sid)
            stream.h2_state = StreamState.CLOSED
            self.blocked.pop(stream, None)
            stream._on_unprocessed(reason)

    def fail_all(self, grpc_code: int, reason: str) -> None:
        """The connection is gone: open streams fail with ``grpc_code``, queued ones were
        never sent (retry elsewhere)."""
        streams = list(self.open.values())
        pending = list(self.pending)
        self.open.clear()
        self.pending.clear()
        self.blocked.clear()
        for stream in streams:
            stream.h2_state = StreamState.CLOSED
            stream._on_error(grpc_code, reason)
        for stream in pending:
            stream.h2_state = StreamState.CLOSED
            stream._on_unprocessed(reason)

"""What the two ends of one HTTP/2 connection announce: our preface, and the server's
control frames (SETTINGS, GOAWAY, PING, WINDOW_UPDATE, RST_STREAM, PRIORITY, PUSH_PROMISE;
RFC 9113 6), checked.

grpc-go counterpart: ``http2_client.go``'s ``handleSettings`` and ``handleGoAway``.

:class:`PeerAnnouncements` is owned by one :class:`~._connection.Connection` and called
only by it, from its receive path.  It checks the frames and keeps the settings; the
connection copies the settings its send path reads into plain attributes of its own
(``peer_max_frame_size``, ...), so the per-call path reads no other object.
"""

from . import _frames as fr


def client_preface(stream_window: int, connection_window: int, max_header_list: int) -> bytes:
    """The client connection preface: magic, our SETTINGS (push off, our stream window
    and header list limit) and, when ours is larger, the connection window's increment."""
    settings = {
        fr.SETTINGS_ENABLE_PUSH: 0,
        fr.SETTINGS_INITIAL_WINDOW_SIZE: stream_window,
        fr.SETTINGS_MAX_HEADER_LIST_SIZE: max_header_list,
    }
    preface = fr.PREFACE + fr.encode_settings(settings)
    extra = connection_window - fr.DEFAULT_WINDOW
    if extra > 0:
        preface += fr.encode_window_update(0, extra)
    return preface


class PeerAnnouncements:
    """The server's settings (RFC 9113 6.5.2 defaults until it sends its own) and the
    last stream id of its latest GOAWAY.  See the module docstring for who may call."""

    __slots__ = (
        "goaway_last_id",
        "initial_window",
        "max_concurrent_streams",
        "max_frame_size",
        "max_header_list_size",
    )

    def __init__(self) -> None:
        self.max_concurrent_streams = 2**31 - 1
        self.initial_window = fr.DEFAULT_WINDOW
        self.max_frame_size = fr.DEFAULT_MAX_FRAME_SIZE
        self.max_header_list_size: int | None = None
        self.goaway_last_id: int | None = None

    def apply_settings(self, flags: int, stream_id: int, payload: bytes | memoryview) -> int | None:
        """Take a SETTINGS frame: None for an ACK, else how much the initial stream
        window grew (RFC 9113 6.9.2: every open stream's window moves by it).  Raises
        FrameError for a malformed frame or a value the RFC forbids."""
        if stream_id != 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & fr.FLAG_ACK:
            if payload:
                raise fr.FrameError(fr.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            return None
        delta = 0
        for ident, value in fr.parse_settings(payload):
            if ident == fr.SETTINGS_INITIAL_WINDOW_SIZE:
                if value > fr.MAX_WINDOW:
                    raise fr.FrameError(fr.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE too large")
                delta += value - self.initial_window
                self.initial_window = value
            elif ident == fr.SETTINGS_MAX_FRAME_SIZE:
                if not fr.DEFAULT_MAX_FRAME_SIZE <= value <= fr.MAX_MAX_FRAME_SIZE:
                    raise fr.FrameError(fr.PROTOCOL_ERROR, f"invalid MAX_FRAME_SIZE {value}")
                self.max_frame_size = value
            elif ident == fr.SETTINGS_MAX_CONCURRENT_STREAMS:
                self.max_concurrent_streams = value
            elif ident == fr.SETTINGS_MAX_HEADER_LIST_SIZE:
                self.max_header_list_size = value
            elif ident == fr.SETTINGS_ENABLE_PUSH and value > 1:
                raise fr.FrameError(fr.PROTOCOL_ERROR, f"invalid ENABLE_PUSH {value}")
            # HEADER_TABLE_SIZE needs nothing: our encoder never uses the dynamic table.
        return delta

    def goaway(self, payload: bytes | memoryview) -> tuple[int, int, bytes, str]:
        """Take a GOAWAY frame: ``(last_stream_id, code, debug, reason)``, ``reason``
        being the text for the streams it refuses.  Raises FrameError for an even last id
        or one above an earlier GOAWAY's (RFC 9113 6.8)."""
        last, code, debug = fr.parse_goaway(payload)
        if last and last % 2 == 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, f"GOAWAY with even last_stream_id {last}")
        previous = self.goaway_last_id
        if previous is not None and last > previous:
            raise fr.FrameError(
                fr.PROTOCOL_ERROR,
                f"GOAWAY last_stream_id increased from {previous} to {last}",
            )
        self.goaway_last_id = last
        reason = f"GOAWAY {fr.error_name(code)}"
        if debug:
            reason += f" ({debug.decode('utf-8', 'replace')})"
        return last, code, debug, reason

    # -- the other control frames: checks only (RFC 9113 6.3, 6.4, 6.6, 6.7, 6.9)

    @staticmethod
    def priority(flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        """A PRIORITY frame (a frame handler): checked, then ignored (RFC 9113 5.3.2)."""
        if stream_id == 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, "PRIORITY frame on stream 0")
        if len(payload) != 5:
            raise fr.FrameError(fr.FRAME_SIZE_ERROR, "PRIORITY frame must be 5 bytes")

    @staticmethod
    def push_promise(flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        """A PUSH_PROMISE (a frame handler): our SETTINGS disabled push (RFC 9113 8.4)."""
        raise fr.FrameError(fr.PROTOCOL_ERROR, "PUSH_PROMISE received with push disabled")

    @staticmethod
    def ping_data(stream_id: int, payload: bytes | memoryview) -> bytes:
        """A PING's opaque data, once the frame is checked."""
        if len(payload) != 8:
            raise fr.FrameError(fr.FRAME_SIZE_ERROR, "PING frame must be 8 bytes")
        if stream_id != 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, "PING on a stream")
        return bytes(payload)

    @staticmethod
    def window_increment(stream_id: int, payload: bytes | memoryview) -> int:
        """A WINDOW_UPDATE's increment, once the frame is checked (0 on a stream is the
        caller's stream error; on the connection it is a connection error, here)."""
        if len(payload) != 4:
            raise fr.FrameError(fr.FRAME_SIZE_ERROR, "WINDOW_UPDATE frame must be 4 bytes")
        increment = fr.parse_u32(payload) & fr.MAX_WINDOW
        if stream_id == 0 and increment == 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection")
        return increment

    @staticmethod
    def reset_code(stream_id: int, payload: bytes | memoryview) -> int:
        """An RST_STREAM's error code, once the frame is checked."""
        if len(payload) != 4:
            raise fr.FrameError(fr.FRAME_SIZE_ERROR, "RST_STREAM frame must be 4 bytes")
        if stream_id == 0:
            raise fr.FrameError(fr.PROTOCOL_ERROR, "RST_STREAM on stream 0")
        return fr.parse_u32(payload)

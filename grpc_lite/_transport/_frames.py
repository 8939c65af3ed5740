"""HTTP/2 frame codec (RFC 9113 section 4 and 6), written with ``struct``.

Sans-IO and allocation-light: encoders return ``bytes`` ready for the socket, and
:class:`FrameReader` turns an arbitrary split of the received byte stream into
``(type, flags, stream_id, payload)`` tuples.  Semantics (which frame is legal
when) live in :mod:`grpc_lite._transport._connection`; this module only checks
what can be checked from one frame alone (sizes, padding, fixed lengths).
"""

import struct
from typing import Any, Final

# Frame types (RFC 9113 section 6).
DATA: Final = 0x0
HEADERS: Final = 0x1
PRIORITY: Final = 0x2
RST_STREAM: Final = 0x3
SETTINGS: Final = 0x4
PUSH_PROMISE: Final = 0x5
PING: Final = 0x6
GOAWAY: Final = 0x7
WINDOW_UPDATE: Final = 0x8
CONTINUATION: Final = 0x9
# Not a wire type (those are 8 bits): a run of DATA frames that FrameReader coalesced
# (see FrameReader.feed); its payload is a list of the frames' payloads.
DATA_RUN: Final = 0x100

FRAME_NAMES: Final = {
    DATA: "DATA",
    HEADERS: "HEADERS",
    PRIORITY: "PRIORITY",
    RST_STREAM: "RST_STREAM",
    SETTINGS: "SETTINGS",
    PUSH_PROMISE: "PUSH_PROMISE",
    PING: "PING",
    GOAWAY: "GOAWAY",
    WINDOW_UPDATE: "WINDOW_UPDATE",
    CONTINUATION: "CONTINUATION",
    DATA_RUN: "DATA",
}

# Flags.
FLAG_END_STREAM: Final = 0x1
FLAG_ACK: Final = 0x1
FLAG_END_HEADERS: Final = 0x4
FLAG_PADDED: Final = 0x8
FLAG_PRIORITY: Final = 0x20

# Settings identifiers (RFC 9113 section 6.5.2).
SETTINGS_HEADER_TABLE_SIZE: Final = 0x1
SETTINGS_ENABLE_PUSH: Final = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS: Final = 0x3
SETTINGS_INITIAL_WINDOW_SIZE: Final = 0x4
SETTINGS_MAX_FRAME_SIZE: Final = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE: Final = 0x6

# Error codes (RFC 9113 section 7).
NO_ERROR: Final = 0x0
PROTOCOL_ERROR: Final = 0x1
INTERNAL_ERROR: Final = 0x2
FLOW_CONTROL_ERROR: Final = 0x3
SETTINGS_TIMEOUT: Final = 0x4
STREAM_CLOSED: Final = 0x5
FRAME_SIZE_ERROR: Final = 0x6
REFUSED_STREAM: Final = 0x7
CANCEL: Final = 0x8
COMPRESSION_ERROR: Final = 0x9
CONNECT_ERROR: Final = 0xA
ENHANCE_YOUR_CALM: Final = 0xB
INADEQUATE_SECURITY: Final = 0xC
HTTP_1_1_REQUIRED: Final = 0xD

ERROR_NAMES: Final = {
    NO_ERROR: "NO_ERROR",
    PROTOCOL_ERROR: "PROTOCOL_ERROR",
    INTERNAL_ERROR: "INTERNAL_ERROR",
    FLOW_CONTROL_ERROR: "FLOW_CONTROL_ERROR",
    SETTINGS_TIMEOUT: "SETTINGS_TIMEOUT",
    STREAM_CLOSED: "STREAM_CLOSED",
    FRAME_SIZE_ERROR: "FRAME_SIZE_ERROR",
    REFUSED_STREAM: "REFUSED_STREAM",
    CANCEL: "CANCEL",
    COMPRESSION_ERROR: "COMPRESSION_ERROR",
    CONNECT_ERROR: "CONNECT_ERROR",
    ENHANCE_YOUR_CALM: "ENHANCE_YOUR_CALM",
    INADEQUATE_SECURITY: "INADEQUATE_SECURITY",
    HTTP_1_1_REQUIRED: "HTTP_1_1_REQUIRED",
}


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, f"0x{code:x}")


PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DEFAULT_MAX_FRAME_SIZE: Final = 16384
MAX_MAX_FRAME_SIZE: Final = 16777215
DEFAULT_WINDOW: Final = 65535
MAX_WINDOW: Final = 2**31 - 1
MAX_STREAM_ID: Final = 2**31 - 1

# One frame header: 24-bit length and 8-bit type packed in one u32, flags, stream id.
_HEADER = struct.Struct(">IBI")
_U32 = struct.Struct(">I")
_U32_U32 = struct.Struct(">II")
_SETTING = struct.Struct(">HI")
HEADER_SIZE: Final = 9

_pack_header = _HEADER.pack
_unpack_header = _HEADER.unpack_from


class FrameError(Exception):
    """A frame that breaks the protocol: the connection must close with ``code``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------- encoders


def frame_header(length: int, ftype: int, flags: int, stream_id: int) -> bytes:
    return _pack_header((length << 8) | ftype, flags, stream_id)


def encode_data(stream_id: int, data: bytes | memoryview, end_stream: bool) -> bytes:
    """One DATA frame; the caller has split ``data`` to the peer's frame size."""
    return _pack_header((len(data) << 8) | DATA, end_stream, stream_id) + data


def encode_headers(stream_id: int, block: bytes, end_stream: bool, max_frame_size: int) -> bytes:
    """HEADERS plus as many CONTINUATION frames as ``block`` needs (RFC 9113 6.10)."""
    flags = FLAG_END_STREAM if end_stream else 0
    if len(block) <= max_frame_size:
        return (
            _pack_header((len(block) << 8) | HEADERS, flags | FLAG_END_HEADERS, stream_id) + block
        )
    parts = [
        _pack_header((max_frame_size << 8) | HEADERS, flags, stream_id),
        block[:max_frame_size],
    ]
    pos = max_frame_size
    while pos < len(block):
        chunk = block[pos : pos + max_frame_size]
        pos += len(chunk)
        last = FLAG_END_HEADERS if pos >= len(block) else 0
        parts.append(_pack_header((len(chunk) << 8) | CONTINUATION, last, stream_id))
        parts.append(chunk)
    return b"".join(parts)


def encode_settings(settings: dict[int, int]) -> bytes:
    payload = b"".join(_SETTING.pack(k, v) for k, v in settings.items())
    return _pack_header((len(payload) << 8) | SETTINGS, 0, 0) + payload


SETTINGS_ACK: Final = _pack_header(SETTINGS, FLAG_ACK, 0)


def encode_window_update(stream_id: int, increment: int) -> bytes:
    return _pack_header((4 << 8) | WINDOW_UPDATE, 0, stream_id) + _U32.pack(increment)


def encode_ping(data: bytes, ack: bool = False) -> bytes:
    return _pack_header((8 << 8) | PING, FLAG_ACK if ack else 0, 0) + data


def encode_rst_stream(stream_id: int, code: int) -> bytes:
    return _pack_header((4 << 8) | RST_STREAM, 0, stream_id) + _U32.pack(code)


def encode_goaway(last_stream_id: int, code: int, debug: bytes = b"") -> bytes:
    payload = _U32_U32.pack(last_stream_id, code) + debug
    return _pack_header((len(payload) << 8) | GOAWAY, 0, 0) + payload


# ---------------------------------------------------------------------------- decoding


# The most flow-controlled bytes a padded frame carries beyond its data: the pad length
# octet and 255 bytes of padding.
MAX_PADDING: Final = 256


def strip_padding(flags: int, payload: bytes | memoryview, ftype: int) -> bytes | memoryview:
    """Remove the Pad Length field and the padding of a DATA/HEADERS frame."""
    if not flags & FLAG_PADDED:
        return payload
    if len(payload) < 1:
        raise FrameError(FRAME_SIZE_ERROR, f"{FRAME_NAMES[ftype]} frame too short for padding")
    pad = payload[0]
    if pad >= len(payload):
        raise FrameError(PROTOCOL_ERROR, f"{FRAME_NAMES[ftype]} padding exceeds the frame")
    return payload[1 : len(payload) - pad]


def parse_settings(payload: bytes | memoryview) -> list[tuple[int, int]]:
    if len(payload) % 6:
        raise FrameError(FRAME_SIZE_ERROR, "SETTINGS payload is not a multiple of 6")
    return [_SETTING.unpack_from(payload, i) for i in range(0, len(payload), 6)]


def parse_u32(payload: bytes | memoryview) -> int:
    return int(_U32.unpack_from(payload)[0])


def parse_goaway(payload: bytes | memoryview) -> tuple[int, int, bytes]:
    if len(payload) < 8:
        raise FrameError(FRAME_SIZE_ERROR, "GOAWAY frame shorter than 8 bytes")
    last, code = _U32_U32.unpack_from(payload)
    return last & MAX_STREAM_ID, code, bytes(payload[8:])


class FrameReader:
    """Incremental frame splitter.

    Who may call: the connection's receive path only.  ``feed`` returns every
    complete frame in the buffered input; a partial frame stays buffered.  A
    frame longer than ``max_frame_size`` (our advertised SETTINGS_MAX_FRAME_SIZE)
    raises :class:`FrameError` (FRAME_SIZE_ERROR) as soon as its header is seen.

    With ``coalesce_data``, consecutive DATA frames of one stream that carry no flags
    (no END_STREAM, no padding) come out as one ``(DATA_RUN, 0, stream_id, [payload,
    ...])`` entry: a large message arrives as dozens of 16 KiB frames back to back, and
    the connection can then account for and hand over the whole run at once.  Flattening
    the runs gives exactly the frames of a reader without ``coalesce_data``.
    """

    __slots__ = ("_buf", "coalesce_data", "max_frame_size")

    def __init__(
        self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, coalesce_data: bool = False
    ) -> None:
        self._buf = b""
        self.max_frame_size = max_frame_size
        self.coalesce_data = coalesce_data

    def feed(self, data: bytes | memoryview) -> list[tuple[int, int, int, Any]]:
        """Every complete frame in the input so far.

        Payloads are zero-copy views of ``data`` (immutable ``bytes`` from the socket);
        only a frame split across two reads is copied, and only that frame.
        """
        frames: list[tuple[int, int, int, Any]] = []
        max_size = self.max_frame_size
        view = memoryview(data)
        pending = self._buf
        # The stream of the last entry when it is a flagless DATA frame (or a run of
        # them) that the next flagless DATA frame of that stream may join; else -1.
        run_sid = -1
        run: list[bytes | memoryview] | None = None
        coalesce = self.coalesce_data
        if pending:
            # Complete the frame split across reads, taking just what it still needs.
            if len(pending) < HEADER_SIZE:
                take = HEADER_SIZE - len(pending)
                pending += bytes(view[:take])
                view = view[take:]
                if len(pending) < HEADER_SIZE:
                    self._buf = pending
                    return frames
            len_type, flags, stream_id = _unpack_header(pending, 0)
            length = len_type >> 8
            if length > max_size:
                self._buf = b""
                raise FrameError(
                    FRAME_SIZE_ERROR, f"frame of {length} bytes exceeds the maximum of {max_size}"
                )
            need = HEADER_SIZE + length - len(pending)
            if len(view) < need:
                self._buf = pending + bytes(view)
                return frames
            pending += bytes(view[:need])
            view = view[need:]
            self._buf = b""
            ftype = len_type & 0xFF
            stream_id &= MAX_STREAM_ID
            frames.append((ftype, flags, stream_id, pending[9:]))
            if coalesce and ftype == DATA and not flags:
                run_sid = stream_id
        pos = 0
        end = len(view)
        while end - pos >= HEADER_SIZE:
            len_type, flags, stream_id = _unpack_header(view, pos)
            length = len_type >> 8
            if length > max_size:
                self._buf = b""
                raise FrameError(
                    FRAME_SIZE_ERROR, f"frame of {length} bytes exceeds the maximum of {max_size}"
                )
            stop = pos + HEADER_SIZE + length
            if stop > end:
                break
            ftype = len_type & 0xFF
            stream_id &= MAX_STREAM_ID
            if coalesce and ftype == DATA and not flags:
                if stream_id == run_sid:
                    if run is None:
                        run = [frames[-1][3], view[pos + 9 : stop]]
                        frames[-1] = (DATA_RUN, 0, stream_id, run)
                    else:
                        run.append(view[pos + 9 : stop])
                else:
                    frames.append((DATA, 0, stream_id, view[pos + 9 : stop]))
                    run_sid = stream_id
                    run = None
            else:
                frames.append((ftype, flags, stream_id, view[pos + 9 : stop]))
                run_sid = -1
                run = None
            pos = stop
        if pos < end:
            self._buf = bytes(view[pos:])
        return frames

    @property
    def buffered(self) -> int:
        return len(self._buf)

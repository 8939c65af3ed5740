"""gRPC Length-Prefixed-Message framing and per-message compression (L1).

Sans-IO: bytes in, bytes out. Spec: grpc/grpc doc/PROTOCOL-HTTP2.md (Length-Prefixed-Message,
Compressed-Flag, Data Frames), doc/compression.md and doc/statuscodes.md.
"""

import io
import struct
import zlib

from grpc_lite.status import StatusCode

__all__ = [
    "ACCEPT_ENCODING",
    "SUPPORTED_ENCODINGS",
    "CodecError",
    "MessageDecoder",
    "compress",
    "decompress",
    "frame_message",
]

# Compressed-Flag (1 byte) + Message-Length (4 bytes, big-endian).
_HEADER = struct.Struct(">BI")
_HEADER_SIZE = 5
_pack_header = _HEADER.pack
_unpack_header_from = _HEADER.unpack_from

# Split messages up to this size get their whole buffer when their prefix arrives.
_PRESIZE_MAX = 16 << 20

# The grpc-accept-encoding value the client sends.
ACCEPT_ENCODING = "identity,deflate,gzip"
SUPPORTED_ENCODINGS = frozenset({"identity", "deflate", "gzip"})

# zlib wbits: 31 = gzip container (RFC 1952); 15 = zlib container (RFC 1950), which is what
# gRPC calls "deflate".
_WBITS = {"gzip": 31, "deflate": 15}


class CodecError(Exception):
    """A message could not be framed, deframed or (de)compressed.

    ``code`` is the status the call should end with (INTERNAL or RESOURCE_EXHAUSTED).
    """

    __slots__ = ("code", "message")

    def __init__(self, code: StatusCode, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


def frame_message(payload: bytes, compressed: bool = False) -> bytes:
    """Prefix ``payload`` with its flag byte and 4-byte length (Length-Prefixed-Message)."""
    return _pack_header(1 if compressed else 0, len(payload)) + payload


def compress(data: bytes, encoding: str) -> bytes:
    """Compress one message with ``encoding`` ("identity", "gzip" or "deflate")."""
    if encoding == "gzip":
        return zlib.compress(data, -1, 31)
    if encoding == "deflate":
        return zlib.compress(data)
    if encoding == "identity":
        return data
    raise CodecError(StatusCode.INTERNAL, f"unsupported compression encoding {encoding!r}")


def _too_large_after_decompression(max_length: int) -> CodecError:
    return CodecError(
        StatusCode.RESOURCE_EXHAUSTED,
        f"received message after decompression larger than max ({max_length})",
    )


def decompress(data: bytes | memoryview, encoding: str, max_length: int | None) -> bytes:
    """Decompress one message; never inflates more than ``max_length`` + 1 bytes.

    Each message is decompressed on its own (PROTOCOL-HTTP2.md, Compressed-Flag). Raises
    CodecError RESOURCE_EXHAUSTED when the result would exceed ``max_length`` (statuscodes.md),
    INTERNAL on corrupt or truncated data or an unsupported encoding (compression.md).
    """
    wbits = _WBITS.get(encoding)
    if wbits is None:
        if encoding == "identity":
            if max_length is not None and len(data) > max_length:
                raise _too_large_after_decompression(max_length)
            return bytes(data)
        raise CodecError(
            StatusCode.INTERNAL,
            f"grpc: decompressor for encoding {encoding!r} is not installed",
        )
    parts: list[bytes] = []
    total = 0
    remaining = memoryview(data)
    try:
        while True:
            decompressor = zlib.decompressobj(wbits)
            if max_length is None:
                chunk = decompressor.decompress(remaining)
            else:
                # One byte over the limit is enough to know the message is too large; the
                # limit is always >= 1 here (0 would mean "unlimited" to zlib).
                chunk = decompressor.decompress(remaining, max_length + 1 - total)
            total += len(chunk)
            if max_length is not None and total > max_length:
                raise _too_large_after_decompression(max_length)
            if not decompressor.eof:
                raise CodecError(
                    StatusCode.INTERNAL, f"grpc: truncated {encoding} compressed message"
                )
            parts.append(chunk)
            rest = decompressor.unused_data
            if not rest:
                break
            if wbits != 31:
                raise CodecError(
                    StatusCode.INTERNAL, f"grpc: trailing data after {encoding} compressed message"
                )
            # gzip allows several members back to back (Go's gzip reader reads them all).
            remaining = memoryview(rest)
    except zlib.error as exc:
        raise CodecError(
            StatusCode.INTERNAL, f"grpc: failed to decompress the received message: {exc}"
        ) from None
    if len(parts) == 1:
        return parts[0]
    return b"".join(parts)


class MessageDecoder:
    """Incremental deframer for one response stream.

    Feed it the payloads of DATA frames in order; it returns every complete message
    (decompressed), buffering an incomplete one. Owned by one stream; called from the
    transport's protocol callbacks only.  ``feed`` never keeps a reference to the data
    it is given (socket reads land in a buffer shared by every connection).

    A message that arrives in pieces is written as it comes into an ``io.BytesIO`` sized
    to the message up front; ``getvalue()`` then hands over that very buffer as the
    message's ``bytes`` (CPython shares it, no copy).  So the pieces are copied once,
    while the rest is still on its way, and nothing is copied once the last piece is in;
    the only large allocation per message is the message itself.  (Keeping the socket
    reads until one final join cost twice the message size in short-lived heap, and
    glibc then returned the heap top to the kernel and faulted it back in, call after
    call: 1 MiB responses ran three times slower in such processes.)
    """

    __slots__ = (
        "_body",
        "_body_size",
        "_compressed",
        "_encoding",
        "_header",
        "_length",
        "_max_length",
        "compressed_messages",
    )

    def __init__(self, max_length: int | None, encoding: str | None) -> None:
        self._max_length = max_length
        # None means "no compression negotiated": a compressed flag is then an error.
        self._encoding = None if encoding is None or encoding == "identity" else encoding
        self._header = bytearray()  # an incomplete 5-byte prefix
        # The current message's payload while it arrives in pieces (``_body_size``
        # bytes of it so far).
        self._body: io.BytesIO | None = None
        self._body_size = 0
        self._length = -1  # payload length of the current message; -1 while reading a prefix
        self._compressed = False
        # How many messages arrived with the compressed flag (the interop client checks
        # it; counted on the compressed path only).
        self.compressed_messages = 0

    @property
    def has_partial(self) -> bool:
        """True when part of a message has arrived (a partial message at END_STREAM is
        INTERNAL)."""
        return self._length >= 0 or bool(self._header)

    @property
    def bytes_buffered(self) -> int:
        """Bytes of the current incomplete message received so far, its prefix included."""
        if self._length >= 0:
            return _HEADER_SIZE + self._body_size
        return len(self._header)

    @property
    def bytes_needed(self) -> int:
        """Bytes of the current incomplete message still to come, or -1 while its
        prefix is incomplete (the length is not known yet)."""
        if self._length >= 0:
            return self._length - self._body_size
        return -1

    def _start(self, flag: int, length: int) -> None:
        """Check a message prefix before any of its body is kept (compression.md)."""
        if flag == 1:
            encoding = self._encoding
            if encoding is None:
                raise CodecError(
                    StatusCode.INTERNAL,
                    "grpc: compressed flag set without grpc-encoding",
                )
            if encoding not in _WBITS:
                raise CodecError(
                    StatusCode.INTERNAL,
                    f"grpc: received message compressed with unsupported encoding {encoding!r}",
                )
            self._compressed = True
            self.compressed_messages += 1
        elif flag == 0:
            self._compressed = False
        else:
            raise CodecError(
                StatusCode.INTERNAL,
                f"grpc: received message with invalid compressed flag {flag}",
            )
        max_length = self._max_length
        if max_length is not None and length > max_length:
            raise CodecError(
                StatusCode.RESOURCE_EXHAUSTED,
                f"received message larger than max ({length} vs. {max_length})",
            )
        self._length = length

    def _finish(self, payload: bytes | memoryview) -> bytes:
        self._length = -1
        if self._compressed:
            assert self._encoding is not None  # checked by _start
            return decompress(payload, self._encoding, self._max_length)
        return bytes(payload)

    def _keep(self, piece: bytes | memoryview, length: int) -> None:
        """Start buffering a ``length``-byte payload with its first ``piece``."""
        body = self._body = io.BytesIO()
        if length <= _PRESIZE_MAX:
            # Size the buffer to the whole message now (one allocation, zero-filled), so
            # writes never reallocate it and getvalue() can hand it over as it is.
            # Larger messages grow with the data instead: a length prefix alone must not
            # make us allocate up to 4 GiB (with no receive limit set).
            body.seek(length - 1)
            body.write(b"\0")
            body.seek(0)
        body.write(piece)
        self._body_size = len(piece)

    def _complete(self) -> bytes:
        """The buffered payload is whole: the message (the buffer itself, no copy)."""
        body = self._body
        assert body is not None
        self._body = None
        self._body_size = 0
        return self._finish(body.getvalue())

    def feed_run(self, chunks: list[bytes | memoryview], total: int) -> list[bytes]:
        """``feed`` each of ``chunks`` (``total`` bytes in all) in turn.

        Once the middle of a message's payload is reached and the rest of the run does
        not complete it (a large message arriving as many DATA frames), the remaining
        chunks are copied in with no further parsing."""
        out: list[bytes] = []
        for i, chunk in enumerate(chunks):
            body = self._body
            if body is not None and self._length - self._body_size > total:
                body.writelines(chunks[i:])
                self._body_size += total
                return out
            total -= len(chunk)
            msgs = self.feed(chunk)
            if msgs:
                out += msgs
        return out

    def feed(self, data: bytes | memoryview) -> list[bytes]:
        """Consume ``data``; return the payloads of the messages it completes, in order."""
        n = len(data)
        # Hot path: nothing buffered and ``data`` is exactly one uncompressed message (a unary
        # response in one DATA frame): one slice, no buffering.
        if self._length < 0 and n >= _HEADER_SIZE and not self._header:
            flag, length = _unpack_header_from(data)
            if (
                flag == 0
                and n == _HEADER_SIZE + length
                and (self._max_length is None or length <= self._max_length)
            ):
                return [bytes(data[_HEADER_SIZE:])]

        out: list[bytes] = []
        pos = 0
        while pos < n:
            length = self._length
            if length < 0:
                # Reading a prefix.
                header = self._header
                if header or n - pos < _HEADER_SIZE:
                    take = min(_HEADER_SIZE - len(header), n - pos)
                    header += data[pos : pos + take]
                    pos += take
                    if len(header) < _HEADER_SIZE:
                        break
                    flag, length = _unpack_header_from(header)
                    header.clear()
                else:
                    flag, length = _unpack_header_from(data, pos)
                    pos += _HEADER_SIZE
                self._start(flag, length)
            body = self._body
            if body is None:
                if n - pos >= length:
                    # The whole payload is in ``data``: one slice, no buffering.
                    end = pos + length
                    out.append(self._finish(data[pos:end]))
                    pos = end
                    continue
                self._keep(data[pos:], length)
                break
            fill = self._body_size
            take = min(length - fill, n - pos)
            body.write(data[pos : pos + take])
            pos += take
            self._body_size = fill + take
            if fill + take == length:
                out.append(self._complete())
        return out

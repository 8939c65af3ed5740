"""One gRPC call attempt on one HTTP/2 stream: response parsing and status mapping.

grpc-go counterpart: ``transport.Stream`` plus ``operateHeaders`` in http2_client.go.

:class:`ClientStream` receives the connection's callbacks, turns headers, DATA
and trailers into initial metadata, messages and a final status (grpc/grpc
doc/PROTOCOL-HTTP2.md, Responses and Errors; doc/http-grpc-status-mapping.md;
doc/statuscodes.md), and tells its :class:`StreamListener` (the call) what
happened.  It owns no futures and no timers: the call does, so one deadline
covers every attempt.
"""

from collections import deque
from typing import Protocol

from .. import _codec
from ..metadata import Metadata, decode_incoming
from ..status import StatusCode, decode_grpc_message, parse_grpc_status, status_from_http
from . import _frames as fr
from ._connection import H2Stream
from ._headers import HeaderBlock
from ._streams import StreamState

# Response headers that are protocol, not metadata (PROTOCOL-HTTP2.md, Responses).
_PROTOCOL_HEADERS = frozenset(
    {
        ":status",
        "content-type",
        "grpc-encoding",
        "grpc-accept-encoding",
        "grpc-status",
        "grpc-message",
    }
)

# RST_STREAM code -> gRPC status (PROTOCOL-HTTP2.md, Errors).
_RST_STATUS = {
    fr.NO_ERROR: StatusCode.INTERNAL,
    fr.PROTOCOL_ERROR: StatusCode.INTERNAL,
    fr.INTERNAL_ERROR: StatusCode.INTERNAL,
    fr.FLOW_CONTROL_ERROR: StatusCode.INTERNAL,
    fr.SETTINGS_TIMEOUT: StatusCode.INTERNAL,
    fr.STREAM_CLOSED: StatusCode.INTERNAL,
    fr.FRAME_SIZE_ERROR: StatusCode.INTERNAL,
    fr.REFUSED_STREAM: StatusCode.UNAVAILABLE,
    fr.CANCEL: StatusCode.CANCELLED,
    fr.COMPRESSION_ERROR: StatusCode.INTERNAL,
    fr.CONNECT_ERROR: StatusCode.INTERNAL,
    fr.ENHANCE_YOUR_CALM: StatusCode.RESOURCE_EXHAUSTED,
    fr.INADEQUATE_SECURITY: StatusCode.PERMISSION_DENIED,
    fr.HTTP_1_1_REQUIRED: StatusCode.INTERNAL,
}

_EMPTY_METADATA_PAIRS: list[tuple[str, str]] = []


class StreamListener(Protocol):
    """The call that owns a stream.  Called synchronously from the receive path."""

    def stream_headers(self, stream: "ClientStream") -> None: ...

    def stream_message(self, stream: "ClientStream") -> None: ...

    def stream_done(self, stream: "ClientStream") -> None: ...

    def stream_writable(self, stream: "ClientStream") -> None: ...


class _Detached:
    """The listener of a stream whose call has finished: nothing is told any more.

    Swapping it in breaks the call <-> stream reference cycle, so both are freed by
    reference counting when the call is dropped instead of waiting for the cycle GC.
    """

    __slots__ = ()

    def stream_headers(self, stream: "ClientStream") -> None:
        pass

    def stream_message(self, stream: "ClientStream") -> None:
        pass

    def stream_done(self, stream: "ClientStream") -> None:
        pass

    def stream_writable(self, stream: "ClientStream") -> None:
        pass


DETACHED = _Detached()


class ClientStream(H2Stream):
    """The client side of one gRPC stream (one attempt of a call)."""

    __slots__ = (
        "_decoder",
        "_encoding",
        "_max_receive",
        "_owed",
        "_received",
        "_unary",
        "code",
        "details",
        "headers_received",
        "initial_metadata",
        "listener",
        "messages",
        "per_attempt_timeout",
        "refused",
        "trailing_metadata",
        "unprocessed",
    )

    @property
    def compressed_messages_received(self) -> int:
        """How many received messages had the compressed flag set."""
        decoder = self._decoder
        return 0 if decoder is None else decoder.compressed_messages

    def __init__(
        self,
        listener: StreamListener,
        header_block: bytes,
        header_list_size: int,
        *,
        max_receive: int | None,
        unary_response: bool,
    ) -> None:
        super().__init__(header_block, header_list_size)
        self.listener = listener
        self._unary = unary_response
        # Created when a message needs buffering or decompression; a DATA frame that
        # is exactly one plain message (the usual unary response) needs none.
        self._decoder: _codec.MessageDecoder | None = None
        self._encoding: str | None = None
        # Messages received and not yet taken by the reader.
        self.messages: deque[bytes] = deque()
        # Flow-control credit held back while the reader lags (streaming only; RFC 9113 §5.2).
        self._owed = 0
        self._received = 0
        self._max_receive = max_receive
        self.headers_received = False
        self.initial_metadata: Metadata | None = None
        # Final status; ``code`` is None until the stream is done.
        self.code: StatusCode | None = None
        self.details = ""
        self.trailing_metadata: Metadata | None = None
        # True when the server never processed the stream (REFUSED_STREAM before
        # headers, GOAWAY above last_stream_id, never sent): transparently retryable.
        self.unprocessed = False
        # The server refused the stream (REFUSED_STREAM before any headers; A6 §Transparent
        # Retries).
        self.refused = False
        # Set by the call when its perAttemptRecvTimeout cancelled this attempt.
        self.per_attempt_timeout = False

    @property
    def done(self) -> bool:
        return self.code is not None

    # ------------------------------------------------------------------ local actions

    def send(self, data: bytes, end_stream: bool) -> None:
        conn = self._conn
        if conn is not None and self.code is None:
            conn.send_data(self, data, end_stream)
        elif conn is None and self.code is None:
            if data:
                self._out.append(data)
                self._out_bytes += len(data)
            if end_stream:
                self._out_end = True

    def cancel(self, code: StatusCode, details: str) -> None:
        """End the stream locally: RST_STREAM(CANCEL) if it was sent.

        PROTOCOL-HTTP2.md, Client Cancellation.
        """
        if self.code is not None:
            return
        conn = self._conn
        if conn is not None and self.h2_state is not StreamState.CLOSED:
            conn.reset_stream(self, fr.CANCEL)
        self._finish(code, details, None)

    def rest_fits_window(self) -> bool:
        """A unary response whose one message is partly in and whose rest (with the
        most padding one more frame can carry) fits in the window left: the server
        can finish without more credit, so none is sent.  A 1 MiB response in the
        4 MiB default window then costs no WINDOW_UPDATE (it used to send one half the
        time, right before the last piece came in).  Decided again on every credit
        check, so a server that pads, or a message larger than the window, still gets
        the credit it needs (RFC 9113 §5.2)."""
        decoder = self._decoder
        if not self._unary or decoder is None:
            return False
        need = decoder.bytes_needed
        return need >= 0 and need + fr.MAX_PADDING <= self._recv_window

    def take_message(self) -> bytes | None:
        """Pop the next received message, returning flow-control credit when caught up."""
        if not self.messages:
            return None
        msg = self.messages.popleft()
        if not self.messages and self._owed:
            owed = self._owed
            self._owed = 0
            conn = self._conn
            if conn is not None:
                conn.consumed(self, owed)
        return msg

    # ------------------------------------------------------------------ completion

    def _finish(self, code: StatusCode, details: str, trailing: Metadata | None) -> None:
        if self.code is not None:
            return
        self.code = code
        self.details = details
        self.trailing_metadata = trailing
        self.listener.stream_done(self)

    def _fail(self, code: StatusCode, details: str, rst_code: int = fr.CANCEL) -> None:
        """A problem in the response: reset the stream and fail the call.  A malformed
        response (RFC 9113 §8.1.1: a frame sequence HTTP/2 does not allow) is reset with
        PROTOCOL_ERROR, as grpc-go's operateHeaders does; a message the call cannot take
        (size, compression) with CANCEL, as grpc-go's CloseStream does."""
        conn = self._conn
        if conn is not None and self.h2_state is not StreamState.CLOSED:
            conn.reset_stream(self, rst_code)
        self._finish(code, details, None)

    # ------------------------------------------------------------------ connection callbacks

    def _on_headers(self, block: HeaderBlock, end_stream: bool) -> None:
        if self.code is not None:
            return
        parsed = block.parsed
        if parsed is None:
            parsed = block.parsed = _parse_fields(block.fields)
        fields: _Parsed = parsed  # type: ignore[assignment]
        http_status, content_type, grpc_status, grpc_message, encoding, md = fields
        if encoding is not None:
            self._encoding = encoding

        if self.headers_received:
            if not end_stream:
                self._fail(
                    StatusCode.INTERNAL,
                    "received a second HEADERS frame mid-stream",
                    fr.PROTOCOL_ERROR,
                )
                return
            decoder = self._decoder
            if (
                grpc_status == "0"
                and self._received == 1
                and (decoder is None or not decoder.has_partial)
                and not md
                and not grpc_message
            ):
                # Hot path: a unary response's plain OK trailers (what _trailers decides
                # for them, without its checks).
                self._finish(StatusCode.OK, "", None)
                return
            self._trailers(grpc_status, grpc_message, md, None)
            return

        if http_status is None:
            self._fail(StatusCode.INTERNAL, "response headers without :status", fr.PROTOCOL_ERROR)
            return
        if http_status[:1] == "1" and len(http_status) == 3:
            if end_stream:  # malformed (RFC 9113 §8.1)
                self._fail(
                    StatusCode.INTERNAL,
                    f"informational :status {http_status} ended the stream",
                    fr.PROTOCOL_ERROR,
                )
            return
        if end_stream:
            # Trailers-Only (PROTOCOL-HTTP2.md, Responses): all of it is trailers; initial
            # metadata stays empty.
            self.headers_received = True
            self.initial_metadata = Metadata()
            self._trailers(grpc_status, grpc_message, md, (http_status, content_type))
            return
        if http_status != "200":
            self._fail(*_http_error(http_status, content_type))
            return
        if content_type is None or not content_type.startswith("application/grpc"):
            self._fail(
                StatusCode.UNKNOWN,
                f"unexpected content-type {content_type!r} in a response with :status 200",
            )
            return
        if self._encoding is not None and self._encoding != "identity":
            self._decoder = _codec.MessageDecoder(self._max_receive, self._encoding)
        else:
            self._decoder = None
        try:
            self.initial_metadata = decode_incoming(md) if md else None
        except ValueError as exc:
            self._fail(StatusCode.INTERNAL, str(exc))
            return
        self.headers_received = True
        self.listener.stream_headers(self)

    def _trailers(
        self,
        grpc_status: str | None,
        grpc_message: str | None,
        md: list[tuple[str, str]],
        trailers_only_http: tuple[str, str | None] | None,
    ) -> None:
        try:
            trailing = decode_incoming(md) if md else None
        except ValueError as exc:
            self._finish(StatusCode.INTERNAL, str(exc), None)
            return
        if grpc_status is None:
            if trailers_only_http is not None:
                code, details = _http_error(*trailers_only_http)  # http-grpc-status-mapping.md
            else:
                code, details = StatusCode.UNKNOWN, "server sent trailers without grpc-status"
            self._finish(code, details, trailing)
            return
        parsed = parse_grpc_status(grpc_status)
        if parsed is None:
            self._finish(
                StatusCode.UNKNOWN, f"error parsing returned status {grpc_status!r}", trailing
            )
            return
        details = decode_grpc_message(grpc_message) if grpc_message else ""
        if parsed is StatusCode.OK and self._decoder is not None and self._decoder.has_partial:
            self._finish(StatusCode.INTERNAL, "stream ended in the middle of a message", trailing)
            return
        if parsed is StatusCode.OK and self._unary and self._received != 1:
            # grpc-go's choice, INTERNAL (statuscodes.md says UNIMPLEMENTED).
            n = self._received
            what = "no response message" if n == 0 else f"{n} response messages"
            self._finish(
                StatusCode.INTERNAL, f"unary call received {what} with status OK", trailing
            )
            return
        self._finish(parsed, details, trailing)

    def _on_data(self, data: bytes | memoryview, end_stream: bool) -> None:
        if self.code is not None:
            return
        if not self.headers_received:
            self._fail(StatusCode.INTERNAL, "DATA frame before response headers", fr.PROTOCOL_ERROR)
            return
        decoder = self._decoder
        try:
            if decoder is None:
                n = len(data)
                # Hot path: one whole uncompressed message, nothing buffered.
                if (
                    n >= 5
                    and data[0] == 0
                    and int.from_bytes(data[1:5], "big") == n - 5
                    and (self._max_receive is None or n - 5 <= self._max_receive)
                ):
                    if self._unary and not self._received and not end_stream:
                        # Hottest path: a unary call's response, whole in one frame
                        # (what _deliver does with it; no credit, the message is in).
                        self._received = 1
                        self.messages.append(bytes(data[5:]))
                        self.listener.stream_message(self)
                        return
                    msgs = [bytes(data[5:])]
                else:
                    decoder = self._decoder = _codec.MessageDecoder(self._max_receive, None)
                    msgs = decoder.feed(data)
            else:
                msgs = decoder.feed(data)
        except _codec.CodecError as exc:
            self._fail(exc.code, exc.message)
            return
        self._deliver(msgs, len(data), end_stream)

    def _on_data_run(self, chunks: list[bytes | memoryview], total: int) -> None:
        if self.code is not None:
            return
        if not self.headers_received:
            self._fail(StatusCode.INTERNAL, "DATA frame before response headers", fr.PROTOCOL_ERROR)
            return
        decoder = self._decoder
        if decoder is None:
            decoder = self._decoder = _codec.MessageDecoder(self._max_receive, None)
        try:
            msgs = decoder.feed_run(chunks, total)
        except _codec.CodecError as exc:
            self._fail(exc.code, exc.message)
            return
        self._deliver(msgs, total, False)

    def _deliver(self, msgs: list[bytes], nbytes: int, end_stream: bool) -> None:
        """Hand decoded messages to the listener and return ``nbytes`` of flow-control
        credit (or owe it while a streaming reader lags)."""
        conn = self._conn
        if self._unary:
            # Credit only while the one response message is incomplete: after it the
            # server sends trailers, which flow control does not cover.
            if conn is not None and nbytes and not end_stream and not msgs:
                conn.consumed(self, nbytes)
            for msg in msgs:
                self._received += 1
                if self._received > 1:
                    self._fail(StatusCode.INTERNAL, "unary call received more than one message")
                    return
                self.messages.append(msg)
                self.listener.stream_message(self)
                if self.code is not None:
                    return
        else:
            if self.messages or msgs:
                self._owed += nbytes
            elif conn is not None and nbytes and not end_stream:
                conn.consumed(self, nbytes)
            if msgs:
                self.messages.extend(msgs)
                self.listener.stream_message(self)
        if end_stream and self.code is None:
            self._finish(
                StatusCode.INTERNAL, "server closed the stream without sending trailers", None
            )

    def _on_reset(self, code: int) -> None:
        if self.code is not None:
            return
        if code == fr.REFUSED_STREAM and not self.headers_received:
            # The server application never saw it (A6 §Transparent Retries).
            self.unprocessed = True
            self.refused = True
            self._finish(
                StatusCode.UNAVAILABLE, "stream refused by the server (REFUSED_STREAM)", None
            )
            return
        status = _RST_STATUS.get(code, StatusCode.INTERNAL)
        self._finish(
            status, f"stream terminated by RST_STREAM with error code: {fr.error_name(code)}", None
        )

    def _on_unprocessed(self, reason: str) -> None:
        if self.code is not None:
            return
        self.unprocessed = True
        self._finish(StatusCode.UNAVAILABLE, f"stream not processed by the server: {reason}", None)

    def _on_error(self, code: int, message: str) -> None:
        if self.code is not None:
            return
        self._finish(StatusCode(code), message, None)

    def _on_send_drained(self) -> None:
        self.listener.stream_writable(self)


_Parsed = tuple[str | None, str | None, str | None, str | None, str | None, list[tuple[str, str]]]


def _parse_fields(fields: list[tuple[str, str]]) -> _Parsed:
    """Split a header block into the protocol headers and the metadata (PROTOCOL-HTTP2.md)."""
    http_status = content_type = grpc_status = grpc_message = encoding = None
    md: list[tuple[str, str]] = _EMPTY_METADATA_PAIRS
    for name, value in fields:
        if name in _PROTOCOL_HEADERS:
            if name == ":status":
                http_status = value
            elif name == "content-type":
                content_type = value
            elif name == "grpc-status":
                grpc_status = value
            elif name == "grpc-message":
                grpc_message = value
            elif name == "grpc-encoding":
                encoding = value
        elif name[:1] != ":":
            if md is _EMPTY_METADATA_PAIRS:
                md = []
            md.append((name, value))
    return http_status, content_type, grpc_status, grpc_message, encoding, md


def _http_error(http_status: str, content_type: str | None) -> tuple[StatusCode, str]:
    try:
        code = status_from_http(int(http_status))
    except ValueError:
        code = StatusCode.UNKNOWN
    return code, (
        f"unexpected HTTP status code received from server: {http_status}"
        f" (content-type {content_type!r})"
    )

"""The stream of a traced attempt: reports its messages and its end to its AttemptTracer.

Used only for the attempts of calls that an observability plugin traces
(``grpc_lite._observability``): an untraced call's stream is a plain ``ClientStream`` and
pays nothing for this.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._codec import MessageDecoder
from ._stream import ClientStream, StreamListener

if TYPE_CHECKING:
    from .._observability import AttemptTracer
    from ..status import StatusCode


class TracedClientStream(ClientStream):
    """A ``ClientStream`` that reports its messages and its end to an ``AttemptTracer``."""

    __slots__ = ("_reported", "tracer")

    def __init__(
        self,
        tracer: AttemptTracer,
        listener: StreamListener,
        header_block: bytes,
        header_list_size: int,
        *,
        max_receive: int | None,
        unary_response: bool,
    ) -> None:
        super().__init__(
            listener,
            header_block,
            header_list_size,
            max_receive=max_receive,
            unary_response=unary_response,
        )
        self.tracer = tracer
        # The queue holds the tracer, not the stream: no reference cycle, so a finished
        # stream is freed at once rather than left to the cyclic garbage collector (one
        # collection every ~70 calls when it held the stream).
        reported = _ReportedMessages()
        reported._tracer = tracer
        reported._sizes = None
        self.messages = self._reported = reported

    def send(self, data: bytes, end_stream: bool) -> None:
        if data and self.code is None:
            self.tracer.message_sent(data)
        super().send(data, end_stream)

    def _on_headers(self, block: Any, end_stream: bool) -> None:
        super()._on_headers(block, end_stream)
        decoder = self._decoder
        if decoder is not None and type(decoder) is MessageDecoder:
            # A fresh decoder for a compressed response (nothing fed yet): one that also
            # tells the wire size of each compressed message, by the id() of its
            # decompressed bytes, until the message is queued.
            sizes: dict[int, int] = {}
            self._reported._sizes = sizes
            self._decoder = _SizingDecoder(self._max_receive, self._encoding, sizes)

    def _finish(self, code: StatusCode, details: str, trailing: Any) -> None:
        if self.code is None:
            # Before the call hears of it: the attempt ends before the call does.
            self.tracer.end(code, details)
        super()._finish(code, details, trailing)


class _ReportedMessages(deque[bytes]):
    """The received-message queue of a traced stream: reports each message as it is queued.

    Made by ``TracedClientStream``, which sets both slots (no Python ``__init__``: one frame
    less per call). ``_sizes``: the wire sizes of compressed messages (None until the
    response turns out compressed)."""

    __slots__ = ("_sizes", "_tracer")

    _sizes: dict[int, int] | None
    _tracer: AttemptTracer

    def append(self, msg: bytes) -> None:
        sizes = self._sizes
        self._tracer.message_received(len(msg), sizes.pop(id(msg), None) if sizes else None)
        super().append(msg)

    def extend(self, msgs: Iterable[bytes]) -> None:
        for msg in msgs:
            self.append(msg)


class _SizingDecoder(MessageDecoder):
    """A decoder that records the wire size of each compressed message it decompresses."""

    __slots__ = ("_wire_sizes",)

    def __init__(self, max_length: int | None, encoding: str | None, sizes: dict[int, int]) -> None:
        super().__init__(max_length, encoding)
        self._wire_sizes = sizes

    def _finish(self, payload: bytes | memoryview) -> bytes:
        compressed = self._compressed
        msg = super()._finish(payload)
        if compressed:
            self._wire_sizes[id(msg)] = len(payload)
        return msg

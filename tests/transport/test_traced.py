"""TracedClientStream: what a traced attempt's stream reports, and that it leaves no garbage
for the cycle collector."""

from __future__ import annotations

import gc
import gzip
from collections.abc import Sequence

from grpc_lite._transport._headers import HeaderBlock
from grpc_lite._transport._stream import DETACHED
from grpc_lite._transport._traced import TracedClientStream
from grpc_lite.status import StatusCode

HEADERS = [(":status", "200"), ("content-type", "application/grpc")]


class RecordingTracer:
    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def headers(self) -> Sequence[tuple[str, str]]:
        return ()

    def pick_delayed(self) -> None:
        self.events.append(("pick_delayed",))

    def message_sent(self, frame: bytes) -> None:
        self.events.append(("sent", len(frame) - 5))

    def message_received(self, size: int, compressed_size: int | None) -> None:
        self.events.append(("received", size, compressed_size))

    def end(self, code: StatusCode, details: str) -> None:
        self.events.append(("end", code, details))


def _frame(payload: bytes, compressed: bool = False) -> bytes:
    return bytes([compressed]) + len(payload).to_bytes(4, "big") + payload


def _unary(tracer: RecordingTracer) -> TracedClientStream:
    stream = TracedClientStream(tracer, DETACHED, b"", 0, max_receive=None, unary_response=True)
    stream.send(_frame(b"request"), True)
    stream._on_headers(HeaderBlock(HEADERS), False)
    stream._on_data(_frame(b"abc"), False)
    stream._on_headers(HeaderBlock([("grpc-status", "0")]), True)
    return stream


def test_reports_messages_and_end() -> None:
    tracer = RecordingTracer()
    stream = _unary(tracer)
    assert stream.code is StatusCode.OK
    assert tracer.events == [("sent", 7), ("received", 3, None), ("end", StatusCode.OK, "")]


def test_reports_compressed_wire_size() -> None:
    tracer = RecordingTracer()
    stream = TracedClientStream(tracer, DETACHED, b"", 0, max_receive=None, unary_response=False)
    stream._on_headers(HeaderBlock([*HEADERS, ("grpc-encoding", "gzip")]), False)
    wire = gzip.compress(b"x" * 100)
    stream._on_data(_frame(wire, compressed=True) + _frame(b"plain"), False)
    stream._on_headers(HeaderBlock([("grpc-status", "0")]), True)
    assert tracer.events == [
        ("received", 100, len(wire)),
        ("received", 5, None),
        ("end", StatusCode.OK, ""),
    ]
    assert list(stream.messages) == [b"x" * 100, b"plain"]


def test_a_finished_stream_is_freed_by_reference_counting() -> None:
    """No reference cycle (the message queue does not point back at its stream): a traced
    call leaves nothing for the cycle collector, as an untraced one does."""
    gc.collect()
    gc.disable()
    try:
        stream = _unary(RecordingTracer())
        del stream
        assert gc.collect() == 0
    finally:
        gc.enable()

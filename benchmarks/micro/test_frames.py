"""Micro-benchmarks of HTTP/2 frame encoding and splitting (grpc_lite._transport._frames)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("pytest_benchmark")
fr = pytest.importorskip("grpc_lite._transport._frames")
_hpack = pytest.importorskip("grpc_lite._transport._hpack")

# One small gRPC message (5-byte prefix + the 17-byte request of the end-to-end benchmark).
SMALL_MESSAGE = b"\x00\x00\x00\x00\x11" + b"\x0a\x0fgrpc_lite bench"
BIG_CHUNK = bytes(16384)  # one full DATA frame at the default SETTINGS_MAX_FRAME_SIZE

# The request header block of a unary call (pseudo-headers + call-definition headers).
REQUEST_FIELDS = [
    (":method", "POST"),
    (":scheme", "http"),
    (":path", "/grpc_lite.bench.Bench/Unary"),
    (":authority", "127.0.0.1:50051"),
    ("te", "trailers"),
    ("content-type", "application/grpc"),
    ("grpc-accept-encoding", "identity,deflate,gzip"),
    ("user-agent", "grpc-python-lite/0.1"),
]


@pytest.mark.parametrize("payload", [SMALL_MESSAGE, BIG_CHUNK], ids=["22B", "16KiB"])
def test_encode_data(benchmark: Any, payload: bytes) -> None:
    frame = benchmark(fr.encode_data, 1, payload, True)
    assert frame[9:] == payload
    assert frame[3] == 0x0  # DATA
    assert frame[4] & 0x1  # END_STREAM


def test_encode_headers(benchmark: Any) -> None:
    block = _hpack.encode_fields(REQUEST_FIELDS)
    frame = benchmark(fr.encode_headers, 1, block, False, 16384)
    assert frame[3] == 0x1  # HEADERS
    assert frame.endswith(block)


def _response_frames(stream_id: int) -> bytes:
    """What grpc-go sends for one unary response once its HPACK table is warm: HEADERS
    (indexed :status 200, content-type), DATA (one small message), HEADERS + END_STREAM
    (indexed grpc-status 0, grpc-message)."""
    return (
        fr.encode_headers(stream_id, b"\x88\xc0", False, 16384)
        + fr.encode_data(stream_id, SMALL_MESSAGE, False)
        + fr.encode_headers(stream_id, b"\xbf\xbe", True, 16384)
    )


@pytest.mark.parametrize("responses", [1, 100], ids=["1-response", "100-responses"])
def test_frame_reader_feed(benchmark: Any, responses: int) -> None:
    """Split one socket read holding `responses` unary responses (3 frames each)."""
    chunk = b"".join(_response_frames(2 * i + 1) for i in range(responses))
    reader = fr.FrameReader()
    frames = benchmark(reader.feed, chunk)
    assert len(frames) == 3 * responses
    assert reader.buffered == 0


def test_frame_reader_feed_split(benchmark: Any) -> None:
    """A response that arrives in two reads (the partial-frame path)."""
    chunk = _response_frames(1)
    cut = len(chunk) // 2
    first, second = chunk[:cut], chunk[cut:]
    reader = fr.FrameReader()

    def feed_both() -> int:
        return len(reader.feed(first)) + len(reader.feed(second))

    assert benchmark(feed_both) == 3

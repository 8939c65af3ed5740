"""Micro-benchmarks of the 5-byte gRPC message framing (grpc_lite._codec)."""

from __future__ import annotations

from typing import Any

import pytest

_codec = pytest.importorskip("grpc_lite._codec")
pytest.importorskip("pytest_benchmark")

# The same small protobuf message the end-to-end benchmark sends (helloworld.HelloRequest).
SMALL = b"\x0a\x0fgrpc_lite bench"
ONE_KIB = bytes(range(256)) * 4


@pytest.mark.parametrize("payload", [SMALL, ONE_KIB], ids=["17B", "1KiB"])
def test_frame_message(benchmark: Any, payload: bytes) -> None:
    framed = benchmark(_codec.frame_message, payload)
    assert framed[5:] == payload
    assert int.from_bytes(framed[1:5], "big") == len(payload)


def test_decode_small_messages(benchmark: Any) -> None:
    decoder_cls = getattr(_codec, "MessageDecoder", None)
    if decoder_cls is None or not hasattr(decoder_cls, "feed"):
        pytest.skip("grpc_lite._codec.MessageDecoder.feed not available")
    chunk = _codec.frame_message(SMALL) * 100  # one DATA frame carrying 100 messages

    def decode() -> Any:
        return decoder_cls(None, None).feed(chunk)

    messages = benchmark(decode)
    assert len(messages) == 100


def test_decode_one_message(benchmark: Any) -> None:
    """The unary hot path: one DATA payload that is exactly one message."""
    decoder_cls = getattr(_codec, "MessageDecoder", None)
    if decoder_cls is None or not hasattr(decoder_cls, "feed"):
        pytest.skip("grpc_lite._codec.MessageDecoder.feed not available")
    chunk = _codec.frame_message(SMALL)
    decoder = decoder_cls(None, None)
    messages = benchmark(decoder.feed, chunk)
    assert messages == [SMALL]


def test_decode_1mib_in_16k_chunks(benchmark: Any) -> None:
    """A 1 MiB message arriving as 64 DATA frames of 16 KiB (the download workload)."""
    decoder_cls = getattr(_codec, "MessageDecoder", None)
    if decoder_cls is None or not hasattr(decoder_cls, "feed"):
        pytest.skip("grpc_lite._codec.MessageDecoder.feed not available")
    framed = _codec.frame_message(bytes(1 << 20))
    chunks = [framed[i : i + 16384] for i in range(0, len(framed), 16384)]

    def decode() -> list[bytes]:
        decoder = decoder_cls(None, None)
        out: list[bytes] = []
        for c in chunks:
            out.extend(decoder.feed(c))
        return out

    messages = benchmark(decode)
    assert len(messages) == 1 and len(messages[0]) == 1 << 20

"""Micro-benchmarks of HPACK on the usual gRPC request and response headers.

Encode: ``grpc_lite._transport._hpack.encode_fields`` (what a method precomputes for its
request block, and what per-call metadata costs). Decode: the connection's cached decode path,
``HeaderDecoder.decode`` (a connection's ``_headers``), on the blocks a grpc-go server sends
(produced here by the ``hpack`` package's encoder, which indexes like grpc-go's:
literal-with-indexing the first time, one-byte indexed fields from then on).
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("pytest_benchmark")
_hpack = pytest.importorskip("grpc_lite._transport._hpack")
_connection = pytest.importorskip("grpc_lite._transport._connection")
hpack = pytest.importorskip("hpack")

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
METADATA_FIELDS = [("x-request-id", "0b6b1c2e-93c5-4c1e-9d7a-5f4e1c1d2a3b"), ("tenant", "bench")]

RESPONSE_HEADERS = [(":status", "200"), ("content-type", "application/grpc")]
RESPONSE_TRAILERS = [("grpc-status", "0"), ("grpc-message", "")]


def _server_blocks() -> tuple[bytes, bytes, bytes, bytes]:
    """(first headers, first trailers, warm headers, warm trailers) as a grpc-go server
    sends them on one connection."""
    enc = hpack.Encoder()
    first_h, first_t = enc.encode(RESPONSE_HEADERS), enc.encode(RESPONSE_TRAILERS)
    warm_h, warm_t = enc.encode(RESPONSE_HEADERS), enc.encode(RESPONSE_TRAILERS)
    return first_h, first_t, warm_h, warm_t


def _connection_obj() -> Any:
    # A Connection that is never started: a dummy listener and a write that drops bytes.
    return _connection.Connection(object(), lambda data: None)


def test_encode_request_headers(benchmark: Any) -> None:
    block = benchmark(_hpack.encode_fields, REQUEST_FIELDS)
    assert hpack.Decoder().decode(block) == REQUEST_FIELDS


def test_encode_metadata(benchmark: Any) -> None:
    """Per-call custom metadata (two fields): encoded on every call that has metadata."""
    block = benchmark(_hpack.encode_fields, METADATA_FIELDS)
    assert hpack.Decoder().decode(block) == METADATA_FIELDS


def test_decode_response_warm(benchmark: Any) -> None:
    """Headers + trailers of one response once the table is warm (the cached path)."""
    first_h, first_t, warm_h, warm_t = _server_blocks()
    conn = _connection_obj()
    decode = conn._headers.decode
    decode(first_h)
    decode(first_t)

    def one_response() -> tuple[Any, Any]:
        return decode(warm_h), decode(warm_t)

    headers, trailers = benchmark(one_response)
    assert headers.fields == RESPONSE_HEADERS
    assert trailers.fields == RESPONSE_TRAILERS


def test_decode_response_cold(benchmark: Any) -> None:
    """The first response on a connection: literal fields that insert into the table."""
    first_h, first_t, _, _ = _server_blocks()

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (_connection_obj()._headers.decode,), {}

    def first_response(decode: Any) -> tuple[Any, Any]:
        return decode(first_h), decode(first_t)

    headers, trailers = benchmark.pedantic(first_response, setup=setup, rounds=2000)
    assert headers.fields == RESPONSE_HEADERS
    assert trailers.fields == RESPONSE_TRAILERS

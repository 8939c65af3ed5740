"""Shared helpers for the frame-level client tests (tests/e2e/transport/test_wire*.py)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc_lite
from tests.h2peer import H2Peer, PeerConnection

UNARY = "/grpc.testing.TestService/UnaryCall"
EMPTY = "/grpc.testing.TestService/EmptyCall"
STREAMING_OUTPUT = "/grpc.testing.TestService/StreamingOutputCall"
STREAMING_INPUT = "/grpc.testing.TestService/StreamingInputCall"
FULL_DUPLEX = "/grpc.testing.TestService/FullDuplexCall"

TIMEOUT_RE = re.compile(r"^[0-9]{1,8}[HMSmun]$")
TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def decode_timeout(value: str) -> tuple[float, float]:
    """grpc-timeout -> (seconds, one unit in seconds)."""
    assert TIMEOUT_RE.match(value), value
    unit = TIMEOUT_UNITS[value[-1]]
    return int(value[:-1]) * unit, unit


@contextlib.asynccontextmanager
async def open_channel(
    peer: H2Peer, options: Sequence[tuple[str, Any]] | None = None, **kwargs: Any
) -> AsyncIterator[Any]:
    async with grpc_lite.insecure_channel(peer.target, options=options, **kwargs) as ch:
        yield ch


async def warm_up(ch: Any, peer: H2Peer) -> None:
    """One successful unary call, so the connection is READY and the peer's SETTINGS
    (and their ACK) have been exchanged."""
    handler = peer.handler
    from tests.h2peer import echo_unary

    peer.handler = echo_unary
    try:
        assert await ch.unary_unary(UNARY)(b"warm", timeout=5) == b"warm"
        await peer.connection.wait_settings_acked()
    finally:
        peer.handler = handler


def metadata_values(md: Any, key: str) -> list[Any]:
    return [v for k, v in (md or ()) if k == key]


def check_stream_windows(conn: PeerConnection, initial_stream_window: int) -> None:
    """Replay the timeline: no client DATA frame ever exceeded a send window, counting only
    the WINDOW_UPDATEs the peer had written before that frame arrived (CONFORMANCE 12)."""
    conn_window = 65535
    stream_windows: dict[int, int] = {}
    for rec in conn.timeline:
        if rec.direction == "out" and rec.type_name == "WINDOW_UPDATE":
            assert rec.increment is not None
            if rec.stream_id == 0:
                conn_window += rec.increment
            else:
                stream_windows.setdefault(rec.stream_id, initial_stream_window)
                stream_windows[rec.stream_id] += rec.increment
        elif rec.direction == "in" and rec.type_name == "DATA":
            w = stream_windows.setdefault(rec.stream_id, initial_stream_window)
            assert rec.length <= w, f"{rec} exceeds stream window {w}"
            assert rec.length <= conn_window, f"{rec} exceeds connection window {conn_window}"
            stream_windows[rec.stream_id] = w - rec.length
            conn_window -= rec.length

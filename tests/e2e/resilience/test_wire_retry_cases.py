"""Retry cases a grpcio server cannot produce, against the scripted HTTP/2 peer
(tests/h2peer.py): a repeated pushback trailer (112), and transparent retries next to the
retry policy and the throttle (113, 121, 133).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import grpc_lite
from tests.e2e.transport._wire import UNARY, open_channel
from tests.h2peer import H2Peer, PeerStream

SC = grpc_lite.StatusCode

pytestmark = [pytest.mark.integration, pytest.mark.timeout(15)]

REFUSED_STREAM = 0x7


def config(max_attempts: int, throttling: tuple[float, float] | None = None) -> str:
    sc: dict[str, Any] = {
        "methodConfig": [
            {
                "name": [{"service": "grpc.testing.TestService"}],
                "retryPolicy": {
                    "maxAttempts": max_attempts,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.01s",
                    "backoffMultiplier": 1,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
    if throttling is not None:
        sc["retryThrottling"] = {"maxTokens": throttling[0], "tokenRatio": throttling[1]}
    return json.dumps(sc)


async def ok(stream: PeerStream) -> None:
    await stream.wait_end()
    await stream.send_message(b"ok")
    await stream.send_trailers(0)


async def test_repeated_pushback_value_means_no_retry() -> None:
    """CONFORMANCE 112 (TRICKY): two grpc-retry-pushback-ms values in one Trailers-Only
    response ("100" and "200") mean "do not retry": 1 stream, UNAVAILABLE, although
    maxAttempts 3 allows more."""

    async def handler(stream: PeerStream) -> None:
        await stream.wait_end()
        await stream.trailers_only(
            14,
            "busy",
            [("grpc-retry-pushback-ms", "100"), ("grpc-retry-pushback-ms", "200")],
        )

    async with H2Peer(handler) as peer, open_channel(peer, service_config=config(3)) as ch:
        with pytest.raises(grpc_lite.RpcError) as info:
            await ch.unary_unary(UNARY)(b"x", timeout=5)
        assert info.value.code() is SC.UNAVAILABLE
        await asyncio.sleep(0.2)
        assert len(peer.streams) == 1


async def test_transparent_retry_does_not_count_as_attempt() -> None:
    """CONFORMANCE 113, 121 (TRICKY): stream 1 is refused (REFUSED_STREAM, never seen by the
    application), stream 2 fails UNAVAILABLE, stream 3 succeeds, under maxAttempts 2. The
    refused stream's transparent retry costs no attempt and does not raise the attempt
    count: grpc-previous-rpc-attempts is absent, absent, then "1"."""
    seen: list[PeerStream] = []

    async def handler(stream: PeerStream) -> None:
        seen.append(stream)
        if len(seen) == 1:
            await stream.reset(REFUSED_STREAM)
        elif len(seen) == 2:
            await stream.wait_end()
            await stream.trailers_only(14, "try again")
        else:
            await ok(stream)

    async with H2Peer(handler) as peer, open_channel(peer, service_config=config(2)) as ch:
        assert await ch.unary_unary(UNARY)(b"x", timeout=5) == b"ok"
        assert len(peer.streams) == 3
        headers = [s.header("grpc-previous-rpc-attempts") for s in peer.streams]
        assert headers == [None, None, "1"]


async def test_transparent_retries_are_free_under_throttling() -> None:
    """CONFORMANCE 133, 131: retryThrottling maxTokens 10, tokenRatio 0.1, maxAttempts 5.

    - An always-UNAVAILABLE call makes 5 attempts and leaves the bucket at 5 (throttled).
    - At that threshold, a call whose stream is refused once still succeeds through its
      transparent retry (5 -> 5.1: the refusal took no token).
    - 10 OK calls (6.1), another refused-once call (6.2 if free, 5.2 if the refusal had
      taken a token), then a failing call: 6.2 -> 5.2 > 5 is retried, 5.2 -> 4.2 is not.
      So it must make 2 attempts.
    """
    mode = {"kind": "fail", "refused": 0}

    async def handler(stream: PeerStream) -> None:
        if mode["kind"] == "fail":
            await stream.wait_end()
            await stream.trailers_only(14, "down")
        elif mode["kind"] == "refuse-once" and not mode["refused"]:
            mode["refused"] = 1
            await stream.reset(REFUSED_STREAM)
        else:
            await ok(stream)

    async with (
        H2Peer(handler) as peer,
        open_channel(peer, service_config=config(5, throttling=(10, 0.1))) as ch,
    ):
        method = ch.unary_unary(UNARY)

        async def streams_for(kind: str) -> int:
            mode.update(kind=kind, refused=0)
            before = len(peer.streams)
            if kind == "fail":
                with pytest.raises(grpc_lite.RpcError) as info:
                    await method(b"x", timeout=5)
                assert info.value.code() is SC.UNAVAILABLE
            else:
                assert await method(b"x", timeout=5) == b"ok"
            return len(peer.streams) - before

        assert await streams_for("fail") == 5
        assert await streams_for("refuse-once") == 2
        for _ in range(10):
            assert await streams_for("ok") == 1
        assert await streams_for("refuse-once") == 2
        assert await streams_for("fail") == 2

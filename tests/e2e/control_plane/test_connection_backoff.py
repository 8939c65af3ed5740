"""Connection backoff against a real listener (CONFORMANCE 77, 79; connection-backoff
interop): a TCP listener that accepts and immediately closes every connection, so no attempt
ever sees the server's SETTINGS. The gaps between accepted connections must follow the
backoff sequence (x1.6 per attempt, capped), i.e. a TCP accept alone never resets it."""

from __future__ import annotations

import asyncio
import itertools

import pytest

import grpc_lite
from tests.e2e.control_plane._util import SC, S, hello_error

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]

INITIAL = 0.1
MULTIPLIER = 1.6
MAX = 1.0
#: Tolerance on each gap: the 20 % jitter plus 50 ms of scheduling slack.
JITTER = 0.2
SLACK = 0.05


class _AcceptAndClose(asyncio.Protocol):
    """Records when each connection was accepted, then closes it at once."""

    def __init__(self, accepts: list[float]) -> None:
        self._accepts = accepts

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._accepts.append(asyncio.get_running_loop().time())
        transport.close()


def expected_gaps(n: int) -> list[float]:
    """The nominal delays between attempt k and k+1: INITIAL, then x1.6 each, capped."""
    gaps, backoff = [], INITIAL
    for _ in range(n):
        gaps.append(backoff)
        backoff = min(backoff * MULTIPLIER, MAX)
    return gaps


def check_gaps(accepts: list[float]) -> None:
    """The accept times follow the backoff sequence within tolerance (at least 5)."""
    assert len(accepts) >= 5, f"only {len(accepts)} attempts in 2.2 s: {accepts}"
    gaps = [b - a for a, b in itertools.pairwise(accepts)]
    for i, (gap, nominal) in enumerate(zip(gaps, expected_gaps(len(gaps)), strict=True)):
        low = nominal * (1 - JITTER) - SLACK
        high = nominal * (1 + JITTER) + SLACK
        assert low <= gap <= high, (
            f"gap {i} was {gap:.3f} s, expected {nominal:.3f} s (+-20% +-50 ms); "
            f"all gaps: {[round(g, 3) for g in gaps]}"
        )
    # Growth, stated directly: a backoff reset by every accept would keep gaps near 0.1 s.
    assert gaps[3] > 2 * gaps[0], gaps


async def test_backoff_grows_when_the_server_accepts_and_closes() -> None:
    """CONFORMANCE 77, 79 (76, 78): pick_first with initial backoff 100 ms, multiplier 1.6
    (default), max 1 s, min connect timeout 200 ms, and one wait_for_ready RPC with a ~2.2 s
    deadline against a listener that accepts and closes. At least 5 attempts are made; each
    gap between accepted connections lies within 20 % + 50 ms of the nominal 0.1, 0.16,
    0.256, 0.41, 0.66, 1.0 s: the gaps grow, so the backoff was not reset by the TCP accept.
    The RPC fails DEADLINE_EXCEEDED and the subchannel's snapshot counts the attempts."""
    loop = asyncio.get_running_loop()
    accepts: list[float] = []
    listener = await loop.create_server(lambda: _AcceptAndClose(accepts), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with grpc_lite.insecure_channel(
            f"ipv4:127.0.0.1:{port}",
            options=[
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
                ("grpc.min_reconnect_backoff_ms", 200),
            ],
        ) as ch:
            err = await hello_error(ch, deadline=2.2, wait_for_ready=True)
            assert err.code() is SC.DEADLINE_EXCEEDED, err
            assert ch.get_state() is S.TRANSIENT_FAILURE
            accepted = list(accepts)
            check_gaps(accepted)
            (sub,) = ch.snapshot().subchannels
            assert sub.address == f"127.0.0.1:{port}"
            # An attempt may have started and not been accepted yet.
            assert len(accepted) <= sub.connect_attempts <= len(accepted) + 1
            assert sub.last_error
    finally:
        listener.close()
        await listener.wait_closed()

"""The seed article's first experiment, as a test (issue 3): three backends behind one
round_robin channel, a call every 20 ms, and two of the backends stop in the middle of the
run (one gracefully, one at once). Without any retry policy, at most a few calls fail, only
with UNAVAILABLE, and every call after the last failure goes to the survivor
(CONFORMANCE 95, 102, 121-122)."""

from __future__ import annotations

import asyncio

import pytest

import grpc_lite
from tests.e2e.control_plane._util import (
    ROUND_ROBIN,
    SC,
    S,
    eventually,
    every,
    hello,
    ipv4_target,
    options,
    ready_addresses,
)
from tests.servers.harness import RunningServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

CALLS = 150
PERIOD = 0.02
GRACEFUL_STOP_AT = 40
HARD_STOP_AT = 80
MAX_FAILURES = 4


async def test_two_of_three_backends_stop_during_steady_calls(
    greeter_backends: list[RunningServer],
) -> None:
    """Issue 3 seed experiment, CONFORMANCE 95, 102: 150 fail-fast calls, one every 20 ms
    (each with a 2 s deadline, no retryPolicy), over round_robin on three backends; at call
    40 backend .2 stops with stop(grace=0.5) (in the background, so calls continue during
    its drain), at call 80 backend .3 stops at once. At most 4 calls fail, all UNAVAILABLE
    (except that the call in flight when either stop begins may get grpcio's own
    CANCELLED answer);
    every call after the last failure (and after both stops) is served by .1, and there are
    at least 40 such calls."""
    survivor, graceful, hard = greeter_backends
    results: list[str | grpc_lite.RpcError] = []
    stops: list[asyncio.Task[None]] = []
    stops_done_at: int | None = None
    loop = asyncio.get_running_loop()

    async with grpc_lite.insecure_channel(
        ipv4_target([b.address for b in greeter_backends]),
        options=options(),
        service_config=ROUND_ROBIN,
    ) as ch:
        ch.get_state(try_to_connect=True)
        await eventually(lambda: len(ready_addresses(ch)) == 3, "three READY subchannels")
        try:
            async for i in every(PERIOD, CALLS):
                if i == GRACEFUL_STOP_AT:
                    stops.append(loop.create_task(graceful.stop_async(0.5)))
                elif i == HARD_STOP_AT:
                    stops.append(loop.create_task(hard.stop_async(None)))
                if stops_done_at is None and len(stops) == 2 and all(t.done() for t in stops):
                    stops_done_at = i
                try:
                    results.append(await hello(ch, f"c{i}", deadline=2.0))
                except grpc_lite.RpcError as exc:
                    results.append(exc)
        finally:
            await asyncio.gather(*stops)
        assert ch.get_state() is S.READY

    failures = [(i, r) for i, r in enumerate(results) if isinstance(r, grpc_lite.RpcError)]
    assert len(failures) <= MAX_FAILURES, failures
    for i, err in failures:
        if i in (GRACEFUL_STOP_AT, HARD_STOP_AT) and err.code() is SC.CANCELLED:
            # The one call in flight when grpcio began a stop: grpcio's shutdown answers a
            # request it is holding with grpc-status CANCELLED (its own status; any client
            # sees it, and no retry is configured here).
            continue
        assert err.code() is SC.UNAVAILABLE, (i, err)
    # All three served before the first stop.
    assert set(results[:GRACEFUL_STOP_AT]) == {b.address for b in greeter_backends}
    assert stops_done_at is not None, "the backends took too long to stop"
    last_failure = failures[-1][0] if failures else -1
    after = results[max(last_failure + 1, stops_done_at) :]
    assert len(after) >= 40, (last_failure, stops_done_at)
    assert set(after) == {survivor.address}, after

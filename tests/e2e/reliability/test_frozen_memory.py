"""Calls that time out on frozen backends leave no memory behind (issue: ~120 B per
DEADLINE_EXCEEDED call on a SIGSTOPped backend, allocated at ``super().__init__(...)`` in
``UnaryUnaryCall.__init__``, still there after ``close()`` and ``gc.collect()``).

Three grpcio backends run in child processes on 127.0.0.1, .2 and .3 (one port) behind one
round_robin channel with a retry policy, ``healthCheckConfig`` and keepalive 1 s / 1 s. Once
every connection is READY and SERVING the backends are frozen with SIGSTOP: keepalive closes
the connections (no PING answer within 1 s), the reconnects time out waiting for the frozen
servers' SETTINGS, and the channel goes TRANSIENT_FAILURE. N wait-for-ready calls with a 1 s
deadline then all end DEADLINE_EXCEEDED; the channel is closed (still frozen) and the
backends are resumed. What grpc_lite still has allocated after ``close()`` and ``gc.collect()``
(tracemalloc, 25 frames, filtered to grpc_lite's files, compared with a snapshot taken with
the channel READY; the closed channel is still referenced, as ``async with ... as ch`` leaves
it) must stay under ``BOUND`` (64 KiB) at N = 100 and N = 400.

What held the memory: the balancer's ``ErrorPicker`` raised the *same* stored RpcError on
every pick. Python puts each raise's traceback entries in front of the ones the exception
already has, so the stored error kept a traceback entry (and frame) of every failed pick for
as long as that picker lived, and a closed channel keeps its balancer's last picker. CPython
(3.11-3.13) links a frame object that outlives its call to its caller's frame (``f_back``,
made as the call returns), so each kept frame kept the frames that called it, with their
locals: the call, and ``UnaryUnaryCall.__init__``'s ``**kwargs`` dict. That dict's 120-byte
key table had been allocated by the dict merge on the ``super().__init__`` line (small key
tables are recycled through a free list), hence that allocation site. Plain Python::

    err = ValueError("stored")

    def pick():
        raise err

    for _ in range(3):
        try:
            pick()
        except ValueError:
            pass
    # err.__traceback__ now has 6 entries (2 per raise) and keeps growing, each holding
    # a frame; `raise err.with_traceback(None)`, or clearing it once handled, stops that.

Measured here without the fix (PickerHolder now drops the traceback of whatever a picker
raised, and ErrorPicker raises its error without the previous traceback): N = 100 left
+269 KiB, N = 400 +1.1 MiB (~2.8 KiB per call); with it -7 KiB and +18 KiB. The
reconnect backoff (2 s, then ~3.2 s) keeps one picker in place for the whole 1 s of calls:
every failed reconnect publishes a new picker and drops the old one, which with the
issue's 250 ms..1 s backoff bounded what a single picker could collect.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import os
import signal
import socket
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

import grpc_lite
from tests.e2e.resilience._util import ChildGreeter, hello_callable, ipv4_target
from tests.protos.helloworld import helloworld_pb2

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(45)]

S = grpc_lite.ChannelConnectivity
SC = grpc_lite.StatusCode
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
DEADLINE = 1.0
# grpc_lite memory still allocated after close() may not exceed this, whatever N is.
BOUND = 64 * 1024

SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": "helloworld.Greeter"}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
        "healthCheckConfig": {"serviceName": ""},
    }
)
OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", 1000),  # raised to the 10 s floor; lowered below
    ("grpc.keepalive_timeout_ms", 1000),
    # A reconnect to a frozen server (the kernel accepts the TCP connection, SETTINGS never
    # comes) gives up after max(backoff, 250 ms): 2 s, then 3.2 s (+-20%) for the next one.
    # Every failed attempt publishes a new picker (and drops the old one); these delays
    # keep one picker in place for all of the 1 s calls (the 250 ms..1 s backoff
    # replaced it every few hundred ms, which bounded what it could collect).
    ("grpc.initial_reconnect_backoff_ms", 2000),
    ("grpc.max_reconnect_backoff_ms", 10000),
    ("grpc.min_reconnect_backoff_ms", 250),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def backends() -> Iterator[list[ChildGreeter]]:
    """Three greeter processes on .1/.2/.3, one port; every one killed at teardown (a
    frozen one too: SIGKILL needs no SIGCONT)."""
    children: list[ChildGreeter] = []
    try:
        for _ in range(3):
            port = _free_port()
            batch = [ChildGreeter(host, port) for host in HOSTS]
            children.extend(batch)
            for child in batch:
                child.start()
            try:
                for child in batch:
                    child.wait_started()
            except AssertionError:  # the port was taken on .2 or .3 meanwhile
                for child in batch:
                    child.close()
                continue
            yield batch
            return
        raise AssertionError("could not start three backends on one port")
    finally:
        for child in children:
            child.close()


def _signal(children: list[ChildGreeter], sig: signal.Signals) -> None:
    for child in children:
        assert child.proc is not None
        if child.proc.poll() is None:
            os.kill(child.proc.pid, sig)


async def _until(predicate: Any, seconds: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.02)


def _grpc_lite_memory(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    return snapshot.filter_traces([tracemalloc.Filter(True, "*grpc_lite*")])


@pytest.mark.parametrize("n", [100, 400])
async def test_timed_out_calls_on_frozen_backends_leave_nothing(
    backends: list[ChildGreeter], n: int
) -> None:
    """N calls time out (DEADLINE_EXCEEDED) while every backend is frozen; after close() and
    gc, grpc_lite's traced memory is back within BOUND of what it was with the channel
    READY, at N = 100 and N = 400."""
    target = ipv4_target([c.address for c in backends])
    request = helloworld_pb2.HelloRequest(name="frozen")
    codes: collections.Counter[Any] = collections.Counter()
    tracemalloc.start(25)
    try:
        ch = grpc_lite.insecure_channel(target, OPTIONS, service_config=SERVICE_CONFIG)
        frozen = False
        try:
            assert ch._keepalive is not None
            ch._keepalive.time = 1.0  # below the A8 floor, for this test only
            say = hello_callable(ch)
            ch.get_state(try_to_connect=True)
            await _until(
                lambda: sum(sc.state is S.READY for sc in ch.snapshot().subchannels) == 3,
                10.0,
                "three READY and SERVING subchannels",
            )
            for _ in range(10):
                await say(request, timeout=5)
            gc.collect()
            before = _grpc_lite_memory(tracemalloc.take_snapshot())

            _signal(backends, signal.SIGSTOP)
            frozen = True
            # Keepalive closes the connections, the reconnects time out: the channel
            # fails (round_robin's picker then fails every pick).
            await _until(lambda: ch.get_state() is S.TRANSIENT_FAILURE, 15.0, "TRANSIENT_FAILURE")
            # All N at once, on the picker of the failed channel; each waits for a READY
            # backend (wait_for_ready) until its deadline.
            calls = [say(request, timeout=DEADLINE, wait_for_ready=True) for _ in range(n)]
            for result in await asyncio.gather(*calls, return_exceptions=True):
                codes[result.code() if isinstance(result, grpc_lite.RpcError) else result] += 1
            del calls, result
            await ch.close()
        finally:
            await ch.close()
            if frozen:
                _signal(backends, signal.SIGCONT)
        await asyncio.sleep(0.1)
        gc.collect()
        after = _grpc_lite_memory(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    assert codes == {SC.DEADLINE_EXCEEDED: n}, codes
    diff = after.compare_to(before, "traceback")
    grown = sum(d.size_diff for d in diff)
    top = "\n".join(
        f"  {d.size_diff:+d} B ({d.count_diff:+d} blocks) at "
        + " <- ".join(f"{os.path.basename(f.filename)}:{f.lineno}" for f in reversed(d.traceback))
        for d in diff[:8]
    )
    print(f"\n{n} timed-out calls: grpc_lite memory after close {grown:+d} B (bound {BOUND})")
    assert grown <= BOUND, f"{n} timed-out calls left {grown} B:\n{top}"
    assert ch.get_state() is S.SHUTDOWN  # the closed channel is still referenced here

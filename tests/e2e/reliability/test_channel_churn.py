"""Channel churn: create, use and close many channels, one after another, in one process.

Against one grpcio TestService server in its own process (so the server's memory and
descriptors are not counted here), each channel connects, makes one unary call and is
closed. After a warm-up, two equal batches run under tracemalloc; asserted:

- memory still allocated (after gc) grows by less than ``BYTES_PER_CHANNEL`` per channel
  over the first batch, and the second batch adds no more than the first did plus that
  bound (no growth with N);
- no file descriptor (``/proc/self/fd``), task or client socket is left after a batch.

CI runs 300 channels (two batches of 150, about 5 s). Run the large form with::

    GRPC_LITE_CHURN_CHANNELS=10000 python -m pytest tests/e2e/reliability/test_channel_churn.py -s

(about 90 s on a 2-core machine; the timeout grows with the count).
"""

from __future__ import annotations

import gc
import logging
import os
import time
import tracemalloc
from collections.abc import Iterator

import pytest

import grpc_lite
from grpc_lite._proto import testing_pb2
from tests.e2e.reliability._util import established_to, fd_count, other_tasks, task_names
from tests.peers import grpcio
from tests.peers._base import PeerProcess

CHANNELS = int(os.environ.get("GRPC_LITE_CHURN_CHANNELS", "300"))
WARMUP = 30
# What one channel may leave behind (tracemalloc, after gc). A Channel with its
# subchannel, transport and call objects is tens of KiB, so a leak of any of them
# shows up far above this.
BYTES_PER_CHANNEL = 256

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,  # about 6 s with the server's start
    pytest.mark.timeout(max(60, int(CHANNELS * 0.05))),
]


@pytest.fixture
def server() -> Iterator[PeerProcess]:
    peer = grpcio.start(None)
    try:
        yield peer
    finally:
        peer.stop()


def _memory_filters() -> list[tracemalloc.Filter]:
    return [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
        tracemalloc.Filter(False, "<unknown>"),
        tracemalloc.Filter(False, logging.__file__, all_frames=True),
        tracemalloc.Filter(False, "*/_pytest/*", all_frames=True),
    ]


def _allocated() -> int:
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(_memory_filters())
    return sum(stat.size for stat in snapshot.statistics("filename"))


async def _churn(address: str, count: int) -> None:
    request = testing_pb2.SimpleRequest(response_size=8)
    for _ in range(count):
        async with grpc_lite.insecure_channel(address) as channel:
            call = channel.unary_unary(
                "/grpc.testing.TestService/UnaryCall",
                request_serializer=testing_pb2.SimpleRequest.SerializeToString,
                response_deserializer=testing_pb2.SimpleResponse.FromString,
            )
            reply = await call(request, timeout=10)
            assert len(reply.payload.body) == 8


async def test_channel_churn_leaves_nothing(server: PeerProcess) -> None:
    batch = CHANNELS // 2
    await _churn(server.address, WARMUP)
    fds, tasks = fd_count(), other_tasks()
    tracemalloc.start(8)
    try:
        base = _allocated()
        t0 = time.monotonic()
        await _churn(server.address, batch)
        first = _allocated()
        assert fd_count() == fds
        assert task_names(other_tasks() - tasks) == []
        await _churn(server.address, batch)
        second = _allocated()
        elapsed = time.monotonic() - t0
    finally:
        tracemalloc.stop()
    assert fd_count() == fds
    assert task_names(other_tasks() - tasks) == []
    assert established_to(server.port) == 0
    growth1, growth2 = first - base, second - first
    print(
        f"\nchannel churn: {2 * batch} channels in {elapsed:.1f} s; memory after "
        f"{batch}: {growth1:+d} B, after {2 * batch}: {second - base:+d} B "
        f"({(second - base) / (2 * batch):+.1f} B/channel); fds {fd_count() - fds:+d}, "
        f"tasks {len(other_tasks() - tasks):+d}"
    )
    assert growth1 < BYTES_PER_CHANNEL * batch
    assert growth2 < max(growth1, 0) + BYTES_PER_CHANNEL * batch

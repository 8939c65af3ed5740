"""Micro-benchmark of a call's deadline bookkeeping: ``DeadlineGroup.add`` then
``discard`` (a call that ends before its deadline, as nearly all do) with 1 or 50 other
calls of the same method and timeout pending. Both should cost the same: O(1) C dict
operations, and no loop timer is made or cancelled while other calls are pending.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("pytest_benchmark")
from grpc_lite._deadlines import DeadlineGroup


class _Call:
    def _on_deadline(self) -> None:
        raise AssertionError("no deadline comes during the benchmark")


@pytest.mark.parametrize("pending", [1, 50])
def test_deadline_add_discard(benchmark: Any, pending: int) -> None:
    loop = asyncio.new_event_loop()
    try:
        group = DeadlineGroup(loop)
        others = [_Call() for _ in range(pending)]
        for other in others:
            group.add(other, loop.time() + 30.0)
        call = _Call()

        def add_discard() -> None:
            group.add(call, loop.time() + 30.0)
            group.discard(call)

        benchmark(add_discard)
        assert len(group._calls) == pending  # the call left the group each time
    finally:
        loop.close()

"""Deadline groups: one loop timer for a method's calls with one timeout, each call still
ended at its own deadline to the nanosecond. Everything runs on a virtual-time loop
(``tests/load/_virtual.py``): the waits below take no real time."""

from __future__ import annotations

import asyncio
import logging

import pytest

from grpc_lite._deadlines import IDLE_GROUPS, DeadlineGroup, group_for
from tests.load._virtual import VirtualTimeLoop, advance, run_virtual

Ended = list[tuple[str, float]]


class FakeCall:
    def __init__(self, loop: asyncio.AbstractEventLoop, ended: Ended, name: str) -> None:
        self.loop, self.ended, self.name = loop, ended, name

    def _on_deadline(self) -> None:
        self.ended.append((self.name, round(self.loop.time(), 9)))


def _timers(loop: VirtualTimeLoop) -> int:
    return sum(1 for h in loop._scheduled if not h.cancelled())  # type: ignore[attr-defined]


def test_each_call_ends_at_its_own_deadline_with_one_timer() -> None:
    ended: Ended = []
    table: dict[float, DeadlineGroup] = {}

    async def main(loop: VirtualTimeLoop) -> None:
        for i, name in enumerate("abc"):
            if i:
                await advance(0.1)
            group = group_for(table, 1.0, loop)
            group.add(FakeCall(loop, ended, name), loop.time() + 1.0)
        assert len(table[1.0]._calls) == 3
        assert _timers(loop) == 1  # one timer for the three
        await advance(2)
        assert not table[1.0]._calls and _timers(loop) == 0  # idle: no timer left

    run_virtual(main)
    assert ended == [("a", 1.0), ("b", 1.1), ("c", 1.2)]


def test_a_call_that_ends_early_is_not_ended_and_the_rest_keep_their_time() -> None:
    ended: Ended = []

    async def main(loop: VirtualTimeLoop) -> None:
        group = DeadlineGroup(loop)
        first = FakeCall(loop, ended, "first")
        group.add(first, loop.time() + 5.0)
        await advance(1)
        group.add(FakeCall(loop, ended, "second"), loop.time() + 5.0)
        group.discard(first)  # it ended (OK) before its deadline
        group.discard(first)  # twice is harmless
        await advance(10)

    run_virtual(main)
    # The timer woke at 5.0 for nothing, then ended "second" at 6.0 exactly.
    assert ended == [("second", 6.0)]


def test_a_call_added_while_the_group_fires_gets_its_deadline() -> None:
    """A deadline that makes the application start another call at once (a retry loop):
    the new call joins the group being fired, which still keeps one timer."""
    ended: Ended = []

    async def main(loop: VirtualTimeLoop) -> None:
        group = DeadlineGroup(loop)

        class Retrying(FakeCall):
            def _on_deadline(self) -> None:
                super()._on_deadline()
                if self.name == "try1":
                    group.add(FakeCall(loop, ended, "try2"), loop.time() + 1.0)

        group.add(Retrying(loop, ended, "try1"), loop.time() + 1.0)
        await advance(1.5)
        assert _timers(loop) == 1
        await advance(1)

    run_virtual(main)
    assert ended == [("try1", 1.0), ("try2", 2.0)]


def test_a_raising_call_is_logged_and_the_others_still_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ended: Ended = []

    class Broken(FakeCall):
        def _on_deadline(self) -> None:
            raise RuntimeError("boom")

    async def main(loop: VirtualTimeLoop) -> None:
        group = DeadlineGroup(loop)
        group.add(Broken(loop, ended, "broken"), loop.time() + 1.0)
        group.add(FakeCall(loop, ended, "fine"), loop.time() + 1.0)
        await advance(2)

    with caplog.at_level(logging.ERROR, logger="grpc_lite"):
        run_virtual(main)
    assert ended == [("fine", 1.0)]
    assert "ending a call at its deadline raised" in caplog.text


def test_the_last_call_ending_cancels_the_timer() -> None:
    """Nothing in the loop refers to a method whose calls all ended (a closed channel is
    not kept for its calls' timeouts)."""

    async def main(loop: VirtualTimeLoop) -> None:
        group = DeadlineGroup(loop)
        a, b = FakeCall(loop, [], "a"), FakeCall(loop, [], "b")
        group.add(a, 30.0)
        group.add(b, 30.0)
        group.discard(a)
        assert _timers(loop) == 1
        group.discard(b)
        assert _timers(loop) == 0
        group.add(a, 31.0)  # the next call sets a timer again
        assert _timers(loop) == 1

    run_virtual(main)


def test_idle_groups_of_varying_timeouts_do_not_pile_up() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        table: dict[float, DeadlineGroup] = {}
        group_for(table, 0.5, loop).add(FakeCall(loop, [], "busy"), 0.5)
        for i in range(100):  # a propagated deadline: a new remaining time each call
            call = FakeCall(loop, [], str(i))
            group = group_for(table, 1.0 + i / 1000, loop)
            group.add(call, 2.0)
            group.discard(call)
            assert len(table) <= IDLE_GROUPS
        assert len(table[0.5]._calls) == 1  # a group with a pending call is never dropped

    run_virtual(main)

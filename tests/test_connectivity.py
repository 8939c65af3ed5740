"""Connectivity enum, subchannel transition table, aggregation and the state manager."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grpc_lite._connectivity import (
    SUBCHANNEL_TRANSITIONS,
    ConnectivityState,
    ConnectivityStateEvaluator,
    ConnectivityStateManager,
    aggregate,
    is_valid_subchannel_transition,
)

S = ConnectivityState
states = st.sampled_from(list(S))

EXPECTED_TRANSITIONS = {
    (S.IDLE, S.CONNECTING),
    (S.CONNECTING, S.READY),
    (S.CONNECTING, S.TRANSIENT_FAILURE),
    (S.CONNECTING, S.IDLE),
    (S.READY, S.IDLE),
    (S.TRANSIENT_FAILURE, S.IDLE),
    (S.TRANSIENT_FAILURE, S.CONNECTING),
    (S.IDLE, S.SHUTDOWN),
    (S.CONNECTING, S.SHUTDOWN),
    (S.READY, S.SHUTDOWN),
    (S.TRANSIENT_FAILURE, S.SHUTDOWN),
}


def test_enum_names_and_order() -> None:
    """Members carry grpc's names and ints 0..4 in grpc's order."""
    assert [(s.name, s.value) for s in S] == [
        ("IDLE", 0),
        ("CONNECTING", 1),
        ("READY", 2),
        ("TRANSIENT_FAILURE", 3),
        ("SHUTDOWN", 4),
    ]


@given(old=states, new=states)
def test_transition_table(old: S, new: S) -> None:
    """Every (state, target) pair is allowed exactly when the A61 table says so."""
    assert is_valid_subchannel_transition(old, new) == ((old, new) in EXPECTED_TRANSITIONS)
    assert ((old, new) in SUBCHANNEL_TRANSITIONS) == ((old, new) in EXPECTED_TRANSITIONS)


def test_shutdown_is_terminal_in_the_table() -> None:
    """No transition leaves SHUTDOWN."""
    assert not any(old is S.SHUTDOWN for old, _ in SUBCHANNEL_TRANSITIONS)


def _reference_aggregate(children: list[S]) -> S:
    live = [c for c in children if c is not S.SHUTDOWN]
    if S.READY in live:
        return S.READY
    if S.CONNECTING in live:
        return S.CONNECTING
    if S.IDLE in live:
        return S.IDLE
    return S.TRANSIENT_FAILURE


@given(st.lists(states, max_size=8))
def test_aggregate(children: list[S]) -> None:
    """READY > CONNECTING > IDLE > TRANSIENT_FAILURE; SHUTDOWN ignored; empty is TF."""
    assert aggregate(children) is _reference_aggregate(children)


def test_aggregate_empty_is_transient_failure() -> None:
    assert aggregate([]) is S.TRANSIENT_FAILURE


@given(st.lists(st.tuples(st.integers(0, 3), states), max_size=30))
def test_evaluator_matches_aggregate(steps: list[tuple[int, S]]) -> None:
    """The incremental evaluator agrees with aggregate() after any sequence of changes."""
    children = [S.SHUTDOWN] * 4  # SHUTDOWN = not present
    ev = ConnectivityStateEvaluator()
    for index, new in steps:
        got = ev.record_transition(children[index], new)
        children[index] = new
        assert got is aggregate(children)


async def test_manager_wait_returns_on_change() -> None:
    """A wait made in CONNECTING returns when READY arrives (item 69)."""
    m = ConnectivityStateManager(S.CONNECTING)
    waiter = asyncio.ensure_future(m.wait_for_state_change(S.CONNECTING))
    await asyncio.sleep(0)
    assert not waiter.done()
    assert m.update_state(S.READY)
    assert await waiter is S.READY


async def test_manager_wait_returns_at_once_when_already_different() -> None:
    m = ConnectivityStateManager()
    assert await m.wait_for_state_change(S.READY) is S.IDLE


async def test_cancelling_one_waiter_does_not_affect_others() -> None:
    """Waiters do not share a Future: cancelling one leaves the rest waiting."""
    m = ConnectivityStateManager()
    a = asyncio.ensure_future(m.wait_for_state_change(S.IDLE))
    b = asyncio.ensure_future(m.wait_for_state_change(S.IDLE))
    await asyncio.sleep(0)
    a.cancel()
    await asyncio.sleep(0)
    assert a.cancelled()
    assert not b.done()
    m.update_state(S.CONNECTING)
    assert await b is S.CONNECTING


async def test_same_state_update_is_not_a_change() -> None:
    """Updating to the current state wakes nobody and calls no listener."""
    m = ConnectivityStateManager()
    calls: list[tuple[S, S]] = []
    m.add_listener(lambda old, new: calls.append((old, new)))
    waiter = asyncio.ensure_future(m.wait_for_state_change(S.IDLE))
    assert not m.update_state(S.IDLE)
    await asyncio.sleep(0)
    assert not waiter.done()
    assert calls == []
    m.update_state(S.CONNECTING)
    await waiter


async def test_shutdown_is_terminal() -> None:
    """After SHUTDOWN no update applies, and waiting on SHUTDOWN returns at once."""
    m = ConnectivityStateManager(S.READY)
    assert m.update_state(S.SHUTDOWN)
    assert not m.update_state(S.IDLE)
    assert m.state is S.SHUTDOWN
    assert await m.wait_for_state_change(S.SHUTDOWN) is S.SHUTDOWN


async def test_timeout_on_stable_state() -> None:
    """A bounded wait in a stable state times out (the caller uses asyncio.timeout)."""
    m = ConnectivityStateManager()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):
            await m.wait_for_state_change(S.IDLE)


def test_listeners_see_every_transition_and_can_be_removed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Listeners get (old, new); transitions are logged as 'subject: OLD -> NEW'."""
    m = ConnectivityStateManager(subject="channel")
    calls: list[tuple[S, S]] = []
    remove = m.add_listener(lambda old, new: calls.append((old, new)))
    with caplog.at_level("DEBUG", logger="grpc_lite"):
        for new in (S.CONNECTING, S.READY, S.IDLE):
            m.update_state(new)
    remove()
    remove()
    m.update_state(S.CONNECTING)
    assert calls == list(itertools.pairwise([S.IDLE, S.CONNECTING, S.READY, S.IDLE]))
    assert "channel: IDLE -> CONNECTING" in caplog.text


def test_raising_listener_is_logged() -> None:
    m = ConnectivityStateManager()

    def bad(old: S, new: S) -> None:
        raise RuntimeError("x")

    m.add_listener(bad)
    assert m.update_state(S.CONNECTING)
    assert m.state is S.CONNECTING

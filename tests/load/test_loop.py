"""The load command's event loop: precise timers, and ``--busy-poll`` never blocking."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from grpc_lite._load import _loop
from grpc_lite._load._engine import Engine
from grpc_lite._load._spec import RunSpec, ScheduleSpec
from tests.load.test_schedule import METHOD


@pytest.fixture
def blocking_waits(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """Each blocking wait the selector makes (``select.select`` on the epoll), recorded."""
    waits: list[float | None] = []
    real = _loop.select.select

    def spy(r: Any, w: Any, x: Any, timeout: float | None = None) -> Any:
        waits.append(timeout)
        return real(r, w, x, timeout)

    monkeypatch.setattr(_loop.select, "select", spy)
    return waits


def test_busy_selector_polls_until_event_or_timeout(blocking_waits: list[float | None]) -> None:
    a, b = socket.socketpair()
    selector = _loop.PreciseSelector()
    try:
        selector.register(a, _loop.selectors.EVENT_READ)
        selector.busy = True
        assert selector.select(0.002) == []  # the timeout passed, polling
        b.send(b"x")
        ready = selector.select(None)  # no timeout: polls until the event
        assert [key.fileobj for key, _ in ready] == [a]
        assert blocking_waits == []
        selector.busy = False
        a.recv(1)
        assert selector.select(0.002) == []
        assert len(blocking_waits) == 1  # not busy: it blocks once spinning is over
    finally:
        selector.close()
        a.close()
        b.close()


def test_set_busy_poll_only_on_the_load_loops() -> None:
    foreign = asyncio.new_event_loop()
    ours = _loop.new_event_loop()
    try:
        assert _loop.set_busy_poll(foreign, True) is False
        assert _loop.set_busy_poll(ours, True) is True
        assert _loop._selectors[ours].busy is True
        assert _loop.set_busy_poll(ours, False) is True
        assert _loop._selectors[ours].busy is False
    finally:
        foreign.close()
        ours.close()


@pytest.mark.parametrize("busy", [True, False])
def test_engine_busy_poll_never_blocks_and_turns_it_off(
    busy: bool, blocking_waits: list[float | None]
) -> None:
    """An open-model run at 500/s with --busy-poll makes no blocking wait at all (the
    sends' gaps and the calls in flight are polled); without it the loop blocks between
    sends. After the run the loop blocks again."""
    spec = RunSpec(
        "fake", METHOD, total=None, duration=0.04, rate=ScheduleSpec("const", 500),
        concurrency=ScheduleSpec("const", 2), busy_poll=busy,
    )  # fmt: skip
    loop = _loop.new_event_loop()

    async def fake_call(request: bytes, **kwargs: Any) -> bytes:
        await asyncio.sleep(0.0005)
        return b""

    async def main() -> Any:
        engine = Engine(spec)
        engine._callables = [fake_call]
        return await engine.run()

    try:
        result = loop.run_until_complete(main())
        assert result.count == 20
        assert result.busy_poll is busy
        assert (blocking_waits == []) is busy
        assert _loop._selectors[loop].busy is False
    finally:
        loop.close()


def test_busy_poll_that_could_not_poll_is_a_warning() -> None:
    """Asked for but not done (an event loop that is not the load command's epoll loop,
    as on a platform without epoll): the report warns instead of staying silent."""
    from grpc_lite._load._command import run_warnings
    from grpc_lite._load._engine import ShardResult

    spec = RunSpec("fake", METHOD, busy_poll=True)
    (warning,) = run_warnings(spec, ShardResult(busy_poll=False))
    assert warning.startswith("--busy-poll: the workers' event loops could not poll")
    assert run_warnings(spec, ShardResult(busy_poll=True)) == []
    assert run_warnings(RunSpec("fake", METHOD), ShardResult()) == []

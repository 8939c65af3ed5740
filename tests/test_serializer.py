"""CallbackSerializer: FIFO, never re-entrant, errors logged, close drops work; SerializedTimer:
a timer whose callback is queued on the serializer (plugins' `call_later`)."""

from __future__ import annotations

import logging

import pytest

from grpc_lite._serializer import CallbackSerializer, SerializedTimer
from tests.fakes.clock import FakeClock


def test_runs_inline_when_idle() -> None:
    """With nothing queued, schedule() runs the callback before returning."""
    s = CallbackSerializer()
    seen: list[int] = []
    assert s.schedule(seen.append, 1)
    assert seen == [1]


def test_fifo_and_not_reentrant() -> None:
    """A callback that schedules more work sees it run after it returns, in order."""
    s = CallbackSerializer()
    log: list[str] = []

    def outer() -> None:
        log.append("outer-start")
        s.schedule(inner, "a")
        s.schedule(inner, "b")
        log.append("outer-end")

    def inner(tag: str) -> None:
        log.append(f"inner-{tag}")
        if tag == "a":
            s.schedule(inner, "c")

    s.schedule(outer)
    assert log == ["outer-start", "outer-end", "inner-a", "inner-b", "inner-c"]


def test_exceptions_are_logged_not_propagated(caplog: pytest.LogCaptureFixture) -> None:
    """A raising callback is logged on 'grpc_lite'; later callbacks still run."""
    errors: list[Exception] = []
    s = CallbackSerializer(on_error=errors.append)
    seen: list[int] = []

    def boom() -> None:
        s.schedule(seen.append, 2)
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="grpc_lite"):
        assert s.schedule(boom)
    assert seen == [2]
    assert [str(e) for e in errors] == ["boom"]
    assert any("raised" in r.getMessage() for r in caplog.records)
    assert all(r.name == "grpc_lite" for r in caplog.records)


def test_close_drops_later_work() -> None:
    """After close(), schedule() returns False and nothing runs."""
    s = CallbackSerializer()
    s.close()
    s.close()  # idempotent
    seen: list[int] = []
    assert not s.schedule(seen.append, 1)
    assert seen == []
    assert s.closed


def test_close_inside_callback_keeps_queued_work() -> None:
    """Work queued before close() (from inside a callback) still runs; later work does not."""
    s = CallbackSerializer()
    seen: list[str] = []

    def first() -> None:
        s.schedule(seen.append, "queued-before-close")
        s.close()
        assert not s.schedule(seen.append, "after-close")

    s.schedule(first)
    assert seen == ["queued-before-close"]


def test_base_exception_does_not_wedge_the_serializer() -> None:
    """A BaseException propagates, and the next schedule() still drains."""
    s = CallbackSerializer()

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        s.schedule(interrupt)
    seen: list[int] = []
    s.schedule(seen.append, 1)
    assert seen == [1]


# -- SerializedTimer ---------------------------------------------------------------------------


def test_timer_callback_runs_on_the_serializer() -> None:
    """A timer that fires while a callback runs waits for it; with none running, it runs at
    once. Either way it runs inside a drain, so what it schedules comes after it."""
    s = CallbackSerializer()
    clock = FakeClock()
    log: list[str] = []

    def on_timer(tag: str) -> None:
        log.append(f"{tag}-start")
        s.schedule(log.append, f"{tag}-report")
        log.append(f"{tag}-end")

    SerializedTimer(s, clock, 1.0, on_timer, "a")
    clock.advance(1.0)
    assert log == ["a-start", "a-end", "a-report"]

    log.clear()
    SerializedTimer(s, clock, 1.0, on_timer, "b")

    def busy() -> None:
        log.append("busy-start")
        clock.advance(1.0)  # fires while this callback runs
        log.append("busy-end")

    s.schedule(busy)
    assert log == ["busy-start", "busy-end", "b-start", "b-end", "b-report"]


def test_timer_zero_delay_is_queued_behind_the_running_callback() -> None:
    s = CallbackSerializer()
    clock = FakeClock()
    log: list[str] = []

    def running() -> None:
        SerializedTimer(s, clock, 0, log.append, "timer")
        log.append("running-end")

    s.schedule(running)
    assert log == ["running-end", "timer"]
    assert clock.pending() == []
    SerializedTimer(s, clock, -1, log.append, "idle")  # nothing running: at once
    assert log[-1] == "idle"


def test_timer_cancel_before_and_after_firing() -> None:
    """cancel() before the clock fires cancels the clock's timer; after it fired but before
    the serializer ran the callback, the callback is dropped. A run timer counts as done."""
    s = CallbackSerializer()
    clock = FakeClock()
    log: list[str] = []
    early = SerializedTimer(s, clock, 1.0, log.append, "early")
    early.cancel()
    assert early.cancelled() and clock.pending() == []

    late = SerializedTimer(s, clock, 1.0, log.append, "late")

    def busy() -> None:
        clock.advance(1.0)  # `late` is queued now
        late.cancel()

    s.schedule(busy)
    ran = SerializedTimer(s, clock, 1.0, log.append, "ran")
    assert not ran.cancelled()
    clock.advance(1.0)
    assert log == ["ran"]
    assert ran.cancelled()
    ran.cancel()  # harmless


def test_timer_on_a_closed_serializer_never_runs() -> None:
    s = CallbackSerializer()
    clock = FakeClock()
    log: list[str] = []
    timer = SerializedTimer(s, clock, 1.0, log.append, "x")
    s.close()
    clock.advance(1.0)
    assert log == []
    assert timer.cancelled()

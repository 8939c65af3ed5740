"""CallbackSerializer: FIFO, never re-entrant, errors logged, close drops work."""

from __future__ import annotations

import logging

import pytest

from grpc_lite._serializer import CallbackSerializer


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

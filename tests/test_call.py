"""The call object, sans-IO (grpc_lite/_call.py): the unary fast path, the hand-over to an
attempt runner, completion, cancellation and deadlines, on a fake channel, fake transports and
the fake clock. The runner's own moves are in tests/test_attempts.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from grpc_lite import _codec
from grpc_lite._attempts import Phase
from grpc_lite._call import StreamUnaryCall, UnaryStreamCall, UnaryUnaryCall
from grpc_lite._transport._stream import DETACHED
from grpc_lite.status import RpcError, StatusCode
from tests.fakes.call_context import (
    FakeCallContext,
    answer_headers,
    answer_message,
    answer_status,
    answer_trailers,
    request_frames,
)

KWARGS: dict[str, Any] = {"metadata": None, "wait_for_ready": None, "compression": None}


def _unary(ctx: FakeCallContext, timeout: float | None = 10.0) -> UnaryUnaryCall[Any, Any]:
    return UnaryUnaryCall(ctx.method(), b"request", timeout=timeout, **KWARGS)


async def test_unary_fast_path_one_stream_no_runner_no_task() -> None:
    """A READY pick: the request is queued with end-of-stream on the only stream at once
    (HEADERS and DATA in one write), and nothing else is made: no runner, no task."""
    ctx = FakeCallContext()
    tasks = asyncio.all_tasks()
    call = _unary(ctx)
    assert asyncio.all_tasks() == tasks
    assert call._runner is None
    [stream] = ctx.streams()
    assert call._stream is stream
    assert request_frames(stream) == ([_codec.frame_message(b"request")], True)
    assert ctx.backends[0].subchannel.calls_started == 1
    answer_headers(stream)
    answer_message(stream, b"reply")
    assert not call.done()
    answer_trailers(stream)
    assert call.done()
    assert await call == b"reply"
    assert ctx.finished == [(call, StatusCode.OK)]
    assert ctx.backends[0].subchannel.calls_succeeded == 1
    assert stream.listener is DETACHED  # no call <-> stream cycle left


async def test_server_streaming_fast_path_too() -> None:
    ctx = FakeCallContext()
    call = UnaryStreamCall(ctx.method(), b"request", timeout=None, **KWARGS)
    assert call._runner is None
    [stream] = ctx.streams()
    answer_headers(stream)
    answer_message(stream, b"one")
    answer_message(stream, b"two")
    answer_trailers(stream)
    assert [m async for m in call] == [b"one", b"two"]


async def test_a_pick_that_must_wait_hands_the_call_to_a_runner() -> None:
    ctx = FakeCallContext()
    ctx.set_ready(False)
    call = _unary(ctx)
    runner = call._runner
    assert runner is not None and runner.phase is Phase.PICKING
    assert ctx.streams() == []
    ctx.set_ready()
    await ctx.clock.advance_async(0)
    assert runner.phase is Phase.ACTIVE
    [stream] = ctx.streams()
    answer_status(stream, StatusCode.NOT_FOUND, "nope")
    with pytest.raises(RpcError) as info:
        await call
    assert (info.value.code(), info.value.details()) == (StatusCode.NOT_FOUND, "nope")
    assert call._runner is None  # dropped by _finish


async def test_a_failed_pick_without_a_policy_fails_the_call() -> None:
    ctx = FakeCallContext()
    ctx.set_ready(False)
    ctx.pick_error = RpcError(StatusCode.UNAVAILABLE, "no backend")
    call = _unary(ctx)
    with pytest.raises(RpcError) as info:
        await call
    assert (info.value.code(), info.value.details()) == (StatusCode.UNAVAILABLE, "no backend")


async def test_cancel_resets_the_stream_and_ends_the_call() -> None:
    ctx = FakeCallContext()
    call = _unary(ctx)
    [stream] = ctx.streams()
    assert call.cancel()
    assert not call.cancel()  # once
    assert call.cancelled() and call.done()
    assert stream.code is StatusCode.CANCELLED
    assert ctx.finished == [(call, StatusCode.CANCELLED)]
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_deadline_cancels_the_stream_with_deadline_exceeded() -> None:
    ctx = FakeCallContext()
    call = _unary(ctx, timeout=2.0)
    [stream] = ctx.streams()
    assert call.time_remaining() == 2.0
    ctx.clock.advance(2.0)
    assert stream.code is StatusCode.DEADLINE_EXCEEDED
    with pytest.raises(RpcError) as info:
        await call
    assert (info.value.code(), info.value.details()) == (
        StatusCode.DEADLINE_EXCEEDED,
        "Deadline Exceeded",
    )


async def test_done_callbacks_run_on_the_loop_after_completion() -> None:
    ctx = FakeCallContext()
    call = _unary(ctx)
    seen: list[Any] = []
    call.add_done_callback(seen.append)
    answer_status(ctx.streams()[0], StatusCode.ABORTED)
    assert seen == []
    ctx.clock.advance(0)  # call_soon on the fake loop
    assert seen == [call]


async def test_a_streaming_request_goes_through_a_runner_and_half_closes() -> None:
    """Client streaming: every message goes to the stream and is kept for a replay until
    the response headers; done_writing() ends the request stream."""
    ctx = FakeCallContext()
    call = StreamUnaryCall(ctx.method(), None, timeout=None, **KWARGS)
    runner = call._runner
    assert runner is not None and runner.phase is Phase.ACTIVE
    await call.write(b"a")
    await call.write(b"b")
    [stream] = ctx.streams()
    assert request_frames(stream) == (
        [_codec.frame_message(b"a"), _codec.frame_message(b"b")],
        False,
    )
    assert runner.replay_size == 2 * len(_codec.frame_message(b"a"))
    await call.done_writing()
    assert request_frames(stream)[1]
    answer_headers(stream)
    answer_message(stream, b"sum")
    answer_trailers(stream)
    assert await call == b"sum"


async def test_write_after_done_writing_is_a_usage_error() -> None:
    ctx = FakeCallContext()
    call = StreamUnaryCall(ctx.method(), None, timeout=None, **KWARGS)
    await call.done_writing()
    with pytest.raises(Exception, match="after done_writing"):
        await call.write(b"late")
    call.cancel()

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
from grpc_lite.balancer import DroppedRpcError, PickInfo
from grpc_lite.resolver import RpcConfig, RpcInfo
from grpc_lite.service_config import parse_service_config
from grpc_lite.status import RpcError, StatusCode
from tests.fakes.call_context import (
    PATH,
    FakeCallContext,
    answer_headers,
    answer_message,
    answer_status,
    answer_trailers,
    request_frames,
)

KWARGS: dict[str, Any] = {"metadata": None, "wait_for_ready": None, "compression": None}


def _unary(
    ctx: FakeCallContext, timeout: float | None = 10.0, wait_for_ready: bool | None = None
) -> UnaryUnaryCall[Any, Any]:
    kwargs = KWARGS | {"wait_for_ready": wait_for_ready}
    return UnaryUnaryCall(ctx.method(), b"request", timeout=timeout, **kwargs)


async def _failed(call: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        await call
    return info.value


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


# ---------------------------------------------------------------------------------------
# Per-RPC configuration: the resolver's ConfigSelector (gRFC A31) and balancer drops
# ---------------------------------------------------------------------------------------


class _Selector:
    """A ConfigSelector that records what it was asked and answers ``config`` (or raises
    ``error``); its on_committed counts its runs."""

    def __init__(
        self,
        method_config: dict[str, Any] | None = None,
        attributes: dict[str, Any] | None = None,
        error: Exception | None = None,
    ) -> None:
        self.infos: list[RpcInfo] = []
        self.committed = 0
        self.error = error
        mc = None
        if method_config is not None:
            config = {"methodConfig": [{"name": [{}], **method_config}]}
            mc = parse_service_config(config).method_config(PATH)
        self.config = RpcConfig(
            method_config=mc, attributes=attributes or {}, on_committed=self._on_committed
        )

    def _on_committed(self) -> None:
        self.committed += 1

    def select(self, info: RpcInfo) -> RpcConfig:
        self.infos.append(info)
        if self.error is not None:
            raise self.error
        return self.config


RETRY_POLICY = {
    "maxAttempts": 3,
    "initialBackoff": "1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 1,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
SERVICE_TIMEOUT_5S = {"methodConfig": [{"name": [{"service": "pkg.Service"}], "timeout": "5s"}]}


async def test_without_a_selector_the_pick_is_told_the_calls_metadata() -> None:
    ctx = FakeCallContext()
    call = UnaryUnaryCall(
        ctx.method(), b"request", timeout=None, metadata=[("k", "v"), ("b-bin", b"\x00")],
        wait_for_ready=None, compression=None,
    )  # fmt: skip
    _unary(ctx)  # no metadata: the method's own PickInfo, nothing built
    first, second = ctx.pick_infos
    assert (first.method, first.metadata) == (PATH, (("k", "v"), ("b-bin", b"\x00")))
    assert dict(first.attributes) == {}
    assert second.metadata == ()
    call.cancel()


async def test_the_selector_is_asked_per_call_and_its_method_config_replaces_the_services() -> None:
    """select(RpcInfo(path, metadata)) before the method config and the pick: its timeout
    wins over the service config's, its attributes and the metadata reach the pick."""
    ctx = FakeCallContext(service_config=SERVICE_TIMEOUT_5S)
    selector = _Selector({"timeout": "1s"}, attributes={"xds.cluster": "cluster:a"})
    ctx.config_selector = selector
    call = UnaryUnaryCall(
        ctx.method(), b"request", timeout=None, metadata=[("k", "v")], wait_for_ready=None,
        compression=None,
    )  # fmt: skip
    assert selector.infos == [RpcInfo(method=PATH, metadata=(("k", "v"),))]
    assert call.time_remaining() == 1.0
    [info] = ctx.pick_infos
    assert dict(info.attributes) == {"xds.cluster": "cluster:a"}
    assert info.metadata == (("k", "v"),)
    ctx.clock.advance(1.0)
    assert (await _failed(call)).code() is StatusCode.DEADLINE_EXCEEDED


async def test_a_selector_without_a_method_config_leaves_the_service_configs() -> None:
    ctx = FakeCallContext(service_config=SERVICE_TIMEOUT_5S)
    ctx.config_selector = _Selector()
    call = _unary(ctx, timeout=None)
    assert call.time_remaining() == 5.0
    call.cancel()


async def test_the_selectors_wait_for_ready_and_message_limits_apply() -> None:
    ctx = FakeCallContext()
    ctx.config_selector = _Selector({"waitForReady": True, "maxRequestMessageBytes": 16})
    ctx.set_ready(False)
    ctx.pick_error = RpcError(StatusCode.UNAVAILABLE, "no backend")
    waiting = _unary(ctx)  # wait-for-ready: the failing pick does not fail it
    await ctx.clock.advance_async(0)
    assert not waiting.done()
    too_big = UnaryUnaryCall(ctx.method(), b"x" * 17, timeout=None, **KWARGS)
    assert (await _failed(too_big)).code() is StatusCode.RESOURCE_EXHAUSTED
    waiting.cancel()


async def test_an_rpc_error_from_the_selector_fails_the_call_before_any_pick() -> None:
    ctx = FakeCallContext()
    ctx.config_selector = _Selector(error=RpcError(StatusCode.UNAVAILABLE, "no route"))
    call = _unary(ctx)
    assert call.done() and ctx.pick_infos == [] and ctx.streams() == []
    error = await _failed(call)
    assert (error.code(), error.details()) == (StatusCode.UNAVAILABLE, "no route")
    assert ctx.finished == [(call, StatusCode.UNAVAILABLE)]
    # The streaming kinds too: nothing is started.
    streaming = UnaryStreamCall(ctx.method(), b"r", timeout=None, **KWARGS)
    assert await streaming.code() is StatusCode.UNAVAILABLE
    client_streaming = StreamUnaryCall(ctx.method(), None, timeout=None, **KWARGS)
    assert (await _failed(client_streaming)).code() is StatusCode.UNAVAILABLE
    assert ctx.streams() == []


async def test_a_selectors_restricted_code_becomes_internal_and_a_crash_is_internal() -> None:
    """A54: a control plane may not hand out the application's codes."""
    ctx = FakeCallContext()
    ctx.config_selector = _Selector(error=RpcError(StatusCode.NOT_FOUND, "gone"))
    error = await _failed(_unary(ctx))
    assert error.code() is StatusCode.INTERNAL and "NOT_FOUND" in (error.details() or "")
    ctx.config_selector = _Selector(error=KeyError("bug"))
    error = await _failed(_unary(ctx))
    assert error.code() is StatusCode.INTERNAL and "bug" in (error.details() or "")


async def test_on_committed_runs_once_at_the_response_headers() -> None:
    ctx = FakeCallContext()
    selector = ctx.config_selector = _Selector()
    call = _unary(ctx)
    [stream] = ctx.streams()
    assert selector.committed == 0  # a transparent retry is still possible
    answer_headers(stream)
    assert selector.committed == 1
    answer_message(stream, b"reply")
    answer_trailers(stream)
    assert await call == b"reply"
    assert selector.committed == 1


async def test_on_committed_runs_once_when_the_call_ends_without_committing() -> None:
    ctx = FakeCallContext()
    selector = ctx.config_selector = _Selector()
    call = _unary(ctx)
    [stream] = ctx.streams()
    answer_status(stream, StatusCode.ABORTED)  # Trailers-Only: no response headers first
    assert call.done() and selector.committed == 1
    ctx.set_ready(False)
    waiting = _unary(ctx)  # no attempt yet
    waiting.cancel()
    assert selector.committed == 2


async def test_deadlines_of_one_method_and_timeout_end_each_call_on_time() -> None:
    """Calls sharing a timeout share one deadline timer; each still ends at its own
    deadline, and one that ended first is left alone."""
    ctx = FakeCallContext()
    first = _unary(ctx, timeout=2.0)
    ctx.clock.advance(0.5)
    second = _unary(ctx, timeout=2.0)
    first_stream, second_stream = ctx.streams()
    answer_headers(first_stream)
    answer_message(first_stream, b"reply")
    answer_trailers(first_stream)
    assert await first == b"reply"
    ctx.clock.advance(1.9)  # 2.4 s: past the first call's deadline, not the second's
    assert not second.done()
    ctx.clock.advance(0.1)
    assert second_stream.code is StatusCode.DEADLINE_EXCEEDED
    assert (await _failed(second)).code() is StatusCode.DEADLINE_EXCEEDED


async def test_a_late_method_config_timeout_shorter_than_the_calls_ends_it_then() -> None:
    """A service config that arrives after the call started, with a shorter timeout than
    the call's own: the call ends at start + that timeout (A31 / gRFC A6 timeout rule:
    the smaller of the two)."""
    ctx = FakeCallContext(config_known=False)
    call = _unary(ctx, timeout=10.0)
    ctx.clock.advance(0.5)
    ctx.config_selector = _Selector({"timeout": "2s"}, attributes={})
    ctx.publish_config(None)
    await ctx.clock.advance_async(0)
    assert call.time_remaining() == 1.5
    [stream] = ctx.streams()
    ctx.clock.advance(1.4)
    assert not call.done()
    ctx.clock.advance(0.1)
    assert stream.code is StatusCode.DEADLINE_EXCEEDED
    assert (await _failed(call)).code() is StatusCode.DEADLINE_EXCEEDED


async def test_a_call_made_before_the_first_resolver_result_asks_the_selector_then() -> None:
    ctx = FakeCallContext(config_known=False)
    selector = _Selector({"timeout": "2s"}, attributes={"a": 1})
    call = _unary(ctx, timeout=None)
    assert selector.infos == []
    ctx.config_selector = selector
    ctx.publish_config(None)
    await ctx.clock.advance_async(0)
    assert len(selector.infos) == 1
    assert call.time_remaining() == 2.0
    assert dict(ctx.pick_infos[-1].attributes) == {"a": 1}
    [stream] = ctx.streams()
    answer_headers(stream)
    answer_message(stream, b"reply")
    answer_trailers(stream)
    assert await call == b"reply"
    assert selector.committed == 1


async def test_a_late_selector_error_fails_the_waiting_call() -> None:
    ctx = FakeCallContext(config_known=False)
    call = _unary(ctx)
    ctx.config_selector = _Selector(error=RpcError(StatusCode.UNAVAILABLE, "no route"))
    ctx.publish_config(None)
    await ctx.clock.advance_async(0)
    assert (await _failed(call)).details() == "no route"
    assert ctx.streams() == []


async def test_a_dropped_pick_fails_even_a_wait_for_ready_call_at_once() -> None:
    ctx = FakeCallContext()
    ctx.drop = DroppedRpcError(StatusCode.UNAVAILABLE, "dropped by category lb")
    call = _unary(ctx, wait_for_ready=True)
    assert call.done() and ctx.streams() == []
    error = await _failed(call)
    assert (error.code(), error.details()) == (StatusCode.UNAVAILABLE, "dropped by category lb")
    # On the slow path too (the first pick had to wait).
    ctx.drop = None
    ctx.set_ready(False)
    waiting = _unary(ctx, wait_for_ready=True)
    ctx.drop = DroppedRpcError(StatusCode.UNAVAILABLE, "dropped later")
    ctx.set_ready()
    await ctx.clock.advance_async(0)
    assert (await _failed(waiting)).details() == "dropped later"
    assert ctx.streams() == []


async def test_the_only_attempts_pick_is_done_once_with_the_calls_status() -> None:
    """grpc-go: balancer.DoneInfo once per pick. The fast path's pick is done by the call
    itself (the channel only counts), also when the call ends by its deadline, a cancel or
    a response it cannot parse."""
    ctx = FakeCallContext(on_done=True)
    call = _unary(ctx)
    [stream] = ctx.streams()
    answer_headers(stream)
    answer_message(stream, b"reply")
    answer_trailers(stream)
    assert await call == b"reply"
    call = _unary(ctx, timeout=1.0)
    ctx.clock.advance(1.0)
    call = _unary(ctx)
    call.cancel()
    call.cancel()
    streaming = UnaryStreamCall(ctx.method(), b"request", timeout=None, **KWARGS)
    answer_status(ctx.streams()[-1], StatusCode.UNAVAILABLE, "down")
    assert await streaming.code() is StatusCode.UNAVAILABLE
    assert [record.codes for record in ctx.picks] == [
        [StatusCode.OK],
        [StatusCode.DEADLINE_EXCEEDED],
        [StatusCode.CANCELLED],
        [StatusCode.UNAVAILABLE],
    ]


async def test_calls_without_metadata_share_the_methods_rpc_info_and_the_routes_pick_info() -> None:
    """Per-call cost of a selector (issue 17): a call without metadata hands the selector
    its method's RpcInfo, and while the selector answers the very same RpcConfig (the xds
    selector has one per route) its picks get the PickInfo made for the first such call.
    A call with metadata, another RpcConfig and a retry each get a PickInfo of their own."""
    ctx = FakeCallContext(backends=2)
    selector = ctx.config_selector = _Selector(attributes={"xds.cluster": "cluster:a"})
    method = ctx.method()

    def call(**kwargs: Any) -> UnaryUnaryCall[Any, Any]:
        return UnaryUnaryCall(method, b"request", **(KWARGS | {"timeout": None} | kwargs))

    calls = [call(), call()]
    first, second = ctx.pick_infos
    assert first is second
    assert first == PickInfo(method=PATH, attributes=selector.config.attributes)
    assert first.attributes is selector.config.attributes
    assert selector.infos[0] is selector.infos[1] is method.rpc_info
    assert method.rpc_info == RpcInfo(method=PATH)
    # With metadata: the selector and the pick are told it.
    calls.append(call(metadata=[("k", "v")]))
    assert selector.infos[2] == RpcInfo(method=PATH, metadata=(("k", "v"),))
    with_metadata = ctx.pick_infos[2]
    assert with_metadata.metadata == (("k", "v"),) and with_metadata.attributes["xds.cluster"]
    calls.append(call())
    assert ctx.pick_infos[3] is first  # the metadata call did not replace the shared one
    # Another RpcConfig (a new route, a new selector): a new PickInfo, shared from then on.
    selector.config = RpcConfig(attributes={"xds.cluster": "cluster:b"})
    calls += [call(), call()]
    third, fourth = ctx.pick_infos[4:]
    assert third is fourth and third is not first
    assert dict(third.attributes) == {"xds.cluster": "cluster:b"}
    # A config without attributes leaves the method's own PickInfo.
    selector.config = RpcConfig()
    calls.append(call())
    assert ctx.pick_infos[-1] is method.pick_info
    for c in calls:
        c.cancel()


async def test_a_retry_of_a_shared_pick_info_gets_its_own_with_the_attributes() -> None:
    ctx = FakeCallContext(backends=2)
    config = {"retryPolicy": RETRY_POLICY}
    selector = ctx.config_selector = _Selector(config, attributes={"xds.cluster": "c"})
    method = ctx.method()
    calls = [UnaryUnaryCall(method, b"request", **(KWARGS | {"timeout": None})) for _ in "ab"]
    shared = ctx.pick_infos[0]
    assert ctx.pick_infos[1] is shared
    answer_status(ctx.streams()[0], StatusCode.UNAVAILABLE)
    ctx.clock.advance(1.2)  # the backoff, jittered up to 1.2 s (A6)
    retry = ctx.pick_infos[2]
    assert retry is not shared and retry.attributes is selector.config.attributes
    assert retry.previous_subchannels == (ctx.backends[0].subchannel,)
    assert shared.previous_subchannels == ()  # the shared one is never changed
    for c in calls:
        c.cancel()

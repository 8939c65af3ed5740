"""The attempt runner, sans-IO (grpc_lite/_attempts.py): its phase table and the moves of
retries, hedging, transparent retries and commits (gRFC A6), on a fake channel, fake
transports and the fake clock. The decisions themselves are tabled in tests/test_retry.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from grpc_lite._attempts import TRANSITIONS, AttemptRunner, Phase
from grpc_lite._call import StreamStreamCall, UnaryStreamCall, UnaryUnaryCall
from grpc_lite._transport import ClientStream
from grpc_lite.balancer import DroppedRpcError
from grpc_lite.resolver import RpcConfig, RpcInfo
from grpc_lite.service_config import parse_service_config
from grpc_lite.status import RpcError, StatusCode
from tests.fakes.call_context import (
    PATH,
    RETRY_CONFIG,
    FakeCallContext,
    answer_headers,
    answer_message,
    answer_status,
    answer_trailers,
    goaway,
    hedging_config,
    refuse,
    request_frames,
)

U = StatusCode.UNAVAILABLE
P = Phase


@pytest.fixture(autouse=True)
def _no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff jitter at its midpoint: a retry comes exactly initialBackoff (1 s) later."""
    monkeypatch.setattr("grpc_lite._attempts.random", SimpleNamespace(random=lambda: 0.5))


def _previous_attempts(stream: ClientStream) -> str | None:
    """The grpc-previous-rpc-attempts value in the stream's request headers, if any."""
    block = stream._header_block
    marker = b"grpc-previous-rpc-attempts"
    i = block.find(marker)
    if i < 0:
        return None
    n = block[i + len(marker)]
    return block[i + len(marker) + 1 : i + len(marker) + 1 + n].decode()


def _unary(ctx: FakeCallContext, **kwargs: Any) -> UnaryUnaryCall[Any, Any]:
    kwargs.setdefault("timeout", 10.0)
    kwargs.setdefault("metadata", None)
    kwargs.setdefault("wait_for_ready", None)
    kwargs.setdefault("compression", None)
    return UnaryUnaryCall(ctx.method(), b"request", **kwargs)


def _ok(stream: ClientStream, payload: bytes = b"reply") -> None:
    answer_headers(stream)
    answer_message(stream, payload)
    answer_trailers(stream)


async def _failed(call: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        await call
    return info.value


# ---------------------------------------------------------------------------------------
# The phase table
# ---------------------------------------------------------------------------------------

EXPECTED_MOVES = {
    (P.PICKING, P.ACTIVE),
    (P.PICKING, P.BACKOFF),
    (P.PICKING, P.HEDGING),
    (P.PICKING, P.COMMITTED),
    (P.ACTIVE, P.PICKING),
    (P.ACTIVE, P.BACKOFF),
    (P.ACTIVE, P.COMMITTED),
    (P.BACKOFF, P.PICKING),
    (P.BACKOFF, P.COMMITTED),
    (P.HEDGING, P.HEDGING_STOPPED),
    (P.HEDGING, P.COMMITTED),
    (P.HEDGING_STOPPED, P.COMMITTED),
} | {(p, P.DONE) for p in P if p is not P.DONE}


def _bare_runner() -> AttemptRunner:
    method = SimpleNamespace(path="/pkg.Service/M", channel=None)
    host = SimpleNamespace(_unary_request=True, _method=method)
    return AttemptRunner(host, None, None)  # type: ignore[arg-type]


def test_the_table_is_the_documented_one() -> None:
    assert TRANSITIONS == EXPECTED_MOVES


@pytest.mark.parametrize(("old", "new"), sorted(EXPECTED_MOVES))
def test_legal_moves_are_taken(old: Phase, new: Phase) -> None:
    runner = _bare_runner()
    runner.phase = old  # the test puts it there; the runner itself only moves through _enter
    runner._enter(new)
    assert runner.phase is new


@pytest.mark.parametrize(("old", "new"), sorted({(o, n) for o in P for n in P} - EXPECTED_MOVES))
def test_illegal_moves_raise(old: Phase, new: Phase) -> None:
    """Every move outside the table raises, self-moves and leaving DONE included."""
    runner = _bare_runner()
    runner.phase = old
    with pytest.raises(AssertionError, match=f"{old.name} -> {new.name}"):
        runner._enter(new)
    assert runner.phase is old


# ---------------------------------------------------------------------------------------
# Retries (retryPolicy)
# ---------------------------------------------------------------------------------------


async def test_retry_fails_retryable_backs_off_then_a_new_attempt() -> None:
    """A6: a retryable failure -> BACKOFF for the backoff delay -> a new attempt, which
    carries grpc-previous-rpc-attempts (A6 §Exposed Retry Metadata)."""
    ctx = FakeCallContext(service_config=RETRY_CONFIG, backends=2)
    call = _unary(ctx)
    runner = call._runner
    assert runner is not None and runner.phase is P.ACTIVE
    [first] = ctx.streams()
    assert _previous_attempts(first) is None
    answer_status(first, U, "try again")
    assert runner.phase is P.BACKOFF
    assert call._stream is None
    assert [t - ctx.clock.now() for t in ctx.clock.pending()] == [1.0, 10.0]  # backoff, deadline
    ctx.clock.advance(0.999)
    assert runner.phase is P.BACKOFF
    ctx.clock.advance(0.001)
    assert runner.phase is P.ACTIVE
    first_after, second = ctx.streams()
    assert first_after is first and second is call._stream
    assert _previous_attempts(second) == "1"
    assert request_frames(second) == ([request_frames(first)[0][0]], True)  # replayed
    _ok(second)
    assert await call == b"reply"
    assert call._runner is None  # closed (DONE) and dropped: no call <-> runner cycle
    assert runner.phase is P.DONE
    assert ctx.finished == [(call, StatusCode.OK)]
    assert [t.subchannel.calls_started for t in ctx.backends] == [1, 1]
    event, placed = ctx.events
    assert event.startswith("/pkg.Service/Method: attempt 1 failed UNAVAILABLE; retrying in ")
    assert placed == "/pkg.Service/Method: attempt 2 on b1, avoiding b0"


async def test_not_retryable_status_ends_the_call() -> None:
    ctx = FakeCallContext(service_config=RETRY_CONFIG)
    call = _unary(ctx)
    [first] = ctx.streams()
    answer_status(first, StatusCode.INVALID_ARGUMENT, "bad")
    error = await _failed(call)
    assert (error.code(), error.details()) == (StatusCode.INVALID_ARGUMENT, "bad")
    assert len(ctx.streams()) == 1
    assert ctx.events[-1].endswith("no retry (not_retryable)")


async def test_a_failed_pick_is_retried_too() -> None:
    """A fail-fast pick failure is an attempt's failure (CONFORMANCE 116): PICKING ->
    BACKOFF -> PICKING -> ACTIVE."""
    ctx = FakeCallContext(service_config=RETRY_CONFIG)
    ctx.set_ready(False)
    ctx.pick_error = RpcError(U, "no backend")
    call = _unary(ctx)
    runner = call._runner
    assert runner is not None and runner.phase is P.PICKING
    await ctx.clock.advance_async(0)  # the pick task runs and fails
    assert runner.phase is P.BACKOFF and ctx.streams() == []
    ctx.pick_error = None
    ctx.set_ready()
    ctx.clock.advance(1.0)
    assert runner.phase is P.ACTIVE
    [stream] = ctx.streams()
    assert _previous_attempts(stream) == "1"
    _ok(stream)
    assert await call == b"reply"


async def test_response_headers_commit_then_no_retry() -> None:
    """A6 §When Retries are Valid: response headers commit the call; a later retryable
    status is final."""
    ctx = FakeCallContext(service_config=RETRY_CONFIG)
    call = _unary(ctx)
    runner = call._runner
    assert runner is not None
    [stream] = ctx.streams()
    answer_headers(stream, [("x-meta", "1")])
    assert runner.phase is P.COMMITTED
    answer_trailers(stream, U, "gone")
    error = await _failed(call)
    assert error.code() is U
    assert len(ctx.streams()) == 1
    assert ctx.events[-1].endswith("no retry (committed)")
    assert (await call.initial_metadata())["x-meta"] == "1"


async def test_deadline_during_backoff_ends_the_call_and_starts_nothing() -> None:
    ctx = FakeCallContext(service_config=RETRY_CONFIG)
    call = _unary(ctx, timeout=0.5)
    runner = call._runner
    assert runner is not None
    answer_status(ctx.streams()[0], U)
    assert runner.phase is P.BACKOFF
    ctx.clock.advance(0.5)
    error = await _failed(call)
    assert (error.code(), error.details()) == (StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    assert runner.phase is P.DONE
    assert ctx.clock.pending() == []  # the backoff timer went with the call
    ctx.clock.advance(5)
    assert len(ctx.streams()) == 1


async def test_per_attempt_timeout_fails_the_attempt_retryably() -> None:
    """perAttemptRecvTimeout: the attempt is cancelled and retried whatever its code."""
    config = {
        "methodConfig": [
            {
                "name": [{"service": "pkg.Service"}],
                "retryPolicy": dict(
                    RETRY_CONFIG["methodConfig"][0]["retryPolicy"], perAttemptRecvTimeout="0.2s"
                ),
            }
        ]
    }
    ctx = FakeCallContext(service_config=config)
    call = _unary(ctx)
    runner = call._runner
    assert runner is not None
    [first] = ctx.streams()
    ctx.clock.advance(0.2)
    assert first.code is StatusCode.CANCELLED and first.per_attempt_timeout
    assert runner.phase is P.BACKOFF
    ctx.clock.advance(1.0)
    second = ctx.streams()[1]
    answer_headers(second)  # a response in time: committed, the timer is gone
    ctx.clock.advance(0.5)
    assert second.code is None
    answer_message(second, b"late but fine")
    answer_trailers(second)
    assert await call == b"late but fine"


# ---------------------------------------------------------------------------------------
# Hedging (hedgingPolicy)
# ---------------------------------------------------------------------------------------


async def test_hedge_timer_sends_a_second_attempt_first_response_commits() -> None:
    """A6 §Hedging Policy: after hedgingDelay a second attempt goes; the first response
    commits to it and the other attempts are cancelled."""
    ctx = FakeCallContext(service_config=hedging_config(), backends=3)
    call = _unary(ctx)
    runner = call._runner
    assert runner is not None and runner.phase is P.HEDGING
    assert len(ctx.streams()) == 1
    ctx.clock.advance(0.5)
    first, second = ctx.streams()
    assert _previous_attempts(second) == "1"
    assert runner.phase is P.HEDGING and call._stream is None
    answer_headers(second)
    assert runner.phase is P.COMMITTED and call._stream is second
    assert (first.code, first.details) == (StatusCode.CANCELLED, "another hedged attempt won")
    ctx.clock.advance(5)
    assert len(ctx.streams()) == 2  # committed: no third hedge
    answer_message(second, b"second")
    answer_trailers(second)
    assert await call == b"second"


async def test_hedging_non_fatal_failure_sends_the_next_at_once_fatal_ends() -> None:
    ctx = FakeCallContext(service_config=hedging_config(delay="10s"), backends=3)
    call = _unary(ctx)
    [first] = ctx.streams()
    answer_status(first, U)  # non-fatal: the next hedged attempt now, not in 10 s
    _, second = ctx.streams()
    assert _previous_attempts(second) == "1"
    answer_status(second, StatusCode.INTERNAL, "fatal")  # fatal: the call fails with it
    error = await _failed(call)
    assert (error.code(), error.details()) == (StatusCode.INTERNAL, "fatal")
    assert ctx.events[-1].endswith("hedged attempt failed INTERNAL (fatal)")


async def test_hedging_pushback_stop_stops_hedging_in_flight_one_finishes() -> None:
    """A6 §Pushback: "don't retry" on a hedged attempt -> no more hedges; the attempts in
    flight go on, and the call fails with the last failure when none is left."""
    ctx = FakeCallContext(service_config=hedging_config(max_attempts=4, delay="0.5s"), backends=3)
    call = _unary(ctx)
    runner = call._runner
    assert runner is not None
    ctx.clock.advance(0.5)
    first, second = ctx.streams()
    answer_status(first, U, "stop", [("grpc-retry-pushback-ms", "-1")])
    assert runner.phase is P.HEDGING_STOPPED
    ctx.clock.advance(5)
    assert len(ctx.streams()) == 2
    answer_status(second, U, "last")
    error = await _failed(call)
    assert (error.code(), error.details()) == (U, "last")


async def test_hedging_trailers_only_ok_wins() -> None:
    """A Trailers-Only OK (a server stream with no message) wins like response headers."""
    ctx = FakeCallContext(service_config=hedging_config(delay="0s"), backends=3)
    call = UnaryStreamCall(
        ctx.method(), b"request", timeout=None, metadata=None, wait_for_ready=None, compression=None
    )
    runner = call._runner
    assert runner is not None
    streams = ctx.streams()
    assert len(streams) == 3  # hedgingDelay 0: every attempt at once
    answer_status(streams[1], StatusCode.OK)
    assert runner.phase is P.DONE
    assert [s.code for s in streams] == [StatusCode.CANCELLED, StatusCode.OK, StatusCode.CANCELLED]
    assert [m async for m in call] == []
    assert await call.code() is StatusCode.OK


# ---------------------------------------------------------------------------------------
# Transparent retries (A6 §Transparent Retries)
# ---------------------------------------------------------------------------------------


async def test_refused_stream_is_retried_once_then_fails() -> None:
    """A refused stream is retried at once, not counted against maxAttempts; a second
    refusal is the attempt's failure (here, with no policy, the call's)."""
    ctx = FakeCallContext(backends=2)
    call = _unary(ctx)
    assert call._runner is None  # the fast path: no runner until one is needed
    [first] = ctx.streams()
    refuse(first)
    runner = call._runner
    assert runner is not None and runner.phase is P.PICKING
    ctx.clock.advance(0)  # the retry starts on the next loop iteration
    assert runner.phase is P.ACTIVE
    second = ctx.streams()[1]
    assert _previous_attempts(second) is None  # transparent: not a counted attempt
    refuse(second)
    error = await _failed(call)
    assert error.code() is U and "REFUSED_STREAM" in error.details()
    assert len(ctx.streams()) == 2


async def test_goaway_unprocessed_streams_are_retried_transparently_with_a_policy() -> None:
    ctx = FakeCallContext(service_config=RETRY_CONFIG)
    call = _unary(ctx)
    runner = call._runner
    assert runner is not None
    goaway(ctx.streams()[0])
    assert runner.phase is P.PICKING
    ctx.clock.advance(0)
    second = ctx.streams()[1]
    assert _previous_attempts(second) is None and runner.attempts == 1
    _ok(second)
    assert await call == b"reply"


async def test_transparent_retry_replays_a_streaming_request() -> None:
    ctx = FakeCallContext()
    call = StreamStreamCall(
        ctx.method(), None, timeout=None, metadata=None, wait_for_ready=None, compression=None
    )
    await call.write(b"one")
    await call.write(b"two")
    [first] = ctx.streams()
    refuse(first)
    ctx.clock.advance(0)
    second = ctx.streams()[1]
    frames, end = request_frames(second)
    assert frames == request_frames(first)[0] and len(frames) == 2 and not end
    await call.done_writing()
    assert request_frames(second)[1]
    answer_headers(second)
    runner = call._runner
    assert runner is not None and runner.phase is P.COMMITTED
    assert runner._replay is None  # the server saw the call: nothing kept for a replay


# ---------------------------------------------------------------------------------------
# The replay buffer (A6 §Memory Management)
# ---------------------------------------------------------------------------------------


async def test_replay_buffer_limit_commits_then_no_retry() -> None:
    ctx = FakeCallContext(service_config=RETRY_CONFIG, per_rpc_retry_buffer_size=100)
    call = StreamStreamCall(
        ctx.method(), None, timeout=None, metadata=None, wait_for_ready=None, compression=None
    )
    runner = call._runner
    assert runner is not None and runner.phase is P.ACTIVE
    await call.write(b"x" * 60)
    assert runner.phase is P.ACTIVE and ctx.retry_buffer_used == 65
    await call.write(b"y" * 60)  # 130 bytes > 100: committed
    assert runner.phase is P.COMMITTED
    assert ctx.retry_buffer_used == 0
    assert ctx.events[-1].endswith("replay buffer limit exceeded; committed")
    answer_status(ctx.streams()[0], U)
    error = await _failed_stream(call)
    assert error.code() is U
    assert len(ctx.streams()) == 1


async def _failed_stream(call: Any) -> RpcError:
    with pytest.raises(RpcError) as info:
        await call.read()
    return info.value


async def test_a_unary_request_too_large_to_replay_commits_before_the_first_attempt() -> None:
    ctx = FakeCallContext(service_config=RETRY_CONFIG, per_rpc_retry_buffer_size=4)
    call = _unary(ctx)
    runner = call._runner
    assert runner is not None and runner.phase is P.COMMITTED
    answer_status(ctx.streams()[0], U)
    assert (await _failed(call)).code() is U
    assert ctx.events[-1].endswith("no retry (committed)")


# ---------------------------------------------------------------------------------------
# The service config arriving late
# ---------------------------------------------------------------------------------------


async def test_a_call_waits_for_the_config_then_uses_its_policy() -> None:
    ctx = FakeCallContext(config_known=False)
    call = _unary(ctx)
    runner = call._runner
    assert runner is not None and runner.phase is P.PICKING and ctx.streams() == []
    ctx.publish_config(hedging_config(delay="0.5s"))
    await ctx.clock.advance_async(0)
    assert runner.phase is P.HEDGING and len(ctx.streams()) == 1
    ctx.clock.advance(0.5)
    assert len(ctx.streams()) == 2


# ---------------------------------------------------------------------------------------
# Per-RPC configuration (a resolver's ConfigSelector, gRFC A31) and balancer drops
# ---------------------------------------------------------------------------------------


class _Selector:
    """Answers one RpcConfig for every call; counts the runs of its on_committed."""

    def __init__(self, service_config: dict[str, Any] | None, **attributes: Any) -> None:
        mc = (
            parse_service_config(service_config).method_config(PATH)
            if service_config is not None
            else None
        )
        self.committed = 0
        self.config = RpcConfig(
            method_config=mc, attributes=attributes, on_committed=self._on_committed
        )

    def _on_committed(self) -> None:
        self.committed += 1

    def select(self, info: RpcInfo) -> RpcConfig:
        return self.config


async def test_the_selectors_retry_policy_runs_and_every_pick_gets_its_attributes() -> None:
    """With no retryPolicy in the service config, the selector's gives the call a runner;
    every attempt's PickInfo carries the selector's attributes and the call's metadata (a
    retry's also the subchannels tried); on_committed runs once, at the commit."""
    ctx = FakeCallContext(backends=2)
    selector = ctx.config_selector = _Selector(RETRY_CONFIG, cluster="c1")
    call = _unary(ctx, metadata=[("k", "v")])
    runner = call._runner
    assert runner is not None and runner.phase is P.ACTIVE
    [first] = ctx.streams()
    answer_status(first, U, "try again")
    ctx.clock.advance(1.0)
    [_, second] = ctx.streams()
    assert selector.committed == 0
    answer_headers(second)
    assert runner.phase is P.COMMITTED and selector.committed == 1
    answer_message(second, b"reply")
    answer_trailers(second)
    assert await call == b"reply"
    assert selector.committed == 1
    first_info, retry_info = ctx.pick_infos
    for info in (first_info, retry_info):
        assert dict(info.attributes) == {"cluster": "c1"}
        assert info.metadata == (("k", "v"),)
    assert retry_info.previous_subchannels == (ctx.backends[0].subchannel,)


async def test_on_committed_runs_when_a_hedge_wins() -> None:
    ctx = FakeCallContext(backends=3)
    selector = ctx.config_selector = _Selector(hedging_config())
    call = _unary(ctx)
    assert call._runner is not None and call._runner.phase is P.HEDGING
    ctx.clock.advance(0.5)
    _, second = ctx.streams()
    assert selector.committed == 0
    answer_headers(second)
    assert selector.committed == 1
    answer_message(second, b"second")
    answer_trailers(second)
    assert await call == b"second"
    assert selector.committed == 1


async def test_on_committed_runs_once_when_retries_run_out() -> None:
    ctx = FakeCallContext()
    selector = ctx.config_selector = _Selector(RETRY_CONFIG)
    call = _unary(ctx)
    for _ in range(3):
        answer_status(ctx.streams()[-1], U, "down")
        ctx.clock.advance(1.0)
    assert (await _failed(call)).code() is U
    assert len(ctx.streams()) == 3 and selector.committed == 1


async def test_a_dropped_pick_is_never_retried() -> None:
    """DroppedRpcError (grpc-go: balancer.DropRPCError): the call fails at once with the
    drop, whatever its retry policy, on its first attempt's pick or a retry's."""
    ctx = FakeCallContext(service_config=RETRY_CONFIG)
    ctx.drop = DroppedRpcError(U, "dropped: category lb")
    call = _unary(ctx)
    error = await _failed(call)
    assert (error.code(), error.details()) == (U, "dropped: category lb")
    assert ctx.streams() == [] and len(ctx.pick_infos) == 1
    ctx.drop = None
    call = _unary(ctx)
    answer_status(ctx.streams()[-1], U, "down")
    ctx.drop = DroppedRpcError(U, "dropped on the retry")
    ctx.clock.advance(1.0)
    assert (await _failed(call)).details() == "dropped on the retry"
    assert len(ctx.streams()) == 1
    assert ctx.clock.pending() == []  # no backoff armed, the deadline cancelled


async def test_a_dropped_hedge_fails_the_call_and_cancels_the_attempts_in_flight() -> None:
    ctx = FakeCallContext(service_config=hedging_config(), backends=3)
    call = _unary(ctx)
    [first] = ctx.streams()
    ctx.drop = DroppedRpcError(U, "dropped")
    ctx.clock.advance(0.5)
    assert (await _failed(call)).details() == "dropped"
    assert (first.code, first.details) == (U, "dropped")  # reset with the call's status


# ---------------------------------------------------------------------------------------
# Every pick's on_done runs once, with its attempt's status (grpc-go: balancer.DoneInfo,
# csAttempt.finish)
# ---------------------------------------------------------------------------------------

C = StatusCode.CANCELLED


def _codes(ctx: FakeCallContext) -> list[tuple[str, list[StatusCode]]]:
    return [(record.backend, record.codes) for record in ctx.picks]


async def test_a_retried_attempts_pick_is_done_when_it_fails_then_the_retrys() -> None:
    ctx = FakeCallContext(service_config=RETRY_CONFIG, backends=2, on_done=True)
    call = _unary(ctx)
    first = ctx.streams()[0]
    answer_status(first, U, "down")
    assert _codes(ctx) == [("b0", [U])]  # at the failure, not at the next attempt's start
    ctx.clock.advance(1.0)
    _ok(ctx.streams()[1])
    assert await call == b"reply"
    assert _codes(ctx) == [("b0", [U]), ("b1", [StatusCode.OK])]


async def test_retries_that_run_out_do_every_pick_once() -> None:
    ctx = FakeCallContext(service_config=RETRY_CONFIG, backends=2, on_done=True)
    call = _unary(ctx)
    for _ in range(3):
        answer_status(ctx.streams()[-1], U, "down")
        ctx.clock.advance(1.0)
    assert (await _failed(call)).code() is U
    assert _codes(ctx) == [("b0", [U]), ("b1", [U]), ("b0", [U])]


async def test_a_hedge_that_lost_is_done_cancelled_the_winner_with_the_calls_status() -> None:
    ctx = FakeCallContext(service_config=hedging_config(), backends=3, on_done=True)
    call = _unary(ctx)
    ctx.clock.advance(0.5)
    _, second = ctx.streams()
    answer_headers(second)
    assert _codes(ctx) == [("b0", [C]), ("b1", [])]
    answer_message(second, b"second")
    answer_trailers(second)
    assert await call == b"second"
    assert _codes(ctx) == [("b0", [C]), ("b1", [StatusCode.OK])]


async def test_hedges_that_failed_and_hedges_cut_short_by_the_call_are_done_once() -> None:
    ctx = FakeCallContext(service_config=hedging_config(max_attempts=4), backends=3, on_done=True)
    call = _unary(ctx)
    ctx.clock.advance(0.5)
    first, _ = ctx.streams()
    answer_status(first, U, "down")  # non-fatal: a third attempt at once
    assert len(ctx.streams()) == 3
    assert _codes(ctx) == [("b0", [U]), ("b1", []), ("b2", [])]
    answer_status(ctx.streams()[2], StatusCode.INTERNAL, "fatal")  # ends the call
    assert (await _failed(call)).code() is StatusCode.INTERNAL
    # The hedge still in flight is reset with the call's status, and done with it.
    assert _codes(ctx) == [
        ("b0", [U]),
        ("b1", [StatusCode.INTERNAL]),
        ("b2", [StatusCode.INTERNAL]),
    ]


async def test_a_transparent_retry_does_the_unprocessed_attempts_pick() -> None:
    """The fast path's only attempt, refused: the runner that takes over does its pick."""
    ctx = FakeCallContext(backends=2, on_done=True)
    call = _unary(ctx)
    assert call._runner is None
    refuse(ctx.streams()[0])
    assert _codes(ctx) == [("b0", [U])]
    ctx.clock.advance(0)
    _ok(ctx.streams()[1])
    assert await call == b"reply"
    assert _codes(ctx) == [("b0", [U]), ("b1", [StatusCode.OK])]


async def test_a_transparent_retry_with_a_policy_and_a_hedge_do_their_picks() -> None:
    ctx = FakeCallContext(service_config=RETRY_CONFIG, backends=2, on_done=True)
    call = _unary(ctx)
    goaway(ctx.streams()[0])
    ctx.clock.advance(0)
    _ok(ctx.streams()[1])
    assert await call == b"reply"
    assert _codes(ctx) == [("b0", [U]), ("b1", [StatusCode.OK])]
    ctx = FakeCallContext(service_config=hedging_config(), backends=2, on_done=True)
    call = _unary(ctx)
    refuse(ctx.streams()[0])
    ctx.clock.advance(0)
    _ok(ctx.streams()[1])
    assert await call == b"reply"
    assert _codes(ctx) == [("b0", [U]), ("b1", [StatusCode.OK])]


async def test_cancel_does_the_picks_of_the_attempts_in_flight_and_none_later() -> None:
    ctx = FakeCallContext(on_done=True)
    call = _unary(ctx)  # the fast path
    call.cancel()
    assert _codes(ctx) == [("b0", [C])]
    ctx = FakeCallContext(service_config=hedging_config(), backends=2, on_done=True)
    call = _unary(ctx)
    ctx.clock.advance(0.5)
    call.cancel()
    assert _codes(ctx) == [("b0", [C]), ("b1", [C])]
    ctx = FakeCallContext(service_config=RETRY_CONFIG, on_done=True)
    call = _unary(ctx)
    answer_status(ctx.streams()[0], U)
    call.cancel()  # during the backoff: no attempt in flight, no new pick
    ctx.clock.advance(5)
    assert _codes(ctx) == [("b0", [U])]


async def test_the_deadline_does_the_picks_even_one_never_started() -> None:
    ctx = FakeCallContext(service_config=RETRY_CONFIG, on_done=True)
    call = _unary(ctx, timeout=0.5)
    ctx.clock.advance(0.5)
    assert (await _failed(call)).code() is StatusCode.DEADLINE_EXCEEDED
    assert _codes(ctx) == [("b0", [StatusCode.DEADLINE_EXCEEDED])]
    # Past its deadline when picked: the stream is never started, the pick is done.
    for config in (None, RETRY_CONFIG):
        ctx = FakeCallContext(service_config=config, on_done=True)
        call = _unary(ctx, timeout=0)
        assert (await _failed(call)).code() is StatusCode.DEADLINE_EXCEEDED
        assert ctx.streams() == []
        assert _codes(ctx) == [("b0", [StatusCode.DEADLINE_EXCEEDED])]


async def test_a_pick_landing_after_the_call_ended_is_done() -> None:
    """The waiting pick task got its pick while the call ended (its status, not a start)."""
    ctx = FakeCallContext(on_done=True)
    ctx.set_ready(False)
    call = _unary(ctx)
    runner = call._runner
    assert runner is not None and runner._pick_task is not None
    wait_for_pick = ctx.wait_for_pick

    async def ends_the_call_first(info: Any, wait_for_ready: bool) -> Any:
        picked = await wait_for_pick(info, wait_for_ready)
        runner._pick_task = None  # so that the call's end does not cancel this task
        call._finish(StatusCode.UNAVAILABLE, "gone", None)
        return picked

    ctx.wait_for_pick = ends_the_call_first  # type: ignore[method-assign]
    runner._pick_task.cancel()
    runner._pick_task = asyncio.get_running_loop().create_task(runner._pick_slow())
    ctx.set_ready(True)
    assert (await _failed(call)).code() is U
    await asyncio.sleep(0)
    assert ctx.streams() == []
    assert _codes(ctx) == [("b0", [U])]

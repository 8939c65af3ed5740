"""Retries and hedges prefer hosts their call has not tried (issue 19; a grpc_lite extension
after Envoy's ``envoy.retry_host_predicates.previous_hosts``), sans-IO.

- The attempt runner tells the pick of every attempt after a call's first which subchannels
  the call's attempts used (`PickInfo.previous_subchannels`), counts where the attempt went
  (the channel's ``attempts_on_new_hosts`` / ``attempts_on_previous_hosts``, a subchannel's
  ``attempts_avoided``) and records a trace event; a first attempt's pick is unchanged.
- round_robin's pickers prefer a READY child whose subchannel is not among them, and pick as
  usual when every READY one was tried; pick_first has one READY subchannel and picks it.
- The channel option ``grpc_lite.avoid_previous_hosts`` and the policies'
  ``avoidPreviousHosts`` turn the preference off.

The real processes (three grpcio backends, one frozen at a time) are in
tests/e2e/resilience/test_frozen_backend.py.
"""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

from grpc_lite._call import UnaryUnaryCall
from grpc_lite._connectivity import ConnectivityState
from grpc_lite._options import parse_options
from grpc_lite._transport import ClientStream
from grpc_lite.balancer import ChannelState, NoSubchannelAvailable, PickInfo, PickResult
from grpc_lite.balancer.pick_first import PickFirstBuilder
from grpc_lite.balancer.round_robin import (
    RoundRobinBuilder,
    _ChildRoundRobinPicker,
    _RoundRobinPicker,
)
from grpc_lite.resolver import Address, ResolverState
from grpc_lite.service_config import parse_service_config
from grpc_lite.status import RpcError, StatusCode
from tests.fakes.balancer_channel import FakeBalancerChannel
from tests.fakes.call_context import (
    FakeCallContext,
    answer_headers,
    answer_message,
    answer_status,
    answer_trailers,
    refuse,
)

U = StatusCode.UNAVAILABLE
M = "/pkg.Service/Method"
S = ConnectivityState


@pytest.fixture(autouse=True)
def _no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff jitter at its midpoint: a retry comes exactly initialBackoff (1 s) later."""
    monkeypatch.setattr("grpc_lite._attempts.random", SimpleNamespace(random=lambda: 0.5))


# ---------------------------------------------------------------------------------------
# round_robin and pick_first pickers
# ---------------------------------------------------------------------------------------


def _results(*names: str) -> tuple[PickResult, ...]:
    return tuple(PickResult(subchannel=SimpleNamespace(name=n)) for n in names)  # type: ignore[arg-type]


def _names(results: list[PickResult]) -> list[str]:
    return [r.subchannel.name for r in results]  # type: ignore[attr-defined]


def _info(*previous: PickResult) -> PickInfo:
    return PickInfo(method=M, previous_subchannels=tuple(r.subchannel for r in previous))


def test_round_robin_prefers_the_next_ready_subchannel_the_call_has_not_tried() -> None:
    """A retry of a call that tried the subchannel at the usual position gets the next one it
    has not tried, and the positions passed over are used up (so the next pick does not get
    that one again: the tried backend's share is spread over the others); one that tried
    every READY subchannel gets the usual one and uses up one position, like a first
    attempt."""
    a, b, c = results = _results("A", "B", "C")
    usual = _RoundRobinPicker(results, 0)
    avoiding = _RoundRobinPicker(results, 0)
    first = PickInfo(method=M)
    assert _names([usual.pick(first) for _ in range(4)]) == ["A", "B", "C", "A"]
    assert _names(
        [
            avoiding.pick(_info(a)),  # position A -> B (A and B used up)
            avoiding.pick(_info(a)),  # C
            avoiding.pick(_info(c, a)),  # A -> B
            avoiding.pick(_info(a, b)),  # C
            avoiding.pick(_info(a, b, c)),  # A: all tried, the usual one
            avoiding.pick(first),  # B
        ]
    ) == ["B", "C", "B", "C", "A", "B"]


def test_round_robin_balancer_keeps_retries_off_a_tried_subchannel() -> None:
    """Through RoundRobinBalancer and its pick_first children: 30 retries of calls that tried
    A never go to A and spread over B and C; with only A and B READY, a call that tried both
    gets whatever the usual pick is."""
    ch = FakeBalancerChannel()
    lb = RoundRobinBuilder(rand=random.Random(1)).build(ch)
    addrs = ("10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1")
    state = ChannelState(resolver_state=ResolverState(tuple(Address(x) for x in addrs)))
    assert ch.call(lambda: lb.update_channel_state(state))
    sa, sb, sc = ch.subchannels
    for sub in (sa, sb, sc):
        sub.set_state(S.CONNECTING)
        sub.set_state(S.READY)
    tried_a = PickInfo(method=M, previous_subchannels=(sa,))
    picked = [ch.picker.pick(tried_a).subchannel for _ in range(30)]
    assert sa not in picked and picked.count(sb) == picked.count(sc) == 15
    sc.set_state(S.IDLE)  # C leaves READY: only A and B
    tried_both = PickInfo(method=M, previous_subchannels=(sa, sb))
    picked = [ch.picker.pick(tried_both).subchannel for _ in range(10)]
    assert picked.count(sa) == picked.count(sb) == 5


def _child(result: PickResult, seen: list[PickInfo]) -> Any:
    def pick(info: PickInfo) -> PickResult:
        seen.append(info)
        return result

    return pick


def _failing(exc: Exception, seen: list[PickInfo]) -> Any:
    def pick(info: PickInfo) -> PickResult:
        seen.append(info)
        raise exc

    return pick


def test_round_robin_asks_other_children_for_an_untried_subchannel() -> None:
    """Children whose pickers are not FixedResultPickers are asked in turn, with the call's
    info; a child that cannot pick is passed over; with none untried, the usual child's
    result, or its exception."""
    a, b, c = _results("A", "B", "C")
    seen: list[PickInfo] = []
    picker = _ChildRoundRobinPicker((_child(a, seen), _child(b, seen), _child(c, seen)), 0)
    info = _info(a)
    assert picker.pick(info) is b  # the usual child's A was tried: B (both used up)
    assert seen == [info, info]  # the children get the call's info
    seen.clear()
    assert picker.pick(_info(a, b)) is c
    assert len(seen) == 1
    assert picker.pick(_info(a, b, c)) is a  # all tried: the usual child's
    error = RpcError(U, "child failing")
    no_sub = NoSubchannelAvailable()
    picker = _ChildRoundRobinPicker(
        (_failing(no_sub, seen), _child(a, seen), _failing(error, seen), _child(c, seen)), 0
    )
    assert picker.pick(_info(a)) is c  # cannot pick; A tried; fails; C
    picker = _ChildRoundRobinPicker((_failing(no_sub, seen), _child(a, seen)), 0)
    with pytest.raises(NoSubchannelAvailable):
        picker.pick(_info(a))  # the usual child's exception: the other one was tried
    picker = _ChildRoundRobinPicker((_child(a, seen), _failing(error, seen)), 0)
    assert picker.pick(_info(a)) is a
    picker = _ChildRoundRobinPicker((_failing(error, seen), _child(a, seen)), 0)
    with pytest.raises(RpcError):
        picker.pick(_info(a))


def test_pick_first_has_one_ready_subchannel_and_picks_it() -> None:
    """pick_first shuts every other subchannel down once one is READY (A61): a retry of a
    call that tried it still gets it."""
    ch = FakeBalancerChannel()
    lb = PickFirstBuilder().build(ch)
    state = ChannelState(resolver_state=ResolverState((Address("10.0.0.1:1"),)))
    assert ch.call(lambda: lb.update_channel_state(state))
    [sa] = ch.subchannels
    sa.set_state(S.CONNECTING)
    sa.set_state(S.READY)
    assert ch.picker.pick(PickInfo(method=M, previous_subchannels=(sa,))).subchannel is sa


# ---------------------------------------------------------------------------------------
# The attempt runner
# ---------------------------------------------------------------------------------------


def _retry(**extra: Any) -> dict[str, Any]:
    policy = {
        "maxAttempts": 3,
        "initialBackoff": "1s",
        "maxBackoff": "1s",
        "backoffMultiplier": 1,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    return {"methodConfig": [{"name": [{"service": "pkg.Service"}], "retryPolicy": policy | extra}]}


def _hedging(**extra: Any) -> dict[str, Any]:
    policy = {"maxAttempts": 3, "hedgingDelay": "0.2s", "nonFatalStatusCodes": ["UNAVAILABLE"]}
    return {
        "methodConfig": [{"name": [{"service": "pkg.Service"}], "hedgingPolicy": policy | extra}]
    }


def _unary(ctx: FakeCallContext) -> UnaryUnaryCall[Any, Any]:
    return UnaryUnaryCall(
        ctx.method(), b"request", timeout=10.0, metadata=None, wait_for_ready=None, compression=None
    )


def _backend_of(ctx: FakeCallContext, stream: ClientStream) -> str:
    return next(t.name for t in ctx.backends if stream in t.streams)


def _previous(info: PickInfo) -> list[str]:
    return [sc.name for sc in info.previous_subchannels]  # type: ignore[attr-defined]


def _ok(stream: ClientStream) -> None:
    answer_headers(stream)
    answer_message(stream, b"reply")
    answer_trailers(stream)


async def test_a_retry_is_picked_away_from_the_subchannel_that_failed() -> None:
    """The first attempt's pick gets the method's own PickInfo (nothing new to build); the
    retry's lists b0, where the first one failed, and goes to b1 although the usual pick is
    b0 again. Counted on the channel and on b0, told in a trace event."""
    ctx = FakeCallContext(service_config=_retry(), backends=3)
    call = _unary(ctx)
    [first] = ctx.streams()
    assert ctx.pick_infos == [call._method.pick_info]
    answer_status(first, U)
    ctx._turn = 0  # the usual pick is b0 again
    ctx.clock.advance(1.0)
    second = ctx.streams()[1]
    assert _previous(ctx.pick_infos[-1]) == ["b0"]
    assert _backend_of(ctx, second) == "b1"
    assert (ctx.attempts_on_new_hosts, ctx.attempts_on_previous_hosts) == (1, 0)
    assert [t.subchannel.attempts_avoided for t in ctx.backends] == [1, 0, 0]
    assert ctx.events[-1] == f"{M}: attempt 2 on b1, avoiding b0"
    _ok(second)
    assert await call == b"reply"


async def test_hedges_are_picked_away_from_every_attempt_of_the_call() -> None:
    """maxAttempts 3: the second hedge avoids b0, the third b0 and b1 (the usual pick is b0
    each time), so the three attempts are on three backends."""
    ctx = FakeCallContext(service_config=_hedging(), backends=3)
    call = _unary(ctx)
    for _ in range(2):
        ctx._turn = 0
        ctx.clock.advance(0.2)
    streams = ctx.streams()
    assert [_backend_of(ctx, s) for s in streams] == ["b0", "b1", "b2"]
    assert [_previous(i) for i in ctx.pick_infos] == [[], ["b0"], ["b0", "b1"]]
    assert ctx.events[-1] == f"{M}: attempt 3 on b2, avoiding b0, b1"
    assert [t.subchannel.attempts_avoided for t in ctx.backends] == [2, 1, 0]
    _ok(streams[2])
    assert await call == b"reply"


async def test_a_per_attempt_timeout_moves_the_retry_elsewhere() -> None:
    """perAttemptRecvTimeout on a backend that does not answer (frozen): the retry goes to
    another one."""
    ctx = FakeCallContext(service_config=_retry(perAttemptRecvTimeout="0.3s"), backends=2)
    call = _unary(ctx)
    [first] = ctx.streams()
    ctx.clock.advance(0.3)
    assert first.per_attempt_timeout
    ctx._turn = 0
    ctx.clock.advance(1.0)
    second = ctx.streams()[1]
    assert _backend_of(ctx, second) == "b1"
    _ok(second)
    assert await call == b"reply"


async def test_a_transparent_retry_of_a_plain_call_avoids_the_refusing_subchannel() -> None:
    """A call without a policy whose only attempt was refused hands over to a runner: the
    transparent retry lists the subchannel that refused it."""
    ctx = FakeCallContext(backends=2)
    call = _unary(ctx)
    [first] = ctx.streams()
    refuse(first)
    ctx._turn = 0
    ctx.clock.advance(0)
    second = ctx.streams()[1]
    assert _previous(ctx.pick_infos[-1]) == ["b0"] and _backend_of(ctx, second) == "b1"
    _ok(second)
    assert await call == b"reply"


async def test_with_no_other_subchannel_the_retry_goes_back_and_says_why() -> None:
    ctx = FakeCallContext(service_config=_retry(), backends=1)
    call = _unary(ctx)
    answer_status(ctx.streams()[0], U)
    ctx.clock.advance(1.0)
    assert _previous(ctx.pick_infos[-1]) == ["b0"]
    assert (ctx.attempts_on_new_hosts, ctx.attempts_on_previous_hosts) == (0, 1)
    assert ctx.events[-1] == (
        f"{M}: attempt 2 on b0 again, which the call had tried "
        "(no READY subchannel it has not tried)"
    )
    _ok(ctx.streams()[1])
    assert await call == b"reply"


@pytest.mark.parametrize(
    ("options", "config"),
    [
        ({"avoid_previous_hosts": False}, _retry()),
        ({}, _retry(avoidPreviousHosts=False)),
        ({"avoid_previous_hosts": False}, _hedging()),
        ({}, _hedging(avoidPreviousHosts=False)),
    ],
    ids=["retry-option", "retry-config", "hedging-option", "hedging-config"],
)
async def test_turned_off_later_attempts_are_picked_like_first_ones(
    options: dict[str, Any], config: dict[str, Any]
) -> None:
    """The channel option or the policy's avoidPreviousHosts off: the later attempt's pick
    gets the method's own PickInfo and may land where the call has been; still counted."""
    ctx = FakeCallContext(service_config=config, backends=2, **options)
    call = _unary(ctx)
    first = ctx.streams()[0]
    if "hedgingPolicy" in config["methodConfig"][0]:
        ctx._turn = 0
        ctx.clock.advance(0.2)
    else:
        answer_status(first, U)
        ctx._turn = 0
        ctx.clock.advance(1.0)
    second = ctx.streams()[1]
    assert ctx.pick_infos == [call._method.pick_info] * 2
    assert _backend_of(ctx, second) == "b0"
    assert (ctx.attempts_on_new_hosts, ctx.attempts_on_previous_hosts) == (0, 1)
    assert [t.subchannel.attempts_avoided for t in ctx.backends] == [0, 0]
    assert ctx.events[-1].endswith("again, which the call had tried (avoidPreviousHosts is off)")
    _ok(second)
    assert await call == b"reply"


# ---------------------------------------------------------------------------------------
# The switches
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["retryPolicy", "hedgingPolicy"])
def test_avoid_previous_hosts_in_the_service_config(key: str) -> None:
    def policy(config: dict[str, Any]) -> Any:
        mc = parse_service_config(config).method_config(M)
        assert mc is not None
        return mc.retry_policy if key == "retryPolicy" else mc.hedging_policy

    base = (_retry() if key == "retryPolicy" else _hedging())["methodConfig"][0][key]
    wrap = lambda body: {"methodConfig": [{"name": [{"service": "pkg.Service"}], key: body}]}  # noqa: E731
    assert policy(wrap(base)).avoid_previous_hosts is True
    assert policy(wrap(base | {"avoidPreviousHosts": False})).avoid_previous_hosts is False
    assert policy(wrap(base | {"AvoidPreviousHosts": False})).avoid_previous_hosts is False
    assert policy(wrap(base | {"avoidPreviousHosts": None})).avoid_previous_hosts is True
    with pytest.raises(ValueError, match=rf"methodConfig\[0\]\.{key}\.avoidPreviousHosts: must"):
        policy(wrap(base | {"avoidPreviousHosts": "no"}))


def test_the_channel_option() -> None:
    assert parse_options(None).avoid_previous_hosts is True
    assert parse_options([("grpc_lite.avoid_previous_hosts", 0)]).avoid_previous_hosts is False
    assert parse_options([("grpc_lite.avoid_previous_hosts", 1)]).avoid_previous_hosts is True
    with pytest.raises(ValueError, match=r"grpc_lite\.avoid_previous_hosts"):
        parse_options([("grpc_lite.avoid_previous_hosts", 2)])

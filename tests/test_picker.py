"""PickerHolder (grpc-go pickerWrapper): picker generations and pick semantics (99-103),
and what a pick hands the call (`Picked`: the transport, the channel's own subchannel, the
result)."""

import asyncio
from typing import Any

import pytest

import grpc_lite
from grpc_lite import balancer
from grpc_lite._backoff import BackoffConfig
from grpc_lite._picker import PickerHolder
from grpc_lite._subchannel import Subchannel
from grpc_lite.balancer import ErrorPicker, NoSubchannelAvailable, PickInfo, PickResult, QueuePicker
from grpc_lite.resolver import Address
from grpc_lite.status import RpcError, StatusCode

INFO = PickInfo(method="/pkg.Svc/M")


class _Transport:
    def __init__(self, accepting: bool = True) -> None:
        self.accepting_streams = accepting


def _Sub(transport: Any) -> Subchannel:
    """A channel subchannel (never connected) whose transport is ``transport``."""
    sc = Subchannel(
        (Address("10.0.0.1:443"),),
        backoff=BackoffConfig(),
        ssl_context=None,
        server_hostname=None,
        on_state_change=lambda *args: None,
    )
    sc.transport = transport
    return sc


class _Fixed:
    def __init__(self, sub: Any) -> None:
        self.result = PickResult(subchannel=sub)

    def pick(self, info: PickInfo) -> PickResult:
        return self.result


class _Boom:
    def pick(self, info: PickInfo) -> PickResult:
        raise ZeroDivisionError("bad picker")


async def test_no_picker_then_ready_picker_wakes_waiter() -> None:
    """99: an RPC with no picker waits and is picked from the next generation."""
    holder = PickerHolder()
    task = asyncio.create_task(holder.wait_for_pick(INFO, wait_for_ready=False))
    await asyncio.sleep(0)
    assert not task.done()
    sub = _Sub(_Transport())
    holder.update(_Fixed(sub))
    transport, picked_sub, result = await asyncio.wait_for(task, 1)
    assert picked_sub is sub and result.subchannel is sub and transport is sub.transport


async def test_cancelling_one_waiter_leaves_the_others_waiting() -> None:
    """DESIGN.md: one Event per generation; cancelling one waiting RPC does not wake or
    cancel the others."""
    holder = PickerHolder()
    holder.update(QueuePicker())
    waiters = [asyncio.create_task(holder.wait_for_pick(INFO, False)) for _ in range(3)]
    await asyncio.sleep(0)
    waiters[0].cancel()
    await asyncio.sleep(0)
    assert waiters[0].cancelled()
    assert not waiters[1].done() and not waiters[2].done()
    sub = _Sub(_Transport())
    holder.update(_Fixed(sub))
    results = await asyncio.gather(*waiters[1:])
    assert all(picked[1] is sub for picked in results)


async def test_fail_fast_fails_on_transient_failure_picker() -> None:
    """100: a fail-fast RPC fails with the TF picker's UNAVAILABLE."""
    holder = PickerHolder()
    holder.update(ErrorPicker(RpcError(StatusCode.UNAVAILABLE, "all down")))
    with pytest.raises(RpcError) as info:
        await holder.wait_for_pick(INFO, wait_for_ready=False)
    assert info.value.code() is StatusCode.UNAVAILABLE
    assert info.value.details() == "all down"


async def test_wait_for_ready_waits_through_transient_failure() -> None:
    """101: wait_for_ready ignores a TF picker and waits for a READY one."""
    holder = PickerHolder()
    holder.update(ErrorPicker(RpcError(StatusCode.UNAVAILABLE, "all down")))
    task = asyncio.create_task(holder.wait_for_pick(INFO, wait_for_ready=True))
    await asyncio.sleep(0)
    assert not task.done()
    sub = _Sub(_Transport())
    holder.update(_Fixed(sub))
    assert (await asyncio.wait_for(task, 1))[1] is sub


async def test_picked_subchannel_not_ready_is_repicked() -> None:
    """102: a pick whose subchannel has no accepting transport waits for the next picker."""
    holder = PickerHolder()
    holder.update(_Fixed(_Sub(_Transport(accepting=False))))
    assert holder.pick_now(INFO) is None
    task = asyncio.create_task(holder.wait_for_pick(INFO, False))
    await asyncio.sleep(0)
    assert not task.done()
    good = _Sub(_Transport())
    holder.update(_Fixed(good))
    assert (await asyncio.wait_for(task, 1))[1] is good


@pytest.mark.parametrize(
    "code",
    [StatusCode.NOT_FOUND, StatusCode.INVALID_ARGUMENT, StatusCode.FAILED_PRECONDITION],
)
async def test_control_plane_codes_are_restricted(code: StatusCode) -> None:
    """103 (A54): a picker error with a restricted code becomes INTERNAL, original kept."""
    holder = PickerHolder()
    holder.update(ErrorPicker(RpcError(code, "lb says no")))
    with pytest.raises(RpcError) as info:
        await holder.wait_for_pick(INFO, wait_for_ready=False)
    assert info.value.code() is StatusCode.INTERNAL
    assert code.name in (info.value.details() or "")
    assert "lb says no" in (info.value.details() or "")


async def test_picker_exception_is_unavailable_for_fail_fast() -> None:
    """A picker that raises something unexpected fails fail-fast RPCs UNAVAILABLE."""
    holder = PickerHolder()
    holder.update(_Boom())
    with pytest.raises(RpcError) as info:
        await holder.wait_for_pick(INFO, wait_for_ready=False)
    assert info.value.code() is StatusCode.UNAVAILABLE
    assert holder.pick_now(INFO) is None


def test_queue_picker_queues() -> None:
    """99: QueuePicker raises NoSubchannelAvailable; pick_now takes the slow path."""
    with pytest.raises(NoSubchannelAvailable):
        QueuePicker().pick(INFO)


def test_pick_now_hands_over_the_transport_the_subchannel_and_the_result() -> None:
    holder = PickerHolder()
    sub = _Sub(_Transport())
    picker = _Fixed(sub)
    holder.update(picker)
    assert holder.pick_now(INFO) == (sub.transport, sub, picker.result)


class _Foreign:
    """A plugin's own "subchannel": not one the channel made."""

    state = grpc_lite.ChannelConnectivity.READY
    transport = _Transport()


@pytest.mark.parametrize("wait_for_ready", [False, True])
async def test_a_foreign_subchannel_fails_the_rpc_internal_naming_its_type(
    wait_for_ready: bool,
) -> None:
    """grpc-go pickerWrapper: "subconn returned from pick is type %T"; here the RPC fails
    INTERNAL at once (wait-for-ready too: a plugin's bug, not a transient state)."""
    holder = PickerHolder()
    holder.update(_Fixed(_Foreign()))
    assert holder.pick_now(INFO) is None  # the slow path names the problem
    with pytest.raises(RpcError) as info:
        await holder.wait_for_pick(INFO, wait_for_ready=wait_for_ready)
    assert info.value.code() is StatusCode.INTERNAL
    assert "tests.test_picker._Foreign" in (info.value.details() or "")


class _ForeignBalancer:
    """A plugin policy whose picker returns its own object as the subchannel."""

    def __init__(self, channel: balancer.BalancerChannel) -> None:
        self.channel = channel

    def update_channel_state(self, state: balancer.ChannelState) -> bool:
        self.channel.update_state(
            balancer.BalancerState(
                state=grpc_lite.ChannelConnectivity.READY, picker=_Fixed(_Foreign())
            )
        )
        return True

    def resolver_error(self, error: Exception) -> None:
        pass

    def exit_idle(self) -> None:
        pass

    def close(self) -> None:
        pass


class _ForeignBuilder:
    name = "test_foreign_subchannel"

    def build(self, channel: balancer.BalancerChannel) -> _ForeignBalancer:
        return _ForeignBalancer(channel)

    def parse_config(self, config: Any) -> None:
        return None


async def test_a_plugin_picker_returning_a_foreign_subchannel_fails_the_call() -> None:
    """Through a real channel: the call fails INTERNAL naming the type (it used to be an
    AttributeError out of the pick)."""
    builder = _ForeignBuilder()
    balancer.register(builder)
    try:
        config = {"loadBalancingConfig": [{builder.name: {}}]}
        async with grpc_lite.insecure_channel("127.0.0.1:1", service_config=config) as ch:
            with pytest.raises(grpc_lite.RpcError) as info:
                await ch.unary_unary("/pkg.Svc/M")(b"x", timeout=5)
        assert info.value.code() is StatusCode.INTERNAL
        assert "_Foreign" in (info.value.details() or "")
    finally:
        balancer.unregister_for_testing(builder.name)


class _Dropping:
    def __init__(self, code: StatusCode = StatusCode.UNAVAILABLE) -> None:
        self.error = balancer.DroppedRpcError(code, "dropped: category lb")
        self.picks = 0

    def pick(self, info: PickInfo) -> PickResult:
        self.picks += 1
        raise self.error


async def test_a_drop_is_raised_by_the_fast_pick_and_by_a_wait_for_ready_pick() -> None:
    """DroppedRpcError (grpc-go: balancer.DropRPCError) is never a reason to wait or to
    re-pick: pick_now raises it (the slow path would pick a second time), and so does
    wait_for_pick with wait_for_ready, at once; a fresh error each time, without the
    picker's traceback."""
    holder = PickerHolder()
    picker = _Dropping()
    holder.update(picker)
    with pytest.raises(balancer.DroppedRpcError) as fast:
        holder.pick_now(INFO)
    assert (fast.value.code(), fast.value.details()) == (
        StatusCode.UNAVAILABLE,
        "dropped: category lb",
    )
    assert fast.value is not picker.error and picker.error.__traceback__ is None
    with pytest.raises(balancer.DroppedRpcError):
        await asyncio.wait_for(holder.wait_for_pick(INFO, wait_for_ready=True), 1)
    assert picker.picks == 2


async def test_a_drop_with_a_restricted_code_becomes_internal() -> None:
    """A54: a balancer may not hand out the application's codes, dropped or not."""
    holder = PickerHolder()
    holder.update(_Dropping(StatusCode.NOT_FOUND))
    with pytest.raises(balancer.DroppedRpcError) as info:
        holder.pick_now(INFO)
    assert info.value.code() is StatusCode.INTERNAL
    assert "NOT_FOUND" in (info.value.details() or "")


class _Counted:
    """A picker whose every result has its own on_done, recorded in ``done``."""

    def __init__(self, sub: Any) -> None:
        self.sub = sub
        self.done: list[list[StatusCode]] = []
        self.results: list[PickResult] = []

    def pick(self, info: PickInfo) -> PickResult:
        codes: list[StatusCode] = []
        self.done.append(codes)
        result = PickResult(subchannel=self.sub, on_done=codes.append)
        self.results.append(result)
        return result


async def test_a_discarded_pick_is_done_unavailable_once_the_used_one_is_not() -> None:
    """A pick whose subchannel is no longer READY is discarded and re-picked; its on_done
    runs then, once, with UNAVAILABLE (grpc-go's pickerWrapper runs Done for it too, with an
    empty DoneInfo; see grpc_lite/_picker.py). The pick handed to the call is not done here:
    the call does it with its attempt's status."""
    holder = PickerHolder()
    stale = _Counted(_Sub(_Transport(accepting=False)))
    holder.update(stale)
    assert holder.pick_now(INFO) is None
    assert stale.done == [[StatusCode.UNAVAILABLE]]
    task = asyncio.create_task(holder.wait_for_pick(INFO, False))
    await asyncio.sleep(0)
    assert stale.done == [[StatusCode.UNAVAILABLE]] * 2  # the slow path's re-pick, discarded
    good = _Counted(_Sub(_Transport()))
    holder.update(good)
    picked = await asyncio.wait_for(task, 1)
    assert picked[2] is good.results[0] and good.done == [[]]
    assert holder.pick_now(INFO) is not None and good.done == [[], []]
    assert stale.done == [[StatusCode.UNAVAILABLE]] * 2


async def test_a_discarded_foreign_pick_is_done_internal() -> None:
    holder = PickerHolder()
    picker = _Counted(_Foreign())
    holder.update(picker)
    assert holder.pick_now(INFO) is None
    with pytest.raises(RpcError):
        await holder.wait_for_pick(INFO, wait_for_ready=True)
    assert picker.done == [[StatusCode.INTERNAL], [StatusCode.INTERNAL]]


async def test_an_on_done_that_raises_is_logged_and_the_pick_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = PickerHolder()

    def boom(code: StatusCode) -> None:
        raise ZeroDivisionError("bad on_done")

    class _Raising:
        def pick(self, info: PickInfo) -> PickResult:
            return PickResult(subchannel=_Sub(_Transport(accepting=False)), on_done=boom)

    holder.update(_Raising())
    assert holder.pick_now(INFO) is None
    assert "pick on_done callback raised" in caplog.text

"""PickerHolder (grpc-go pickerWrapper): picker generations and pick semantics (99-103)."""

import asyncio
from typing import Any

import pytest

from grpc_lite._picker import PickerHolder
from grpc_lite.balancer import ErrorPicker, NoSubchannelAvailable, PickInfo, PickResult, QueuePicker
from grpc_lite.status import RpcError, StatusCode

INFO = PickInfo(method="/pkg.Svc/M")


class _Transport:
    def __init__(self, accepting: bool = True) -> None:
        self.accepting_streams = accepting


class _Sub:
    def __init__(self, transport: Any) -> None:
        self.transport = transport


class _Fixed:
    def __init__(self, sub: _Sub) -> None:
        self.result = PickResult(subchannel=sub)  # type: ignore[arg-type]

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
    result = await asyncio.wait_for(task, 1)
    assert result.subchannel is sub


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
    assert all(r.subchannel is sub for r in results)


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
    assert (await asyncio.wait_for(task, 1)).subchannel is sub


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
    assert (await asyncio.wait_for(task, 1)).subchannel is good


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

"""Micro-benchmarks of the pick on the call path: ``PickerHolder.pick_now`` with a round_robin
picker (``grpc_lite.balancer.RoundRobinBuilder`` over the test suite's FakeBalancerChannel).

The 3- and 1,000-subchannel cases should cost the same: picking is O(1) per call.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("pytest_benchmark")
_picker = pytest.importorskip("grpc_lite._picker")
balancer = pytest.importorskip("grpc_lite.balancer")
from grpc_lite._connectivity import ConnectivityState  # noqa: E402
from grpc_lite.resolver import Address, ResolverState  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
fakes = pytest.importorskip("tests.fakes.balancer_channel")

_READY_TRANSPORT = SimpleNamespace(accepting_streams=True)


def _holder(n: int) -> Any:
    ch = fakes.FakeBalancerChannel()
    lb = balancer.RoundRobinBuilder().build(ch)
    addrs = tuple(Address(f"10.0.{i // 250}.{i % 250 + 1}:443") for i in range(n))
    state = balancer.ChannelState(resolver_state=ResolverState(addrs))
    assert ch.call(lambda: lb.update_channel_state(state))
    for sc in ch.live():
        # pick_now checks the picked subchannel's transport, which a fake does not have.
        sc.transport = _READY_TRANSPORT
        sc.set_state(ConnectivityState.CONNECTING)
        sc.set_state(ConnectivityState.READY)
    holder = _picker.PickerHolder()
    holder.update(ch.picker)
    return holder


@pytest.mark.parametrize("n", [1, 3, 1000])
def test_pick_now_round_robin(benchmark: Any, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # pick_now hands over only the channel's own subchannel class; the fakes stand in for it.
    monkeypatch.setattr(_picker, "Subchannel", fakes.FakeSubchannel)
    holder = _holder(n)
    info = balancer.PickInfo(method="/grpc_lite.bench.Bench/Unary")
    result = benchmark(holder.pick_now, info)
    assert result is not None
    seen = {id(holder.pick_now(info)[1]) for _ in range(2 * n)}
    assert len(seen) == n  # spreads over every READY subchannel

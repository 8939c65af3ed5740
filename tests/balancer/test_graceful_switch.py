"""GracefulSwitchBalancer (grpc-go internal/balancer/gracefulswitch) with scripted policies.

Driven through FakeBalancerChannel: every call runs inside its serializer, as the channel runs
them. The channel's own policy switches (tests/e2e/resilience/test_config_updates.py) go through
this class too.
"""

from __future__ import annotations

import pytest

from grpc_lite._connectivity import ConnectivityState
from grpc_lite.balancer import ChannelState, GracefulSwitchBalancer
from grpc_lite.resolver import Address, ResolverState
from grpc_lite.status import RpcError, StatusCode
from tests.fakes.balancer_channel import FakeBalancerChannel
from tests.fakes.policies import FixedPicker, ScriptedBalancer, ScriptedBuilder

S = ConnectivityState
IDLE, CONNECTING, READY, TF = S.IDLE, S.CONNECTING, S.READY, S.TRANSIENT_FAILURE


def update(*addrs: str) -> ChannelState:
    return ChannelState(resolver_state=ResolverState(tuple(Address(a) for a in addrs)))


class Harness:
    def __init__(self) -> None:
        self.ch = FakeBalancerChannel()
        self.gsb = GracefulSwitchBalancer(self.ch)
        self.old = ScriptedBuilder("old")
        self.new = ScriptedBuilder("new")
        self.third = ScriptedBuilder("third")

    def switch(self, builder: ScriptedBuilder, *addrs: str) -> ScriptedBalancer:
        """switch_to(builder) and an update, as the channel does; the newest child."""
        self.ch.call(lambda: self.gsb.switch_to(builder))
        self.ch.call(lambda: self.gsb.update_channel_state(update(*addrs)))
        return builder.built[-1]

    def publish(self, b: ScriptedBalancer, state: ConnectivityState) -> None:
        self.ch.call(lambda: b.publish(state))

    def served_by(self) -> str:
        picker = self.ch.picker
        assert isinstance(picker, FixedPicker)
        return picker.tag

    def ready_old(self) -> ScriptedBalancer:
        old = self.switch(self.old, "10.0.0.1:1")
        self.publish(old, READY)
        return old


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_first_policy_is_current_at_once(h: Harness) -> None:
    old = h.switch(h.old, "10.0.0.1:1")
    assert h.gsb.current_policy == "old" and h.gsb.pending_policy is None
    assert h.gsb.current is old
    h.publish(old, CONNECTING)
    h.publish(old, READY)
    assert h.ch.state_names == ["CONNECTING", "READY"]
    assert h.served_by() == "old#0"


def test_pending_becomes_current_when_ready(h: Harness) -> None:
    """While the current policy is READY the pending one's CONNECTING is held back; its READY
    makes it current, and the old policy is closed with its subchannels."""
    old = h.ready_old()
    new = h.switch(h.new, "10.0.0.2:1")
    assert h.gsb.pending_policy == "new" and h.gsb.pending is new
    h.publish(new, CONNECTING)
    assert h.ch.state_names == ["READY"]  # still served by the old policy
    assert h.served_by() == "old#0"
    h.publish(new, READY)
    assert h.ch.state_names == ["READY", "READY"]
    assert h.served_by() == "new#0"
    assert h.gsb.current_policy == "new" and h.gsb.pending_policy is None
    assert old.calls[-1] == "close"
    assert [sc.state for sc in old.subchannels] == [S.SHUTDOWN]
    assert not new.closed and new.subchannels[0].state is not S.SHUTDOWN


def test_current_leaving_ready_swaps(h: Harness) -> None:
    """The current policy leaves READY: the pending one's last state and picker go out at
    once, and the old policy is closed."""
    old = h.ready_old()
    new = h.switch(h.new, "10.0.0.2:1")
    h.publish(new, CONNECTING)
    h.publish(old, IDLE)
    assert h.ch.state_names == ["READY", "CONNECTING"]  # new's CONNECTING, not old's IDLE
    assert h.gsb.current_policy == "new"
    assert old.closed and old.subchannels[0].state is S.SHUTDOWN
    h.publish(new, READY)
    assert h.served_by() == "new#0"


def test_current_leaving_ready_before_pending_reported_keeps_current(h: Harness) -> None:
    """A pending policy that has published nothing yet cannot take over: the current one's
    new state goes out and the switch stays pending."""
    old = h.ready_old()
    h.switch(h.new, "10.0.0.2:1")
    h.publish(old, IDLE)
    assert h.ch.state_names == ["READY", "IDLE"]
    assert h.gsb.current_policy == "old" and h.gsb.pending_policy == "new"


def test_pending_takes_over_at_once_when_current_is_not_ready(h: Harness) -> None:
    old = h.switch(h.old, "10.0.0.1:1")
    h.publish(old, TF)
    new = h.switch(h.new, "10.0.0.2:1")
    h.publish(new, CONNECTING)
    assert h.gsb.current_policy == "new"
    assert h.ch.state_names == ["TRANSIENT_FAILURE", "CONNECTING"]
    assert old.closed


@pytest.mark.parametrize("state", [TF, IDLE])
def test_pending_reporting_anything_but_connecting_takes_over(
    h: Harness, state: ConnectivityState
) -> None:
    old = h.ready_old()
    new = h.switch(h.new, "10.0.0.2:1")
    h.publish(new, state)
    assert h.gsb.current_policy == "new"
    assert h.ch.state is state
    assert old.closed


def test_current_updates_flow_during_a_switch(h: Harness) -> None:
    """While a switch is pending the current policy's states (READY with a new picker) still
    reach the channel: it serves the RPCs."""
    old = h.ready_old()
    h.switch(h.new, "10.0.0.2:1")
    h.publish(old, READY)
    assert h.ch.state_names == ["READY", "READY"]
    assert h.served_by() == "old#0"


def test_second_switch_replaces_the_pending_one(h: Harness) -> None:
    h.ready_old()
    new = h.switch(h.new, "10.0.0.2:1")
    h.publish(new, CONNECTING)
    third = h.switch(h.third, "10.0.0.3:1")
    assert h.gsb.pending_policy == "third"
    assert new.closed and new.subchannels[0].state is S.SHUTDOWN
    h.publish(new, READY)  # a closed policy's report is dropped
    assert h.gsb.current_policy == "old"
    h.publish(third, READY)
    assert h.gsb.current_policy == "third" and h.served_by() == "third#0"


def test_switch_to_pending_policy_again_changes_nothing(h: Harness) -> None:
    h.ready_old()
    new = h.switch(h.new, "10.0.0.2:1")
    again = h.switch(h.new, "10.0.0.2:1")
    assert again is new and len(h.new.built) == 1
    assert new.calls == ["update", "update"]


def test_switch_back_to_current_policy_abandons_the_switch(h: Harness) -> None:
    old = h.ready_old()
    new = h.switch(h.new, "10.0.0.2:1")
    back = h.switch(h.old, "10.0.0.1:1")
    assert back is old and len(h.old.built) == 1
    assert h.gsb.pending_policy is None and new.closed
    assert old.calls == ["update", "update"]


def test_routing_of_channel_calls(h: Harness) -> None:
    """Updates and resolver errors go to the newest policy, exit_idle to the current one."""
    old = h.ready_old()
    new = h.switch(h.new, "10.0.0.2:1")
    err = RpcError(StatusCode.UNAVAILABLE, "dns down")
    h.ch.call(lambda: h.gsb.resolver_error(err))
    h.ch.call(h.gsb.exit_idle)
    assert old.calls == ["update", "exit_idle"]
    assert new.calls == ["update", "resolver_error dns down"]


def test_resolver_error_before_any_policy_fails_picks() -> None:
    ch = FakeBalancerChannel()
    gsb = GracefulSwitchBalancer(ch)
    ch.call(lambda: gsb.resolver_error(RpcError(StatusCode.UNAVAILABLE, "no such host")))
    assert ch.state is TF
    with pytest.raises(RpcError, match="no such host"):
        ch.pick()


def test_closed_policy_is_cut_off(h: Harness) -> None:
    """After the swap the old policy's subchannel states, state reports and timers are
    dropped, and it cannot create subchannels."""
    old = h.ready_old()
    fired: list[str] = []
    h.ch.call(lambda: old.channel.call_later(1.0, fired.append, "old timer"))
    old_sc = old.subchannels[0]
    new = h.switch(h.new, "10.0.0.2:1")
    h.publish(new, READY)
    n = len(h.ch.states)
    h.publish(old, TF)
    assert len(h.ch.states) == n
    h.ch.clock.advance(1.0)
    assert fired == []
    assert old_sc.state is S.SHUTDOWN
    assert old.subchannel_states == []  # its SHUTDOWN came after the close: not delivered
    with pytest.raises(RuntimeError):
        old.channel.new_subchannel([Address("10.0.0.9:1")], on_state_change=lambda *_: None)


def test_close_closes_both_children(h: Harness) -> None:
    old = h.ready_old()
    new = h.switch(h.new, "10.0.0.2:1")
    h.ch.call(h.gsb.close)
    assert old.closed and new.closed
    assert all(sc.is_shutdown for sc in h.ch.subchannels)
    assert h.gsb.current_policy == "old" and h.gsb.pending_policy is None
    assert h.ch.call(lambda: h.gsb.update_channel_state(update("10.0.0.1:1"))) is False


def test_a_policy_is_never_closed_inside_its_own_call(h: Harness) -> None:
    """The current policy's report that completes the switch is queued: the policy is closed
    after the call in which it reported has returned (grpc-go closes it asynchronously)."""
    old = h.ready_old()
    new = h.switch(h.new, "10.0.0.2:1")
    h.publish(new, CONNECTING)
    closed_during_call: list[bool] = []

    def leave_ready() -> None:
        old.publish(IDLE)
        closed_during_call.append(old.closed)

    h.ch.call(leave_ready)
    assert closed_during_call == [False]
    assert old.closed and h.gsb.current_policy == "new"


def test_a_policy_that_fails_to_build_leaves_nothing_behind(h: Harness) -> None:
    class Broken(ScriptedBuilder):
        def build(self, channel: object) -> ScriptedBalancer:
            raise RuntimeError("cannot build")

    old = h.ready_old()
    with pytest.raises(RuntimeError, match="cannot build"):
        h.gsb.switch_to(Broken("broken"))
    assert h.gsb.current_policy == "old" and h.gsb.pending_policy is None
    assert not old.closed
    fresh = GracefulSwitchBalancer(FakeBalancerChannel())
    with pytest.raises(RuntimeError, match="cannot build"):
        fresh.switch_to(Broken("broken"))
    assert fresh.current_policy is None

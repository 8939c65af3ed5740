"""priority_experimental (gRFC A56 as updated by A115; grpc-go xds/internal/balancer/priority).

The children are scripted policies (tests/fakes/policies.py) the tests move by hand; the
failover and deactivation timers run on the fake channel's FakeClock.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from grpc_lite.balancer import (
    ChannelState,
    NoSubchannelAvailable,
    QueuePicker,
    register,
    unregister_for_testing,
)
from grpc_lite.resolver import Address, Endpoint, ResolverState
from grpc_lite.status import RpcError
from grpc_lite.xds._balancers.priority import (
    DEACTIVATION_TIMEOUT,
    FAILOVER_TRANSITIONS,
    FailoverEvent,
    FailoverPhase,
    PriorityBalancer,
    PriorityBuilder,
    PriorityConfig,
)
from tests.fakes.balancer_channel import FakeBalancerChannel
from tests.fakes.policies import FixedPicker, ScriptedBalancer, ScriptedBuilder
from tests.xds._balancers._helpers import CONNECTING, IDLE, READY, TF

CHILD = "scripted_priority_child"


@pytest.fixture(autouse=True)
def scripted() -> Iterator[ScriptedBuilder]:
    builder = ScriptedBuilder(CHILD)
    register(builder)
    yield builder
    unregister_for_testing(CHILD)


def config(*names: str, timeout: str = "10s", ignore: bool = True) -> PriorityConfig:
    return PriorityBuilder().parse_config(
        {
            "children": {
                n: {"config": [{CHILD: {"name": n}}], "ignoreReresolutionRequests": ignore}
                for n in names
            },
            "priorities": list(names),
            "failoverTimeout": timeout,
        }
    )


def address(name: str) -> str:
    return f"{name}.example:1"


class Harness:
    def __init__(self, scripted: ScriptedBuilder) -> None:
        self.ch = FakeBalancerChannel()
        self.clock = self.ch.clock
        self.b: PriorityBalancer = PriorityBuilder().build(self.ch)
        self.scripted = scripted

    def update(self, cfg: PriorityConfig) -> None:
        endpoints = tuple(
            Endpoint((Address(address(n)),), attributes=(("xds.path", (n, "loc")),))
            for n in cfg.children
        )
        state = ChannelState(resolver_state=ResolverState(endpoints=endpoints), config=cfg)
        assert self.ch.call(lambda: self.b.update_channel_state(state))

    def built(self) -> list[str]:
        """The children built so far, by name, in order."""
        return [b.subchannels[0].addresses[0].addr.split(".")[0] for b in self.scripted.built]

    def child(self, name: str) -> ScriptedBalancer:
        found = [
            b
            for b in self.scripted.built
            if b.subchannels[0].addresses[0].addr == address(name) and not b.closed
        ]
        assert len(found) == 1, (name, self.built())
        return found[0]

    def publish(self, name: str, state: object) -> None:
        child = self.child(name)
        self.ch.call(lambda: child.publish(state))  # type: ignore[arg-type]

    def serving(self) -> str:
        """Which child's picker the policy publishes (its READY picker's tag)."""
        picker = self.ch.picker
        assert isinstance(picker, FixedPicker), picker
        return picker.tag


@pytest.fixture
def h(scripted: ScriptedBuilder) -> Harness:
    return Harness(scripted)


def test_transition_table_covers_every_phase_and_report() -> None:
    """Every phase but NEW answers every child report; the timer runs only while WAITING."""
    reports = (
        FailoverEvent.READY_OR_IDLE,
        FailoverEvent.CONNECTING,
        FailoverEvent.TRANSIENT_FAILURE,
    )
    for phase in FailoverPhase:
        if phase is FailoverPhase.NEW:
            continue
        for event in (*reports, FailoverEvent.DEACTIVATED):
            assert (phase, event) in FAILOVER_TRANSITIONS, (phase, event)
    assert FAILOVER_TRANSITIONS[(FailoverPhase.FAILED, FailoverEvent.CONNECTING)] is (
        FailoverPhase.FAILED
    )


def test_parse_config_errors() -> None:
    builder = PriorityBuilder()
    child = {"config": [{CHILD: {}}]}
    with pytest.raises(ValueError, match=r"priorities\[0\]: 'b' is not in children"):
        builder.parse_config({"children": {"a": child}, "priorities": ["b"]})
    with pytest.raises(ValueError, match=r"\['a'\] not in priorities"):
        builder.parse_config({"children": {"a": child}, "priorities": []})
    with pytest.raises(ValueError, match=r"listed twice"):
        builder.parse_config({"children": {"a": child}, "priorities": ["a", "a"]})
    with pytest.raises(ValueError, match=r"failoverTimeout: must be a Duration string"):
        builder.parse_config({"children": {"a": child}, "priorities": ["a"], "failoverTimeout": 3})
    with pytest.raises(ValueError, match=r"children\['a'\]\.config: must be a non-empty list"):
        builder.parse_config({"children": {"a": {"config": []}}, "priorities": ["a"]})
    parsed = builder.parse_config({"children": {"a": child}, "priorities": ["a"]})
    assert parsed.failover_timeout == 10.0
    assert parsed.to_json()["failoverTimeout"] == "10s"


def test_p0_ready_p1_never_created(h: Harness) -> None:
    h.update(config("p0", "p1"))
    assert h.built() == ["p0"]
    assert h.ch.state is CONNECTING
    h.publish("p0", CONNECTING)
    h.publish("p0", READY)
    assert h.ch.state is READY
    assert h.serving().startswith(CHILD)
    h.clock.advance(60)
    assert h.built() == ["p0"]
    assert h.b.debug_info()["current"] == "p0"


def test_p0_failure_moves_to_p1(h: Harness) -> None:
    h.update(config("p0", "p1"))
    h.publish("p0", TF)
    assert h.built() == ["p0", "p1"]
    # P1 is connecting: RPCs queue rather than fail with P0's error.
    assert h.ch.state is CONNECTING
    with pytest.raises(NoSubchannelAvailable):
        h.ch.pick()
    h.publish("p1", READY)
    assert h.ch.state is READY
    assert h.b.debug_info()["current"] == "p1"


def test_all_priorities_failing_report_the_last_ones_error(h: Harness) -> None:
    h.update(config("p0", "p1"))
    h.publish("p0", TF)
    h.publish("p1", TF)
    assert h.ch.state is TF
    with pytest.raises(RpcError, match="#1 failing"):
        h.ch.pick()


def test_failover_timer_moves_to_p1_while_p0_is_still_connecting(h: Harness) -> None:
    h.update(config("p0", "p1", timeout="2.5s"))
    h.publish("p0", CONNECTING)
    h.clock.advance(2.4)
    assert h.built() == ["p0"]
    assert h.b.debug_info()["children"]["p0"]["failover"] == "waiting"
    h.clock.advance(0.2)
    assert h.built() == ["p0", "p1"]
    assert h.b.debug_info()["children"]["p0"]["failover"] == "gave_up"
    h.publish("p1", READY)
    assert h.b.debug_info()["current"] == "p1"
    # P0 finally connects: back to P0, P1 deactivated.
    h.publish("p0", READY)
    assert h.b.debug_info()["current"] == "p0"
    assert h.b.debug_info()["children"]["p1"]["deactivated"] is True


def test_default_failover_timeout_is_10_seconds(h: Harness) -> None:
    cfg = PriorityBuilder().parse_config(
        {
            "children": {n: {"config": [{CHILD: {}}]} for n in ("p0", "p1")},
            "priorities": ["p0", "p1"],
        }
    )
    h.update(cfg)
    h.clock.advance(9.99)
    assert h.built() == ["p0"]
    h.clock.advance(0.02)
    assert h.built() == ["p0", "p1"]


def test_p0_back_ready_switches_back_and_deactivates_p1_for_15_minutes(h: Harness) -> None:
    h.update(config("p0", "p1"))
    h.publish("p0", TF)
    h.publish("p1", READY)
    p1 = h.child("p1")
    assert h.b.debug_info()["current"] == "p1"
    h.publish("p0", READY)
    assert h.b.debug_info()["current"] == "p0"
    assert not p1.closed  # kept (deactivated), not closed
    h.clock.advance(DEACTIVATION_TIMEOUT - 1)
    assert not p1.closed
    h.clock.advance(1)
    assert p1.closed
    assert "p1" not in h.b.debug_info()["children"]


def test_reactivation_before_the_deactivation_timer_reuses_the_child(h: Harness) -> None:
    h.update(config("p0", "p1"))
    h.publish("p0", TF)
    h.publish("p1", READY)
    h.publish("p0", READY)
    h.clock.advance(60)
    h.publish("p0", TF)  # P0 fails again: P1 (still READY) is reactivated
    assert h.built() == ["p0", "p1"]
    assert h.b.debug_info()["current"] == "p1"
    assert h.ch.state is READY
    h.clock.advance(DEACTIVATION_TIMEOUT * 2)
    assert not h.child("p1").closed


def test_failover_timer_restarts_after_ready_but_not_after_failure(h: Harness) -> None:
    h.update(config("p0", "p1", timeout="5s"))
    h.publish("p0", READY)
    h.publish("p0", CONNECTING)  # connection lost after READY: the timer runs again
    assert h.b.debug_info()["children"]["p0"]["failover"] == "waiting"
    assert h.b.debug_info()["current"] == "p0"
    h.publish("p0", TF)
    assert h.built() == ["p0", "p1"]
    h.publish("p1", CONNECTING)
    h.publish("p1", TF)
    h.publish("p0", CONNECTING)  # retrying after TF: no timer, P0 is not waited for
    assert h.b.debug_info()["children"]["p0"]["failover"] == "failed"
    # Both have failed: the first CONNECTING one is used.
    assert h.b.debug_info()["current"] == "p0"


def test_idle_child_is_used(h: Harness) -> None:
    h.update(config("p0", "p1"))
    h.publish("p0", IDLE)
    assert h.ch.state is IDLE
    assert isinstance(h.ch.picker, QueuePicker)
    assert h.built() == ["p0"]
    h.ch.call(h.b.exit_idle)
    assert "exit_idle" in h.child("p0").calls


def test_removed_child_is_closed_at_once(h: Harness) -> None:
    """A115: a child no longer in the config is not cached."""
    h.update(config("p0", "p1"))
    h.publish("p0", TF)
    p1 = h.child("p1")
    h.update(config("p0"))
    assert p1.closed
    assert h.ch.state is TF


def test_update_sends_children_their_endpoints(h: Harness) -> None:
    h.update(config("p0", "p1"))
    h.update(config("p0", "p1"))
    assert h.child("p0").calls == ["update", "update"]
    assert [sc.addresses[0].addr for sc in h.child("p0").subchannels] == [address("p0")] * 2


def test_reresolution_requests(scripted: ScriptedBuilder) -> None:
    for ignore, expected in ((True, 0), (False, 1)):
        h = Harness(scripted)
        h.update(config("p0", ignore=ignore))
        child = h.child("p0")
        h.ch.call(child.channel.resolve_now)
        assert h.ch.resolve_now_count == expected
        h.ch.call(h.b.close)
        assert child.closed


def test_empty_priority_list_fails(h: Harness) -> None:
    h.update(PriorityBuilder().parse_config({"children": {}, "priorities": []}))
    assert h.ch.state is TF
    with pytest.raises(RpcError, match="empty priority list"):
        h.ch.pick()

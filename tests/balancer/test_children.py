"""ChildBalancers and aggregate_state (grpc-go balancergroup / endpointsharding; A61).

Scripted child policies under a FakeBalancerChannel: every call runs inside its serializer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from grpc_lite._connectivity import ConnectivityState
from grpc_lite.balancer import (
    BalancerState,
    ChannelState,
    ChildBalancers,
    Subchannel,
    SubchannelState,
    aggregate_state,
)
from grpc_lite.resolver import Address, ResolverState
from grpc_lite.status import RpcError, StatusCode
from tests.fakes.balancer_channel import FakeBalancerChannel
from tests.fakes.policies import ScriptedBuilder

S = ConnectivityState
IDLE, CONNECTING, READY, TF, SHUTDOWN = (
    S.IDLE,
    S.CONNECTING,
    S.READY,
    S.TRANSIENT_FAILURE,
    S.SHUTDOWN,
)


def update(*addrs: str) -> ChannelState:
    return ChannelState(resolver_state=ResolverState(tuple(Address(a) for a in addrs)))


# -- aggregate_state ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], TF),
        ([READY], READY),
        ([TF, IDLE, CONNECTING, READY], READY),
        ([TF, IDLE, CONNECTING], CONNECTING),
        ([CONNECTING, CONNECTING], CONNECTING),
        ([TF, IDLE], IDLE),
        ([IDLE], IDLE),
        ([TF, TF], TF),
        ([SHUTDOWN], TF),
        ([SHUTDOWN, IDLE], IDLE),
    ],
)
def test_aggregate_state_table(
    states: list[ConnectivityState], expected: ConnectivityState
) -> None:
    """A61 / endpointsharding: READY > CONNECTING > IDLE > TRANSIENT_FAILURE; none -> TF."""
    assert aggregate_state(states) is expected


def test_aggregate_state_is_order_free() -> None:
    for states in itertools.permutations([TF, IDLE, CONNECTING]):
        assert aggregate_state(iter(states)) is CONNECTING


# -- ChildBalancers -----------------------------------------------------------------------------


class Parent:
    """A parent policy's view: what the children published and what their subchannels did."""

    def __init__(
        self,
        *,
        intercept_resolve_now: bool = False,
        exit_idle_children: bool = False,
    ) -> None:
        self.ch = FakeBalancerChannel()
        self.a = ScriptedBuilder("a")
        self.b = ScriptedBuilder("b")
        self.child_states: list[tuple[str, ConnectivityState]] = []
        self.subchannel_states: list[tuple[str, str, ConnectivityState]] = []
        self.resolve_nows: list[str] = []
        self.children: ChildBalancers[str] = ChildBalancers(
            self.ch,
            on_child_state=self.on_child_state,
            on_subchannel_state=self.on_subchannel_state,
            on_resolve_now=self.resolve_nows.append if intercept_resolve_now else None,
            exit_idle_children=exit_idle_children,
        )

    def on_child_state(self, key: str, state: BalancerState) -> None:
        self.child_states.append((key, state.state))

    def on_subchannel_state(self, key: str, sc: Subchannel, state: SubchannelState) -> None:
        self.subchannel_states.append((key, sc.addresses[0].addr, state.state))

    def update(self, key: str, builder: ScriptedBuilder | str, *addrs: str) -> bool:
        return self.ch.call(lambda: self.children.update(key, builder, update(*addrs)))

    def run(self, fn: Callable[[], object]) -> None:
        self.ch.call(fn)


def test_updates_are_routed_to_their_child() -> None:
    p = Parent()
    assert p.update("x", p.a, "10.0.0.1:1")
    assert p.update("y", p.a, "10.0.0.2:1")
    assert p.update("x", p.a, "10.0.0.1:1", "10.0.0.3:1")
    x, y = p.a.built
    assert x.calls == ["update", "update"] and y.calls == ["update"]
    assert [sc.addresses[0].addr for sc in x.subchannels] == [
        "10.0.0.1:1",
        "10.0.0.1:1",
        "10.0.0.3:1",
    ]
    assert list(p.children) == ["x", "y"] and len(p.children) == 2 and "x" in p.children
    assert p.children.policy("x") == "a"
    assert p.update("z", p.a) is False  # the child's verdict is passed on


def test_child_states_go_to_the_parent_not_the_channel() -> None:
    p = Parent()
    p.update("x", p.a, "10.0.0.1:1")
    p.update("y", p.a, "10.0.0.2:1")
    x, y = p.a.built
    p.run(lambda: x.publish(READY))
    p.run(lambda: y.publish(TF))
    assert p.child_states == [("x", READY), ("y", TF)]
    assert p.ch.states == []  # the parent publishes its own aggregate
    x_state = p.children.state("x")
    assert x_state is not None and x_state.state is READY
    assert p.children.state("nope") is None


def test_subchannel_states_reach_the_parent_first() -> None:
    p = Parent()
    p.update("x", p.a, "10.0.0.1:1")
    (x,) = p.a.built
    p.ch.subchannel("10.0.0.1:1").set_state(CONNECTING)
    assert p.subchannel_states == [("x", "10.0.0.1:1", CONNECTING)]
    assert x.subchannel_states == [("10.0.0.1:1", CONNECTING)]
    assert p.ch.subchannels[0].health_check is False  # passed through as the child asked


def test_resolve_now_passes_through_unless_intercepted() -> None:
    p = Parent()
    p.update("x", p.a, "10.0.0.1:1")
    p.run(lambda: p.a.built[0].channel.resolve_now())
    assert p.ch.resolve_now_count == 1

    q = Parent(intercept_resolve_now=True)
    q.update("x", q.a, "10.0.0.1:1")
    q.run(lambda: q.a.built[0].channel.resolve_now())
    assert q.resolve_nows == ["x"] and q.ch.resolve_now_count == 0


def test_idle_child_is_asked_to_exit_idle_after_its_call_returns() -> None:
    """endpointsharding without DisableAutoReconnect: exit_idle() comes after the call in
    which the child reported IDLE, never inside it."""
    p = Parent(exit_idle_children=True)
    p.update("x", p.a, "10.0.0.1:1")
    (x,) = p.a.built

    def report_idle() -> None:
        x.publish(IDLE)
        x.calls.append("publish returned")

    p.run(report_idle)
    assert x.calls == ["update", "publish returned", "exit_idle"]

    q = Parent()
    q.update("x", q.a, "10.0.0.1:1")
    q.run(lambda: q.a.built[0].publish(IDLE))
    assert q.a.built[0].calls == ["update"]


def test_exit_idle_and_resolver_error_go_to_every_child() -> None:
    p = Parent()
    p.update("x", p.a, "10.0.0.1:1")
    p.update("y", p.b, "10.0.0.2:1")
    p.run(p.children.exit_idle)
    p.run(lambda: p.children.resolver_error(RpcError(StatusCode.UNAVAILABLE, "dns down")))
    for child in (p.a.built[0], p.b.built[0]):
        assert child.calls == ["update", "exit_idle", "resolver_error dns down"]


def test_a_child_switches_policy_gracefully() -> None:
    """Each child is a GracefulSwitchBalancer: a new policy for a key is pending until it is
    ready; then the old one is closed with its subchannels."""
    p = Parent()
    p.update("x", p.a, "10.0.0.1:1")
    (old,) = p.a.built
    p.run(lambda: old.publish(READY))
    p.update("x", p.b, "10.0.0.1:1")
    (new,) = p.b.built
    assert p.children.policy("x") == "a"
    p.run(lambda: new.publish(CONNECTING))
    assert p.child_states == [("x", READY)]  # held back while the old policy is READY
    p.run(lambda: new.publish(READY))
    assert p.children.policy("x") == "b"
    assert old.closed and old.subchannels[0].state is SHUTDOWN
    assert p.child_states == [("x", READY), ("x", READY)]


def test_policy_by_registered_name() -> None:
    p = Parent()
    p.update("x", "pick_first", "10.0.0.1:1")
    assert p.children.policy("x") == "pick_first"
    assert p.ch.subchannels[0].connect_count == 1
    with pytest.raises(ValueError, match="no balancer named"):
        p.update("y", "no_such_policy", "10.0.0.2:1")


def test_removed_child_is_closed_and_cut_off() -> None:
    p = Parent()
    p.update("x", p.a, "10.0.0.1:1")
    (x,) = p.a.built
    fired: list[str] = []
    p.run(lambda: x.channel.call_later(1.0, fired.append, "timer"))
    p.run(lambda: p.children.remove("x"))
    p.run(lambda: p.children.remove("x"))  # no such child: nothing
    assert x.closed and "x" not in p.children
    assert p.ch.subchannels[0].is_shutdown
    p.run(lambda: x.publish(READY))
    p.ch.clock.advance(1.0)
    assert p.child_states == [] and fired == []
    assert p.subchannel_states == []  # not even its SHUTDOWN
    with pytest.raises(RuntimeError):
        x.channel.new_subchannel([Address("10.0.0.9:1")], on_state_change=lambda *_: None)


def test_close_closes_every_child() -> None:
    p = Parent()
    p.update("x", p.a, "10.0.0.1:1")
    p.update("y", p.b, "10.0.0.2:1")
    p.run(p.children.close)
    assert p.a.built[0].closed and p.b.built[0].closed
    assert all(sc.is_shutdown for sc in p.ch.subchannels)
    assert len(p.children) == 0


def test_hooks_run_after_the_child_returns_and_may_call_children() -> None:
    """Reports are queued: a hook runs once the child's call has returned, so it may call
    that child (here: remove it) without re-entering it."""
    p = Parent()
    p.update("x", p.a, "10.0.0.1:1")
    (x,) = p.a.built
    during: list[int] = []

    def on_child_state(key: str, state: BalancerState) -> None:
        during.append(len(x.calls))
        p.children.remove(key)

    p.children._on_child_state = on_child_state  # type: ignore[assignment]

    def report() -> None:
        x.publish(TF)
        x.calls.append("publish returned")

    p.run(report)
    assert during == [2]  # ["update", "publish returned"]: after the child's call
    assert x.closed and "x" not in p.children

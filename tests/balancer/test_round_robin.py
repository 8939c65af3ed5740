"""round_robin (grpc-go roundrobin/endpointsharding; C-core round_robin.cc): items 58, 66, 90-98.

Driven through FakeBalancerChannel (reports go through a real CallbackSerializer). round_robin is
a parent of one pick_first child per endpoint; the tests drive the children's subchannels.
"""

from __future__ import annotations

import collections
import random
import time

import pytest

from grpc_lite._connectivity import ConnectivityState
from grpc_lite.balancer import ChannelState, ErrorPicker, NoSubchannelAvailable, QueuePicker
from grpc_lite.balancer.round_robin import (
    RoundRobinBalancer,
    RoundRobinBuilder,
    RoundRobinConfig,
    _RoundRobinPicker,
)
from grpc_lite.resolver import Address, Endpoint, ResolverState
from grpc_lite.status import RpcError, StatusCode
from tests.fakes.balancer_channel import FakeBalancerChannel, FakeSubchannel

S = ConnectivityState
IDLE, CONNECTING, READY, TF = S.IDLE, S.CONNECTING, S.READY, S.TRANSIENT_FAILURE

A, B, C = "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"


class _FixedStart(random.Random):
    """A rand whose randrange always gives `start` (mod n)."""

    def __init__(self, start: int) -> None:
        super().__init__(0)
        self.start = start

    def randrange(self, n: int, *args: object, **kwargs: object) -> int:  # type: ignore[override]
        return self.start % n


class Harness:
    def __init__(self, rand: random.Random | None = None) -> None:
        self.ch = FakeBalancerChannel()
        self.b: RoundRobinBalancer = RoundRobinBuilder(rand=rand).build(self.ch)

    def update(self, *addrs: str) -> bool:
        state = ChannelState(resolver_state=ResolverState(tuple(Address(a) for a in addrs)))
        return self.ch.call(lambda: self.b.update_channel_state(state))

    def resolver_error(self, message: str) -> None:
        err = RpcError(StatusCode.UNAVAILABLE, message)
        self.ch.call(lambda: self.b.resolver_error(err))

    def ready(self, *scs: FakeSubchannel) -> None:
        for sc in scs:
            sc.set_state(CONNECTING)
            sc.set_state(READY)

    def picks(self, n: int) -> list[str]:
        return [self.ch.pick().subchannel.addresses[0].addr for _ in range(n)]


@pytest.fixture
def h() -> Harness:
    return Harness(rand=random.Random(1))


def assert_pick_fails(ch: FakeBalancerChannel, *fragments: str) -> None:
    with pytest.raises(RpcError) as info:
        ch.pick()
    assert info.value.code() is StatusCode.UNAVAILABLE
    for fragment in fragments:
        assert fragment in (info.value.details() or "")


def test_connects_every_address_eagerly(h: Harness) -> None:
    """Item 90: one subchannel per address, all connected at once; CONNECTING meanwhile."""
    assert h.update(A, B, C)
    assert [sc.addr for sc in h.ch.subchannels] == [A, B, C]
    assert [sc.connect_count for sc in h.ch.subchannels] == [1, 1, 1]
    assert h.ch.state_names == ["CONNECTING"]
    assert isinstance(h.ch.picker, QueuePicker)
    with pytest.raises(NoSubchannelAvailable):
        h.ch.pick()


def test_picks_spread_evenly_over_ready_subchannels(h: Harness) -> None:
    """Item 91: 300 picks over 3 READY subchannels -> exactly 100 each, in list order."""
    h.update(A, B, C)
    h.ready(*h.ch.subchannels)
    picks = h.picks(300)
    assert collections.Counter(picks) == {A: 100, B: 100, C: 100}
    start = [A, B, C].index(picks[0])
    assert picks[:3] == [[A, B, C][(start + i) % 3] for i in range(3)]


def test_picks_only_ready_subchannels(h: Harness) -> None:
    """Items 91 / 95: only READY subchannels are picked; a failed one drops out."""
    h.update(A, B, C)
    a, _b, c = h.ch.subchannels
    h.ready(a, c)
    assert set(h.picks(10)) == {A, C}
    c.set_state(IDLE)  # connection lost
    assert set(h.picks(10)) == {A}


def test_start_index_comes_from_rand() -> None:
    """Item 91: the injected rand picks the starting index of each picker."""
    h = Harness(rand=_FixedStart(2))
    h.update(A, B, C)
    h.ready(*h.ch.subchannels)
    assert h.picks(4) == [C, A, B, C]


def test_random_start_varies_across_pickers() -> None:
    """Item 91: over many pickers the first pick is not always the same backend."""
    rand = random.Random(99)
    firsts = set()
    for _ in range(30):
        h = Harness(rand=rand)
        h.update(A, B, C)
        h.ready(*h.ch.subchannels)
        firsts.add(h.picks(1)[0])
    assert firsts == {A, B, C}


def test_aggregate_state(h: Harness) -> None:
    """Item 92: READY if any READY, else CONNECTING if any CONNECTING/IDLE, else TF."""
    h.update(A, B)
    a, b = h.ch.subchannels
    a.set_state(CONNECTING)
    b.set_state(CONNECTING)
    assert h.ch.state is CONNECTING
    a.set_state(READY)
    assert h.ch.state is READY
    b.set_state(TF, "b refused")
    assert h.ch.state is READY
    a.set_state(IDLE)  # lost; reconnecting -> counts as CONNECTING
    assert h.ch.state is CONNECTING
    a.set_state(CONNECTING)
    a.set_state(TF, "a refused")
    assert h.ch.state is TF
    assert h.ch.state_names == ["CONNECTING", "READY", "CONNECTING", "TRANSIENT_FAILURE"]


def test_sticky_tf_per_subchannel(h: Harness) -> None:
    """Item 93: a subchannel that reported TF counts as TF until READY, so a channel whose
    backends are all down stays TF (no CONNECTING flaps) while they retry."""
    h.update(A, B)
    a, b = h.ch.subchannels
    for sc in (a, b):
        sc.set_state(CONNECTING)
        sc.set_state(TF, f"{sc.addr} refused")
    first_tf = h.ch.state_names.index("TRANSIENT_FAILURE")
    for _ in range(3):
        for sc in (a, b):
            sc.set_state(IDLE)
            sc.set_state(CONNECTING)
            sc.set_state(TF, f"{sc.addr} refused again")
    assert set(h.ch.state_names[first_tf:]) == {"TRANSIENT_FAILURE"}
    b.set_state(IDLE)
    b.set_state(CONNECTING)
    b.set_state(READY)
    assert h.ch.state is READY
    assert h.picks(3) == [B, B, B]
    # A is still TF for aggregation: losing B does not report CONNECTING because of A.
    b.set_state(IDLE)
    assert h.ch.state is CONNECTING  # B itself is reconnecting (not sticky: it was READY)
    b.set_state(CONNECTING)
    b.set_state(TF, "b down")
    assert h.ch.state is TF


def test_idle_subchannel_reconnects_at_once(h: Harness) -> None:
    """Item 94: an IDLE subchannel is connected again without waiting for an RPC, and
    re-resolution is requested."""
    h.update(A, B)
    a, b = h.ch.subchannels
    h.ready(a, b)
    b.set_state(IDLE)  # server restarted / GOAWAY
    assert b.connect_count == 2
    assert h.ch.resolve_now_count == 1
    assert h.ch.state is READY
    b.set_state(CONNECTING)
    b.set_state(READY)
    assert set(h.picks(4)) == {A, B}


def test_all_failing_message_carries_last_error(h: Harness) -> None:
    """Item 96: all TF -> fail-fast picks fail UNAVAILABLE with the last connection error."""
    h.update(A, B)
    a, b = h.ch.subchannels
    a.set_state(CONNECTING)
    a.set_state(TF, "a: connection refused")
    b.set_state(CONNECTING)
    b.set_state(TF, "b: connection refused")
    assert isinstance(h.ch.picker, ErrorPicker)
    assert_pick_fails(h.ch, "connections to all backends failing", "b: connection refused")
    a.set_state(IDLE)
    a.set_state(CONNECTING)
    a.set_state(TF, "a: timed out")
    assert_pick_fails(h.ch, "last error: a: timed out")
    assert h.ch.resolve_now_count >= 3


def test_update_keeps_unchanged_addresses(h: Harness) -> None:
    """Item 97: [A, B] -> [B, C]: B keeps its subchannel, C is new, A is shut down."""
    h.update(A, B)
    a, b = h.ch.subchannels
    h.ready(a, b)
    assert h.update(B, C)
    assert a.is_shutdown and not b.is_shutdown
    assert b.connect_count == 1
    c = h.ch.subchannel(C)
    assert c.connect_count == 1
    assert len(h.ch.subchannels) == 3
    assert h.ch.state is READY
    assert set(h.picks(6)) == {B}
    h.ready(c)
    assert collections.Counter(h.picks(6)) == {B: 3, C: 3}


def test_duplicate_addresses_get_separate_subchannels(h: Harness) -> None:
    """Item 97: [A, A] opens two connections to A; updates match duplicates as a multiset."""
    h.update(A, A)
    first, second = h.ch.subchannels
    assert first is not second
    h.ready(first, second)
    picked = [h.ch.pick().subchannel for _ in range(4)]
    assert picked.count(first) == 2 and picked.count(second) == 2
    h.update(A, B, A, A)
    assert not first.is_shutdown and not second.is_shutdown
    assert len(h.ch.subchannels) == 4  # one more A and B
    h.update(A)
    live = h.ch.live()
    assert len(live) == 1 and live[0] is first


def test_empty_address_list(h: Harness) -> None:
    """Item 98: an empty list -> TF "empty address list", rejected; subchannels shut down."""
    assert h.update() is False
    assert h.ch.state is TF
    assert_pick_fails(h.ch, "empty address list")
    h.update(A)
    a = h.ch.subchannel(A)
    h.ready(a)
    assert h.update() is False
    assert a.is_shutdown
    assert_pick_fails(h.ch, "empty address list")
    assert h.update(A)
    assert h.ch.state is CONNECTING


def test_resolver_error(h: Harness) -> None:
    """Items 58 / 66: an error before any update -> TF with it; after a good update it is
    ignored unless every backend is failing, when both errors are reported."""
    h.resolver_error("dns: no such host")
    assert h.ch.state is TF
    assert_pick_fails(h.ch, "no such host")
    h.update(A)
    a = h.ch.subchannel(A)
    h.ready(a)
    n = len(h.ch.states)
    h.resolver_error("dns: timeout")
    assert len(h.ch.states) == n
    a.set_state(IDLE)
    a.set_state(CONNECTING)
    a.set_state(TF, "a refused")
    h.resolver_error("dns: timeout")
    assert_pick_fails(h.ch, "a refused", "dns: timeout")


def test_one_thousand_addresses() -> None:
    """Scale: 1,000 addresses -> 1,000 subchannels; a reordered update with one new address
    creates exactly one; picks index an immutable tuple (O(1))."""
    h = Harness(rand=random.Random(3))
    addrs = [f"10.{i // 256}.{i % 256}.1:50051" for i in range(1000)]
    started = time.perf_counter()
    h.update(*addrs)
    assert len(h.ch.subchannels) == 1000
    for sc in h.ch.subchannels:
        sc.set_state(CONNECTING)
        sc.set_state(READY)
    h.update(*reversed(addrs), "10.99.99.99:1")
    elapsed = time.perf_counter() - started
    assert len(h.ch.subchannels) == 1001
    assert sum(sc.connect_count for sc in h.ch.subchannels) == 1001
    picker = h.ch.picker
    assert isinstance(picker, _RoundRobinPicker)
    assert isinstance(picker._results, tuple) and len(picker._results) == 1000
    assert len(set(h.picks(1000))) == 1000
    assert elapsed < 1.0


def test_parse_config_and_close() -> None:
    """Item 90: round_robin takes an (ignored) JSON object; close() shuts everything down."""
    builder = RoundRobinBuilder()
    assert builder.name == "round_robin"
    assert builder.parse_config({}) == RoundRobinConfig()
    assert builder.parse_config({"unknown": 1}) == RoundRobinConfig()
    with pytest.raises(ValueError):
        builder.parse_config("round_robin")  # type: ignore[arg-type]
    h = Harness()
    h.update(A, B)
    n = len(h.ch.states)
    h.ch.call(h.b.close)
    assert all(sc.is_shutdown for sc in h.ch.subchannels)
    assert len(h.ch.states) == n


# -- round_robin as endpoint sharding over pick_first (A61; grpc-go roundrobin) -------------------


def test_one_pick_first_child_per_endpoint() -> None:
    """Each endpoint is a pick_first child: an endpoint with two addresses gets one connection
    (its first address, the second after the Happy Eyeballs delay), and RPCs spread over
    endpoints, not addresses."""
    h = Harness(rand=random.Random(1))
    state = ResolverState(endpoints=(Endpoint((Address(A), Address(B))), Endpoint((Address(C),))))
    assert h.ch.call(lambda: h.b.update_channel_state(ChannelState(resolver_state=state)))
    assert [h.b._children.policy(k) for k in h.b._children] == ["pick_first", "pick_first"]
    assert [sc.addr for sc in h.ch.subchannels] == [A, C]
    a, c = h.ch.subchannels
    a.set_state(CONNECTING)
    h.ch.clock.advance(0.25)  # pick_first's timer, on the channel's serializer
    b = h.ch.subchannel(B)
    assert b.connect_count == 1
    h.ready(b, c)
    assert a.is_shutdown  # B won its endpoint; A's attempt is dropped
    assert collections.Counter(h.picks(4)) == {B: 2, C: 2}


def test_children_run_health_checks(h: Harness) -> None:
    """A17 / A61: round_robin's pick_first children ask for client-side health checking."""
    h.update(A, B)
    assert [sc.health_check for sc in h.ch.subchannels] == [True, True]


def test_unhealthy_backend_leaves_the_rotation(h: Harness) -> None:
    """A connected backend whose health check fails (TF without losing the connection) stops
    getting RPCs and comes back when SERVING again, without reconnecting."""
    h.update(A, B)
    a, b = h.ch.subchannels
    h.ready(a, b)
    a.set_state(TF, "health status NOT_SERVING")
    assert h.ch.state is READY
    assert set(h.picks(4)) == {B}
    assert h.ch.resolve_now_count == 1
    a.set_state(READY)
    assert set(h.picks(4)) == {A, B}
    assert a.connect_count == 1
    a.set_state(CONNECTING)  # a new health watch starting (A17)
    assert set(h.picks(4)) == {B}
    a.set_state(TF, "health status NOT_SERVING")
    b.set_state(TF, "health status NOT_SERVING")
    assert_pick_fails(h.ch, "connections to all backends failing", "NOT_SERVING")


def test_re_resolution_comes_from_round_robin_not_its_children(h: Harness) -> None:
    """One resolve_now per failed subchannel, as before: the pick_first children's own
    requests are not passed on."""
    h.update(A, B)
    for sc in h.ch.subchannels:
        sc.set_state(CONNECTING)
        sc.set_state(TF, "refused")
    assert h.ch.state is TF
    assert h.ch.resolve_now_count == 2


def test_children_with_other_pickers_are_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """A READY child whose picker is not a FixedResultPicker is picked by calling it (the
    usual pick_first child's result is indexed directly)."""
    from grpc_lite.balancer import round_robin
    from tests.fakes.policies import ScriptedBuilder

    custom = ScriptedBuilder("custom")
    monkeypatch.setattr(round_robin, "_CHILD_POLICY", custom)
    h = Harness(rand=random.Random(1))
    h.update(A, B)
    a, b = custom.built
    h.ch.call(lambda: a.publish(READY))
    h.ch.call(lambda: b.publish(READY))
    assert isinstance(h.ch.picker, round_robin._ChildRoundRobinPicker)
    assert collections.Counter(h.picks(4)) == {A: 2, B: 2}

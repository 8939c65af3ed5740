"""ManualResolver and the static built-ins (CONFORMANCE items 60-63, 65)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from grpc_lite import resolver
from grpc_lite.resolver import Address, BuildOptions, ManualResolver, ResolverState, parse_target
from tests.resolver.conftest import FakeResolverChannel


def _build(r: resolver.ResolverBuilder, target: str, ch: FakeResolverChannel) -> resolver.Resolver:
    return r.build(parse_target(target), ch, BuildOptions())


@pytest.fixture
def manual() -> Iterator[ManualResolver]:
    r = ManualResolver("manualtest")
    resolver.register(r)
    yield r
    resolver.unregister_for_testing("manualtest")


def test_state_pushed_before_build_is_the_initial_state(manual: ManualResolver) -> None:
    """A channel built after a push starts with that state."""
    manual.update_addresses(["127.0.0.1:1", "127.0.0.1:2"], service_config='{"x":1}')
    ch = FakeResolverChannel()
    _build(manual, "manualtest:///anything", ch)
    assert ch.addresses == ["127.0.0.1:1", "127.0.0.1:2"]
    assert ch.states[-1].service_config == '{"x":1}'


def test_no_state_before_build_pushes_nothing(manual: ManualResolver) -> None:
    ch = FakeResolverChannel()
    _build(manual, "manualtest:///x", ch)
    assert ch.events == []


def test_pushes_reach_every_live_channel_in_order(manual: ManualResolver) -> None:
    """Updates and errors go to each live channel in order; a closed one gets nothing."""
    a, b = FakeResolverChannel(), FakeResolverChannel()
    ra = _build(manual, "manualtest:///a", a)
    _build(manual, "manualtest:///b", b)
    assert manual.live_channels == 2
    manual.update_addresses(["10.0.0.1:1"])
    err = RuntimeError("resolver down")
    manual.report_error(err)
    ra.close()
    ra.close()
    manual.update_addresses(["10.0.0.2:1"])
    assert [type(e).__name__ for e in a.events] == ["ResolverState", "RuntimeError"]
    assert b.addresses == ["10.0.0.2:1"]
    assert b.errors == [err]
    assert (manual.build_count, manual.close_count, manual.live_channels) == (2, 1, 1)


def test_error_before_build_is_replayed(manual: ManualResolver) -> None:
    """An error pushed last (after a state) is replayed after the state."""
    manual.update_addresses(["10.0.0.1:1"])
    err = RuntimeError("boom")
    manual.report_error(err)
    ch = FakeResolverChannel()
    _build(manual, "manualtest:///x", ch)
    assert ch.events == [ResolverState((Address("10.0.0.1:1"),)), err]


def test_update_state_reports_rejection(manual: ManualResolver) -> None:
    """update_state returns False if any channel rejected the state."""
    ch = FakeResolverChannel()
    _build(manual, "manualtest:///x", ch)
    assert manual.update_state(ResolverState((Address("a:1"),)))
    ch.accept = False
    assert not manual.update_state(ResolverState((Address("a:1"),)))


def test_resolve_now_is_counted_and_hooked(manual: ManualResolver) -> None:
    seen: list[str] = []
    manual.on_resolve_now = lambda t: seen.append(t.endpoint)
    r = _build(manual, "manualtest:///svc", FakeResolverChannel())
    r.resolve_now()
    r.resolve_now()
    assert manual.resolve_now_count == 2
    assert seen == ["svc", "svc"]


def test_resolver_state_views_agree() -> None:
    """addresses and endpoints are two views of one list."""
    s = ResolverState([Address("a:1"), Address("b:2")])  # type: ignore[arg-type]
    assert isinstance(s.addresses, tuple)
    assert [e.addresses for e in s.endpoints] == [(Address("a:1"),), (Address("b:2"),)]
    e = ResolverState(endpoints=s.endpoints)
    assert e.addresses == s.addresses
    assert hash(s) == hash(ResolverState(s.addresses))


def test_address_attributes() -> None:
    a = Address("a:1", attributes=(("weight", 3),))
    assert a.attribute("weight") == 3
    assert a.attribute("missing", 7) == 7
    assert a != Address("a:1")


@pytest.mark.parametrize(
    ("target", "addresses"),
    [
        ("passthrough:///localhost:50051", ["localhost:50051"]),
        ("passthrough:///unix:/tmp/x", ["unix:/tmp/x"]),
        ("unix:///tmp/x.sock", ["unix:/tmp/x.sock"]),
        ("unix:/tmp/x.sock", ["unix:/tmp/x.sock"]),
        ("unix:rel/x.sock", ["unix:rel/x.sock"]),
        ("unix-abstract:grpclite-test", ["unix-abstract:grpclite-test"]),
        ("ipv4:127.0.0.1:1,127.0.0.2", ["127.0.0.1:1", "127.0.0.2:443"]),
        ("ipv6:[::1]:50051,::2,[fe80::1]:9", ["[::1]:50051", "[::2]:443", "[fe80::1]:9"]),
        ("dns:///127.0.0.1:7", ["127.0.0.1:7"]),
        ("dns:///::1", ["[::1]:443"]),
        ("[::1]:50051", ["[::1]:50051"]),
    ],
)
def test_static_resolvers_push_once(target: str, addresses: list[str]) -> None:
    """Static targets produce their addresses at build, in order; resolve_now adds nothing."""
    t = parse_target(target)
    builder = resolver.get(t.scheme)
    assert builder is not None
    ch = FakeResolverChannel()
    r = builder.build(t, ch, BuildOptions())
    assert ch.addresses == addresses
    r.resolve_now()
    r.close()
    assert len(ch.states) == 1

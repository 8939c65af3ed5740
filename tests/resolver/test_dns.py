"""The dns resolver with fake DNS and a fake clock (CONFORMANCE items 55-59)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import pytest

from grpc_lite.resolver import BuildOptions, parse_target
from grpc_lite.resolver.dns import (
    DnsResolutionError,
    DnsResolver,
    DnsResolverBuilder,
    choose_service_config,
)
from tests.fakes.clock import FakeClock, settle
from tests.fakes.dns import FakeDns
from tests.resolver.conftest import FakeResolverChannel

HOST = "svc.test"
TARGET = f"dns:///{HOST}:50051"
TXT = f"_grpc_config.{HOST}"


def _build(
    dns: FakeDns,
    clock: FakeClock,
    ch: FakeResolverChannel,
    target: str = TARGET,
    options: Mapping[str, Any] | None = None,
    **build_kw: Any,
) -> Any:
    builder = DnsResolverBuilder(
        lookup_factory=dns.factory, clock=clock, rand=lambda: 0.5, client_hostname="me"
    )
    return builder.build(
        parse_target(target), ch, BuildOptions(channel_options=dict(options or {}), **build_kw)
    )


async def test_first_resolution_on_build(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """Building starts a lookup: A/AAAA then TXT _grpc_config.<host>; addresses get the port."""
    fake_dns.hosts[HOST] = ["127.0.0.1", "::1", "127.0.0.1"]
    r = _build(fake_dns, fake_clock, resolver_channel)
    assert isinstance(r, DnsResolver)
    await settle()
    assert resolver_channel.addresses == ["127.0.0.1:50051", "[::1]:50051"]
    assert [(k, n) for k, n, _ in fake_dns.calls] == [("host", HOST), ("txt", TXT)]
    assert resolver_channel.states[-1].service_config is None
    assert fake_dns.opened == fake_dns.closed == 1
    r.close()


async def test_default_port_is_443(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    r = _build(fake_dns, fake_clock, resolver_channel, target=f"dns:///{HOST}")
    await settle()
    assert resolver_channel.addresses == ["10.0.0.1:443"]
    r.close()


async def test_ip_literal_skips_dns(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """An IP-literal host makes no DNS query at all, even with an authority (item 56)."""
    r = _build(fake_dns, fake_clock, resolver_channel, target="dns://127.0.0.1:5353/127.0.0.1:1")
    r.resolve_now()
    await fake_clock.advance_async(100)
    assert resolver_channel.addresses == ["127.0.0.1:1"]
    assert fake_dns.calls == []
    r.close()


async def test_localhost_has_no_txt_lookup(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """localhost is looked up (hosts file) but its service config is never asked (A10)."""
    fake_dns.hosts["localhost"] = ["127.0.0.1"]
    r = _build(fake_dns, fake_clock, resolver_channel, target="localhost:50051")
    await settle()
    assert resolver_channel.addresses == ["127.0.0.1:50051"]
    assert fake_dns.txt_lookups() == 0
    r.close()


@pytest.mark.parametrize(
    ("options", "build_kw"),
    [({"grpc.service_config_disable_resolution": 1}, {}), ({}, {"disable_service_config": True})],
)
async def test_txt_can_be_disabled(
    fake_dns: FakeDns,
    fake_clock: FakeClock,
    resolver_channel: FakeResolverChannel,
    options: dict[str, Any],
    build_kw: dict[str, Any],
) -> None:
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    r = _build(fake_dns, fake_clock, resolver_channel, options=options, **build_kw)
    await settle()
    assert fake_dns.txt_lookups() == 0
    r.close()


async def test_authority_names_the_dns_server(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """dns://ip:port/ asks that server; without a port, port 53 (item 55)."""
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    r1 = _build(fake_dns, fake_clock, resolver_channel, target=f"dns://127.0.0.1:5353/{HOST}:1")
    r2 = _build(fake_dns, fake_clock, resolver_channel, target=f"dns://[::1]/{HOST}:1")
    r3 = _build(fake_dns, fake_clock, resolver_channel, target=f"{HOST}:1")
    await settle()
    servers = [ns for kind, _, ns in fake_dns.calls if kind == "host"]
    assert servers == [("127.0.0.1", 5353), ("::1", 53), None]
    for r in (r1, r2, r3):
        r.close()


async def test_resolve_now_is_paced_by_min_interval(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """After a success, resolve_now runs no sooner than 30 s later, once (item 57)."""
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    r = _build(
        fake_dns, fake_clock, resolver_channel, options={"grpc_lite.dns_refresh_interval_s": 0}
    )
    await settle()
    assert fake_dns.host_lookups() == 1
    for _ in range(5):
        r.resolve_now()
        await fake_clock.advance_async(2)
    assert fake_dns.host_lookups() == 1
    await fake_clock.advance_async(19.9)  # t = 29.9
    assert fake_dns.host_lookups() == 1
    await fake_clock.advance_async(0.1)  # t = 30
    assert fake_dns.host_lookups() == 2
    # Nothing more without another request (refresh is off).
    await fake_clock.advance_async(1000)
    assert fake_dns.host_lookups() == 2
    # Long after the floor, resolve_now runs at once.
    r.resolve_now()
    await settle()
    assert fake_dns.host_lookups() == 3
    r.close()


async def test_min_interval_option(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """grpc.dns_min_time_between_resolutions_ms sets the floor."""
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    opts = {"grpc.dns_min_time_between_resolutions_ms": 500, "grpc_lite.dns_refresh_interval_s": 0}
    r = _build(fake_dns, fake_clock, resolver_channel, options=opts)
    await settle()
    r.resolve_now()
    await fake_clock.advance_async(0.49)
    assert fake_dns.host_lookups() == 1
    await fake_clock.advance_async(0.01)
    assert fake_dns.host_lookups() == 2
    r.close()


async def test_periodic_refresh(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """With no request, the resolver refreshes every 30 s by default and sees changes."""
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    r = _build(fake_dns, fake_clock, resolver_channel)
    await settle()
    await fake_clock.advance_async(29.9)
    assert fake_dns.host_lookups() == 1
    fake_dns.hosts[HOST] = ["10.0.0.1", "10.0.0.2"]
    await fake_clock.advance_async(0.1)
    assert fake_dns.host_lookups() == 2
    assert resolver_channel.addresses == ["10.0.0.1:50051", "10.0.0.2:50051"]
    await fake_clock.advance_async(90)
    assert fake_dns.host_lookups() == 5
    r.close()


async def test_refresh_interval_is_used_as_given(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """A refresh interval below the floor still applies (API.md options table)."""
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    r = _build(
        fake_dns, fake_clock, resolver_channel, options={"grpc_lite.dns_refresh_interval_s": 5}
    )
    await settle()
    await fake_clock.advance_async(20)
    assert fake_dns.host_lookups() == 5
    r.close()


async def test_refresh_off(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    r = _build(
        fake_dns, fake_clock, resolver_channel, options={"grpc_lite.dns_refresh_interval_s": 0}
    )
    await settle()
    await fake_clock.advance_async(10_000)
    assert fake_dns.host_lookups() == 1
    assert fake_clock.pending() == []
    r.close()


async def test_failure_retries_with_backoff_then_resets(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """NXDOMAIN is reported and retried at 1, 1.6, 2.56 s...; a success resets it (item 57)."""
    opts = {"grpc_lite.dns_refresh_interval_s": 0}
    r = _build(fake_dns, fake_clock, resolver_channel, options=opts)
    await settle()
    assert len(resolver_channel.errors) == 1
    assert isinstance(resolver_channel.errors[0], DnsResolutionError)
    assert HOST in str(resolver_channel.errors[0])
    start = fake_clock.now()
    times = []
    for _ in range(4):
        due = fake_clock.next_due()
        assert due is not None
        times.append(round(due - start, 6))
        await fake_clock.advance_async(due - fake_clock.now())
        start = fake_clock.now()
    assert times == [1.0, 1.6, 2.56, 4.096]
    assert len(resolver_channel.errors) == 5
    assert resolver_channel.states == []
    # resolve_now during backoff does not shorten it.
    r.resolve_now()
    await settle()
    assert fake_dns.host_lookups() == 5
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    await fake_clock.advance_async(fake_clock.next_due() - fake_clock.now())
    assert resolver_channel.addresses == ["10.0.0.1:50051"]
    # Fail again: the backoff starts over at 1 s.
    del fake_dns.hosts[HOST]
    await fake_clock.advance_async(30)  # past the floor: resolve_now runs at once
    r.resolve_now()
    await settle()
    assert len(resolver_channel.errors) == 6
    assert fake_clock.next_due() == fake_clock.now() + 1.0
    r.close()


async def test_zero_addresses_is_an_error(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """An empty answer is reported as 'produced zero addresses' (item 58)."""
    fake_dns.hosts[HOST] = []
    r = _build(fake_dns, fake_clock, resolver_channel)
    await settle()
    assert resolver_channel.states == []
    assert "produced zero addresses" in str(resolver_channel.errors[0])
    r.close()


async def test_error_after_good_result_pushes_no_state(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """A later failure is only reported; the channel keeps its last addresses (item 66)."""
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    r = _build(fake_dns, fake_clock, resolver_channel)
    await settle()
    fake_dns.hosts[HOST] = OSError("server failure")
    await fake_clock.advance_async(30)
    assert len(resolver_channel.states) == 1
    assert "server failure" in str(resolver_channel.errors[0])
    r.close()


async def test_rejected_update_is_retried_with_backoff(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """update_state() returning False (bad resolver state) re-resolves after backoff."""
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    resolver_channel.accept = False
    r = _build(fake_dns, fake_clock, resolver_channel)
    await settle()
    assert fake_clock.next_due() == fake_clock.now() + 1.0
    resolver_channel.accept = True
    await fake_clock.advance_async(1.0)
    assert len(resolver_channel.states) == 2
    assert fake_clock.next_due() == fake_clock.now() + 30
    r.close()


async def test_resolve_now_during_lookup_is_answered_after_it(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """A request during a lookup never overlaps it; it is honoured after the floor."""
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    fake_dns.gate = asyncio.Event()
    opts = {"grpc_lite.dns_refresh_interval_s": 0}
    r = _build(fake_dns, fake_clock, resolver_channel, options=opts)
    await settle()
    assert r.busy
    r.resolve_now()
    r.resolve_now()
    fake_dns.gate.set()
    await settle()
    assert not r.busy
    assert fake_dns.host_lookups() == 1
    assert r.next_resolution_at == fake_clock.now() + 30
    await fake_clock.advance_async(30)
    assert fake_dns.host_lookups() == 2
    r.close()


async def test_close_cancels_lookup_and_timer(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """close() cancels the in-flight lookup (closing its DnsLookup) and the next timer."""
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    fake_dns.gate = asyncio.Event()
    r = _build(fake_dns, fake_clock, resolver_channel)
    await settle()
    task = r._task
    assert task is not None
    r.close()
    r.close()
    await r.wait_closed()
    assert task.cancelled()
    await r.wait_closed()
    assert fake_dns.opened == fake_dns.closed == 1
    fake_dns.gate.set()
    await fake_clock.advance_async(1000)
    assert fake_dns.host_lookups() == 1
    assert resolver_channel.events == []
    r.resolve_now()
    await settle()
    assert fake_dns.host_lookups() == 1


async def test_close_from_inside_report_error(fake_dns: FakeDns, fake_clock: FakeClock) -> None:
    """A channel that closes the resolver while handling its error gets nothing more."""
    ch = FakeResolverChannel()
    holder: list[Any] = []
    original = ch.report_error

    def report_and_close(exc: Exception) -> None:
        original(exc)
        holder[0].close()

    ch.report_error = report_and_close  # type: ignore[method-assign]
    holder.append(_build(fake_dns, fake_clock, ch))
    await settle()
    await fake_clock.advance_async(1000)
    assert len(ch.errors) == 1
    assert fake_clock.pending() == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("grpc.dns_min_time_between_resolutions_ms", "30"),
        ("grpc.dns_min_time_between_resolutions_ms", -1),
        ("grpc_lite.dns_refresh_interval_s", True),
    ],
)
def test_bad_option_values_raise(key: str, value: Any) -> None:
    builder = DnsResolverBuilder(lookup_factory=FakeDns().factory, clock=FakeClock())
    with pytest.raises(ValueError, match=key):
        builder.build(
            parse_target(TARGET), FakeResolverChannel(), BuildOptions(channel_options={key: value})
        )


# -- TXT service config (A2; item 59) --------------------------------------------------------

RR = {"loadBalancingConfig": [{"round_robin": {}}]}


def _txt(choices: Any) -> list[str]:
    return ["grpc_config=" + json.dumps(choices)]


async def test_txt_service_config_reaches_the_channel(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    fake_dns.txt[TXT] = ["v=spf1 -all", *_txt([{"serviceConfig": RR}])]
    r = _build(fake_dns, fake_clock, resolver_channel)
    await settle()
    state = resolver_channel.states[-1]
    assert json.loads(state.service_config) == RR
    assert state.service_config_error is None
    r.close()


async def test_invalid_txt_config_is_flagged_with_addresses(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    """An invalid record still delivers the addresses, with service_config_error (item 144)."""
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    fake_dns.txt[TXT] = _txt([{"serviceConfig": RR, "bogus": 1}])
    r = _build(fake_dns, fake_clock, resolver_channel)
    await settle()
    state = resolver_channel.states[-1]
    assert state.service_config is None
    assert "bogus" in (state.service_config_error or "")
    assert resolver_channel.addresses == ["10.0.0.1:50051"]
    r.close()


async def test_txt_lookup_failure_is_ignored(
    fake_dns: FakeDns, fake_clock: FakeClock, resolver_channel: FakeResolverChannel
) -> None:
    fake_dns.hosts[HOST] = ["10.0.0.1"]
    fake_dns.txt[TXT] = OSError("SERVFAIL")
    r = _build(fake_dns, fake_clock, resolver_channel)
    await settle()
    assert resolver_channel.states[-1].service_config is None
    assert resolver_channel.errors == []
    r.close()


def _choose(choices: Any, *, rand: float = 0.5, host: str = "me") -> tuple[Any, Any]:
    return choose_service_config(_txt(choices), client_hostname=host, rand=lambda: rand)


def test_choose_first_matching_choice() -> None:
    """The first choice whose clientLanguage/clientHostname/percentage match wins."""
    a, b, c = {"a": 1}, {"b": 2}, {"c": 3}
    choices = [
        {"clientLanguage": ["go", "java"], "serviceConfig": a},
        {"clientHostname": ["other"], "serviceConfig": b},
        {"clientLanguage": ["PYTHON"], "clientHostname": ["me"], "serviceConfig": c},
    ]
    sc, err = _choose(choices)
    assert err is None
    assert json.loads(sc) == c


@pytest.mark.parametrize(
    ("pct", "rand", "applies"),
    [(0, 0.0, False), (100, 0.999, True), (50, 0.49, True), (50, 0.5, False)],
)
def test_choose_percentage(pct: int, rand: float, applies: bool) -> None:
    sc, err = _choose([{"percentage": pct, "serviceConfig": RR}], rand=rand)
    assert err is None
    assert (sc is not None) is applies


def test_choose_no_match_and_no_record() -> None:
    assert _choose([{"clientLanguage": ["go"], "serviceConfig": RR}]) == (None, None)
    assert choose_service_config(["v=spf1"], client_hostname="me") == (None, None)
    assert choose_service_config([], client_hostname="me") == (None, None)


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ("grpc_config=not json", "not valid JSON"),
        ('grpc_config={"serviceConfig": {}}', "JSON array"),
        ('grpc_config=["x"]', "not a JSON object"),
        ('grpc_config=[{"clientLanguage": ["go"]}]', "missing serviceConfig"),
        ('grpc_config=[{"serviceConfig": []}]', "must be a JSON object"),
        ('grpc_config=[{"serviceConfig": {}, "extra": 1}]', "unknown field"),
        ('grpc_config=[{"serviceConfig": {}, "percentage": 101}]', "percentage"),
        ('grpc_config=[{"serviceConfig": {}, "percentage": 5.5}]', "percentage"),
        ('grpc_config=[{"serviceConfig": {}, "clientLanguage": "python"}]', "clientLanguage"),
        ('grpc_config=[{"serviceConfig": {}}, {"serviceConfig": 1}]', "choice 1"),
    ],
)
def test_choose_invalid_records(record: str, problem: str) -> None:
    """Any invalid choice invalidates the whole config, even after a matching one."""
    sc, err = choose_service_config([record], client_hostname="me")
    assert sc is None
    assert problem in err

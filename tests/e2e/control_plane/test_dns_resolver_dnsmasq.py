"""The dns resolver against a real DNS server: dnsmasq on 127.0.0.1 (CONFORMANCE [D]).

dnsmasq serves names from a hosts file we write (`--addn-hosts`, re-read on SIGHUP) and a
TXT `_grpc_config` record, and logs every query so that tests can count them. The resolver
runs with its real aiodns lookup and real clock; the test waits on conditions with short
polls bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from grpc_lite.resolver import BuildOptions, Resolver, parse_target
from grpc_lite.resolver.dns import DnsResolutionError, DnsResolverBuilder
from tests.dnsmasq import Dnsmasq, free_udp_tcp_port, start_dnsmasq
from tests.resolver.conftest import FakeResolverChannel

pytestmark = pytest.mark.integration

DNSMASQ = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None
)
SERVICE_CONFIG = {"loadBalancingConfig": [{"round_robin": {}}]}
TIMEOUT = 10.0
POLL = 0.02


async def _wait(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(POLL)


@pytest.fixture
def dnsmasq(tmp_path: Path) -> Iterator[Dnsmasq]:
    """dnsmasq on 127.0.0.1 serving svc.test and its TXT config (tests/dnsmasq.py).

    CI installs dnsmasq (.ci/run); a missing binary is an error, never a skip.
    """
    with start_dnsmasq(tmp_path, service_config=SERVICE_CONFIG) as server:
        yield server


def _build(target: str, ch: FakeResolverChannel, **options: Any) -> Resolver:
    builder = DnsResolverBuilder(client_hostname="test-client")
    return builder.build(parse_target(target), ch, BuildOptions(channel_options=options))


async def test_resolves_several_addresses_and_txt_config(dnsmasq: Dnsmasq) -> None:
    """dns://127.0.0.1:P/svc.test:50051 asks that server for A, AAAA and TXT (items 55, 56, 59)."""
    ch = FakeResolverChannel()
    r = _build(f"dns://127.0.0.1:{dnsmasq.port}/svc.test:50051", ch)
    try:
        await _wait(lambda: bool(ch.states or ch.errors), "a resolution")
        assert ch.errors == []
        assert sorted(ch.addresses) == ["127.0.0.1:50051", "127.0.0.2:50051", "127.0.0.3:50051"]
        state = ch.states[-1]
        assert state.service_config is not None
        assert json.loads(state.service_config) == SERVICE_CONFIG
        await _wait(lambda: dnsmasq.queries("TXT", "_grpc_config.svc.test") >= 1, "TXT in log")
        assert dnsmasq.queries("A", "svc.test") >= 1
        assert dnsmasq.queries("AAAA", "svc.test") >= 1
    finally:
        r.close()
        await r.wait_closed()


async def test_refresh_picks_up_changed_hosts(dnsmasq: Dnsmasq) -> None:
    """After the hosts file changes (SIGHUP), the periodic refresh delivers the new list."""
    ch = FakeResolverChannel()
    r = _build(
        f"dns://127.0.0.1:{dnsmasq.port}/svc.test:50051",
        ch,
        **{"grpc_lite.dns_refresh_interval_s": 0.1},
    )
    try:
        await _wait(lambda: len(ch.states) >= 1, "the first resolution")
        dnsmasq.set_hosts("svc.test", ["127.0.0.2", "127.0.0.4"])
        await _wait(
            lambda: sorted(ch.addresses) == ["127.0.0.2:50051", "127.0.0.4:50051"],
            "the refreshed address list",
        )
        assert ch.errors == []
    finally:
        r.close()
        await r.wait_closed()


async def test_unknown_name_is_reported(dnsmasq: Dnsmasq) -> None:
    """NXDOMAIN is reported to the channel as a resolution error (item 58)."""
    ch = FakeResolverChannel()
    r = _build(f"dns://127.0.0.1:{dnsmasq.port}/missing.test:1", ch)
    try:
        await _wait(lambda: bool(ch.errors), "the error")
        assert ch.states == []
        assert isinstance(ch.errors[0], DnsResolutionError)
        assert "missing.test" in str(ch.errors[0])
    finally:
        r.close()
        await r.wait_closed()


async def test_ip_literal_and_localhost_ask_no_dns(dnsmasq: Dnsmasq) -> None:
    """An IP literal makes no query; localhost comes from the hosts file, no TXT (item 56)."""
    ip_ch, local_ch = FakeResolverChannel(), FakeResolverChannel()
    r1 = _build(f"dns://127.0.0.1:{dnsmasq.port}/127.0.0.1:1", ip_ch)
    r2 = _build(f"dns://127.0.0.1:{dnsmasq.port}/localhost:2", local_ch)
    try:
        assert ip_ch.addresses == ["127.0.0.1:1"]
        await _wait(lambda: bool(local_ch.states or local_ch.errors), "localhost")
        assert "127.0.0.1:2" in local_ch.addresses
        # Prove the log is live, then check nothing was asked about those names.
        probe = FakeResolverChannel()
        r3 = _build(f"dns://127.0.0.1:{dnsmasq.port}/svc.test:3", probe)
        try:
            await _wait(lambda: dnsmasq.queries("A", "svc.test") >= 1, "the probe query")
        finally:
            r3.close()
            await r3.wait_closed()
        assert dnsmasq.queries("A", "localhost") == 0
        assert dnsmasq.queries("TXT", "_grpc_config.localhost") == 0
    finally:
        for r in (r1, r2):
            r.close()
            await r.wait_closed()


async def test_localhost_works_without_a_reachable_dns_server() -> None:
    """localhost resolves through the hosts file even when the DNS server is down."""
    ch = FakeResolverChannel()
    r = _build(f"dns://127.0.0.1:{free_udp_tcp_port()}/localhost:50051", ch)
    try:
        await _wait(lambda: bool(ch.states or ch.errors), "localhost")
        assert ch.errors == []
        assert "127.0.0.1:50051" in ch.addresses
    finally:
        r.close()
        await r.wait_closed()

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
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from grpc_lite.resolver import BuildOptions, Resolver, parse_target
from grpc_lite.resolver.dns import DnsResolutionError, DnsResolverBuilder
from tests.resolver.conftest import FakeResolverChannel

pytestmark = pytest.mark.integration

DNSMASQ = shutil.which("dnsmasq") or (
    "/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None
)
SERVICE_CONFIG = {"loadBalancingConfig": [{"round_robin": {}}]}
TIMEOUT = 10.0
POLL = 0.02


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no free port")


@dataclass
class Dnsmasq:
    port: int
    hosts_file: Path
    log_file: Path
    proc: subprocess.Popen[bytes]

    def set_hosts(self, name: str, ips: list[str]) -> None:
        """Rewrite the hosts file and make dnsmasq re-read it (SIGHUP)."""
        self.hosts_file.write_text("".join(f"{ip} {name}\n" for ip in ips))
        self.proc.send_signal(signal.SIGHUP)

    def queries(self, qtype: str, name: str) -> int:
        """How many `qtype name` queries dnsmasq logged."""
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return text.count(f"query[{qtype}] {name} from")

    def all_queries(self) -> int:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return text.count("query[")


def _wait_sync(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL)


async def _wait(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(POLL)


@pytest.fixture
def dnsmasq(tmp_path: Path) -> Iterator[Dnsmasq]:
    if DNSMASQ is None:
        pytest.skip("dnsmasq not installed (Debian package dnsmasq-base)")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 svc.test\n127.0.0.2 svc.test\n127.0.0.3 svc.test\n")
    log = tmp_path / "dnsmasq.log"
    # dnsmasq splits a --txt-record value into character-strings at commas (and drops
    # them); the config below is written without commas except for that one split, so the
    # record carries two strings that the resolver must concatenate (A2).
    txt = (
        'grpc_config=[{"serviceConfig":'
        + ","
        + json.dumps(SERVICE_CONFIG, separators=(",", ":"))
        + "}]"
    )
    assert txt.count(",") == 1
    port = _free_port()
    args = [
        DNSMASQ,
        "--no-daemon",
        "--no-resolv",
        "--no-hosts",
        f"--addn-hosts={hosts}",
        f"--txt-record=_grpc_config.svc.test,{txt}",
        # Authoritative for .test: unknown names get NXDOMAIN rather than REFUSED.
        "--local=/test/",
        f"--port={port}",
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--log-queries",
        f"--log-facility={log}",
        f"--pid-file={tmp_path / 'dnsmasq.pid'}",
    ]
    if os.geteuid() == 0:
        args.append("--user=root")  # so it can keep writing the log in tmp_path
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Dnsmasq(port=port, hosts_file=hosts, log_file=log, proc=proc)
    try:
        _wait_sync(
            lambda: proc.poll() is not None or (log.exists() and "read " in log.read_text()),
            "dnsmasq to start",
        )
        if proc.poll() is not None:
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"dnsmasq exited with {proc.returncode}: {stderr}")
        yield server
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()


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
    r = _build(f"dns://127.0.0.1:{_free_port()}/localhost:50051", ch)
    try:
        await _wait(lambda: bool(ch.states or ch.errors), "localhost")
        assert ch.errors == []
        assert "127.0.0.1:50051" in ch.addresses
    finally:
        r.close()
        await r.wait_closed()

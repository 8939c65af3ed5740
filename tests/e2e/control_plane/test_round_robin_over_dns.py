"""The whole control plane over real DNS (CONFORMANCE [D]; issue 3 "Real DNS"): dnsmasq on
127.0.0.1 at a free port serves ``svc.test`` from a hosts file; the channel dials
``dns://127.0.0.1:PORT/svc.test:P`` and round-robins over Greeter backends on 127.0.0.1-.4
(same port). Changing the hosts file and sending SIGHUP makes dnsmasq answer differently;
the channel's periodic refresh (``grpc_lite.dns_refresh_interval_s`` = 1) picks it up."""

from __future__ import annotations

import pytest

import grpc_lite
from tests.dnsmasq import DNS_SERVICE_NAME, Dnsmasq
from tests.e2e.control_plane._util import (
    ROUND_ROBIN,
    S,
    eventually,
    hello,
    hello_counts,
    options,
    ready_addresses,
    server_connections,
)
from tests.servers.harness import RunningServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

DNS_OPTIONS = (
    ("grpc_lite.dns_refresh_interval_s", 1),
    ("grpc.dns_min_time_between_resolutions_ms", 500),
)


def _target(dnsmasq: Dnsmasq, port: int | None) -> str:
    return f"dns://127.0.0.1:{dnsmasq.port}/{DNS_SERVICE_NAME}:{port}"


async def test_dns_txt_service_config_selects_round_robin(
    dnsmasq: Dnsmasq, greeter_backends: list[RunningServer]
) -> None:
    """CONFORMANCE 59, 55, 56, 90, 91: with no service config on the channel, the TXT
    record ``_grpc_config.svc.test`` (a ``grpc_config=`` choice list selecting round_robin,
    split over two TXT strings) is applied: the channel uses round_robin over the three A
    records, connects to all of them, and 30 calls give each backend 10 +- 1."""
    addresses = sorted(b.address for b in greeter_backends)
    async with grpc_lite.insecure_channel(
        _target(dnsmasq, greeter_backends[0].port), options=options(*DNS_OPTIONS)
    ) as ch:
        await hello(ch)
        await eventually(lambda: ready_addresses(ch) == addresses, "three READY subchannels")
        snap = ch.snapshot()
        assert snap.lb_policy == "round_robin"
        assert sorted(snap.addresses) == addresses
        assert snap.service_config is not None and "round_robin" in snap.service_config
        counts = await hello_counts(ch, 30)
        assert set(counts) == set(addresses), counts
        assert all(9 <= n <= 11 for n in counts.values()), counts
        assert dnsmasq.queries("TXT", f"_grpc_config.{DNS_SERVICE_NAME}") >= 1
        assert dnsmasq.queries("A", DNS_SERVICE_NAME) >= 1


async def test_dns_scale_up_and_down_follow_the_hosts_file(
    dnsmasq: Dnsmasq, four_backends: list[RunningServer]
) -> None:
    """Issue 3 (the seed article's complaint), CONFORMANCE 57, 97: round_robin over
    ``dns://127.0.0.1:PORT/svc.test:P`` reaches the three backends the name has; adding
    127.0.0.4 to the hosts file (SIGHUP) brings the fourth backend into rotation within a
    few seconds with a 1 s refresh interval and no connection loss; removing 127.0.0.1 takes
    it out of rotation and closes its connection."""
    one, two, three, four = four_backends
    first_three = sorted(b.address for b in (one, two, three))
    async with grpc_lite.insecure_channel(
        _target(dnsmasq, one.port), options=options(*DNS_OPTIONS), service_config=ROUND_ROBIN
    ) as ch:
        await hello(ch)
        await eventually(lambda: ready_addresses(ch) == first_three, "three READY subchannels")
        counts = await hello_counts(ch, 9)
        assert set(counts) == set(first_three), counts
        assert four.recorder.count() == 0

        dnsmasq.set_hosts(DNS_SERVICE_NAME, ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"])
        all_four = sorted(b.address for b in four_backends)
        await eventually(
            lambda: ready_addresses(ch) == all_four, "127.0.0.4 to join the rotation", within=5.0
        )
        counts = await hello_counts(ch, 12)
        assert set(counts) == set(all_four), counts
        assert all(2 <= n <= 4 for n in counts.values()), counts
        assert ch.get_state() is S.READY

        dnsmasq.set_hosts(DNS_SERVICE_NAME, ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
        last_three = sorted(b.address for b in (two, three, four))
        await eventually(
            lambda: sorted(ch.snapshot().addresses) == last_three,
            "127.0.0.1 to leave the address list",
            within=5.0,
        )
        await eventually(lambda: ready_addresses(ch) == last_three, "only .2-.4 READY")
        await eventually(lambda: not server_connections(one), "127.0.0.1's connection to close")
        served_by_one = one.recorder.count()
        counts = await hello_counts(ch, 12)
        assert set(counts) == set(last_three), counts
        assert one.recorder.count() == served_by_one
        assert ch.get_state() is S.READY

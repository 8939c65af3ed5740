"""Issue 17's acceptance checks 1-4, 7, 9 and 10 (C1 of the xDS study), the snapshot and the
``grpc-lite xds`` CLI: grpc_lite's own xDS client against the go-control-plane rig of
tests/peers/xds.py, on loopback. Checks 5, 6 and 8 (failover, timers, failures) are in
test_acceptance_failover.py. Every measured figure is printed as ``XDS-FIGURE name: value``.

Bounds are issue 17's: first RPC < 1 s; exact round robin; moves within 1 s with p50 <=
250 ms and 0 failed RPCs; locality shares 25 +- 3 % / 75 +- 3 % with Pearson's chi-square
at alpha = 1e-6; a NACKed CDS keeps traffic flowing and the fix applies within 1 s; an ADS
restart costs no RPC and leaves no duplicate subchannel; one ADS stream per process.
"""

from __future__ import annotations

import functools
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import pytest

import grpc_lite
from tests.e2e.xds._util import (
    ALPHA,
    Client,
    Traffic,
    chi_square_two,
    figure,
    ms,
    rig_call,
    summary,
    two_listeners,
)
from tests.peers import xds

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120 if xds.up_to_date() else 900)]

FOUR = ("b0", "b1", "b2", "b3")
TYPES = ("LDS", "RDS", "CDS", "EDS")


# -- 1. first RPC, every backend, one stream, every type ACKed --------------------------------


async def test_1_first_rpc_within_1s_every_backend_one_stream_every_type_acked(
    xds_rig: xds.XdsRig,
) -> None:
    version = xds_rig.set_snapshot(xds.simple_scenario("svc", FOUR))
    client = Client("xds:///svc", xds_rig.bootstrap_json())
    try:
        first = await client.rpc(deadline=5)
        first_latency = time.monotonic() - client.created
        rest = await client.rpcs(40)
    finally:
        await client.close()

    figure("1 first RPC after channel creation", ms(first_latency))
    assert first_latency < 1.0
    assert set([first, *rest]) == set(FOUR)
    events = xds_rig.events()
    assert events["streams"]["opened"] == 1
    for type_ in TYPES:
        assert xds_rig.acked(type_, version), type_
    assert xds_rig.nacks() == []


# -- 2. exact round robin ---------------------------------------------------------------------


async def test_2_exact_round_robin_three_identical_rounds(xds_rig: xds.XdsRig) -> None:
    xds_rig.set_snapshot(xds.simple_scenario("svc", FOUR))
    client = Client("xds:///svc", xds_rig.bootstrap_json())
    try:
        await client.channel.channel_ready()
        # Until every subchannel is READY the picker rotates over fewer: warm up first.
        await client.rpcs(40)
        order = await client.rpcs(400)
    finally:
        await client.close()

    assert Counter(order) == {b: 100 for b in FOUR}
    rounds = [order[i : i + 4] for i in range(0, 400, 4)]
    assert sorted(rounds[0]) == list(FOUR)
    assert all(r == rounds[0] for r in rounds), "round robin is not exact"
    figure("2 round robin over 4", f"100 identical rounds of {rounds[0]}")


# -- 3. EDS update moves traffic --------------------------------------------------------------


async def test_3_eds_replacement_moves_within_1s_twenty_trials(xds_rig: xds.XdsRig) -> None:
    """Trial k replaces the one backend b(k%8) by b((k+1)%8) (the old one still serving)."""
    xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0",)))
    client = Client("xds:///svc", xds_rig.bootstrap_json())
    moves: list[float] = []
    from_request: list[float] = []
    try:
        async with Traffic(client) as traffic:
            await traffic.settle(["b0"])
            for k in range(20):
                new = f"b{(k + 1) % 8}"
                requested = time.monotonic()
                await rig_call(xds_rig.set_snapshot, xds.simple_scenario("svc", (new,)))
                returned = time.monotonic()
                moves.append(await traffic.moved(returned, [new]))
                from_request.append(await traffic.moved(requested, [new]))
                await traffic.settle([new])
            failed = traffic.failures()
            total = len(traffic.records)
    finally:
        await client.close()

    figure("3 EDS replacement, move after the update returned", summary(moves))
    figure("3 EDS replacement, move after the update was requested", summary(from_request))
    figure("3 RPCs during the 20 trials", f"{total}, {len(failed)} failed")
    assert failed == []
    assert max(moves) <= 1.0
    assert statistics.median(moves) <= 0.25


async def test_3_a_fifth_backend_gets_traffic_within_1s(xds_rig: xds.XdsRig) -> None:
    xds_rig.set_snapshot(xds.simple_scenario("svc", FOUR))
    client = Client("xds:///svc", xds_rig.bootstrap_json())
    five = (*FOUR, "b4")
    try:
        async with Traffic(client) as traffic:
            await traffic.settle(FOUR)
            await rig_call(xds_rig.set_snapshot, xds.simple_scenario("svc", five))
            moved = await traffic.moved(time.monotonic(), five, cover=True)
            failed = traffic.failures()
    finally:
        await client.close()

    figure("3 fifth backend in the rotation after", ms(moved))
    assert failed == []
    assert moved <= 1.0


# -- 4. locality weights ----------------------------------------------------------------------


async def test_4_locality_weights_1_to_3_over_4000_rpcs(xds_rig: xds.XdsRig) -> None:
    xds_rig.set_snapshot(
        xds.simple_scenario(
            localities=[
                xds.locality(["b0"], sub_zone="light", weight=1),
                xds.locality(["b1"], sub_zone="heavy", weight=3),
            ]
        )
    )
    client = Client("xds:///svc", xds_rig.bootstrap_json())
    try:
        await client.channel.channel_ready()
        # Both localities READY before counting (weighted_target picks over READY ones).
        while set(await client.rpcs(20)) != {"b0", "b1"}:
            pass
        counts = Counter(await client.rpcs(4000, concurrency=20))
    finally:
        await client.close()

    shares = {k: 100 * counts[k] / 4000 for k in ("b0", "b1")}
    p_value = chi_square_two(counts, {"b0": 0.25, "b1": 0.75})
    figure("4 locality shares 1:3", f"{shares['b0']:.1f} % / {shares['b1']:.1f} %, p={p_value:.3g}")
    assert sum(counts.values()) == 4000
    assert p_value > ALPHA
    assert 22 <= shares["b0"] <= 28
    assert 72 <= shares["b1"] <= 78


# -- drops and cluster changes ----------------------------------------------------------------


async def test_drop_overloads_drop_their_share_with_unavailable(xds_rig: xds.XdsRig) -> None:
    xds_rig.set_snapshot(
        xds.simple_scenario(
            "svc", ("b0", "b1"), drop_overloads=[{"category": "lb", "ppm": 250_000}]
        )
    )
    client = Client("xds:///svc", xds_rig.bootstrap_json())
    outcomes: Counter[str] = Counter()
    try:
        await client.channel.channel_ready()
        for _ in range(4000):
            try:
                await client.rpc()
                outcomes["served"] += 1
            except grpc_lite.AioRpcError as exc:
                assert exc.code() == grpc_lite.StatusCode.UNAVAILABLE, exc
                assert "category lb" in (exc.details() or ""), exc
                outcomes["dropped"] += 1
    finally:
        await client.close()

    share = 100 * outcomes["dropped"] / 4000
    p_value = chi_square_two(outcomes, {"dropped": 0.25, "served": 0.75})
    figure("drop_overloads 25 %", f"{share:.1f} % dropped, p={p_value:.3g}")
    assert p_value > ALPHA
    assert 22 <= share <= 28


async def test_a_route_to_another_cluster_moves_traffic_with_no_failed_rpc(
    xds_rig_subset: xds.XdsRig,
) -> None:
    """Make before break, as a control plane must order it: add cluster-b, point the route
    at it, then remove cluster-a. (Removing cluster-a in the same snapshot that re-points the
    route lets the CDS answer without it overtake the route change: cluster-a is deleted
    while RPCs are still routed to it and they fail, in every gRPC.) Subset mode: the rig
    then serves clusters the client has not asked for yet."""

    def scenario(route_to: str, clusters: dict[str, tuple[str, ...]]) -> dict[str, Any]:
        base = xds.simple_scenario("svc")
        base["routes"][0]["virtual_hosts"][0]["routes"][0]["cluster"] = route_to
        base["clusters"] = [{"name": c, "eds_service_name": f"eds-{c}"} for c in clusters]
        base["endpoints"] = [
            {"cluster_name": f"eds-{c}", "localities": [xds.locality(backends)]}
            for c, backends in clusters.items()
        ]
        return base

    rig = xds_rig_subset
    a, b = ("b0", "b1"), ("b2", "b3")
    rig.set_snapshot(scenario("cluster-a", {"cluster-a": a}))
    client = Client("xds:///svc", rig.bootstrap_json())
    try:
        async with Traffic(client) as traffic:
            await traffic.settle(a)
            await rig_call(
                rig.set_snapshot, scenario("cluster-a", {"cluster-a": a, "cluster-b": b})
            )
            await traffic.settle(a)
            await rig_call(
                rig.set_snapshot, scenario("cluster-b", {"cluster-a": a, "cluster-b": b})
            )
            moved = await traffic.moved(time.monotonic(), b, cover=True)
            await rig_call(rig.set_snapshot, scenario("cluster-b", {"cluster-b": b}))
            await traffic.settle(b)
            failed = traffic.failures()
    finally:
        await client.close()

    figure("route to another cluster, moved after", ms(moved))
    assert failed == []
    assert moved <= 1.0


# -- 7. NACK ----------------------------------------------------------------------------------


def _scenario_with_eds_name(eds_name: str, backends: tuple[str, ...], lb: str) -> dict[str, Any]:
    scenario = xds.simple_scenario("svc", backends, lb_policy=lb)
    scenario["clusters"][0]["eds_service_name"] = eds_name
    scenario["endpoints"][0]["cluster_name"] = eds_name
    return scenario


async def test_7_unsupported_cds_is_nacked_traffic_goes_on_and_the_fix_applies(
    xds_rig: xds.XdsRig,
) -> None:
    good = xds_rig.set_snapshot(_scenario_with_eds_name("eds-a", ("b0", "b1"), "ROUND_ROBIN"))
    client = Client("xds:///svc", xds_rig.bootstrap_json())
    try:
        async with Traffic(client) as traffic:
            await traffic.settle(["b0", "b1"])
            bad = await rig_call(
                xds_rig.set_snapshot, _scenario_with_eds_name("eds-a", ("b0", "b1"), "MAGLEV")
            )
            nacked = time.monotonic()
            await traffic.until("a CDS NACK", lambda: bool(xds_rig.nacks("CDS")))
            during = len(traffic.records)
            assert client.channel.snapshot().resolver is not None
            nacked_view = _resources(client.channel.snapshot().resolver or {})
            await traffic.until(
                "100 RPCs after the NACK", lambda: len(traffic.records) > during + 100
            )
            # The fix names another EDS resource with other backends: traffic on b2/b3
            # proves the fixed cluster is in force, not just ACKed.
            fixed = await rig_call(
                xds_rig.set_snapshot, _scenario_with_eds_name("eds-b", ("b2", "b3"), "ROUND_ROBIN")
            )
            applied = await traffic.moved(time.monotonic(), ["b2", "b3"], cover=True)
            failed = traffic.failures()
            between = traffic.counts(nacked)
    finally:
        await client.close()

    (nack,) = xds_rig.nacks("CDS")
    figure("7 NACK error_detail", nack["error_detail"]["message"])
    (cds,) = [r for r in nacked_view if r["type"] == "CDS"]
    assert cds["status"] == "NACKED", cds
    assert cds["version"] == str(good), cds
    assert "MAGLEV" in json.dumps(cds), cds
    figure("7 fixed CDS applied after", ms(applied))
    assert nack["version_info"] == str(good)
    assert "cluster-svc" in nack["error_detail"]["message"]
    assert "MAGLEV" in nack["error_detail"]["message"]
    assert not xds_rig.acked("CDS", bad)
    assert xds_rig.acked("CDS", fixed)
    assert failed == []
    assert None not in between
    assert applied <= 1.0


# -- bad resources ----------------------------------------------------------------------------

CORRUPT = {
    "CDS": {"type_url": xds.TYPE_URLS["CDS"], "name": "cluster-svc", "malformed": True},
    "LDS": {"@type": xds.TYPE_URLS["LDS"], "name": "svc"},  # no api_listener
    "EDS": {"type_url": xds.TYPE_URLS["EDS"], "name": "eds-svc", "append_bytes_b64": "/w=="},
}


async def test_corrupt_resources_are_nacked_with_a_reason_and_traffic_goes_on(
    xds_rig: xds.XdsRig,
) -> None:
    xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0", "b1")))
    client = Client("xds:///svc", xds_rig.bootstrap_json())
    reasons: dict[str, str] = {}
    try:
        async with Traffic(client) as traffic:
            await traffic.settle(["b0", "b1"])
            for type_, raw in CORRUPT.items():
                scenario = xds.simple_scenario("svc", ("b0", "b1"))
                scenario["raw"] = [raw]
                scenario["skip_consistency"] = True
                await rig_call(xds_rig.set_snapshot, scenario)
                await traffic.until(f"a {type_} NACK", functools.partial(xds_rig.nacks, type_))
                reasons[type_] = xds_rig.nacks(type_)[0]["error_detail"]["message"]
                await traffic.settle(["b0", "b1"])
            fixed = await rig_call(xds_rig.set_snapshot, xds.simple_scenario("svc", ("b2",)))
            await traffic.moved(time.monotonic(), ["b2"])
            failed = traffic.failures()
    finally:
        await client.close()

    for type_, reason in reasons.items():
        figure(f"corrupt {type_} NACKed", reason)
    assert failed == []
    # Bytes that do not parse carry no name: the reason names the type and the position.
    assert "does not parse as envoy.config.cluster.v3.Cluster" in reasons["CDS"]
    assert "'svc'" in reasons["LDS"] and "api_listener" in reasons["LDS"]
    assert "envoy.config.endpoint.v3.ClusterLoadAssignment" in reasons["EDS"]
    for type_ in TYPES:
        assert xds_rig.acked(type_, fixed), type_


# -- 9. management server restart -------------------------------------------------------------

DOWN_RPCS = 200  # RPCs that must succeed while the management server is down


def _ads_stream_state(client: Client) -> str | None:
    info = client.channel.snapshot().resolver
    xds_client = info.get("xds_client") if isinstance(info, dict) else None
    return xds_client.get("stream_state") if isinstance(xds_client, dict) else None


async def _control_plane_lost(traffic: Traffic, client: Client) -> None:
    """Until the client's ADS stream has failed (it is reconnecting with backoff)."""
    await traffic.until(
        "the client sees its ADS stream fail",
        lambda: _ads_stream_state(client) not in ("RECEIVING", "CONNECTED"),
    )


async def test_9_ads_restart_keeps_rpcs_succeeding_and_resubscribes(xds_rig: xds.XdsRig) -> None:
    version = xds_rig.set_snapshot(xds.simple_scenario("svc", FOUR))
    client = Client("xds:///svc", xds_rig.bootstrap_json())
    try:
        async with Traffic(client) as traffic:
            await traffic.settle(FOUR)
            before = {s.address: s.connect_attempts for s in client.channel.snapshot().subchannels}
            await rig_call(xds_rig.ads_stop)
            stopped = time.monotonic()
            await _control_plane_lost(traffic, client)
            # The control plane is down and the client knows it: RPCs must go on.
            await traffic.until(
                f"{DOWN_RPCS} RPCs after the control plane went down",
                lambda: sum(traffic.counts(stopped).values()) >= DOWN_RPCS,
            )
            down_rpcs = len([r for r in traffic.records if r.started >= stopped])
            await rig_call(xds_rig.ads_start)
            restarted = time.monotonic()

            def resubscribed() -> bool:
                """Every type requested again and ACKed on the new stream."""
                events = xds_rig.events()
                if events["streams"]["opened"] < 2:
                    return False
                second = max(events["streams"]["active"], default=None)
                nonces = {r["nonce"] for r in events["responses"] if r["stream_id"] == second}
                acked = {
                    r["type"]
                    for r in events["requests"]
                    if r["stream_id"] == second
                    and r["error_detail"] is None
                    and r["response_nonce"] in nonces
                    and r["version_info"] == str(version)
                }
                return acked == set(TYPES)

            await traffic.until("every type ACKed on a new stream", resubscribed, within=15)
            took = time.monotonic() - restarted
            await traffic.settle(FOUR)
            failed = traffic.failures()
            subchannels = client.channel.snapshot().subchannels
    finally:
        await client.close()

    figure("9 RPCs while the management server was down", down_rpcs)
    figure("9 resubscribed after the restart", ms(took))
    assert failed == []
    assert down_rpcs >= DOWN_RPCS
    addresses = [s.address for s in subchannels]
    assert len(addresses) == len(set(addresses)) == 4, addresses
    # The very same subchannels: none created again, none reconnected.
    assert {s.address: s.connect_attempts for s in subchannels} == before
    created = [e for e in client.trace if e[0] >= stopped and e[2] == "created"]
    assert created == []
    for type_ in TYPES:
        assert xds_rig.acked(type_, version), type_


async def test_9_a_snapshot_set_while_the_management_server_is_down_applies_after(
    xds_rig: xds.XdsRig,
) -> None:
    xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0", "b1")))
    client = Client("xds:///svc", xds_rig.bootstrap_json())
    try:
        async with Traffic(client) as traffic:
            await traffic.settle(["b0", "b1"])
            await rig_call(xds_rig.ads_stop)
            await rig_call(xds_rig.set_snapshot, xds.simple_scenario("svc", ("b2", "b3")))
            changed = time.monotonic()
            await _control_plane_lost(traffic, client)
            await traffic.until(
                f"{DOWN_RPCS} RPCs after the snapshot changed",
                lambda: sum(traffic.counts(changed).values()) >= DOWN_RPCS,
            )
            still = traffic.counts(changed)
            await rig_call(xds_rig.ads_start)
            restarted = time.monotonic()
            moved = await traffic.moved(restarted, ["b2", "b3"], cover=True, within=15)
            failed = traffic.failures()
    finally:
        await client.close()

    figure("9 snapshot changed while down, applied after the restart", ms(moved))
    assert set(still) == {"b0", "b1"}  # the cached config serves meanwhile
    assert failed == []


# -- 10. one ADS stream for two channels ------------------------------------------------------


async def test_10_two_channels_to_two_targets_share_one_ads_stream(
    xds_rig_subset: xds.XdsRig,
) -> None:
    rig = xds_rig_subset
    rig.set_snapshot(two_listeners(["svc-a", "svc-b"], [("b0", "b1"), ("b2", "b3")]))
    a = Client("xds:///svc-a", rig.bootstrap_json())
    b = Client("xds:///svc-b", rig.bootstrap_json())
    try:
        got_a = set(await a.rpcs(20))
        got_b = set(await b.rpcs(20))
    finally:
        await a.close()
        await b.close()

    assert got_a == {"b0", "b1"}
    assert got_b == {"b2", "b3"}
    events = rig.events()
    assert events["streams"]["opened"] == 1
    assert {r["stream_id"] for r in events["requests"]} == {events["requests"][0]["stream_id"]}
    lds = {name for r in events["requests"] if r["type"] == "LDS" for name in r["resource_names"]}
    assert lds == {"svc-a", "svc-b"}


# -- snapshot() and the CLI -------------------------------------------------------------------


async def test_snapshot_shows_the_xds_client_the_lb_tree_and_localities(
    xds_rig: xds.XdsRig,
) -> None:
    xds_rig.set_snapshot(
        xds.simple_scenario(
            localities=[
                xds.locality(["b0"], sub_zone="p0", priority=0),
                xds.locality(["b1"], sub_zone="p1", priority=1),
            ]
        )
    )
    client = Client("xds:///svc", xds_rig.bootstrap_json())
    try:
        await client.rpcs(5)
        snap = client.channel.snapshot()
    finally:
        await client.close()

    assert snap.resolver is not None
    resources = _resources(snap.resolver)
    assert {(r["type"], r["name"]) for r in resources} >= {
        ("LDS", "svc"),
        ("RDS", "route-svc"),
        ("CDS", "cluster-svc"),
        ("EDS", "eds-svc"),
    }
    assert {r["status"] for r in resources} == {"ACKED"}
    assert snap.balancer is not None
    tree = json.dumps(snap.balancer)
    for policy in ("cds_experimental", "priority_experimental", "weighted_target_experimental"):
        assert policy in tree, policy
    (sub,) = [s for s in snap.subchannels if s.address == xds_rig.backend("b0").address]
    assert "p0" in sub.attributes["xds.locality"]
    assert sub.attributes["xds.priority"] == "0"
    assert sub.attributes["xds.cluster"] == "cluster-svc"


def _resources(resolver_info: dict[str, Any]) -> list[dict[str, Any]]:
    """The XdsClient's resources from the resolver's debug_info(), with short type names."""
    client = resolver_info["xds_client"]
    resources: list[dict[str, Any]] = client["resources"]
    short = {url: name for name, url in xds.TYPE_URLS.items()}
    return [{**r, "type": short.get(r["type"], r["type"])} for r in resources]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``grpc-lite xds ARGS`` in a subprocess; the bootstrap comes from the environment
    (GRPC_XDS_BOOTSTRAP_CONFIG, set by the xds_bootstrap_env fixture)."""
    return subprocess.run(
        [sys.executable, "-m", "grpc_lite", "xds", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_dump_prints_resources_tree_and_localities(
    xds_rig: xds.XdsRig, xds_bootstrap_env: str
) -> None:
    xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0", "b1")))

    result = _cli("dump", "xds:///svc")

    assert result.returncode == 0, result.stderr
    dump = json.loads(result.stdout)
    assert {r["status"] for r in _resources(dump["resolver"])} == {"ACKED"}
    assert "priority_experimental" in json.dumps(dump["balancer"])
    assert sorted(s["attributes"]["xds.priority"] for s in dump["subchannels"]) == ["0", "0"]
    assert all("sub_zone='s'" in s["attributes"]["xds.locality"] for s in dump["subchannels"])


def test_cli_check_against_the_rig_exits_0(xds_rig: xds.XdsRig, xds_bootstrap_env: str) -> None:
    xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0",)))

    plain = _cli("check")
    with_listener = _cli("check", "--listener", "svc")

    assert plain.returncode == 0, plain.stderr
    assert with_listener.returncode == 0, with_listener.stderr
    assert xds_rig.ads_address in plain.stdout
    assert "'svc': ACKED" in with_listener.stdout


def test_cli_watch_table_shows_the_xds_client_and_each_subchannels_place(
    xds_rig: xds.XdsRig, xds_bootstrap_env: str
) -> None:
    """`grpc-lite watch xds:///svc` (table mode) shows the management server, the stream,
    every resource with its status and version, and each subchannel's cluster, priority and
    locality, live."""
    xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0", "b1")))

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_lite",
            "watch",
            "xds:///svc",
            "--call",
            "/grpc.testing.TestService/EmptyCall",
            "--interval",
            "0.3",
            "--duration",
            "2",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"xds {xds_rig.ads_address}  stream RECEIVING  config ok" in out, out
    for kind, name in (("LDS", "svc"), ("RDS", "route-svc"), ("CDS", "cluster-svc")):
        assert any(line.split()[:3] == [kind, name, "ACKED"] for line in out.splitlines()), (
            kind,
            name,
            out,
        )
    placed = [line for line in out.splitlines() if "cluster cluster-svc, priority 0" in line]
    assert any(xds_rig.backend_addresses["b0"] in line for line in placed), out
    assert any(xds_rig.backend_addresses["b1"] in line for line in placed), out

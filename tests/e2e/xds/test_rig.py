"""The xDS rig itself (tests/peers/xds.py, peers/xds), proven with xDS clients other than
grpc_lite's: grpc-go's (the rig's ``client`` subcommand) and grpcio's (grpc C-core, in a
subprocess with GRPC_XDS_BOOTSTRAP_CONFIG set), so the acceptance tests of grpc_lite's xDS
can trust what the rig serves and records."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.peers import xds

# A cold rig build (usually done before pytest by `python -m tests.peers.build`) takes
# 1-2 min plus module downloads, inside the first test's setup: then allow for it.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(120 if xds.up_to_date() else 900)]

FOUR = ("b0", "b1", "b2", "b3")


def _wait_for(what: str, condition: Callable[[], bool], timeout: float = 10.0) -> float:
    """Poll ``condition`` until true; returns the seconds it took (fails naming ``what``)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)
    return time.monotonic() - started


def test_four_backends_in_one_locality_get_traffic_and_every_type_is_acked(
    xds_rig: xds.XdsRig,
) -> None:
    version = xds_rig.set_snapshot(xds.simple_scenario("svc", FOUR))

    result = xds_rig.run_client("xds:///svc", 200)

    assert result["errors"] == {}
    assert sorted(result["counts"]) == list(FOUR)
    assert sum(result["counts"].values()) == 200
    assert xds_rig.rpc_counts() == result["counts"]  # the rig counted what the client saw
    events = xds_rig.events()
    assert events["streams"]["opened"] == 1
    for type_ in ("LDS", "RDS", "CDS", "EDS"):
        assert xds_rig.acked(type_, version), type_
    # What each type subscribed to. A request with no names may follow: grpc-go's client
    # drops its watches as it closes, and the rig may log that before the stream ends.
    names = {r["type"]: r["resource_names"] for r in events["requests"] if r["resource_names"]}
    assert names == {
        "LDS": ["svc"],
        "RDS": ["route-svc"],
        "CDS": ["cluster-svc"],
        "EDS": ["eds-svc"],
    }
    assert xds_rig.nacks() == []


def test_grpcio_xds_client_reaches_every_backend(xds_rig: xds.XdsRig) -> None:
    """grpcio (grpc C-core's xDS client) on the same rig, in its own process."""
    version = xds_rig.set_snapshot(xds.simple_scenario("svc", FOUR, inline_route=True))
    script = (
        "import collections, json, grpc\n"
        "from grpc_lite._proto import testing_pb2 as pb\n"
        "with grpc.insecure_channel('xds:///svc') as channel:\n"
        "    call = channel.unary_unary('/grpc.testing.TestService/UnaryCall',\n"
        "        request_serializer=pb.SimpleRequest.SerializeToString,\n"
        "        response_deserializer=pb.SimpleResponse.FromString)\n"
        "    counts = collections.Counter(\n"
        "        call(pb.SimpleRequest(), timeout=10, wait_for_ready=True).server_id\n"
        "        for _ in range(100))\n"
        "print(json.dumps(counts))\n"
    )
    env = {**os.environ, "GRPC_XDS_BOOTSTRAP_CONFIG": xds_rig.bootstrap_json()}
    env.pop("GRPC_XDS_BOOTSTRAP", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    counts = json.loads(result.stdout)
    assert sorted(counts) == list(FOUR)
    assert sum(counts.values()) == 100
    for type_ in ("LDS", "CDS", "EDS"):  # the route configuration is inline
        assert xds_rig.acked(type_, version), type_
    assert xds_rig.requests("RDS") == []


def test_eds_update_moves_traffic_on_a_live_channel(xds_rig: xds.XdsRig) -> None:
    xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0", "b1")))
    run = xds_rig.start_client("xds:///svc", 100_000, interval=0.005)
    try:
        _wait_for("b0 and b1 serve", lambda: set(xds_rig.rpc_counts()) == {"b0", "b1"})
        moved_version = xds_rig.set_snapshot(xds.simple_scenario("svc", ("b2", "b3")))
        _wait_for("the EDS update is ACKed", lambda: xds_rig.acked("EDS", moved_version))
        xds_rig.reset_counts()
        _wait_for("b2 and b3 serve", lambda: {"b2", "b3"} <= set(xds_rig.rpc_counts()))
        xds_rig.reset_counts()
        _wait_for("100 more RPCs", lambda: sum(xds_rig.rpc_counts().values()) >= 100)
        assert set(xds_rig.rpc_counts()) == {"b2", "b3"}
    finally:
        run.stop()


def test_priorities_and_locality_weights_as_grpc_go_sees_them(xds_rig: xds.XdsRig) -> None:
    xds_rig.set_snapshot(
        xds.simple_scenario(
            localities=[
                xds.locality(["b0", "b1"], sub_zone="p0", priority=0),
                xds.locality(["b2", "b3"], sub_zone="p1", priority=1),
            ]
        )
    )
    assert sorted(xds_rig.run_client("xds:///svc", 50)["counts"]) == ["b0", "b1"]
    xds_rig.backend("b0").stop()
    xds_rig.backend("b1").stop()
    assert sorted(xds_rig.run_client("xds:///svc", 50)["counts"]) == ["b2", "b3"]

    xds_rig.set_snapshot(
        xds.simple_scenario(
            localities=[
                xds.locality(["b4"], sub_zone="light", weight=1),
                xds.locality(["b5"], sub_zone="heavy", weight=3),
            ]
        )
    )
    counts = xds_rig.run_client("xds:///svc", 2000)["counts"]
    assert sum(counts.values()) == 2000
    assert 0.20 <= counts["b4"] / 2000 <= 0.30, counts


def test_drop_overloads_reach_the_client(xds_rig: xds.XdsRig) -> None:
    xds_rig.set_snapshot(
        xds.simple_scenario(backends=["b0"], drop_overloads=[{"category": "lb", "ppm": 1_000_000}])
    )
    result = xds_rig.run_client("xds:///svc", 20, wait_for_ready="none")
    assert result["counts"] == {}
    assert sum(result["errors"].values()) == 20
    assert all(key.startswith("Unavailable:") and "drop" in key for key in result["errors"])


def test_stopped_backend_gets_nothing_and_serves_again_on_the_same_port(
    xds_rig: xds.XdsRig,
) -> None:
    xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0", "b1")))
    b0 = xds_rig.backend("b0")
    address = b0.address

    stopped = b0.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(_hostport(address), timeout=2).close()
    result = xds_rig.run_client("xds:///svc", 50)
    assert result["errors"] == {}
    assert result["counts"] == {"b1": 50}

    started = b0.start()
    assert stopped["address"] == started["address"] == address
    assert started["mode"] == "serving"
    xds_rig.reset_counts()
    result = xds_rig.run_client("xds:///svc", 50)
    assert result["errors"] == {}
    assert sorted(result["counts"]) == ["b0", "b1"]


def test_blackhole_accepts_tcp_and_never_answers(xds_rig: xds.XdsRig) -> None:
    b3 = xds_rig.backend("b3")
    assert b3.blackhole()["mode"] == "blackhole"
    with socket.create_connection(_hostport(b3.address), timeout=2) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # a server would send SETTINGS at once (RFC 9113 section 3.4)
    assert b3.stats()["blackhole_accepted"] == 1
    assert b3.start()["mode"] == "serving"


def test_nack_of_an_unsupported_cluster_names_it_and_the_fix_is_acked(
    xds_rig: xds.XdsRig,
) -> None:
    good = xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0", "b1")))
    run = xds_rig.start_client("xds:///svc", 100_000, interval=0.005)
    try:
        _wait_for("the good CDS is ACKed", lambda: xds_rig.acked("CDS", good))
        bad = xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0", "b1"), lb_policy="MAGLEV"))
        _wait_for("a CDS NACK", lambda: bool(xds_rig.nacks("CDS")))
        (nack,) = xds_rig.nacks("CDS")
        assert nack["version_info"] == str(good)  # the last version the client accepted
        assert "cluster-svc" in nack["error_detail"]["message"]
        assert not xds_rig.acked("CDS", bad)
        xds_rig.reset_counts()
        _wait_for("traffic goes on", lambda: sum(xds_rig.rpc_counts().values()) >= 50)

        fixed = xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0", "b1")))
        _wait_for("the fixed CDS is ACKed", lambda: xds_rig.acked("CDS", fixed))
    finally:
        run.stop()


def test_malformed_raw_resource_is_nacked(xds_rig: xds.XdsRig) -> None:
    version = xds_rig.put_raw(
        [{"type_url": xds.TYPE_URLS["LDS"], "name": "svc", "malformed": True}]
    )
    run = xds_rig.start_client("xds:///svc", 1, rpc_timeout=5)
    try:
        _wait_for("an LDS NACK", lambda: bool(xds_rig.nacks("LDS")))
    finally:
        run.stop()
    (nack,) = xds_rig.nacks("LDS")
    assert nack["version_info"] == ""  # nothing accepted before
    assert nack["error_detail"]["message"]
    assert not xds_rig.acked("LDS", version)


def test_raw_protojson_resource_replaces_the_built_one(xds_rig: xds.XdsRig) -> None:
    scenario = xds.simple_scenario("svc", ("b0",))
    scenario["raw"] = [
        {
            "@type": xds.TYPE_URLS["EDS"],
            "clusterName": "eds-svc",
            "endpoints": [
                {
                    "locality": {"region": "r", "zone": "z", "subZone": "s"},
                    "loadBalancingWeight": 1,
                    "lbEndpoints": [
                        {"endpoint": {"address": {"socketAddress": _socket_address(xds_rig, b)}}}
                        for b in ("b4", "b5")
                    ],
                }
            ],
        }
    ]
    xds_rig.set_snapshot(scenario)

    result = xds_rig.run_client("xds:///svc", 20)

    assert result["errors"] == {}
    assert sorted(result["counts"]) == ["b4", "b5"]


def test_rpc_behavior_header_is_obeyed(xds_rig: xds.XdsRig) -> None:
    xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0", "b1")))

    failing = xds_rig.run_client("xds:///svc", 10, metadata={"rpc-behavior": "error-code-14"})
    assert failing["counts"] == {}
    assert sum(failing["errors"].values()) == 10
    assert all(key.startswith("Unavailable:") for key in failing["errors"])

    only_b0 = xds_rig.run_client(
        "xds:///svc", 20, metadata={"rpc-behavior": "hostname=b0 error-code-5"}
    )
    # Round robin from the first READY backend on: both get RPCs, b0's all fail.
    assert list(only_b0["counts"]) == ["b1"]
    assert only_b0["counts"]["b1"] + sum(only_b0["errors"].values()) == 20
    assert list(only_b0["errors"]) == [
        'NotFound: b0: failed as rpc-behavior "hostname=b0 error-code-5" asks'
    ]

    # Two clients with a sleep: both RPCs are in flight on one backend at once.
    xds_rig.set_snapshot(xds.simple_scenario("svc", ("b2",)))
    runs = [
        xds_rig.start_client("xds:///svc", 1, metadata={"rpc-behavior": "sleep-1"})
        for _ in range(2)
    ]
    try:
        results = [run.wait(30) for run in runs]
    finally:
        for run in runs:
            run.stop()
    assert [r["counts"] for r in results] == [{"b2": 1}, {"b2": 1}]
    assert xds_rig.backend("b2").stats()["max_in_flight"] == 2


def test_ads_restart_on_the_same_port_and_the_client_resubscribes(xds_rig: xds.XdsRig) -> None:
    version = xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0", "b1")))
    run = xds_rig.start_client("xds:///svc", 100_000, interval=0.005)
    try:
        _wait_for("the EDS is ACKed", lambda: xds_rig.acked("EDS", version))
        xds_rig.ads_stop()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(_hostport(xds_rig.ads_address), timeout=2).close()
        xds_rig.reset_counts()
        _wait_for("traffic goes on", lambda: sum(xds_rig.rpc_counts().values()) >= 50)

        xds_rig.ads_start()
        _wait_for("a second ADS stream", lambda: xds_rig.events()["streams"]["opened"] == 2)

        def resubscribed() -> bool:
            events = xds_rig.events()
            second = max(events["streams"]["active"], default=None)
            return {r["type"] for r in events["requests"] if r["stream_id"] == second} == {
                "LDS",
                "RDS",
                "CDS",
                "EDS",
            }

        _wait_for("every type requested again", resubscribed)
    finally:
        run.stop()
    assert xds_rig.events()["streams"]["closed"] >= 1


def test_reset_keeps_an_open_stream_subscribed(xds_rig: xds.XdsRig) -> None:
    """A stream open across ``reset()`` (a client shared between tests) is told its resources
    are gone and gets the next snapshot."""
    first = xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0",)))
    run = xds_rig.start_client("xds:///svc", 100_000, interval=0.005, wait_for_ready="all")
    try:
        _wait_for("the first EDS is ACKed", lambda: xds_rig.acked("EDS", first))
        xds_rig.reset()
        second = xds_rig.set_snapshot(xds.simple_scenario("svc", ("b1",)))
        _wait_for("the second EDS is ACKed", lambda: xds_rig.acked("EDS", second))
        assert second > first + 1  # the empty snapshot of the reset came between
        xds_rig.reset_counts()
        _wait_for("50 RPCs", lambda: sum(xds_rig.rpc_counts().values()) >= 50)
        assert set(xds_rig.rpc_counts()) == {"b1"}
        assert xds_rig.events()["streams"]["opened"] == 0  # the same stream throughout
    finally:
        run.stop()


def test_ads_mode_holds_a_request_for_a_missing_listener(xds_rig: xds.XdsRig) -> None:
    """go-control-plane's ADS rule: no answer until the request names every listener of the
    snapshot (the client's does-not-exist timer decides)."""
    xds_rig.set_snapshot(xds.simple_scenario("svc", ("b0",)))

    result = xds_rig.run_client("xds:///missing", 1, rpc_timeout=1, wait_for_ready="none")

    assert result["counts"] == {}
    events = xds_rig.events()
    streams = {r["stream_id"] for r in events["requests"] if r["resource_names"] == ["missing"]}
    assert len(streams) == 1
    assert [r for r in events["responses"] if r["stream_id"] in streams] == []


def test_subset_mode_answers_a_missing_listener_with_an_empty_response(
    xds_rig_subset: xds.XdsRig,
) -> None:
    version = xds_rig_subset.set_snapshot(xds.simple_scenario("svc", ("b0",)))

    result = xds_rig_subset.run_client("xds:///missing", 1, rpc_timeout=1, wait_for_ready="none")

    assert result["counts"] == {}
    (response,) = xds_rig_subset.events()["responses"]
    assert (response["type"], response["version_info"]) == ("LDS", str(version))
    assert response["resource_names"] == []
    assert xds_rig_subset.acked("LDS", version)


def test_bad_scenarios_are_refused_naming_the_problem(xds_rig: xds.XdsRig) -> None:
    unknown_backend = xds.simple_scenario("svc", ("b0", "nope"))
    with pytest.raises(xds.RigError, match='no rig backend named "nope"'):
        xds_rig.set_snapshot(unknown_backend)
    dangling = xds.simple_scenario("svc")
    dangling["routes"] = []
    with pytest.raises(xds.RigError, match="route-svc"):
        xds_rig.set_snapshot(dangling)
    with pytest.raises(xds.RigError, match='unknown field "listener"'):
        xds_rig.set_snapshot({"listener": []})
    with pytest.raises(xds.RigError, match='lb_policy "NOPE"'):
        xds_rig.set_snapshot(xds.simple_scenario("svc", lb_policy="NOPE"))
    with pytest.raises(xds.RigError, match="malformed or append_bytes_b64 is required"):
        xds_rig.put_raw([{"type_url": xds.TYPE_URLS["CDS"], "name": "c"}])
    with pytest.raises(KeyError, match="no rig backend named 'b99'"):
        xds_rig.backend("b99")
    # A dangling reference can still be served on purpose.
    assert xds_rig.set_snapshot({**dangling, "skip_consistency": True}) > 0


def test_rig_exits_when_its_stdin_closes_and_puts_backends_on_the_hosts_asked() -> None:
    rig = xds.start(backends=3, backend_hosts=("127.0.0.2", "127.0.0.3"), ads=False)
    try:
        assert rig.process.poll() is None
        hosts = {
            name: address.rpartition(":")[0] for name, address in rig.backend_addresses.items()
        }
        assert hosts == {"b0": "127.0.0.2", "b1": "127.0.0.3", "b2": "127.0.0.2"}
        assert not rig.ads_mode
    finally:
        rig.stop()
    assert rig.process.returncode == 0  # it exited by itself, not by a signal


def _hostport(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _socket_address(rig: xds.XdsRig, backend: str) -> dict[str, object]:
    host, port = _hostport(rig.backend_addresses[backend])
    return {"address": host, "portValue": port}

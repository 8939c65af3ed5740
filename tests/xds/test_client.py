# ruff: noqa: ASYNC109  (timeouts on the waits keep every test bounded)
"""grpc_lite.xds._client: the XdsClient against a scripted ADS server (tests/fakes/ads_server).

The ADS stream is a real grpc_lite call over loopback to a grpcio.aio fake; the does-not-exist
timers and the stream backoff run on a FakeClock, so no test waits for them in real time.
Resource types are fakes (the client only relies on the ResourceType protocol): a resource
is an Any whose value is "<name>=<payload>", a payload starting with "bad" is invalid.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from grpc_lite.xds._bootstrap import Bootstrap, parse_bootstrap
from grpc_lite.xds._client import (
    CLIENT_FEATURES,
    RESOURCE_TRANSITIONS,
    STREAM_TRANSITIONS,
    ResourceStatus,
    StreamState,
    XdsClient,
    aclose_all_for_testing,
    acquire,
)
from grpc_lite.xds._model import CDS, LDS, RDS, DecodeResult
from tests.fakes.ads_server import AnyMessage, FakeAdsServer, RecordedRequest, any_resource
from tests.fakes.clock import FakeClock, settle


@dataclass(frozen=True)
class FakeType:
    type_url: str
    short_name: str
    all_resources_required_in_sotw: bool

    def decode(self, serialized_any: bytes) -> DecodeResult:
        text = AnyMessage.FromString(serialized_any).value.decode()
        name, sep, payload = text.partition("=")
        if not sep:
            return DecodeResult(None, error=f"no name in {text!r}")
        if payload.startswith("bad"):
            return DecodeResult(name, error=f"payload {payload!r} is invalid")
        return DecodeResult(name, resource=payload)


LISTENERS = FakeType(LDS, "LDS", True)
ROUTES = FakeType(RDS, "RDS", False)
CLUSTERS = FakeType(CDS, "CDS", True)


class Recorder:
    """An XdsWatcher that records (event, name, detail)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self.on_event: Callable[[tuple[str, str, Any]], None] | None = None

    def _add(self, event: tuple[str, str, Any]) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def on_resource(self, type_url: str, name: str, resource: object) -> None:
        self._add(("resource", name, resource))

    def on_does_not_exist(self, type_url: str, name: str) -> None:
        self._add(("does_not_exist", name, None))

    def on_error(self, type_url: str, name: str, error: str) -> None:
        self._add(("error", name, error))


async def eventually(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait (loopback I/O, not time) until `condition()` is true."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the client's state has no event
            await asyncio.sleep(0.002)


def make_bootstrap(
    uri: str, *, features: tuple[str, ...] = (), node_id: str = "node-1"
) -> Bootstrap:
    return parse_bootstrap(
        json.dumps(
            {
                "xds_servers": [
                    {
                        "server_uri": uri,
                        "channel_creds": [{"type": "insecure"}],
                        "server_features": list(features),
                    }
                ],
                "node": {
                    "id": node_id,
                    "cluster": "cl",
                    "locality": {"region": "r1", "zone": "z1", "sub_zone": "s1"},
                    "metadata": {"team": "lite", "n": 2},
                },
            }
        ),
        "test",
    )


@pytest.fixture
async def server() -> AsyncIterator[FakeAdsServer]:
    ads = await FakeAdsServer().start()
    try:
        yield ads
    finally:
        await aclose_all_for_testing()
        await ads.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def subscribed(
    server: FakeAdsServer, after: int, type_url: str, names: list[str]
) -> RecordedRequest:
    """The first request from index `after` of `type_url` naming exactly `names`."""
    while True:
        req = await server.next_request(after, type_url)
        if sorted(req.names) == sorted(names):
            return req
        after = server.requests.index(req) + 1


# --- state machines ---------------------------------------------------------------------


def test_transition_tables_cover_every_state() -> None:
    assert set(STREAM_TRANSITIONS) == set(StreamState)
    assert set(RESOURCE_TRANSITIONS) == set(ResourceStatus)
    assert STREAM_TRANSITIONS[StreamState.CLOSED] == frozenset()


# --- subscribe, ACK, NACK -------------------------------------------------------------------


async def test_subscribe_then_ack_with_version_and_nonce(
    server: FakeAdsServer, clock: FakeClock
) -> None:
    client = acquire(make_bootstrap(server.address), clock=clock)
    rec = Recorder()
    client.watch(LISTENERS, "a", rec)
    first = await server.next_request(0, LDS)
    assert (first.stream, first.names, first.version, first.nonce) == (1, ["a"], "", "")
    assert first.error is None
    nonce = server.send(LDS, [any_resource(LDS, "a", "v1")], "1")
    ack = await server.next_request(1, LDS)
    assert (ack.names, ack.version, ack.nonce, ack.error) == (["a"], "1", nonce, None)
    assert rec.events == [("resource", "a", "v1")]
    info = client.debug_info()
    (res,) = info["resources"]
    assert (res["type"], res["name"], res["version"], res["status"]) == ("LDS", "a", "1", "ACKED")
    assert res["does_not_exist_timer"] == {"pending": False}
    assert info["stream_state"] == "RECEIVING"
    assert client.responses_received == 1 and client.streams_started == 1


async def test_nack_keeps_valid_resources_a46(server: FakeAdsServer, clock: FakeClock) -> None:
    client = acquire(make_bootstrap(server.address), clock=clock)
    rec = Recorder()
    client.watch(CLUSTERS, "a", rec)
    client.watch(CLUSTERS, "b", rec)
    await subscribed(server, 0, CDS, ["a", "b"])
    n = len(server.requests)
    server.send(CDS, [any_resource(CDS, "a", "a1"), any_resource(CDS, "b", "b1")], "1")
    await server.next_request(n, CDS)
    n = len(server.requests)
    nonce = server.send(CDS, [any_resource(CDS, "a", "a2"), any_resource(CDS, "b", "bad2")], "2")
    nack = await server.next_request(n, CDS)
    assert nack.version == "1"  # the last ACKed version
    assert nack.nonce == nonce
    assert nack.request.error_detail.code == 3  # INVALID_ARGUMENT
    assert nack.error == "b: payload 'bad2' is invalid"
    assert sorted(nack.names) == ["a", "b"]
    await eventually(lambda: len(rec.events) == 4)
    assert rec.events[2] == ("resource", "a", "a2")  # A46: the valid one is applied
    kind, name, error = rec.events[3]
    assert (kind, name) == ("error", "b")
    assert "CDS resource 'b' rejected (version '2'): payload 'bad2' is invalid" in error
    by_name = {r["name"]: r for r in client.debug_info()["resources"]}
    assert by_name["a"]["status"] == "ACKED" and by_name["a"]["version"] == "2"
    assert by_name["b"]["status"] == "NACKED" and by_name["b"]["version"] == "1"
    assert by_name["b"]["last_nack_reason"] == "payload 'bad2' is invalid"
    assert by_name["b"]["last_nack_version"] == "2"
    # b keeps its cached value: a new watcher still gets b1.
    late = Recorder()
    client.watch(CLUSTERS, "b", late)
    assert late.events == []  # not inside watch()
    await settle()
    assert late.events == [("resource", "b", "b1")]
    # The fixed update is ACKed.
    n = len(server.requests)
    nonce = server.send(CDS, [any_resource(CDS, "a", "a2"), any_resource(CDS, "b", "b3")], "3")
    ack = await server.next_request(n, CDS)
    assert (ack.version, ack.nonce, ack.error) == ("3", nonce, None)


async def test_nameless_and_duplicate_resources_are_nacked(
    server: FakeAdsServer, clock: FakeClock
) -> None:
    client = acquire(make_bootstrap(server.address), clock=clock)
    rec = Recorder()
    client.watch(ROUTES, "r", rec)
    await server.next_request(0, RDS)
    n = len(server.requests)
    garbage = AnyMessage(type_url=RDS, value=b"garbage")
    server.send(RDS, [any_resource(RDS, "r", "x"), any_resource(RDS, "r", "y"), garbage], "1")
    nack = await server.next_request(n, RDS)
    assert nack.version == ""
    assert nack.error == "r: appears 2 times in the response; resource #2: no name in 'garbage'"
    await eventually(lambda: rec.events)
    assert rec.events[0][0:2] == ("error", "r")


async def test_unsubscribed_names_are_ignored_and_cancel_unsubscribes(
    server: FakeAdsServer, clock: FakeClock
) -> None:
    client = acquire(make_bootstrap(server.address), clock=clock)
    rec = Recorder()
    cancel_a = client.watch(ROUTES, "a", rec)
    client.watch(ROUTES, "b", rec)
    await subscribed(server, 0, RDS, ["a", "b"])
    n = len(server.requests)
    server.send(RDS, [any_resource(RDS, "a"), any_resource(RDS, "zzz")], "1")
    ack = await server.next_request(n, RDS)
    assert ack.error is None and ack.version == "1"
    assert [e[1] for e in rec.events] == ["a"]
    n = len(server.requests)
    cancel_a()
    cancel_a()  # idempotent
    req = await server.next_request(n, RDS)
    assert req.names == ["b"] and req.version == "1"
    assert [r["name"] for r in client.debug_info()["resources"]] == ["b"]


# --- the does-not-exist timer (A57) -------------------------------------------------------


async def test_does_not_exist_timer(server: FakeAdsServer, clock: FakeClock) -> None:
    client = acquire(make_bootstrap(server.address), clock=clock)
    rec = Recorder()
    client.watch(ROUTES, "missing", rec)
    client.watch(ROUTES, "late", rec)
    await subscribed(server, 0, RDS, ["late", "missing"])
    await eventually(lambda: len(clock.pending()) == 2)
    assert clock.pending() == [clock.now() + 15.0] * 2
    timers = {r["name"]: r["does_not_exist_timer"] for r in client.debug_info()["resources"]}
    assert timers["missing"] == {"pending": True, "expires_in_s": 15.0}
    # "late" arrives before its timer: cancelled.
    server.send(RDS, [any_resource(RDS, "late")], "1")
    await eventually(lambda: rec.events)
    assert len(clock.pending()) == 1
    await clock.advance_async(14.9)
    assert rec.events == [("resource", "late", "ok")]
    await clock.advance_async(0.1)
    assert rec.events[1] == ("does_not_exist", "missing", None)
    status = {r["name"]: r["status"] for r in client.debug_info()["resources"]}
    assert status == {"late": "ACKED", "missing": "DOES_NOT_EXIST"}
    # A new watcher of a missing resource hears so (soon, not inside watch()).
    late = Recorder()
    client.watch(ROUTES, "missing", late)
    await settle()
    assert late.events == [("does_not_exist", "missing", None)]
    # It may still come later.
    server.send(RDS, [any_resource(RDS, "missing", "here")], "2")
    await eventually(lambda: len(late.events) == 2)
    assert late.events[1] == ("resource", "missing", "here")


async def test_resource_timeout_is_a_parameter(server: FakeAdsServer, clock: FakeClock) -> None:
    client = acquire(make_bootstrap(server.address), resource_timeout=0.3, clock=clock)
    rec = Recorder()
    client.watch(LISTENERS, "x", rec)
    await eventually(lambda: clock.pending())
    await clock.advance_async(0.3)
    assert rec.events == [("does_not_exist", "x", None)]


# --- SotW deletion and A53 ----------------------------------------------------------------


async def test_sotw_deletion_for_lds_not_for_rds(server: FakeAdsServer, clock: FakeClock) -> None:
    client = acquire(make_bootstrap(server.address), clock=clock)
    rec = Recorder()
    for name in ("a", "b"):
        client.watch(LISTENERS, name, rec)
        client.watch(ROUTES, name, rec)
    await subscribed(server, 0, LDS, ["a", "b"])
    await subscribed(server, 0, RDS, ["a", "b"])
    both = ["a", "b"]
    server.send(LDS, [any_resource(LDS, n, "l") for n in both], "1")
    server.send(RDS, [any_resource(RDS, n, "r") for n in both], "1")
    await eventually(lambda: len(rec.events) == 4)
    n = len(server.requests)
    server.send(LDS, [any_resource(LDS, "a", "l")], "2")
    server.send(RDS, [any_resource(RDS, "a", "r")], "2")
    await server.next_request(n, RDS)
    await eventually(lambda: len(rec.events) == 5)
    assert rec.events[4] == ("does_not_exist", "b", None)  # only the listener
    status = {(r["type"], r["name"]): r["status"] for r in client.debug_info()["resources"]}
    assert status[("LDS", "b")] == "DOES_NOT_EXIST"
    assert status[("RDS", "b")] == "ACKED"


async def test_ignore_resource_deletion_a53(server: FakeAdsServer, clock: FakeClock) -> None:
    bootstrap = make_bootstrap(server.address, features=("ignore_resource_deletion",))
    client = acquire(bootstrap, clock=clock)
    rec = Recorder()
    client.watch(CLUSTERS, "a", rec)
    client.watch(CLUSTERS, "b", rec)
    await subscribed(server, 0, CDS, ["a", "b"])
    server.send(CDS, [any_resource(CDS, "a"), any_resource(CDS, "b")], "1")
    await eventually(lambda: len(rec.events) == 2)
    n = len(server.requests)
    server.send(CDS, [any_resource(CDS, "a")], "2")
    ack = await server.next_request(n, CDS)
    assert ack.version == "2" and ack.error is None
    await settle()
    assert len(rec.events) == 2  # b kept, nobody told
    b = next(r for r in client.debug_info()["resources"] if r["name"] == "b")
    assert b["status"] == "ACKED" and b["deletion_ignored"] is True
    server.send(CDS, [any_resource(CDS, "a"), any_resource(CDS, "b")], "3")
    await eventually(
        lambda: (
            not next(r for r in client.debug_info()["resources"] if r["name"] == "b")[
                "deletion_ignored"
            ]
        )
    )


# --- stream restarts ---------------------------------------------------------------------


async def test_restart_after_a_response_resubscribes_and_keeps_the_cache(
    server: FakeAdsServer, clock: FakeClock
) -> None:
    client = acquire(make_bootstrap(server.address), clock=clock)
    rec = Recorder()
    client.watch(LISTENERS, "l", rec)
    client.watch(ROUTES, "r", rec)
    await subscribed(server, 0, LDS, ["l"])
    await subscribed(server, 0, RDS, ["r"])
    server.send(LDS, [any_resource(LDS, "l")], "7")
    await eventually(lambda: len(rec.events) == 1)
    n = len(server.requests)
    server.end_stream(grpc.StatusCode.UNAVAILABLE, "max connection age")
    # No backoff after a stream that got a response: the new stream starts at once.
    lds = await server.next_request(n, LDS)
    rds = await server.next_request(n, RDS)
    assert lds.stream == rds.stream == 2
    assert (lds.names, lds.version, lds.nonce) == (["l"], "7", "")
    assert (rds.names, rds.version, rds.nonce) == (["r"], "", "")
    first_on_stream_2 = next(r for r in server.requests if r.stream == 2)
    assert first_on_stream_2.has_node
    # The same resource again: ACKed, not delivered again; no error was reported.
    n = len(server.requests)
    nonce = server.send(LDS, [any_resource(LDS, "l")], "7")
    ack = await server.next_request(n, LDS)
    assert (ack.version, ack.nonce) == ("7", nonce)
    await settle()
    assert rec.events == [("resource", "l", "ok")]
    assert client.streams_started == 2
    # r never came: its timer runs again on the new stream (A57), l has none (cached).
    assert len(clock.pending()) == 1


async def test_stream_failing_before_any_response_reports_and_backs_off(
    server: FakeAdsServer, clock: FakeClock
) -> None:
    client = acquire(make_bootstrap(server.address), clock=clock)
    rec = Recorder()
    client.watch(LISTENERS, "l", rec)
    await server.next_request(0, LDS)
    await eventually(lambda: clock.pending())  # the does-not-exist timer
    server.end_stream(grpc.StatusCode.UNAVAILABLE, "go away")
    await eventually(lambda: rec.events)
    kind, name, error = rec.events[0]
    assert (kind, name) == ("error", "l")
    assert error == f"xDS stream to {server.address} failed: UNAVAILABLE: go away"
    assert client.state is StreamState.BACKOFF
    # The timer stopped with the stream; the backoff sleep (1 s, the first delay) is pending.
    assert clock.pending() == [clock.now() + 1.0]
    await clock.advance_async(0.9)
    assert server.streams_opened == 1
    await clock.advance_async(0.1)
    await server.wait_for(lambda: server.streams_opened == 2)
    req = await server.next_request(1, LDS)
    assert req.stream == 2 and req.has_node


# --- sharing and closing -----------------------------------------------------------------


async def test_two_acquirers_share_one_stream(server: FakeAdsServer, clock: FakeClock) -> None:
    c1 = acquire(make_bootstrap(server.address), clock=clock)
    c2 = acquire(make_bootstrap(server.address), clock=clock)
    assert c1 is c2
    assert acquire(make_bootstrap(server.address, node_id="other"), clock=clock) is not c1
    rec = Recorder()
    c1.watch(LISTENERS, "one", rec)
    c2.watch(LISTENERS, "two", rec)
    await subscribed(server, 0, LDS, ["one", "two"])
    c1.release()
    assert not c2.closed
    c2.watch(ROUTES, "r", rec)
    await server.next_request(0, RDS)
    # The "other" node's client opened its own stream only if it watched: it did not.
    assert server.streams_opened == 1


async def test_last_release_closes_the_stream(server: FakeAdsServer, clock: FakeClock) -> None:
    bootstrap = make_bootstrap(server.address)
    client = acquire(bootstrap, clock=clock)
    acquire(bootstrap, clock=clock)
    rec = Recorder()
    client.watch(LISTENERS, "a", rec)
    await server.next_request(0, LDS)
    client.release()
    assert client.state is not StreamState.CLOSED
    client.release()
    assert client.closed
    await client.wait_closed()
    await server.wait_for(lambda: server.current.closed.is_set())
    assert clock.pending() == []
    with pytest.raises(RuntimeError, match="closed"):
        client.watch(LISTENERS, "b", rec)
    again = acquire(bootstrap, clock=clock)
    assert again is not client and again.state is StreamState.IDLE


async def test_node_only_in_the_first_request(server: FakeAdsServer, clock: FakeClock) -> None:
    client = acquire(make_bootstrap(server.address), clock=clock)
    rec = Recorder()
    client.watch(LISTENERS, "a", rec)
    client.watch(ROUTES, "r", rec)
    await subscribed(server, 0, RDS, ["r"])
    first, *rest = server.requests
    node = first.request.node
    assert node.id == "node-1" and node.cluster == "cl"
    assert (node.locality.region, node.locality.zone, node.locality.sub_zone) == ("r1", "z1", "s1")
    assert dict(node.metadata) == {"team": "lite", "n": 2}
    assert node.user_agent_name == "grpc-lite"
    assert node.user_agent_version
    assert tuple(node.client_features) == CLIENT_FEATURES
    assert rest and not any(r.has_node for r in rest)


async def test_unreachable_server_reports_the_connection_error(clock: FakeClock) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = acquire(make_bootstrap(f"127.0.0.1:{port}"), clock=clock)
    try:
        rec = Recorder()
        client.watch(LISTENERS, "a", rec)
        await eventually(lambda: rec.events)
        kind, name, error = rec.events[0]
        assert (kind, name) == ("error", "a")
        assert error.startswith(f"xDS channel to 127.0.0.1:{port} is TRANSIENT_FAILURE: ")
        assert "refused" in error.lower() or "connect" in error.lower(), error
        # A57: no does-not-exist timer while the stream is not on a connection.
        assert clock.pending() == []
        assert client.state is StreamState.CONNECTING
        assert client.debug_info()["last_connectivity_error"] == error
    finally:
        await aclose_all_for_testing()


# --- callbacks ----------------------------------------------------------------------------


async def test_callbacks_may_watch_and_cancel_without_reentrancy(
    server: FakeAdsServer, clock: FakeClock
) -> None:
    client = acquire(make_bootstrap(server.address), clock=clock)
    rec = Recorder()
    other = Recorder()
    depth = 0
    cancels: dict[str, Callable[[], None]] = {}

    def react(event: tuple[str, str, Any]) -> None:
        nonlocal depth
        depth += 1
        assert depth == 1, "re-entrant callback"
        if event[1] == "a":
            cancels["b"]()  # b's watcher hears nothing more
            cancels["c"] = client.watch(ROUTES, "c", other)
        depth -= 1

    rec.on_event = react
    cancels["a"] = client.watch(ROUTES, "a", rec)
    cancels["b"] = client.watch(ROUTES, "b", rec)
    await subscribed(server, 0, RDS, ["a", "b"])
    n = len(server.requests)
    server.send(RDS, [any_resource(RDS, "a"), any_resource(RDS, "b")], "1")
    await subscribed(server, n, RDS, ["a", "c"])
    assert [e[1] for e in rec.events] == ["a"]
    server.send(RDS, [any_resource(RDS, "c", "cc")], "2")
    await eventually(lambda: other.events)
    assert other.events == [("resource", "c", "cc")]


async def test_watcher_exceptions_do_not_break_the_client(
    server: FakeAdsServer, clock: FakeClock
) -> None:
    client = acquire(make_bootstrap(server.address), clock=clock)

    class Boom(Recorder):
        def on_resource(self, type_url: str, name: str, resource: object) -> None:
            raise RuntimeError("boom")

    rec = Recorder()
    client.watch(ROUTES, "a", Boom())
    client.watch(ROUTES, "a", rec)
    await server.next_request(0, RDS)
    n = len(server.requests)
    server.send(RDS, [any_resource(RDS, "a")], "1")
    ack = await server.next_request(n, RDS)
    assert ack.version == "1"
    assert rec.events == [("resource", "a", "ok")]


def test_acquire_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="running event loop"):
        acquire(make_bootstrap("127.0.0.1:1"))


async def test_bad_resource_timeout() -> None:
    with pytest.raises(ValueError, match="resource_timeout"):
        acquire(make_bootstrap("127.0.0.1:1"), resource_timeout=0)


async def test_xds_client_type() -> None:
    client = acquire(make_bootstrap("127.0.0.1:1"))
    try:
        assert isinstance(client, XdsClient) and client.state is StreamState.IDLE
    finally:
        await aclose_all_for_testing()


# --- with the real decoders (grpc_lite.xds._resources) -------------------------------------


def real_cluster(name: str, lb_policy: str = "ROUND_ROBIN") -> Any:
    from grpc_lite.xds._protos import message_class

    cluster_class: Any = message_class("envoy.config.cluster.v3.Cluster")
    cluster = cluster_class(name=name)
    cluster.type = cluster.DESCRIPTOR.fields_by_name["type"].enum_type.values_by_name["EDS"].number
    cluster.eds_cluster_config.eds_config.ads.SetInParent()
    lb_enum = cluster.DESCRIPTOR.fields_by_name["lb_policy"].enum_type
    cluster.lb_policy = lb_enum.values_by_name[lb_policy].number
    return AnyMessage(type_url=CDS, value=cluster.SerializeToString())


async def test_real_cluster_decoder_nack_names_the_cluster(
    server: FakeAdsServer, clock: FakeClock
) -> None:
    from grpc_lite.xds._model import ClusterResource
    from grpc_lite.xds._resources import CLUSTER

    client = acquire(make_bootstrap(server.address), clock=clock)
    rec = Recorder()
    client.watch(CLUSTER, "c1", rec)
    await server.next_request(0, CDS)
    n = len(server.requests)
    server.send(CDS, [real_cluster("c1")], "1")
    ack = await server.next_request(n, CDS)
    assert ack.version == "1" and ack.error is None
    assert rec.events == [("resource", "c1", ClusterResource(name="c1"))]
    n = len(server.requests)
    server.send(CDS, [real_cluster("c1", "MAGLEV")], "2")
    nack = await server.next_request(n, CDS)
    assert nack.version == "1"
    assert nack.error is not None and nack.error.startswith("c1: ") and "MAGLEV" in nack.error
    await eventually(lambda: len(rec.events) == 2)
    assert rec.events[1][0] == "error"


# --- bad input ---------------------------------------------------------------------------


async def test_a_server_uri_no_channel_accepts_leaves_the_client_unchanged(
    clock: FakeClock,
) -> None:
    client = acquire(make_bootstrap("dns:///bad host:port"), clock=clock)
    try:
        with pytest.raises(ValueError):
            client.watch(LISTENERS, "a", Recorder())
        assert client.state is StreamState.IDLE
        assert client.debug_info()["resources"] == []
    finally:
        await aclose_all_for_testing()


async def test_a_decoder_that_raises_is_a_nack(server: FakeAdsServer, clock: FakeClock) -> None:
    class Raising(FakeType):
        def decode(self, serialized_any: bytes) -> DecodeResult:
            raise KeyError("oops")

    client = acquire(make_bootstrap(server.address), clock=clock)
    client.watch(Raising(RDS, "RDS", False), "r", Recorder())
    await server.next_request(0, RDS)
    n = len(server.requests)
    server.send(RDS, [any_resource(RDS, "r")], "1")
    nack = await server.next_request(n, RDS)
    assert nack.error == "resource #0: the RDS decoder failed: KeyError('oops')"
    assert client.state is StreamState.RECEIVING


async def test_a_response_that_does_not_parse_fails_the_stream(
    server: FakeAdsServer, clock: FakeClock
) -> None:
    client = acquire(make_bootstrap(server.address), clock=clock)
    rec = Recorder()
    client.watch(LISTENERS, "a", rec)
    await server.next_request(0, LDS)
    server.send_raw(b"\xff\xff\xff")
    await eventually(lambda: rec.events)
    kind, _, error = rec.events[0]
    assert kind == "error"
    assert error.startswith(f"xDS stream to {server.address} failed: INTERNAL: ")
    assert client.state is StreamState.BACKOFF


async def test_corrupt_resources_are_nacked_never_fatal(
    server: FakeAdsServer, clock: FakeClock
) -> None:
    import random

    from grpc_lite.xds._resources import CLUSTER

    rnd = random.Random(17)
    good = real_cluster("c1").value
    client = acquire(make_bootstrap(server.address), clock=clock)
    rec = Recorder()
    client.watch(CLUSTER, "c1", rec)
    await server.next_request(0, CDS)
    for version in range(1, 41):
        data = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        if rnd.random() < 0.3:
            data = data[: rnd.randrange(len(data))]
        n = len(server.requests)
        server.send(CDS, [AnyMessage(type_url=CDS, value=bytes(data))], str(version))
        reply = await server.next_request(n, CDS)
        assert reply.nonce  # answered: an ACK or a NACK with a reason
        if reply.error is None:
            assert reply.version == str(version)
        else:
            assert reply.error.startswith(("c1: ", "resource #0: ")), reply.error
    assert client.state is StreamState.RECEIVING and client.streams_started == 1

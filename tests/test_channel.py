"""The channel, sans-IO (grpc_lite/_channel.py): resolver updates become subchannels and a
picker, the picker follows the balancer, and every call is counted when it starts and when
it finishes, on the channel and on the subchannel it used. A ManualResolver feeds
addresses, a fake dialer hands out fake transports (no socket), and the test answers each
stream for the server (tests/fakes/call_context.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import grpc_lite
from grpc_lite import _subchannel, balancer
from grpc_lite._transport import ClientStream, TransportError
from grpc_lite.balancer import BalancerState, DroppedRpcError, PickInfo
from grpc_lite.resolver import (
    Address,
    ManualResolver,
    Resolver,
    ResolverBuilder,
    ResolverState,
    RpcConfig,
    RpcInfo,
    register,
    unregister_for_testing,
)
from grpc_lite.status import RpcError, StatusCode
from tests.fakes.call_context import answer_headers, answer_message, answer_status, answer_trailers

S = grpc_lite.ConnectivityState
METHOD = "/pkg.Service/Method"
ROUND_ROBIN = {"loadBalancingConfig": [{"round_robin": {}}]}


class FakeTransport:
    """A READY connection to one address: keeps the streams started on it."""

    def __init__(self, address: str, on_goaway: Callable[..., None], on_close: Callable[..., None]):
        self.address = address
        self.on_goaway = on_goaway
        self.on_close = on_close
        self.accepting_streams = True
        self.streams: list[ClientStream] = []
        self.lost = False
        self.disconnect_error: str | None = None
        self._next_id = 1

    def start_stream(self, stream: ClientStream) -> None:
        stream.id = self._next_id
        self._next_id += 2
        self.streams.append(stream)

    def close(self, reason: str) -> None:
        self.lose(reason)

    def graceful_close(self, reason: str) -> None:
        self.lose(reason)

    def lose(self, reason: str = "connection reset") -> None:
        if not self.lost:
            self.lost = True
            self.accepting_streams = False
            self.disconnect_error = reason
            self.on_close(self, reason)

    async def wait_closed(self) -> None:
        pass

    def abort(self) -> None:
        self.lose("aborted")


class FakeDialer:
    """``grpc_lite._transport.dial`` for the subchannels: refuses the addresses in
    ``refused``, connects the others at once."""

    def __init__(self) -> None:
        self.refused: set[str] = set()
        self.transports: dict[str, list[FakeTransport]] = {}

    async def __call__(self, address: str, **kwargs: Any) -> FakeTransport:
        await asyncio.sleep(0)
        if address in self.refused:
            raise TransportError(f"connection to {address} refused")
        transport = FakeTransport(address, kwargs["on_goaway"], kwargs["on_close"])
        self.transports.setdefault(address, []).append(transport)
        return transport

    def streams(self, address: str) -> list[ClientStream]:
        return [s for t in self.transports.get(address, []) for s in t.streams]


@pytest.fixture
def dialer(monkeypatch: pytest.MonkeyPatch) -> FakeDialer:
    fake = FakeDialer()
    monkeypatch.setattr(_subchannel, "dial", fake)
    return fake


@pytest.fixture
def resolver() -> Iterator[ManualResolver]:
    scheme = f"chtest{uuid.uuid4().hex[:10]}"
    r = ManualResolver(scheme)
    register(r)
    yield r
    unregister_for_testing(scheme)


def _channel(resolver: ManualResolver, **kwargs: Any) -> grpc_lite.Channel:
    return grpc_lite.insecure_channel(f"{resolver.scheme}:///backends", **kwargs)


async def _settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def _until_state(ch: grpc_lite.Channel, state: grpc_lite.ConnectivityState) -> None:
    async with asyncio.timeout(5):
        while (now := ch.get_state(try_to_connect=True)) is not state:
            await ch.wait_for_state_change(now)


def _ok(stream: ClientStream, reply: bytes = b"reply") -> None:
    answer_headers(stream)
    answer_message(stream, reply)
    answer_trailers(stream)


def _subchannels(ch: grpc_lite.Channel) -> dict[str, Any]:
    return {sc.address: sc for sc in ch.snapshot().subchannels}


async def test_a_new_channel_does_nothing_until_asked(
    dialer: FakeDialer, resolver: ManualResolver
) -> None:
    resolver.update_addresses(["a:1"])
    async with _channel(resolver) as ch:
        await _settle()
        assert ch.get_state() is S.IDLE
        assert resolver.build_count == 0 and dialer.transports == {}


async def test_resolved_addresses_become_ready_subchannels_and_a_picker(
    dialer: FakeDialer, resolver: ManualResolver
) -> None:
    resolver.update_addresses(["a:1", "b:2"])
    async with _channel(resolver, service_config=ROUND_ROBIN) as ch:
        await _until_state(ch, S.READY)
        await _settle()
        assert {a: sc.state for a, sc in _subchannels(ch).items()} == {
            "a:1": S.READY,
            "b:2": S.READY,
        }
        call = ch.unary_unary(METHOD)
        calls = [call(b"x") for _ in range(4)]
        await _settle()
        # round_robin's picker: the calls alternate between the two backends.
        assert len(dialer.streams("a:1")) == len(dialer.streams("b:2")) == 2
        for stream in dialer.streams("a:1") + dialer.streams("b:2"):
            _ok(stream)
        assert await asyncio.gather(*calls) == [b"reply"] * 4


async def test_every_call_is_counted_when_it_starts_and_when_it_ends(
    dialer: FakeDialer, resolver: ManualResolver
) -> None:
    resolver.update_addresses(["a:1"])
    async with _channel(resolver) as ch:
        await _until_state(ch, S.READY)
        method = ch.unary_unary(METHOD)
        ok, failed, cancelled = method(b"1"), method(b"2"), method(b"3")
        await _settle()
        snap = ch.snapshot()
        assert (snap.calls_started, snap.calls_succeeded, snap.calls_failed) == (3, 0, 0)
        first, second, _third = dialer.streams("a:1")
        _ok(first)
        answer_status(second, StatusCode.NOT_FOUND, "no such thing")
        cancelled.cancel()
        assert await ok == b"reply"
        with pytest.raises(RpcError) as info:
            await failed
        assert info.value.code() is StatusCode.NOT_FOUND
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        snap = ch.snapshot()
        assert (snap.calls_started, snap.calls_succeeded, snap.calls_failed) == (3, 1, 2)
        [sc] = snap.subchannels
        assert (sc.calls_started, sc.calls_succeeded, sc.calls_failed) == (3, 1, 2)
        assert not ch._calls and ch._active_calls == 0


async def test_the_picker_follows_an_address_update(
    dialer: FakeDialer, resolver: ManualResolver
) -> None:
    resolver.update_addresses(["a:1"])
    async with _channel(resolver) as ch:
        await _until_state(ch, S.READY)
        method = ch.unary_unary(METHOD)
        first = method(b"1")
        await _settle()
        [stream] = dialer.streams("a:1")
        resolver.update_addresses(["b:2"])  # pick_first moves to the new address
        await _settle()
        assert ch.get_state() is S.READY
        second = method(b"2")
        await _settle()
        assert len(dialer.streams("b:2")) == 1
        _ok(stream)  # the call already on a:1 finishes there
        _ok(dialer.streams("b:2")[0])
        assert await first == await second == b"reply"
        assert set(_subchannels(ch)) == {"b:2"}


async def test_with_every_address_refused_fail_fast_calls_fail_and_waiting_calls_wait(
    dialer: FakeDialer, resolver: ManualResolver
) -> None:
    dialer.refused = {"a:1"}
    resolver.update_addresses(["a:1"])
    async with _channel(resolver) as ch:
        await _until_state(ch, S.TRANSIENT_FAILURE)
        method = ch.unary_unary(METHOD)
        with pytest.raises(RpcError) as info:
            await method(b"1")
        assert info.value.code() is StatusCode.UNAVAILABLE
        assert "connection to a:1 refused" in (info.value.details() or "")
        waiting = method(b"2", wait_for_ready=True)
        await _settle()
        assert not waiting.done()
        dialer.refused.clear()
        resolver.update_addresses(["b:2"])
        await _until_state(ch, S.READY)
        await _settle()
        [stream] = dialer.streams("b:2")
        _ok(stream)
        assert await waiting == b"reply"
        snap = ch.snapshot()
        assert (snap.calls_started, snap.calls_succeeded, snap.calls_failed) == (2, 1, 1)


async def test_a_lost_connection_makes_the_channel_ask_for_fresh_addresses(
    dialer: FakeDialer, resolver: ManualResolver
) -> None:
    resolver.update_addresses(["a:1"])
    async with _channel(resolver) as ch:
        await _until_state(ch, S.READY)
        before = resolver.resolve_now_count
        dialer.transports["a:1"][0].lose("connection reset")
        await _settle()
        assert ch.get_state() is S.IDLE  # pick_first: reconnect on the next call
        assert resolver.resolve_now_count > before


async def test_close_shuts_everything_down_and_fails_what_is_in_flight(
    dialer: FakeDialer, resolver: ManualResolver
) -> None:
    resolver.update_addresses(["a:1"])
    ch = _channel(resolver)
    await _until_state(ch, S.READY)
    call = ch.unary_unary(METHOD)(b"1")
    await _settle()
    await ch.close()
    assert ch.get_state() is S.SHUTDOWN
    with pytest.raises(RpcError) as info:
        await call
    assert info.value.code() is StatusCode.CANCELLED
    assert all(t.lost for t in dialer.transports["a:1"])
    assert ch.snapshot().calls_failed == 1


# ---------------------------------------------------------------------------------------
# Per-RPC configuration: the resolver's ConfigSelector (gRFC A31) and balancer drops
# ---------------------------------------------------------------------------------------


class _Selector:
    """Routes every call to ``route``; records what it was asked and its commits."""

    def __init__(self, route: str) -> None:
        self.route = route
        self.infos: list[RpcInfo] = []
        self.committed = 0

    def select(self, info: RpcInfo) -> RpcConfig:
        self.infos.append(info)
        return RpcConfig(attributes={"route": self.route}, on_committed=self._commit)

    def _commit(self) -> None:
        self.committed += 1


class _RecordingPicker:
    """Around pick_first's picker: records every PickInfo; drops a call routed to "drop"."""

    def __init__(self, inner: Any, seen: list[PickInfo]) -> None:
        self.inner = inner
        self.seen = seen

    def pick(self, info: PickInfo) -> Any:
        self.seen.append(info)
        if info.attributes.get("route") == "drop":
            raise DroppedRpcError(StatusCode.UNAVAILABLE, "dropped by the test policy")
        return self.inner.pick(info)


class _RecordingChannel:
    """The BalancerChannel pick_first gets: every picker it publishes is wrapped."""

    def __init__(self, channel: Any, seen: list[PickInfo]) -> None:
        self._channel = channel
        self._seen = seen

    def update_state(self, state: BalancerState) -> None:
        picker = _RecordingPicker(state.picker, self._seen)
        self._channel.update_state(BalancerState(state=state.state, picker=picker))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)


class _RecordingBalancer:
    """pick_first, whose pickers record; it says how many picks it saw in debug_info()."""

    def __init__(self, channel: Any, seen: list[PickInfo]) -> None:
        inner = balancer.get("pick_first")
        assert inner is not None
        self.inner = inner.build(_RecordingChannel(channel, seen))
        self.seen = seen

    def update_channel_state(self, state: Any) -> bool:
        return self.inner.update_channel_state(state)

    def resolver_error(self, error: RpcError) -> None:
        self.inner.resolver_error(error)

    def exit_idle(self) -> None:
        self.inner.exit_idle()

    def close(self) -> None:
        self.inner.close()

    def debug_info(self) -> dict[str, Any]:
        return {"child": "pick_first", "picks": len(self.seen), "state": S.READY}


class _RecordingBuilder:
    name = "test_recording_pick_first"

    def __init__(self) -> None:
        self.seen: list[PickInfo] = []

    def build(self, channel: Any) -> Any:
        return _RecordingBalancer(channel, self.seen)

    def parse_config(self, config: Any) -> Any:
        inner = balancer.get("pick_first")
        assert inner is not None
        return inner.parse_config(config)


@pytest.fixture
def recording() -> Iterator[_RecordingBuilder]:
    builder = _RecordingBuilder()
    balancer.register(builder)  # type: ignore[arg-type]
    yield builder
    balancer.unregister_for_testing(builder.name)


def _selector_state(selector: Any, config: str | None = None) -> ResolverState:
    return ResolverState(
        (Address("a:1"),),
        service_config=config
        or json.dumps({"loadBalancingConfig": [{_RecordingBuilder.name: {}}]}),
        config_selector=selector,
    )


async def test_the_resolvers_config_selector_routes_every_call(
    dialer: FakeDialer, resolver: ManualResolver, recording: _RecordingBuilder
) -> None:
    """The selector of the state in force is asked per call (the method, the call's
    metadata); its attributes and the metadata reach the pick; on_committed runs once."""
    selector = _Selector("r1")
    resolver.update_state(_selector_state(selector))
    async with _channel(resolver) as ch:
        await _until_state(ch, S.READY)
        call = ch.unary_unary(METHOD)(b"x", metadata=[("k", "v")])
        await _settle()
        assert selector.infos == [RpcInfo(method=METHOD, metadata=(("k", "v"),))]
        info = recording.seen[-1]
        assert dict(info.attributes) == {"route": "r1"} and info.metadata == (("k", "v"),)
        _ok(dialer.streams("a:1")[0])
        assert await call == b"reply"
        assert selector.committed == 1


async def test_an_invalid_service_config_keeps_the_selector_in_force(
    dialer: FakeDialer, resolver: ManualResolver, recording: _RecordingBuilder
) -> None:
    """As grpc-go: only a state whose service config is applied replaces the selector."""
    first = _Selector("r1")
    resolver.update_state(_selector_state(first))
    async with _channel(resolver) as ch:
        await _until_state(ch, S.READY)
        resolver.update_state(_selector_state(_Selector("r2"), config="{not json"))
        await _settle()
        assert ch.config_selector is first
        resolver.update_state(ResolverState((Address("a:1"),)))  # no selector any more
        await _settle()
        assert ch.config_selector is None


async def test_a_dropped_call_fails_at_once_even_waiting_for_ready(
    dialer: FakeDialer, resolver: ManualResolver, recording: _RecordingBuilder
) -> None:
    resolver.update_state(_selector_state(_Selector("drop")))
    async with _channel(resolver) as ch:
        await _until_state(ch, S.READY)
        with pytest.raises(RpcError) as info:
            await ch.unary_unary(METHOD)(b"x", wait_for_ready=True, timeout=5)
        assert (info.value.code(), info.value.details()) == (
            StatusCode.UNAVAILABLE,
            "dropped by the test policy",
        )
        assert dialer.streams("a:1") == []
        assert ch.snapshot().calls_failed == 1


# ---------------------------------------------------------------------------------------
# Snapshot hooks: the resolver's and the balancer's debug_info(), address attributes
# ---------------------------------------------------------------------------------------


class _DebugResolver(Resolver):
    def __init__(self, channel: Any, info: Any) -> None:
        self.info = info
        channel.update_state(
            ResolverState(
                (Address("a:1", attributes=(("xds.cluster", "c1"), ("xds.priority", 0))),),
                service_config=json.dumps({"loadBalancingConfig": [{_RecordingBuilder.name: {}}]}),
            )
        )

    def debug_info(self) -> Any:
        if isinstance(self.info, Exception):
            raise self.info
        return self.info


class _DebugResolverBuilder(ResolverBuilder):
    def __init__(self, info: Any) -> None:
        self.scheme = f"chdebug{uuid.uuid4().hex[:10]}"
        self.info = info

    def build(self, target: Any, channel: Any, options: Any) -> Resolver:
        return _DebugResolver(channel, self.info)


@pytest.fixture
def debug_resolver() -> Iterator[Callable[[Any], str]]:
    schemes: list[str] = []

    def make(info: Any) -> str:
        builder = _DebugResolverBuilder(info)
        register(builder)
        schemes.append(builder.scheme)
        return f"{builder.scheme}:///svc"

    yield make
    for scheme in schemes:
        unregister_for_testing(scheme)


async def test_the_snapshot_shows_the_resolver_the_balancer_and_the_address_attributes(
    dialer: FakeDialer, recording: _RecordingBuilder, debug_resolver: Callable[[Any], str]
) -> None:
    info = {"server": "cp:1", "resources": [("LDS", "svc", "ACKED")]}
    async with grpc_lite.insecure_channel(debug_resolver(info)) as ch:
        assert ch.snapshot().resolver is None  # IDLE: no resolver yet
        await _until_state(ch, S.READY)
        snap = ch.snapshot()
        assert snap.resolver == info
        assert snap.balancer == {"child": "pick_first", "picks": 0, "state": S.READY}
        [sc] = snap.subchannels
        assert sc.attributes == {"xds.cluster": "c1", "xds.priority": "0"}
        as_json = json.loads(json.dumps(snap.to_dict()))
        assert as_json["resolver"] == {"server": "cp:1", "resources": [["LDS", "svc", "ACKED"]]}
        assert as_json["balancer"]["state"] == "READY"
        assert as_json["subchannels"][0]["attributes"] == {"xds.cluster": "c1", "xds.priority": "0"}


async def test_a_policy_without_debug_info_and_a_failing_resolver_hook(
    dialer: FakeDialer, resolver: ManualResolver, debug_resolver: Callable[[Any], str]
) -> None:
    """pick_first has no debug_info(): balancer None; a ManualResolver says nothing (the
    base class's None); a debug_info() that raises is shown, not raised."""
    resolver.update_addresses(["a:1"])
    async with _channel(resolver) as ch:
        await _until_state(ch, S.READY)
        snap = ch.snapshot()
        assert (snap.resolver, snap.balancer) == (None, None)
        assert snap.subchannels[0].attributes == {}
    async with grpc_lite.insecure_channel(debug_resolver(RuntimeError("bug"))) as ch:
        ch.get_state(try_to_connect=True)
        await _settle()
        resolver_info = ch.snapshot().resolver
        assert resolver_info is not None and "bug" in resolver_info["error"]

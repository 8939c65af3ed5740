"""Helpers for the control-plane integration tests (not collected: no ``test_`` prefix).

Everything here uses grpc_lite's public surface only (API.md): channels, ``Stub``, the
resolver registry and ``ManualResolver``, ``get_state``/``wait_for_state_change`` and
``snapshot()``.

Connections are observed from outside the library: :func:`connections_to` reads the
machine's TCP table (Linux ``/proc/net/tcp``) for ESTABLISHED sockets whose remote end is a
given backend, and returns their local ports. On loopback these are exactly the client ends
of the connections that backend accepted, so "the same set of local ports before and after"
means "the connection was kept", and an extra port is a new connection.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc_lite
import grpc_lite.resolver
from grpc_lite._proto import helloworld_pb2
from tests.servers.harness import RunningServer

S = grpc_lite.ChannelConnectivity
SC = grpc_lite.StatusCode

GREETER = helloworld_pb2.DESCRIPTOR.services_by_name["Greeter"]

#: Small connection backoff so that reconnect-driven tests finish quickly (CONFORMANCE 76:
#: the values are settable with grpc's option names).
FAST_BACKOFF: list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 200),
]

ROUND_ROBIN = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})
PICK_FIRST = json.dumps({"loadBalancingConfig": [{"pick_first": {}}]})

POLL = 0.02


def options(*extra: tuple[str, Any]) -> list[tuple[str, Any]]:
    """:data:`FAST_BACKOFF` plus ``extra``."""
    return [*FAST_BACKOFF, *extra]


# --------------------------------------------------------------------------- RPCs


def greeter(channel: grpc_lite.Channel) -> Any:
    """A ``grpc_lite.Stub`` for helloworld.Greeter (grpc_lite's private-pool messages)."""
    return grpc_lite.Stub(channel, GREETER)


def backend_of(message: str) -> str:
    """The backend id out of "Hello NAME from BACKEND_ID"."""
    _head, sep, backend = message.rpartition(" from ")
    assert sep, f"unexpected greeting {message!r}"
    return backend.split(" #", 1)[0]


async def hello(
    channel: grpc_lite.Channel,
    name: str = "cp",
    *,
    deadline: float = 5.0,
    wait_for_ready: bool | None = None,
) -> str:
    """One SayHello with a ``deadline`` (seconds); the backend id ("127.0.0.2:PORT") that
    answered."""
    reply = await greeter(channel).SayHello(
        helloworld_pb2.HelloRequest(name=name), timeout=deadline, wait_for_ready=wait_for_ready
    )
    return backend_of(reply.message)


async def hello_counts(
    channel: grpc_lite.Channel, n: int, *, deadline: float = 5.0
) -> Counter[str]:
    """``n`` sequential SayHellos; how many each backend answered."""
    counts: Counter[str] = Counter()
    for i in range(n):
        counts[await hello(channel, f"n{i}", deadline=deadline)] += 1
    return counts


async def hello_error(
    channel: grpc_lite.Channel, *, deadline: float = 5.0, wait_for_ready: bool | None = None
) -> grpc_lite.RpcError:
    """One SayHello that must fail; its error."""
    try:
        backend = await hello(channel, deadline=deadline, wait_for_ready=wait_for_ready)
    except grpc_lite.RpcError as exc:
        return exc
    raise AssertionError(f"the RPC unexpectedly succeeded (answered by {backend})")


# --------------------------------------------------------------------------- waiting


async def eventually(
    predicate: Callable[[], bool], what: str, within: float = 3.0, interval: float = POLL
) -> None:
    """Poll ``predicate`` every ``interval`` until it holds; AssertionError after ``within``
    seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + within
    while not predicate():
        if loop.time() >= end:
            if predicate():
                return
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(interval)


async def always(
    predicate: Callable[[], bool], what: str, duration: float, interval: float = POLL
) -> int:
    """Check ``predicate`` every ``interval`` for ``duration``; AssertionError the first time
    it does not hold. Returns how many samples were taken."""
    loop = asyncio.get_running_loop()
    end = loop.time() + duration
    samples = 0
    while True:
        samples += 1
        assert predicate(), f"{what} stopped holding after {samples} samples"
        if loop.time() >= end:
            return samples
        await asyncio.sleep(interval)


async def wait_state(
    channel: grpc_lite.Channel, wanted: grpc_lite.ChannelConnectivity, within: float = 3.0
) -> None:
    """Wait (with ``wait_for_state_change``) until the channel is ``wanted``."""
    try:
        async with asyncio.timeout(within):
            while (state := channel.get_state()) is not wanted:
                await channel.wait_for_state_change(state)
    except TimeoutError:
        raise AssertionError(
            f"channel not {wanted.name} after {within:g} s (it is {channel.get_state().name})"
        ) from None


async def every(period: float, count: int) -> Any:
    """An async generator yielding 0..count-1 on a fixed ``period`` grid (no drift)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(count):
        delay = start + i * period - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        yield i


# --------------------------------------------------------------------------- snapshots


def subchannels_in(channel: grpc_lite.Channel, state: grpc_lite.ChannelConnectivity) -> list[str]:
    """Addresses of the channel's subchannels that are in ``state`` (from ``snapshot()``)."""
    return [sc.address for sc in channel.snapshot().subchannels if sc.state is state]


def ready_addresses(channel: grpc_lite.Channel) -> list[str]:
    return sorted(subchannels_in(channel, S.READY))


# --------------------------------------------------------------------------- connections


def _decode_v4(hex_addr: str) -> tuple[str, int]:
    host_hex, port_hex = hex_addr.split(":")
    host = socket.inet_ntoa(struct.pack("<I", int(host_hex, 16)))
    return host, int(port_hex, 16)


def connections_to(host: str, port: int) -> set[int]:
    """Local ports of the ESTABLISHED IPv4 TCP connections to ``host:port`` on this machine.

    A connection the client closed is no longer ESTABLISHED on the client side; one the
    server closed first is CLOSE_WAIT there until the client closes it, so neither counts.
    """
    ports: set[int] = set()
    with open("/proc/net/tcp") as f:
        rows = f.read().splitlines()[1:]
    for row in rows:
        fields = row.split()
        if len(fields) < 4 or fields[3] != "01":  # 01 = ESTABLISHED
            continue
        if _decode_v4(fields[2]) == (host, port):
            ports.add(_decode_v4(fields[1])[1])
    return ports


def server_connections(server: RunningServer) -> set[int]:
    assert server.host is not None and server.port is not None
    return connections_to(server.host, server.port)


def peer_ports(server: RunningServer) -> set[int]:
    """Client ports of every RPC the greeter ``server`` recorded (grpcio peer strings
    "ipv4:127.0.0.1:PORT"): one port per client connection that carried an RPC."""
    return {int(call.peer.rsplit(":", 1)[1]) for call in server.recorder.calls}


class ConnectionSampler:
    """Samples :func:`connections_to` for several backends in the background and keeps the
    union of every local port ever seen per backend: a connection that came and went between
    two explicit checks still shows up here."""

    def __init__(self, servers: Iterable[RunningServer], interval: float = 0.005) -> None:
        self._servers = list(servers)
        self._interval = interval
        self.seen: dict[str, set[int]] = {s.address: set() for s in self._servers}
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        for s in self._servers:
            self.seen[s.address] |= server_connections(s)

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self._interval)

    async def __aenter__(self) -> ConnectionSampler:
        self.sample()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self.sample()


# --------------------------------------------------------------------------- addresses


class ReservedPort:
    """A 127.0.0.1 port that refuses connections: bound but not listening, so nothing else
    can take it until :meth:`release` (which a test calls just before starting a server on
    it)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._sock: socket.socket | None = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self.port: int = self._sock.getsockname()[1]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def release(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def ipv4_target(addresses: Sequence[str]) -> str:
    """``ipv4:a:p,b:p,...`` for "host:port" strings."""
    return "ipv4:" + ",".join(addresses)


def manual_target(resolver: grpc_lite.resolver.ManualResolver) -> str:
    """The target that dials through ``resolver`` (any endpoint will do)."""
    return f"{resolver.scheme}:///backends"


def elapsed_since(start: float) -> float:
    return time.monotonic() - start

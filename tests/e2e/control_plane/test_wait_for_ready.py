"""Picker semantics against real servers: wait_for_ready RPCs wait for a backend (101),
fail-fast RPCs fail UNAVAILABLE quickly in TRANSIENT_FAILURE (100) with the connection
error in the message (96), and queued fail-fast RPCs wait through CONNECTING (99)."""

from __future__ import annotations

import asyncio
import time

import pytest

import grpc_lite
from tests.e2e.control_plane._util import (
    SC,
    ReservedPort,
    S,
    eventually,
    hello,
    hello_error,
    options,
)
from tests.servers.harness import RunningServer, ServerFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]


@pytest.mark.parametrize("policy", ["pick_first", "round_robin"])
async def test_wait_for_ready_call_succeeds_once_a_backend_starts(
    policy: str, grpc_server_factory: ServerFactory
) -> None:
    """CONFORMANCE 101: a wait_for_ready RPC with a 5 s deadline on a port with no server
    ignores the TRANSIENT_FAILURE picks and succeeds once a backend is started on that port
    about 0.3 s later (backoff is small, so well before its deadline)."""
    port = ReservedPort()
    try:
        async with grpc_lite.insecure_channel(
            f"ipv4:{port.address}", options=options(("grpc.lb_policy_name", policy))
        ) as ch:
            call = asyncio.get_running_loop().create_task(
                hello(ch, deadline=5.0, wait_for_ready=True)
            )
            await eventually(
                lambda: ch.get_state() is S.TRANSIENT_FAILURE, "TRANSIENT_FAILURE", within=2.0
            )
            await asyncio.sleep(0.3)
            assert not call.done(), "the wait_for_ready call did not wait"
            port.release()
            started = time.monotonic()
            server = await asyncio.to_thread(grpc_server_factory.greeter, "127.0.0.1", port.port)
            assert await asyncio.wait_for(call, 4.0) == server.address
            # max backoff 500 ms: the next attempt comes well within a second.
            assert time.monotonic() - started < 1.5
            assert ch.get_state() is S.READY
            assert server.recorder.count("SayHello") == 1
    finally:
        port.release()


async def test_wait_for_ready_call_fails_at_its_deadline() -> None:
    """CONFORMANCE 101: with no server ever, a wait_for_ready RPC with a 1 s deadline fails
    DEADLINE_EXCEEDED at about 1 s, not UNAVAILABLE at the first failed attempt."""
    port = ReservedPort()
    try:
        async with grpc_lite.insecure_channel(f"ipv4:{port.address}", options=options()) as ch:
            started = time.monotonic()
            err = await hello_error(ch, deadline=1.0, wait_for_ready=True)
            took = time.monotonic() - started
            assert err.code() is SC.DEADLINE_EXCEEDED, err
            assert 0.9 <= took < 1.6, took
    finally:
        port.release()


async def test_fail_fast_call_on_a_refused_port_fails_unavailable_quickly() -> None:
    """CONFORMANCE 100, 96: a fail-fast RPC with a 10 s deadline to a refused port fails
    UNAVAILABLE in under a second (once the first attempt failed, without waiting for the
    deadline), and its details name the connection error and the address."""
    port = ReservedPort()
    try:
        async with grpc_lite.insecure_channel(f"ipv4:{port.address}", options=options()) as ch:
            started = time.monotonic()
            err = await hello_error(ch, deadline=10.0)
            took = time.monotonic() - started
            assert err.code() is SC.UNAVAILABLE, err
            assert took < 1.0, took
            details = (err.details() or "").lower()
            assert any(
                text in details for text in ("refused", "connect call failed", "failed to connect")
            ), details
            assert str(port.port) in details, details
            assert ch.get_state() is S.TRANSIENT_FAILURE
    finally:
        port.release()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def test_fail_fast_call_waits_while_connecting(greeter_server: RunningServer) -> None:
    """CONFORMANCE 99, 100: a fail-fast RPC on a fresh IDLE channel whose backend is slow
    to become READY (a proxy that accepts and holds the connection 0.4 s before forwarding
    to the Greeter) is queued through IDLE and CONNECTING, not failed, and succeeds once the
    connection is READY."""
    assert greeter_server.port is not None
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []
    accepted = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        accepted.set()
        await asyncio.sleep(0.4)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", greeter_server.port)
        writers.append(up_writer)
        both = [
            asyncio.ensure_future(_pipe(reader, up_writer)),
            asyncio.ensure_future(_pipe(up_reader, writer)),
        ]
        tasks.update(both)
        await asyncio.gather(*both)

    proxy = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    try:
        async with grpc_lite.insecure_channel(
            f"ipv4:127.0.0.1:{port}",
            options=options(("grpc.min_reconnect_backoff_ms", 3000)),
        ) as ch:
            assert ch.get_state() is S.IDLE
            started = time.monotonic()
            call = asyncio.get_running_loop().create_task(hello(ch, deadline=5.0))
            await asyncio.wait_for(accepted.wait(), 2.0)
            await asyncio.sleep(0.2)
            assert ch.get_state() is S.CONNECTING
            assert not call.done(), "a fail-fast RPC failed while CONNECTING"
            assert await asyncio.wait_for(call, 4.0) == greeter_server.address
            assert time.monotonic() - started >= 0.4
            assert ch.get_state() is S.READY
    finally:
        proxy.close()
        for writer in writers:
            writer.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await proxy.wait_closed()

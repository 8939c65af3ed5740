"""A channel belongs to one event loop and one process (API.md "Event loops and fork").

- Used from a second event loop it raises UsageError naming the problem (grpc.aio's
  symptom is "attached to a different loop" deep in a call, or a hang).
- After os.fork() the child's copy of a channel never touches the parent's connections:
  its calls fail at once with UsageError, its copies of the sockets are closed, and the
  parent's channel goes on over the same connection. Checked with real forks against a
  grpcio server that counts what it receives.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import grpc_lite
from tests.e2e.channel._util import established_connections_to, wait_until
from tests.protos.helloworld import helloworld_pb2
from tests.servers.harness import RunningServer, ServerFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

SAY_HELLO = "/helloworld.Greeter/SayHello"
# Python 3.12+ warns when a process with threads forks (the grpcio server has threads);
# the child here only runs grpc_lite code and exits with os._exit.
FORK_WARNING = "ignore:.*fork.*:DeprecationWarning"


def _say_hello(channel: grpc_lite.Channel) -> Callable[..., Any]:
    return channel.unary_unary(
        SAY_HELLO,
        request_serializer=helloworld_pb2.HelloRequest.SerializeToString,
        response_deserializer=helloworld_pb2.HelloReply.FromString,
    )


async def _hello(channel: grpc_lite.Channel, name: str = "x") -> str:
    reply = await _say_hello(channel)(helloworld_pb2.HelloRequest(name=name), timeout=5)
    return str(reply.message)


def _socket_fds(channel: grpc_lite.Channel) -> list[int]:
    fds = []
    for sc in channel._subchannels:
        for transport in sc.transports:
            raw = transport._transport
            assert raw is not None
            fds.append(raw.get_extra_info("socket").fileno())
    return fds


# --------------------------------------------------------------------------- event loops


def test_second_event_loop_raises_usage_error(greeter_server: RunningServer) -> None:
    """First use binds the loop; a later asyncio.run() gets UsageError from every entry
    point (a call, channel_ready, wait_for_state_change, get_state(try_to_connect=True)),
    not a hang or a foreign-loop RuntimeError. close() from the new loop still cleans up:
    the old loop is closed, so the channel closes its sockets itself."""
    channel = grpc_lite.insecure_channel(greeter_server.address)  # made outside any loop
    assert asyncio.run(_hello(channel)).startswith("Hello x")
    port = greeter_server.port
    assert port is not None and established_connections_to(port) == 1

    async def second_loop() -> list[str]:
        errors = []
        for attempt in (
            lambda: _hello(channel),
            channel.channel_ready,
            lambda: channel.wait_for_state_change(grpc_lite.ChannelConnectivity.READY),
        ):
            with pytest.raises(grpc_lite.UsageError) as info:
                await attempt()
            errors.append(str(info.value))
        with pytest.raises(grpc_lite.UsageError):
            channel.get_state(try_to_connect=True)
        await channel.close()
        return errors

    errors = asyncio.run(second_loop())
    assert all("event loop" in e and "closed" in e for e in errors), errors
    assert established_connections_to(port) == 0
    with pytest.raises(grpc_lite.UsageError, match="closed"):
        _say_hello(channel)(helloworld_pb2.HelloRequest(name="y"))


async def test_loop_in_another_thread_raises_usage_error(greeter_server: RunningServer) -> None:
    """A channel in use on this loop, called from a loop in another thread: UsageError
    there (close() too), and this loop's calls are unaffected."""
    async with grpc_lite.insecure_channel(greeter_server.address) as channel:
        await _hello(channel)

        async def elsewhere() -> list[str]:
            messages = []
            with pytest.raises(grpc_lite.UsageError) as info:
                _say_hello(channel)(helloworld_pb2.HelloRequest(name="z"))
            messages.append(str(info.value))
            with pytest.raises(grpc_lite.UsageError) as info:
                await channel.close()
            messages.append(str(info.value))
            return messages

        messages = await asyncio.to_thread(asyncio.run, elsewhere())
        assert all("another event loop" in m for m in messages), messages
        assert (await _hello(channel, "again")).startswith("Hello again")
    assert greeter_server.recorder.count() == 2


# --------------------------------------------------------------------------- fork


def _child_report(write_fd: int, work: Callable[[], dict[str, Any]]) -> None:
    """In the child: run ``work``, send its result as JSON, and leave without cleanup."""
    try:
        result = work()
    except BaseException as exc:  # report everything: the parent asserts on it
        result = {"crash": f"{type(exc).__name__}: {exc}"}
    try:
        os.write(write_fd, json.dumps(result).encode())
    finally:
        os._exit(0)


def _wait_child(pid: int, read_fd: int) -> dict[str, Any]:
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    result: dict[str, Any] = json.loads(b"".join(chunks))
    assert "crash" not in result, result["crash"]
    return result


@pytest.fixture
async def used_channel(greeter_server: RunningServer) -> AsyncIterator[grpc_lite.Channel]:
    async with grpc_lite.insecure_channel(greeter_server.address) as channel:
        await _hello(channel)
        yield channel


@pytest.mark.filterwarnings(FORK_WARNING)
async def test_fork_child_gets_usage_error_parent_unaffected(
    greeter_server: RunningServer,
    grpc_server_factory: ServerFactory,
    used_channel: grpc_lite.Channel,
) -> None:
    """The child (forked from a worker thread, so it runs a fresh loop of its own) finds
    the inherited channel SHUTDOWN, its calls fail fast with UsageError naming the fork,
    its copies of the parent's sockets closed; a new channel works in the child. The
    parent's server sees nothing from the child, and the parent's channel keeps its
    connection and keeps working."""
    other = grpc_server_factory.greeter()
    channel = used_channel
    port = greeter_server.port
    assert port is not None
    fds = _socket_fds(channel)
    assert len(fds) == 1
    attempts_before = channel.snapshot().subchannels[0].connect_attempts
    calls_before = greeter_server.recorder.count()

    def child_work() -> dict[str, Any]:
        # First, before any new descriptor can reuse the numbers.
        closed_fds = []
        for fd in fds:
            try:
                os.fstat(fd)
            except OSError:
                closed_fds.append(fd)

        async def run() -> dict[str, Any]:
            report: dict[str, Any] = {"state": channel.get_state().name}
            report["closed_fds"] = closed_fds
            t0 = time.monotonic()
            try:
                await _hello(channel, "child")
            except grpc_lite.UsageError as exc:
                report["error"] = str(exc)
            report["seconds"] = time.monotonic() - t0
            await channel.close()  # a no-op in the child: nothing may reach the socket
            async with grpc_lite.insecure_channel(other.address) as fresh:
                report["fresh"] = await _hello(fresh, "fresh-child")
            return report

        return asyncio.run(run())

    def fork() -> tuple[int, int]:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child_report(write_fd, child_work)
        os.close(write_fd)
        return pid, read_fd

    pid, read_fd = await asyncio.to_thread(fork)
    report = await asyncio.to_thread(_wait_child, pid, read_fd)
    assert report["state"] == "SHUTDOWN"
    assert "fork" in report["error"] and "new channel" in report["error"]
    assert report["seconds"] < 0.5
    assert report["closed_fds"] == fds
    assert report["fresh"].startswith("Hello fresh-child")
    # The parent: same connection, still working, and the server saw only the parent.
    assert greeter_server.recorder.count() == calls_before
    assert (await _hello(channel, "parent")).startswith("Hello parent")
    assert _socket_fds(channel) == fds
    assert channel.snapshot().subchannels[0].connect_attempts == attempts_before
    assert greeter_server.recorder.count() == calls_before + 1
    assert established_connections_to(port) == 1
    assert other.recorder.count() == 1


@pytest.mark.filterwarnings(FORK_WARNING)
async def test_fork_inside_the_running_loop(
    greeter_server: RunningServer, used_channel: grpc_lite.Channel
) -> None:
    """os.fork() from a coroutine: the child holds a copy of the running loop (asyncio
    itself does not support using it). A call on the inherited channel raises UsageError
    as it is made, before anything can be queued on the parent's connection."""
    channel = used_channel
    calls_before = greeter_server.recorder.count()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        os.close(read_fd)

        def work() -> dict[str, Any]:
            try:
                _say_hello(channel)(helloworld_pb2.HelloRequest(name="child"))
            except grpc_lite.UsageError as exc:
                return {"error": str(exc), "state": channel.get_state().name}
            return {"error": None}

        _child_report(write_fd, work)
    os.close(write_fd)
    report = await asyncio.to_thread(_wait_child, pid, read_fd)
    assert "fork" in report["error"] and report["state"] == "SHUTDOWN"
    assert (await _hello(channel, "parent")).startswith("Hello parent")
    assert greeter_server.recorder.count() == calls_before + 1


@pytest.mark.filterwarnings(FORK_WARNING)
def test_fork_hook_marks_every_live_channel() -> None:
    """The at-fork hook reaches channels that were never used (no loop, no sockets)."""
    channel = grpc_lite.insecure_channel("127.0.0.1:1")
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process

        def work() -> dict[str, Any]:
            try:
                channel.unary_unary(SAY_HELLO)(b"")
            except grpc_lite.UsageError as exc:
                return {"error": str(exc)}
            return {"error": None}

        _child_report(write_fd, work)
    os.close(write_fd)
    report = _wait_child(pid, read_fd)
    assert "fork" in (report["error"] or "")


@pytest.mark.filterwarnings(FORK_WARNING)
async def test_parent_close_ends_the_connection_after_fork(
    greeter_server: RunningServer, used_channel: grpc_lite.Channel
) -> None:
    """The child closed its copies of the sockets, so closing the channel in the parent
    really ends the TCP connection while the child still runs."""
    port = greeter_server.port
    assert port is not None
    release_r, release_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        os.close(release_w)
        os.close(ready_r)
        os.write(ready_w, b"1")
        os.read(release_r, 1)  # stay alive until the parent has closed its channel
        os._exit(0)
    os.close(release_r)
    os.close(ready_w)
    assert await asyncio.to_thread(os.read, ready_r, 1) == b"1"
    os.close(ready_r)
    await used_channel.close()
    assert await wait_until(lambda: established_connections_to(port) == 0)
    os.write(release_w, b"1")
    os.close(release_w)
    await asyncio.to_thread(os.waitpid, pid, 0)

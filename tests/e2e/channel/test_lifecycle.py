"""Channel and call lifecycle against real grpcio servers: graceful drain (CONFORMANCE 161),
restart and reconnect (85, 164), connection loss (41), message-size limits (46, 47),
MAX_CONCURRENT_STREAMS (14), connectivity API (67-70), fail-fast and wait-for-ready (100,
101), close() and the grpc.aio call-object API (51, API.md "Calls")."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import pytest

import grpc_lite
from grpc_lite._proto import testing_pb2
from tests.e2e.channel._util import (
    SC,
    Kit,
    established_connections_to,
    make_kit,
    wait_until,
    watch_server_calls,
)
from tests.servers.harness import RunningServer, ServerFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

S = grpc_lite.ChannelConnectivity
MIB = 1024 * 1024
REPO_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)


@pytest.fixture
async def channel(interop_server: RunningServer) -> AsyncIterator[grpc_lite.Channel]:
    ch = grpc_lite.insecure_channel(interop_server.address)
    try:
        yield ch
    finally:
        await ch.close()


@pytest.fixture
def kit(channel: grpc_lite.Channel) -> Kit:
    return make_kit(channel, "lite")


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it) but not
    listening, so a connect gets ECONNREFUSED at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


async def _state_after_change(ch: grpc_lite.Channel, last: grpc_lite.ChannelConnectivity) -> S:
    """Wait (up to 2 s) until the state differs from ``last``; the new state."""
    async with asyncio.timeout(2):
        await ch.wait_for_state_change(last)
    return ch.get_state()


def _slow_stream_request(kit: Kit, sizes: list[int], interval_s: float) -> object:
    return kit.m.StreamingOutputCallRequest(
        response_parameters=[
            kit.m.ResponseParameters(size=s, interval_us=int(interval_s * 1e6)) for s in sizes
        ]
    )


# --------------------------------------------------------------------------- drain (161)


async def test_goaway_drain_in_flight_call_completes(
    interop_server: RunningServer, kit: Kit, channel: grpc_lite.Channel
) -> None:
    """CONFORMANCE 161 (⚠TRICKY): grpcio ``server.stop(grace=2)`` while a ~1 s server-streaming
    call is in flight: grpcio sends GOAWAY(2^31-1), PING, GOAWAY(last=1) and then finishes the
    stream. The call must complete OK with every message, including a 100000-byte one that
    needs WINDOW_UPDATEs on the draining connection. The channel leaves READY (IDLE) and an
    RPC started after the GOAWAY is not sent on the old connection (the server no longer
    listens: UNAVAILABLE)."""
    watch = watch_server_calls(interop_server)
    await channel.channel_ready()
    call = kit.stub.StreamingOutputCall(
        _slow_stream_request(kit, [1000, 100000, 10], 0.33), timeout=8
    )
    assert await watch.wait_started()
    stopping = asyncio.ensure_future(interop_server.stop_async(grace=2))
    state = await _state_after_change(channel, S.READY)
    assert state in (S.IDLE, S.CONNECTING, S.TRANSIENT_FAILURE), state
    with pytest.raises(grpc_lite.RpcError) as info:
        await kit.stub.EmptyCall(kit.m.Empty(), timeout=1)
    assert info.value.code() is SC.UNAVAILABLE
    sizes = [len(r.payload.body) async for r in call]
    assert sizes == [1000, 100000, 10]
    assert await call.code() is SC.OK
    await stopping
    assert interop_server.recorder.count("EmptyCall") == 0


async def test_goaway_drain_full_duplex_keeps_writing(
    interop_server: RunningServer, kit: Kit, channel: grpc_lite.Channel
) -> None:
    """CONFORMANCE 161: a FullDuplexCall open when grpcio starts ``stop(grace=2)`` can still
    send requests (DATA on the draining connection) and read their responses, then
    half-close and finish OK."""
    watch = watch_server_calls(interop_server)
    call = kit.stub.FullDuplexCall(timeout=8)
    await call.write(kit.streaming_output([10]))
    assert len((await call.read()).payload.body) == 10
    assert watch.started.is_set()
    stopping = asyncio.ensure_future(interop_server.stop_async(grace=2))
    await _state_after_change(channel, S.READY)  # the GOAWAY has been processed
    await call.write(kit.streaming_output([70000], 70000))
    assert len((await call.read()).payload.body) == 70000
    await call.done_writing()
    assert await call.read() is grpc_lite.EOF
    assert await call.code() is SC.OK
    await stopping


# --------------------------------------------------------------------------- restart (85, 164)


async def test_restart_same_port_reconnects(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 85 and 164: the server stops: the READY channel goes IDLE (pick_first, not
    TRANSIENT_FAILURE); a server restarted on the same port gets the next RPC, which
    reconnects without backoff delay (< 1 s) and succeeds."""
    first = grpc_server_factory.interop()
    port = first.port
    assert port is not None
    async with grpc_lite.insecure_channel(first.address) as ch:
        kit = make_kit(ch, "lite")
        await kit.stub.EmptyCall(kit.m.Empty(), timeout=5)
        assert ch.get_state() is S.READY
        await first.stop_async(grace=None)
        assert await _state_after_change(ch, S.READY) is S.IDLE
        second = grpc_server_factory.interop(port=port)
        start = time.monotonic()
        await kit.stub.EmptyCall(kit.m.Empty(), timeout=5)
        assert time.monotonic() - start < 1.0
        assert second.recorder.count("EmptyCall") == 1
        assert ch.get_state() is S.READY


# --------------------------------------------------------------------------- connection loss (41)


@pytest.fixture
def killable_server() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """The interop server in a child process (so the test can SIGKILL it); (port, process).
    The child exits when its stdin closes; teardown kills it in any case."""
    code = (
        "import sys\n"
        "from tests.servers.interop import start_interop_server\n"
        "server = start_interop_server()\n"
        "print(server.port, flush=True)\n"
        "sys.stdin.read()\n"
        "server.stop(None)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip().isdigit(), line
        yield int(line), proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


async def test_server_killed_during_server_streaming_unavailable(
    killable_server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    """CONFORMANCE 41: the server process is SIGKILLed during a server-streaming call (one of
    20 messages received): the call fails UNAVAILABLE promptly (not at its 10 s deadline),
    and the channel leaves READY."""
    port, proc = killable_server
    async with grpc_lite.insecure_channel(f"127.0.0.1:{port}") as ch:
        kit = make_kit(ch, "lite")
        call = kit.stub.StreamingOutputCall(_slow_stream_request(kit, [100] * 20, 0.1), timeout=10)
        assert len((await call.read()).payload.body) == 100
        os.kill(proc.pid, signal.SIGKILL)
        start = time.monotonic()
        with pytest.raises(grpc_lite.RpcError) as info:
            async for _ in call:
                pass
        assert info.value.code() is SC.UNAVAILABLE, info.value
        assert time.monotonic() - start < 2.0
        assert ch.get_state() is not S.READY


# --------------------------------------------------------------------------- limits (46, 47)


async def test_default_receive_limit_4mib(kit: Kit) -> None:
    """CONFORMANCE 46: by default a 5 MiB response fails RESOURCE_EXHAUSTED; a response just
    under 4 MiB passes."""
    with pytest.raises(grpc_lite.RpcError) as info:
        await kit.stub.UnaryCall(kit.simple(5 * MIB), timeout=10)
    assert info.value.code() is SC.RESOURCE_EXHAUSTED
    response = await kit.stub.UnaryCall(kit.simple(4 * MIB - 64), timeout=10)
    assert len(response.payload.body) == 4 * MIB - 64


async def test_default_receive_limit_streaming(kit: Kit) -> None:
    """CONFORMANCE 46: the limit applies per message on a stream: a 1 KiB message arrives,
    then the 5 MiB one fails the call RESOURCE_EXHAUSTED."""
    call = kit.stub.StreamingOutputCall(kit.streaming_output([1024, 5 * MIB]), timeout=10)
    assert len((await call.read()).payload.body) == 1024
    with pytest.raises(grpc_lite.RpcError) as info:
        await call.read()
    assert info.value.code() is SC.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("limit", [8 * MIB, -1])
async def test_receive_limit_raised(interop_server: RunningServer, limit: int) -> None:
    """CONFORMANCE 46: with ``grpc.max_receive_message_length`` raised (8 MiB) or unlimited
    (-1) the 5 MiB response is received intact."""
    options = [("grpc.max_receive_message_length", limit)]
    async with grpc_lite.insecure_channel(interop_server.address, options) as ch:
        kit = make_kit(ch, "lite")
        response = await kit.stub.UnaryCall(kit.simple(5 * MIB), timeout=10)
        assert response.payload.body == b"\0" * (5 * MIB)


async def test_receive_limit_lowered(interop_server: RunningServer) -> None:
    """CONFORMANCE 46: a lowered ``grpc.max_receive_message_length`` (1000) fails a 2000-byte
    response RESOURCE_EXHAUSTED and lets a 500-byte one through."""
    options = [("grpc.max_receive_message_length", 1000)]
    async with grpc_lite.insecure_channel(interop_server.address, options) as ch:
        kit = make_kit(ch, "lite")
        with pytest.raises(grpc_lite.RpcError) as info:
            await kit.stub.UnaryCall(kit.simple(2000), timeout=5)
        assert info.value.code() is SC.RESOURCE_EXHAUSTED
        assert len((await kit.stub.UnaryCall(kit.simple(500), timeout=5)).payload.body) == 500


async def test_send_limit(interop_server: RunningServer) -> None:
    """CONFORMANCE 47: with ``grpc.max_send_message_length`` = 1000 a 2000-byte request fails
    RESOURCE_EXHAUSTED before it is sent (the server never sees the call); a small request
    passes; a streaming write() over the limit raises RESOURCE_EXHAUSTED."""
    options = [("grpc.max_send_message_length", 1000)]
    async with grpc_lite.insecure_channel(interop_server.address, options) as ch:
        kit = make_kit(ch, "lite")
        with pytest.raises(grpc_lite.RpcError) as info:
            await kit.stub.UnaryCall(kit.simple(10, 2000), timeout=5)
        assert info.value.code() is SC.RESOURCE_EXHAUSTED
        assert interop_server.recorder.count("UnaryCall") == 0
        assert len((await kit.stub.UnaryCall(kit.simple(10, 100), timeout=5)).payload.body) == 10

        call = kit.stub.StreamingInputCall(timeout=5)
        await call.write(kit.streaming_input(100))
        with pytest.raises(grpc_lite.RpcError) as info:
            await call.write(kit.streaming_input(2000))
        assert info.value.code() is SC.RESOURCE_EXHAUSTED
        assert await call.code() is SC.RESOURCE_EXHAUSTED


async def test_no_default_send_limit(kit: Kit) -> None:
    """CONFORMANCE 47: there is no default send limit: a 3 MiB request goes out."""
    response = await kit.stub.UnaryCall(kit.simple(10, 3 * MIB), timeout=10)
    assert len(response.payload.body) == 10


# --------------------------------------------------------------------------- MCS (14)


async def test_max_concurrent_streams_one(grpc_server_factory: ServerFactory) -> None:
    """CONFORMANCE 14 (⚠TRICKY): grpcio with ``grpc.max_concurrent_streams=1``: 10 concurrent
    UnaryCalls (100 KB each way) and 10 concurrent 50 ms server-streaming calls all succeed
    with the right payloads (extra streams queue, they never fail)."""
    server = grpc_server_factory.interop(options=[("grpc.max_concurrent_streams", 1)])
    async with grpc_lite.insecure_channel(server.address) as ch:
        kit = make_kit(ch, "lite")
        await kit.stub.EmptyCall(kit.m.Empty(), timeout=5)  # warm-up: SETTINGS known
        sizes = [100_000 + i for i in range(10)]
        responses = await asyncio.gather(
            *(kit.stub.UnaryCall(kit.simple(n, n), timeout=10) for n in sizes)
        )
        assert [len(r.payload.body) for r in responses] == sizes

        async def streaming(i: int) -> list[int]:
            call = kit.stub.StreamingOutputCall(
                _slow_stream_request(kit, [i + 1, i + 2], 0.025), timeout=10
            )
            return [len(r.payload.body) async for r in call]

        results = await asyncio.gather(*(streaming(i) for i in range(10)))
        assert results == [[i + 1, i + 2] for i in range(10)]
    assert server.recorder.count("UnaryCall") == 10


# --------------------------------------------------------------------------- connectivity


async def test_connectivity_states(interop_server: RunningServer) -> None:
    """CONFORMANCE 67, 68, 69, 70: a new channel is IDLE and stays IDLE; get_state(
    try_to_connect=True) starts connecting; wait_for_state_change observes CONNECTING then
    READY; channel_ready() returns at once when READY; close() -> SHUTDOWN (terminal) and
    starting an RPC raises grpc_lite.UsageError (a RuntimeError) within 10 ms."""
    ch = grpc_lite.insecure_channel(interop_server.address)
    try:
        assert ch.get_state() is S.IDLE
        assert ch.get_state(try_to_connect=False) is S.IDLE
        first = ch.get_state(try_to_connect=True)
        assert first in (S.IDLE, S.CONNECTING)
        seen = [first]
        async with asyncio.timeout(3):
            while seen[-1] is not S.READY:
                await ch.wait_for_state_change(seen[-1])
                seen.append(ch.get_state())
        assert S.CONNECTING in seen and seen[-1] is S.READY, seen
        assert S.TRANSIENT_FAILURE not in seen, seen
        async with asyncio.timeout(1):
            await ch.channel_ready()
        assert interop_server.recorder.count() == 0  # connecting sends no RPC
    finally:
        await ch.close()
    assert ch.get_state() is S.SHUTDOWN
    assert ch.get_state(try_to_connect=True) is S.SHUTDOWN
    kit = make_kit(ch, "lite")
    start = time.monotonic()
    with pytest.raises(grpc_lite.UsageError):
        kit.stub.EmptyCall(kit.m.Empty(), timeout=1)
    assert time.monotonic() - start < 0.01
    assert issubclass(grpc_lite.UsageError, RuntimeError)
    with pytest.raises(grpc_lite.UsageError):
        ch.unary_unary("/grpc.testing.TestService/EmptyCall")(b"")
    await ch.close()  # idempotent


async def test_channel_ready_from_idle(interop_server: RunningServer) -> None:
    """CONFORMANCE 68: channel_ready() on an IDLE channel asks to connect and returns once
    READY."""
    async with grpc_lite.insecure_channel(interop_server.address) as ch:
        assert ch.get_state() is S.IDLE
        async with asyncio.timeout(3):
            await ch.channel_ready()
        assert ch.get_state() is S.READY


async def test_new_channel_does_not_connect() -> None:
    """CONFORMANCE 67: creating a channel (even to a refused port) never blocks, never
    raises and does not connect: it stays IDLE while nothing asks."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    try:
        async with grpc_lite.insecure_channel(f"127.0.0.1:{listener.getsockname()[1]}") as ch:
            await asyncio.sleep(0.3)
            assert ch.get_state() is S.IDLE
            with pytest.raises(BlockingIOError):
                listener.accept()  # nobody connected
    finally:
        listener.close()


async def test_fail_fast_refused_port_unavailable_quickly(refused_port: int) -> None:
    """CONFORMANCE 100 (⚠TRICKY): a fail-fast RPC to a refused port with a 10 s deadline fails
    UNAVAILABLE in under 1 s (once the first attempt fails), not DEADLINE_EXCEEDED."""
    async with grpc_lite.insecure_channel(f"127.0.0.1:{refused_port}") as ch:
        kit = make_kit(ch, "lite")
        start = time.monotonic()
        with pytest.raises(grpc_lite.RpcError) as info:
            await kit.stub.EmptyCall(kit.m.Empty(), timeout=10)
        elapsed = time.monotonic() - start
        assert info.value.code() is SC.UNAVAILABLE, info.value
        assert elapsed < 1.0, elapsed
        assert ch.get_state() is S.TRANSIENT_FAILURE


async def test_wait_for_ready_refused_port_deadline(refused_port: int) -> None:
    """CONFORMANCE 101: wait_for_ready=True to a refused port with a 1 s deadline ->
    DEADLINE_EXCEEDED at about 1 s (TRANSIENT_FAILURE picks are ignored)."""
    async with grpc_lite.insecure_channel(f"127.0.0.1:{refused_port}") as ch:
        kit = make_kit(ch, "lite")
        start = time.monotonic()
        with pytest.raises(grpc_lite.RpcError) as info:
            await kit.stub.EmptyCall(kit.m.Empty(), timeout=1, wait_for_ready=True)
        elapsed = time.monotonic() - start
        assert info.value.code() is SC.DEADLINE_EXCEEDED, info.value
        assert 0.9 <= elapsed < 1.5, elapsed


async def test_wait_for_ready_succeeds_when_server_comes_up(
    grpc_server_factory: ServerFactory,
) -> None:
    """CONFORMANCE 101: a wait_for_ready RPC to a port with no server keeps waiting; the
    server starts on that port 0.3 s later and the RPC succeeds (short reconnect backoff
    configured so the retry comes soon)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options = [
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 200),
    ]
    try:
        async with grpc_lite.insecure_channel(f"127.0.0.1:{port}", options) as ch:
            kit = make_kit(ch, "lite")
            call = kit.stub.EmptyCall(kit.m.Empty(), timeout=5, wait_for_ready=True)
            await asyncio.sleep(0.3)
            assert not call.done()
            sock.close()
            server = grpc_server_factory.interop(port=port)
            assert await call == kit.m.Empty()
            assert server.recorder.count("EmptyCall") == 1
    finally:
        sock.close()


# --------------------------------------------------------------------------- close()


async def test_close_cancels_in_flight_calls(
    interop_server: RunningServer, kit: Kit, channel: grpc_lite.Channel
) -> None:
    """CONFORMANCE 70 / API.md: close() cancels outstanding calls: a server-streaming call
    and an open client-streaming call end CANCELLED (RpcError, not asyncio.CancelledError,
    since the application did not cancel them); the server sees its RPCs end."""
    watch = watch_server_calls(interop_server)
    stream_call = kit.stub.StreamingOutputCall(
        _slow_stream_request(kit, [10] * 50, 0.1), timeout=10
    )
    assert len((await stream_call.read()).payload.body) == 10
    input_call = kit.stub.StreamingInputCall(timeout=10)
    await input_call.write(kit.streaming_input(10))
    assert await wait_until(lambda: len(watch.contexts) == 2, 3.0)  # both handlers running
    await channel.close()
    assert channel.get_state() is S.SHUTDOWN
    for call in (stream_call, input_call):
        assert call.done()
        assert await call.code() is SC.CANCELLED
        assert not call.cancelled()
    with pytest.raises(grpc_lite.RpcError) as info:
        async for _ in stream_call:
            pass
    assert info.value.code() is SC.CANCELLED
    with pytest.raises(grpc_lite.RpcError) as info:
        await input_call
    assert info.value.code() is SC.CANCELLED
    assert await wait_until(lambda: len(watch.cancelled_flags) == 2, 3.0)


async def test_close_with_grace_lets_calls_finish(
    interop_server: RunningServer, kit: Kit, channel: grpc_lite.Channel
) -> None:
    """API.md close(grace): outstanding calls may finish within the grace period: a 0.3 s
    server-streaming call completes OK across close(grace=2); a new RPC during the grace
    period is refused with UsageError."""
    call = kit.stub.StreamingOutputCall(_slow_stream_request(kit, [5, 6, 7], 0.1), timeout=5)
    await call.wait_for_connection()
    closing = asyncio.ensure_future(channel.close(grace=2))
    await asyncio.sleep(0)
    with pytest.raises(grpc_lite.UsageError):
        kit.stub.EmptyCall(kit.m.Empty(), timeout=1)
    assert [len(r.payload.body) async for r in call] == [5, 6, 7]
    assert await call.code() is SC.OK
    await closing
    assert channel.get_state() is S.SHUTDOWN


async def test_async_with_closes(interop_server: RunningServer) -> None:
    """API.md: Channel is an async context manager; leaving the block closes it (SHUTDOWN, new
    RPCs raise UsageError)."""
    async with grpc_lite.insecure_channel(interop_server.address) as ch:
        kit = make_kit(ch, "lite")
        await kit.stub.EmptyCall(kit.m.Empty(), timeout=5)
    assert ch.get_state() is S.SHUTDOWN
    with pytest.raises(grpc_lite.UsageError):
        kit.stub.EmptyCall(kit.m.Empty(), timeout=1)


async def test_close_releases_socket(interop_server: RunningServer) -> None:
    """CONFORMANCE 70: after ``await close()`` the plaintext connection's socket is closed
    (no ESTABLISHED client socket to the server remains after 1 s)."""
    port = interop_server.port
    assert port is not None
    ch = grpc_lite.insecure_channel(interop_server.address)
    kit = make_kit(ch, "lite")
    await kit.stub.EmptyCall(kit.m.Empty(), timeout=5)
    assert established_connections_to(port) == 1
    await ch.close()
    assert await wait_until(lambda: established_connections_to(port) == 0, 1.0)


# --------------------------------------------------------------------------- call object API


async def test_call_object_api_unary(kit: Kit) -> None:
    """API.md Calls: a unary call object: done()/cancelled() False while running;
    time_remaining() ≈ the timeout and shrinking; add_done_callback runs once with the call
    (also when added after completion); code/details/initial/trailing metadata after OK."""
    call = kit.stub.UnaryCall(
        kit.simple(10), timeout=5, metadata=(("x-grpc-test-echo-initial", "v"),)
    )
    assert not call.done() and not call.cancelled()
    remaining = call.time_remaining()
    assert remaining is not None and 4.0 < remaining <= 5.0
    done_with: list[object] = []
    fired = asyncio.Event()

    def on_done(c: object) -> None:
        done_with.append(c)
        fired.set()

    call.add_done_callback(on_done)
    response = await call
    assert len(response.payload.body) == 10
    async with asyncio.timeout(1):
        await fired.wait()
    assert done_with == [call]
    assert call.done() and not call.cancelled()
    assert await call.code() is SC.OK
    assert (await call.details()) in ("", None)
    assert (await call.initial_metadata()).get_all("x-grpc-test-echo-initial") == ["v"]
    assert isinstance(await call.trailing_metadata(), grpc_lite.Metadata)
    later = asyncio.Event()
    call.add_done_callback(lambda c: later.set())
    async with asyncio.timeout(1):
        await later.wait()
    assert len(done_with) == 1
    assert call.cancel() is False  # nothing to cancel any more


async def test_call_time_remaining_without_deadline(kit: Kit) -> None:
    """API.md Calls: time_remaining() is None when the call has no deadline; it shrinks for
    one that has."""
    call = kit.stub.EmptyCall(kit.m.Empty())
    assert call.time_remaining() is None
    await call
    timed = kit.stub.FullDuplexCall(timeout=3)
    first = timed.time_remaining()
    await asyncio.sleep(0.05)
    second = timed.time_remaining()
    assert first is not None and second is not None and second < first
    await timed.done_writing()
    assert await timed.code() is SC.OK


async def test_call_wait_for_connection_unary_stream(kit: Kit) -> None:
    """API.md Calls (grpc.aio semantics): wait_for_connection() returns once the RPC is
    connected, before all responses arrived, and does not raise for a healthy call."""
    call = kit.stub.StreamingOutputCall(_slow_stream_request(kit, [1, 2], 0.2), timeout=5)
    async with asyncio.timeout(1):
        await call.wait_for_connection()
    assert not call.done()
    assert [len(r.payload.body) async for r in call] == [1, 2]


async def test_call_wait_for_connection_client_streaming(kit: Kit) -> None:
    """API.md Calls (grpc.aio semantics): on a client-streaming call wait_for_connection()
    returns once the call is started on a connection (grpc.aio waits for *its own* metadata
    to be sent), not once the server answers: grpcio's StreamingInputCall sends no response
    headers before the client half-closes, so waiting for them would block to the
    deadline."""
    call = kit.stub.StreamingInputCall(timeout=3)
    async with asyncio.timeout(1):
        await call.wait_for_connection()
    assert not call.done()
    await call.write(kit.streaming_input(5))
    await call.done_writing()
    assert (await call).aggregated_payload_size == 5


async def test_call_wait_for_connection_raises_on_failure(refused_port: int) -> None:
    """API.md Calls: wait_for_connection() raises the RpcError when the call could not be
    connected (refused port: UNAVAILABLE)."""
    async with grpc_lite.insecure_channel(f"127.0.0.1:{refused_port}") as ch:
        call = make_kit(ch, "lite").stub.StreamingOutputCall(
            testing_pb2.StreamingOutputCallRequest(), timeout=5
        )
        with pytest.raises(grpc_lite.RpcError) as info:
            await call.wait_for_connection()
        assert info.value.code() is SC.UNAVAILABLE


async def test_call_error_metadata_and_debug_string(kit: Kit) -> None:
    """API.md Calls: a failed RPC's RpcError carries code, details, initial and trailing
    metadata (the echoed -bin trailer) and a debug_error_string naming the code."""
    request = kit.simple(1, response_status=kit.m.EchoStatus(code=9, message="nope"))
    call = kit.stub.UnaryCall(
        request,
        timeout=5,
        metadata=(("x-grpc-test-echo-trailing-bin", b"\x00\x01"),),
    )
    with pytest.raises(grpc_lite.RpcError) as info:
        await call
    error = info.value
    assert error.code() is SC.FAILED_PRECONDITION
    assert error.details() == "nope"
    assert error.trailing_metadata().get_all("x-grpc-test-echo-trailing-bin") == [b"\x00\x01"]
    assert isinstance(error.initial_metadata(), grpc_lite.Metadata)
    assert "FAILED_PRECONDITION" in error.debug_error_string()
    assert await call.code() is SC.FAILED_PRECONDITION
    assert (await call.trailing_metadata()).get_all("x-grpc-test-echo-trailing-bin") == [
        b"\x00\x01"
    ]


async def test_await_after_cancel_raises_cancelled_error(
    interop_server: RunningServer, kit: Kit
) -> None:
    """API.md Calls / CONFORMANCE 51: ``call.cancel()`` then ``await call`` raises
    asyncio.CancelledError (as grpc.aio); cancelled() and done() are True, code() is
    CANCELLED, the done callback runs, and the server sees the RPC cancelled."""
    watch = watch_server_calls(interop_server)
    call = kit.stub.StreamingInputCall(timeout=5)
    fired = asyncio.Event()
    call.add_done_callback(lambda c: fired.set())
    assert await watch.wait_started()
    assert call.cancel() is True
    assert call.cancelled() and call.done()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await call.code() is SC.CANCELLED
    async with asyncio.timeout(1):
        await fired.wait()
    assert await watch.wait_ended()
    assert watch.cancelled_flags == [True]


async def test_cancelling_awaiting_task_cancels_rpc(
    interop_server: RunningServer, kit: Kit
) -> None:
    """API.md Calls: cancelling the task that awaits a call cancels the RPC: the call becomes
    cancelled() with code CANCELLED and the server sees a client cancellation."""
    watch = watch_server_calls(interop_server)
    call = kit.stub.StreamingInputCall(timeout=5)

    async def wait_response() -> object:
        return await call

    task = asyncio.ensure_future(wait_response())
    assert await watch.wait_started()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert call.done()
    assert call.cancelled()
    assert await call.code() is SC.CANCELLED
    assert await watch.wait_ended()
    assert watch.cancelled_flags == [True]


async def test_cancelling_reading_task_cancels_stream(
    interop_server: RunningServer, kit: Kit
) -> None:
    """API.md Calls: cancelling a task blocked in ``read()`` of a server-streaming call
    cancels the RPC (server sees it)."""
    watch = watch_server_calls(interop_server)
    call = kit.stub.StreamingOutputCall(_slow_stream_request(kit, [1] * 10, 0.2), timeout=5)

    async def read_all() -> list[object]:
        return [r async for r in call]

    task = asyncio.ensure_future(read_all())
    assert await watch.wait_started()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert call.cancelled()
    assert await call.code() is SC.CANCELLED
    assert await watch.wait_ended()
    assert watch.cancelled_flags == [True]

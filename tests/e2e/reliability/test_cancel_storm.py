"""Cancellation storm (issue 7, "Soak and fault tests": "thousands of calls cancelled at
random points leave no stream, task or window credit behind"; CONFORMANCE 13, 49, 51, 52).

Thousands of calls of all four kinds run against one ``grpc_lite.testing.Backend`` (with
a small per-call delay, streaming responses of tens of KiB paced by the server) and are
ended at random points: cancelled before anything is sent, after the response headers,
in the middle of the stream (after some messages read or written), by a short random
deadline, or by cancelling the task that awaits them; a share runs to completion. The
responses add up to far more than the connection's 16 MiB receive window, so credit
that a cancelled stream failed to return would stall the connection.

Afterwards, on the same connection:

- every call ended OK, CANCELLED (``asyncio.CancelledError``, as grpc.aio) or
  DEADLINE_EXCEEDED: nothing else;
- no stream is left open or queued (``Connection.active_streams`` and
  ``pending_streams`` are 0), and the server has no stream or handler left (the client
  reset what it abandoned);
- no grpc_lite task is left;
- the connection-level receive window is whole again (window + credit not yet returned
  = the initial window) and a 3 MiB response still arrives;
- the server still has exactly the one connection it had before (no reconnect, no
  connection error).

``GRPC_LITE_STORM_CALLS`` (default 3000) and ``GRPC_LITE_STORM_SEED`` change the size and
the random sequence.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

import grpc_lite
from grpc_lite._proto import testing_pb2
from grpc_lite.testing import Backend
from tests.e2e.reliability._util import SC, is_client_task, other_tasks, task_names, wait_until
from tests.h2peer import H2Peer, PeerStream

CALLS = int(os.environ.get("GRPC_LITE_STORM_CALLS", "3000"))
SEED = int(os.environ.get("GRPC_LITE_STORM_SEED", "20240707"))
CONCURRENCY = 100

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60 + CALLS // 50)]

TEST_SERVICE = testing_pb2.DESCRIPTOR.services_by_name["TestService"]
ECHO_INITIAL = ("x-grpc-test-echo-initial", "storm")  # the server sends headers at once
KINDS = ("unary", "server_stream", "client_stream", "bidi")
MODES = ("before_send", "after_headers", "mid_stream", "deadline", "task_cancel", "complete")
ALLOWED = {"OK", "CancelledError", "DEADLINE_EXCEEDED"}


class _Cancelled(Exception):
    """Raised by a step when the call's cancel() was observed (CancelledError from the
    call, not from our own task)."""


def _stream_request(rng: random.Random, n: int) -> testing_pb2.StreamingOutputCallRequest:
    return testing_pb2.StreamingOutputCallRequest(
        response_parameters=[
            testing_pb2.ResponseParameters(
                size=rng.randrange(8 << 10, 64 << 10), interval_us=rng.randrange(0, 3000)
            )
            for _ in range(n)
        ]
    )


class Storm:
    """Runs one call per :meth:`one` and counts outcomes by (kind, mode, outcome)."""

    def __init__(self, channel: grpc_lite.Channel) -> None:
        self.stub = grpc_lite.Stub(channel, TEST_SERVICE)
        self.outcomes: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.bad: list[str] = []

    # -- one call: start it, then walk its steps (each step is one protocol event)

    def _start(self, kind: str, rng: random.Random, timeout: float) -> tuple[Any, Any]:
        """(call, the async generator of its steps)."""
        md = [ECHO_INITIAL]
        if kind == "unary":
            size = rng.randrange(0, 64 << 10)
            call = self.stub.UnaryCall(
                testing_pb2.SimpleRequest(response_size=size), timeout=timeout, metadata=md
            )

            async def steps() -> AsyncIterator[None]:
                response = await call
                assert len(response.payload.body) == size
                yield

        elif kind == "server_stream":
            n = rng.randrange(3, 10)
            call = self.stub.StreamingOutputCall(
                _stream_request(rng, n), timeout=timeout, metadata=md
            )

            async def steps() -> AsyncIterator[None]:
                got = 0
                async for _ in call:
                    got += 1
                    yield
                assert got == n

        elif kind == "client_stream":
            sizes = [rng.randrange(1, 32 << 10) for _ in range(rng.randrange(1, 6))]
            call = self.stub.StreamingInputCall(timeout=timeout, metadata=md)

            async def steps() -> AsyncIterator[None]:
                for s in sizes:
                    await call.write(
                        testing_pb2.StreamingInputCallRequest(
                            payload=testing_pb2.Payload(body=b"\1" * s)
                        )
                    )
                    yield
                await call.done_writing()
                response = await call
                assert response.aggregated_payload_size == sum(sizes)
                yield

        else:
            rounds = rng.randrange(1, 4)
            call = self.stub.FullDuplexCall(timeout=timeout, metadata=md)

            async def steps() -> AsyncIterator[None]:
                for _ in range(rounds):
                    await call.write(_stream_request(rng, 2))
                    yield
                    for _ in range(2):
                        msg = await call.read()
                        assert msg is not grpc_lite.EOF
                        yield
                await call.done_writing()
                assert await call.read() is grpc_lite.EOF
                yield

        return call, steps()

    async def one(self, rng: random.Random) -> None:
        kind, mode = rng.choice(KINDS), rng.choice(MODES)
        timeout = rng.uniform(0.001, 0.03) if mode == "deadline" else 10.0
        outcome = "?"
        call = None
        try:
            call, steps = self._start(kind, rng, timeout)
            outcome = await self._drive(call, steps, mode, rng)
        except grpc_lite.RpcError as exc:
            outcome = exc.code().name
            if outcome not in ALLOWED:
                self.bad.append(f"{kind}/{mode}: {exc.code().name}: {exc.details()}")
        except _Cancelled:
            outcome = "CancelledError"
        except AssertionError as exc:
            outcome = "wrong-data"
            self.bad.append(f"{kind}/{mode}: wrong data: {exc!r}")
        self.outcomes[(kind, mode, outcome)] += 1
        if mode == "complete" and outcome != "OK":
            self.bad.append(f"{kind}/complete ended {outcome}")
        # grpc.aio: a cancelled call reports cancelled() and code() CANCELLED.
        if (
            call is not None
            and outcome == "CancelledError"
            and (not call.cancelled() or await call.code() is not SC.CANCELLED)
        ):
            self.bad.append(f"{kind}/{mode}: cancel() not reflected by the call")
        if call is not None and not call.done():
            self.bad.append(f"{kind}/{mode}: call not done after it ended ({outcome})")

    async def _drive(self, call: Any, steps: Any, mode: str, rng: random.Random) -> str:
        async def walk(limit: int | None = None) -> None:
            n = 0
            try:
                async for _ in steps:
                    n += 1
                    if limit is not None and n >= limit:
                        return
            except asyncio.CancelledError:
                if call.cancelled():
                    raise _Cancelled() from None
                raise

        if mode == "before_send":
            assert call.cancel()
            await walk()
        elif mode == "after_headers":
            await call.initial_metadata()
            call.cancel()
            await walk()
        elif mode == "mid_stream":
            await walk(limit=rng.randrange(1, 4))
            call.cancel()
            await walk()
        elif mode == "task_cancel":
            task = asyncio.ensure_future(walk())
            await asyncio.sleep(rng.uniform(0, 0.01))
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, _Cancelled):
                # API.md: a cancelled awaiting task cancels its RPC (at once; one loop
                # iteration for the callbacks). A call that had just finished keeps its
                # status.
                await asyncio.sleep(0)
                if not call.done():
                    self.bad.append(
                        f"{type(call).__name__}: RPC still running after its task was cancelled"
                    )
                    call.cancel()
                if call.cancelled():
                    return "CancelledError"
                return (await call.code()).name
            return (await call.code()).name
        else:  # deadline, complete
            await walk()
        await walk()
        code = await call.code()
        if code is not SC.OK and call.cancelled():
            return "CancelledError"
        return code.name


def _connection(channel: grpc_lite.Channel) -> Any:
    (sc,) = list(channel._subchannels)
    assert sc.transport is not None and sc.transport.conn is not None
    return sc.transport


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    # No MAX_CONCURRENT_STREAMS: the Backend counts a stream until its handler task has
    # finished, so a stream the client reset (closed at once, RFC 9113 5.1) can still count
    # there when the client's next HEADERS arrive, and the Backend would refuse it. The
    # client's stream queue under cancellation is covered by the scripted-peer storm below.
    async with Backend(max_concurrent_streams=None) as b:
        b.delay = 0.002
        yield b


async def test_cancel_storm_leaves_nothing_behind(backend: Backend) -> None:
    rng = random.Random(SEED)
    async with grpc_lite.insecure_channel(backend.address) as ch:
        stub = grpc_lite.Stub(ch, TEST_SERVICE)
        await stub.EmptyCall(testing_pb2.Empty(), timeout=5)
        transport = _connection(ch)
        conn = transport.conn
        initial_window = conn._local_connection_window
        accepted = backend.connections_accepted
        assert backend.current_connections == 1
        client_tasks_before = {t for t in other_tasks() if is_client_task(t)}
        # Count the bytes the connection reads (the socket calls the buffered protocol's
        # buffer_updated with the size of each read).
        received = [0]
        buffer_updated = transport.buffer_updated

        def counting(nbytes: int) -> None:
            received[0] += nbytes
            buffer_updated(nbytes)

        transport.buffer_updated = counting  # type: ignore[method-assign]

        storm = Storm(ch)
        sem = asyncio.Semaphore(CONCURRENCY)

        async def guarded(seed: int) -> None:
            async with sem:
                await storm.one(random.Random(seed))

        await asyncio.gather(*(guarded(rng.getrandbits(32)) for _ in range(CALLS)))

        by_outcome: collections.Counter[str] = collections.Counter()
        for (_, _, outcome), n in storm.outcomes.items():
            by_outcome[outcome] += n
        by_mode: collections.Counter[str] = collections.Counter()
        for (_, mode, _), n in storm.outcomes.items():
            by_mode[mode] += n
        print(
            f"\ncancel storm: {CALLS} calls (seed {SEED}); outcomes {dict(by_outcome)}; "
            f"modes {dict(by_mode)}; {received[0] / 2**20:.1f} MiB read on one connection "
            f"(receive window {initial_window / 2**20:.0f} MiB)"
        )
        assert not storm.bad, storm.bad[:20]
        assert set(by_outcome) <= ALLOWED, by_outcome
        assert sum(by_outcome.values()) == CALLS
        # The storm really did end calls at every kind of point.
        assert by_outcome["CancelledError"] > CALLS // 10
        assert by_outcome["DEADLINE_EXCEEDED"] > 0 and by_outcome["OK"] > CALLS // 10
        if CALLS >= 3000:
            assert received[0] > 2 * initial_window, "the storm did not stress the window"

        # No stream left open or queued on the client's connection.
        assert _connection(ch) is transport, "the storm cost the connection"
        assert await wait_until(lambda: conn.active_streams == 0 and conn.pending_streams == 0)
        assert conn.active_streams == 0, conn._streams
        assert conn.pending_streams == 0
        # The server has no open stream (its h2 state machine) and no handler left: every
        # stream the client abandoned was reset, so nothing waits for it on the server.
        # (The Backend's own stream table is not used: it keeps an entry for a stream reset
        # before its handler task started, grpc_lite/testing/_h2server.py on_reset.)
        server_conns = list(backend._connections)
        assert await wait_until(
            lambda: not backend._tasks and all(c.h2.open_inbound_streams == 0 for c in server_conns)
        ), (
            f"server handlers left: {len(backend._tasks)}; open streams: "
            f"{[c.h2.open_inbound_streams for c in server_conns]}"
        )
        # No grpc_lite task left behind.
        leaked = {t for t in other_tasks() if is_client_task(t)} - client_tasks_before
        assert await wait_until(lambda: not {t for t in leaked if not t.done()})
        assert not {t for t in leaked if not t.done()}, task_names(leaked)
        # Connection-level receive credit: everything received was credited back (or is
        # pending as credit below the update threshold) -- window + credit = initial.
        assert conn._recv_window + conn._recv_credit == initial_window, (
            conn._recv_window,
            conn._recv_credit,
            initial_window,
        )
        # And a large response still flows through the same connection, alongside small ones.
        big = stub.UnaryCall(testing_pb2.SimpleRequest(response_size=3 << 20), timeout=10)
        small = [stub.EmptyCall(testing_pb2.Empty(), timeout=5) for _ in range(20)]
        assert len((await big).payload.body) == 3 << 20
        await asyncio.gather(*small)
        assert conn._recv_window + conn._recv_credit == initial_window
        assert conn.active_streams == 0
        assert backend.current_connections == 1
        assert backend.connections_accepted == accepted
        assert _connection(ch) is transport
    # After close: no grpc_lite task at all, and the server saw the connection go.
    assert await wait_until(lambda: not any(is_client_task(t) for t in other_tasks()))
    assert await wait_until(lambda: backend.current_connections == 0)


# --------------------------------------------------------------------------- queued streams

PEER_UNARY = "/reliability.Storm/Unary"
PEER_STREAM = "/reliability.Storm/Stream"
PEER_MCS = 8


async def _paced(stream: PeerStream) -> None:
    """Scripted peer handler: unary echo after a short pause, or five 16 KiB messages 1 ms
    apart; gives up quietly when the client resets the stream."""
    rng = random.Random(stream.stream_id)
    request = await stream.read_message()
    if stream.path == PEER_UNARY:
        await stream.wait_end()
        await asyncio.sleep(rng.uniform(0, 0.003))
        if await stream.send_headers() and await stream.send_message(request or b""):
            await stream.send_trailers(0)
        return
    if not await stream.send_headers():
        return
    for _ in range(5):
        await asyncio.sleep(0.001)
        if not await stream.send_message(b"\2" * (16 << 10)):
            return
    await stream.send_trailers(0)


async def test_cancel_storm_on_queued_streams() -> None:
    """CONFORMANCE 14 + 52 under a storm: the peer allows only 8 concurrent streams and 40
    callers make 1200 calls, so most calls wait in the client's MAX_CONCURRENT_STREAMS
    queue; they are cancelled before being sent, while queued, mid-stream or by a short
    deadline (a share completes). The client never exceeds the limit (h2 on the peer side
    would report a protocol error), a call cancelled while queued never sends HEADERS,
    and afterwards no stream is open or queued on either side, on the one connection."""
    calls = max(200, CALLS * 2 // 5)
    rng = random.Random(SEED + 1)

    outcomes: collections.Counter[str] = collections.Counter()
    bad: list[str] = []
    async with (
        H2Peer(_paced, settings={"MAX_CONCURRENT_STREAMS": PEER_MCS}) as peer,
        grpc_lite.insecure_channel(peer.target) as ch,
    ):
        assert await ch.unary_unary(PEER_UNARY)(b"warm", timeout=5) == b"warm"
        transport = _connection(ch)
        conn = transport.conn
        assert conn.peer_max_concurrent_streams == PEER_MCS
        most_pending = 0
        sem = asyncio.Semaphore(40)

        async def one(r: random.Random) -> None:
            nonlocal most_pending
            mode = r.choice(("before_send", "queued", "mid_stream", "deadline", "complete"))
            streaming = r.random() < 0.5
            timeout = r.uniform(0.001, 0.02) if mode == "deadline" else 10.0
            if streaming:
                call: Any = ch.unary_stream(PEER_STREAM)(b"s", timeout=timeout)
            else:
                call = ch.unary_unary(PEER_UNARY)(b"u", timeout=timeout)
            most_pending = max(most_pending, conn.pending_streams)
            try:
                if mode == "before_send":
                    call.cancel()
                elif mode == "queued":
                    await asyncio.sleep(r.uniform(0, 0.003))
                    call.cancel()
                elif mode == "mid_stream" and streaming:
                    await call.read()
                    call.cancel()
                if streaming:
                    got = [m async for m in call]
                    assert len(got) == 5
                else:
                    assert await call == b"u"
                outcome = "OK"
            except asyncio.CancelledError:
                if not call.cancelled():
                    raise
                outcome = "CancelledError"
            except grpc_lite.RpcError as exc:
                outcome = exc.code().name
                if outcome not in ALLOWED:
                    bad.append(f"{mode}: {outcome}: {exc.details()}")
            if mode == "complete" and outcome != "OK":
                bad.append(f"complete ended {outcome}")
            outcomes[outcome] += 1

        async def guarded(seed: int) -> None:
            async with sem:
                await one(random.Random(seed))

        await asyncio.gather(*(guarded(rng.getrandbits(32)) for _ in range(calls)))
        print(
            f"\nqueued-stream storm: {calls} calls, peer MAX_CONCURRENT_STREAMS {PEER_MCS}; "
            f"outcomes {dict(outcomes)}; {len(peer.streams) - 1} streams reached the peer; "
            f"at most {most_pending} queued"
        )
        assert not bad, bad[:20]
        assert most_pending > 0, "no call ever waited in the stream queue"
        assert len(peer.streams) - 1 < calls, "calls cancelled while queued were sent anyway"
        assert await wait_until(lambda: conn.active_streams == 0 and conn.pending_streams == 0)
        assert (conn.active_streams, conn.pending_streams) == (0, 0)
        assert await wait_until(lambda: peer.connection.h2.open_inbound_streams == 0)
        assert all(s.done for s in peer.streams)
        assert not peer.errors, peer.errors[:5]
        assert peer.connection_count == 1 and _connection(ch) is transport
        assert conn._recv_window + conn._recv_credit == conn._local_connection_window
        # The queue still works: more calls than the limit, all at once, all succeed.
        results = await asyncio.gather(
            *(ch.unary_unary(PEER_UNARY)(bytes([i]), timeout=5) for i in range(3 * PEER_MCS))
        )
        assert results == [bytes([i]) for i in range(3 * PEER_MCS)]
    assert await wait_until(lambda: not any(is_client_task(t) for t in other_tasks()))

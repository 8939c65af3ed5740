"""The subchannel, sans-IO (grpc_lite/_subchannel.py): its moves through the state table,
connection backoff (grpc/grpc doc/connection-backoff.md) and GOAWAY / close / shutdown, with
a fake dialer on an event loop whose time is virtual (it jumps to the next timer), so every
backoff is checked to the nanosecond without sleeping."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from grpc_lite import _subchannel
from grpc_lite._backoff import BackoffConfig
from grpc_lite._connectivity import ConnectivityState
from grpc_lite._subchannel import Subchannel
from grpc_lite._transport import TransportError
from grpc_lite.resolver import Address
from tests.load._virtual import run_virtual

S = ConnectivityState
# connection-backoff.md's shape without jitter: 1 s, then x1.6, a 20 s attempt at least.
BACKOFF = BackoffConfig(initial=1.0, multiplier=1.6, jitter=0.0, max=5.0, min_connect_timeout=20)


class FakeTransport:
    """What a subchannel uses of a transport: close, graceful close, and its callbacks."""

    def __init__(self, address: str, on_goaway: Callable[..., None], on_close: Callable[..., None]):
        self.address = address
        self.on_goaway = on_goaway
        self.on_close = on_close
        self.lost = False
        self.disconnect_error: str | None = None
        self.closed: list[str] = []

    def close(self, reason: str) -> None:
        self.closed.append(reason)

    def graceful_close(self, reason: str) -> None:
        self.closed.append(f"graceful: {reason}")

    def goaway(self) -> None:
        """The server sent GOAWAY."""
        self.disconnect_error = "GOAWAY NO_ERROR"
        self.on_goaway(self)

    def lose(self, reason: str = "connection reset") -> None:
        """The connection went away."""
        self.lost = True
        self.disconnect_error = reason
        self.on_close(self, reason)


class FakeDialer:
    """Stands in for ``grpc_lite._transport.dial``: each address answers from a script
    (``"ok"``, or an error message), after ``latency`` seconds; every dial is recorded with
    the loop time it started and the timeout it was given; a dial cancelled during its
    latency is recorded in ``cancelled`` and sets ``ended``, as a dial that completes does."""

    def __init__(self, script: dict[str, list[str]], latency: float = 0.0) -> None:
        self.script = script
        self.latency = latency
        self.dials: list[tuple[str, float, float]] = []
        self.transports: list[FakeTransport] = []
        self.cancelled: list[str] = []
        self.started = asyncio.Event()
        self.ended = asyncio.Event()

    async def __call__(self, address: str, **kwargs: Any) -> FakeTransport:
        loop = asyncio.get_running_loop()
        self.dials.append((address, loop.time(), kwargs["connect_timeout"]))
        self.started.set()
        try:
            if self.latency:
                await asyncio.sleep(self.latency)  # virtual time (run_virtual)
        except asyncio.CancelledError:
            self.cancelled.append(address)
            raise
        finally:
            self.ended.set()
        outcomes = self.script[address]
        outcome = outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]
        if outcome != "ok":
            raise TransportError(f"{address}: {outcome}")
        transport = FakeTransport(address, kwargs["on_goaway"], kwargs["on_close"])
        self.transports.append(transport)
        return transport


class Recorder:
    """``on_state_change``: every state the balancer is told, with the loop time."""

    def __init__(self) -> None:
        self.states: list[tuple[ConnectivityState, float, str | None]] = []
        self._waiters: list[asyncio.Future[None]] = []

    def __call__(self, sc: Subchannel, state: ConnectivityState, error: str | None) -> None:
        self.states.append((state, asyncio.get_running_loop().time(), error))
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def until(self, predicate: Callable[[], bool], limit: float = 600.0) -> None:
        """Until ``predicate()`` holds after a state change (at most ``limit`` seconds)."""
        async with asyncio.timeout(limit):
            while not predicate():
                fut = asyncio.get_running_loop().create_future()
                self._waiters.append(fut)
                await fut

    def names(self) -> list[str]:
        return [s.name for s, _, _ in self.states]


def run(
    monkeypatch: pytest.MonkeyPatch,
    dialer: FakeDialer,
    body: Callable[[Subchannel, Recorder], Coroutine[Any, Any, None]],
    *addresses: str,
    **kwargs: Any,
) -> None:
    monkeypatch.setattr(_subchannel, "dial", dialer)

    async def main(loop: asyncio.AbstractEventLoop) -> None:
        recorder = Recorder()
        sc = Subchannel(
            tuple(Address(a) for a in addresses),
            backoff=BACKOFF,
            ssl_context=None,
            server_hostname=None,
            on_state_change=recorder,
            **kwargs,
        )
        await body(sc, recorder)
        sc.shutdown()

    run_virtual(main)


def test_connect_goes_idle_connecting_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    dialer = FakeDialer({"a:1": ["ok"]})

    async def body(sc: Subchannel, rec: Recorder) -> None:
        assert sc.state is S.IDLE and not dialer.dials  # nothing before connect()
        sc.connect()
        assert sc.state is S.CONNECTING  # reported at once, synchronously
        await rec.until(lambda: sc.state is S.READY)
        assert rec.names() == ["CONNECTING", "READY"]
        assert sc.connected_address == "a:1" and sc.transport is dialer.transports[0]
        assert sc.consecutive_failures == 0 and sc.current_backoff is None
        sc.connect()  # a no-op unless IDLE
        assert len(dialer.dials) == 1

    run(monkeypatch, dialer, body, "a:1")


def test_addresses_are_tried_in_order_within_one_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    dialer = FakeDialer({"a:1": ["refused"], "b:2": ["ok"]})

    async def body(sc: Subchannel, rec: Recorder) -> None:
        sc.connect()
        await rec.until(lambda: sc.state is S.READY)
        assert [a for a, _, _ in dialer.dials] == ["a:1", "b:2"]
        assert sc.connected_address == "b:2" and sc.connect_attempts == 2
        assert rec.names() == ["CONNECTING", "READY"]  # one attempt: no failure shown

    run(monkeypatch, dialer, body, "a:1", "b:2")


def test_a_failed_attempt_waits_out_its_backoff_then_goes_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """connection-backoff.md: the delay runs from the start of one attempt to the start of
    the next; after TRANSIENT_FAILURE the subchannel goes IDLE when it is over (A61: the
    balancer decides when to connect again), and the delays grow x1.6 up to the max."""
    dialer = FakeDialer({"a:1": ["refused"], "b:2": ["refused"]}, latency=0.25)

    async def body(sc: Subchannel, rec: Recorder) -> None:
        loop = asyncio.get_running_loop()
        starts = []
        for _ in range(5):
            starts.append(loop.time())
            sc.connect()
            await rec.until(lambda: sc.state is S.IDLE)
        (tf, failed_at, error), (idle, idle_at, _) = rec.states[1:3]
        assert (tf, idle) == (S.TRANSIENT_FAILURE, S.IDLE)
        assert error == "a:1: refused; b:2: refused"
        assert failed_at == pytest.approx(starts[0] + 0.5)  # both dials, 0.25 s each
        assert idle_at == pytest.approx(starts[0] + 1.0)  # the initial backoff
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert gaps == pytest.approx([1.0, 1.6, 2.56, 4.096])
        assert sc.consecutive_failures == 5
        assert rec.names() == ["CONNECTING", "TRANSIENT_FAILURE", "IDLE"] * 5

    run(monkeypatch, dialer, body, "a:1", "b:2")


def test_one_attempt_may_take_the_min_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """max(backoff, MIN_CONNECT_TIMEOUT) for the whole pass over the addresses."""
    dialer = FakeDialer({"a:1": ["refused"], "b:2": ["refused"]}, latency=3.0)

    async def body(sc: Subchannel, rec: Recorder) -> None:
        sc.connect()
        await rec.until(lambda: sc.state is S.TRANSIENT_FAILURE)
        assert [timeout for _, _, timeout in dialer.dials] == pytest.approx([20.0, 17.0])
        await rec.until(lambda: sc.state is S.IDLE)
        # The attempt lasted longer than the backoff: IDLE at once.
        assert rec.states[-1][1] == pytest.approx(rec.states[-2][1])

    run(monkeypatch, dialer, body, "a:1", "b:2")


def test_backoff_resets_only_once_a_connection_is_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    dialer = FakeDialer({"a:1": ["refused", "refused", "ok", "refused"]})

    async def body(sc: Subchannel, rec: Recorder) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(2):
            sc.connect()
            await rec.until(lambda: sc.state is S.IDLE)
        sc.connect()
        await rec.until(lambda: sc.state is S.READY)
        dialer.transports[0].lose()
        assert sc.state is S.IDLE and sc.transport is None
        start = loop.time()
        sc.connect()
        await rec.until(lambda: sc.state is S.IDLE)
        assert loop.time() - start == pytest.approx(1.0)  # the initial backoff again
        assert sc.consecutive_failures == 1

    run(monkeypatch, dialer, body, "a:1")


def test_goaway_leaves_ready_for_idle_and_the_old_transport_drains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dialer = FakeDialer({"a:1": ["ok"]})
    events: list[tuple[str, str]] = []

    async def body(sc: Subchannel, rec: Recorder) -> None:
        sc.connect()
        await rec.until(lambda: sc.state is S.READY)
        old = dialer.transports[0]
        old.goaway()
        assert sc.state is S.IDLE and sc.transport is None
        assert sc.transports == [old]  # in-flight streams finish on it
        sc.connect()
        await rec.until(lambda: sc.state is S.READY)
        new = dialer.transports[1]
        assert set(sc.transports) == {old, new}
        old.lose("drained")
        assert sc.transports == [new] and sc.state is S.READY  # the old one no longer counts
        assert ("subchannel a:1", "READY -> IDLE") in events

    run(monkeypatch, dialer, body, "a:1", on_event=lambda s, d: events.append((s, d)))


def test_shutdown_from_ready_closes_gracefully_and_is_final(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dialer = FakeDialer({"a:1": ["ok"]})

    async def body(sc: Subchannel, rec: Recorder) -> None:
        sc.connect()
        await rec.until(lambda: sc.state is S.READY)
        sc.shutdown()
        assert sc.state is S.SHUTDOWN
        assert dialer.transports[0].closed == ["graceful: subchannel shut down"]
        sc.connect()
        sc.shutdown()
        assert rec.names() == ["CONNECTING", "READY", "SHUTDOWN"]
        assert len(dialer.dials) == 1

    run(monkeypatch, dialer, body, "a:1")


def test_shutdown_while_connecting_drops_the_new_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dialer = FakeDialer({"a:1": ["ok"]}, latency=1.0)

    async def body(sc: Subchannel, rec: Recorder) -> None:
        sc.connect()
        await dialer.started.wait()  # the dial is under way, its latency not over
        sc.shutdown()
        await dialer.ended.wait()
        assert dialer.cancelled == ["a:1"]  # the dial was cancelled with the attempt
        assert rec.names() == ["CONNECTING", "SHUTDOWN"]
        assert dialer.transports == []

    run(monkeypatch, dialer, body, "a:1")


def test_a_refused_address_is_not_dialled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local credentials refuse non-local peers before any dial (check_address)."""
    dialer = FakeDialer({"b:2": ["ok"]})

    async def body(sc: Subchannel, rec: Recorder) -> None:
        sc.connect()
        await rec.until(lambda: sc.state is S.READY)
        assert [a for a, _, _ in dialer.dials] == ["b:2"]

    run(
        monkeypatch,
        dialer,
        body,
        "a:1",
        "b:2",
        check_address=lambda addr: "not local" if addr == "a:1" else None,
    )


def test_every_move_follows_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one writer refuses a move the table does not have."""
    dialer = FakeDialer({"a:1": ["ok"]})

    async def body(sc: Subchannel, rec: Recorder) -> None:
        with pytest.raises(AssertionError, match="invalid transition IDLE -> READY"):
            sc._transition(S.READY)
        assert sc.connectivity is S.IDLE and rec.states == []

    run(monkeypatch, dialer, body, "a:1")

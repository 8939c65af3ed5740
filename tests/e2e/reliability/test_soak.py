"""Fault soak (issue 7, "Soak and fault tests"; CONFORMANCE 41, 95, 102, 121-122, 136-138,
161-164; A6, A17).

Three ``grpc_lite.testing.Backend`` s on 127.0.0.1, .2 and .3 (one port) serve one
round_robin channel with the seed's retry policy (MaxAttempts 3 on UNAVAILABLE, 0.05 s
backoff) and client-side health checking. 50 concurrent callers make a fixed number of
unary SayHello calls (2 s deadline each) while a fault loop (seeded RNG) restarts backends
gracefully (``stop(grace)`` then ``start()``) and hard (``abort_connections()`` +
``stop()`` then ``start()``), flips their health NOT_SERVING and back, injects short
delays and drains them (GOAWAY). At most two backends are in a fault at a time, and a
fault only starts while another backend is READY and SERVING as the channel sees it, so
at least one healthy backend is always there.

Asserted:

- every call succeeds or fails with an allowed status, within its deadline (measured
  duration <= deadline + 0.1 s); there is no failure of a retryable kind (UNAVAILABLE);
- after ``close()``: no task, file descriptor or client socket is left (counted before
  and after: ``asyncio.all_tasks()``, ``/proc/self/fd``, ESTABLISHED sockets in
  ``/proc/net/tcp``), and the servers have no connection left either;
- a second identical round (same seed) does not grow memory: tracemalloc runs during both
  rounds, and what is still allocated after round 2 (after close() and gc) is compared
  with what was allocated after round 1 (log records are counted, not kept, meanwhile:
  pytest's log capture would otherwise hold them).

The test prints one summary line per round and a total (calls, failures by status, faults
injected, retries, resources before/after close, memory) so the figures can be quoted.

CI runs the short form: ``GRPC_LITE_SOAK_CALLS`` (default 1500 calls per round, about
7 s a round, 15 s in all). Run it longer locally, e.g.::

    GRPC_LITE_SOAK_CALLS=20000 GRPC_LITE_SOAK_SEED=11 \\
        python -m pytest tests/e2e/reliability/test_soak.py -m soak -s

(about 90 s per round on a 2-core machine; the pytest timeout grows with the number of
calls). ``GRPC_LITE_SOAK_SEED`` picks another fault sequence; ``GRPC_LITE_SOAK_TOP=N``
prints the N largest memory differences between the rounds.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import itertools
import logging
import os
import random
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import grpc_lite
from grpc_lite.testing import Backend, helloworld_pb2
from tests.e2e.reliability._util import (
    established_from,
    established_to,
    fd_count,
    other_tasks,
    task_names,
    wait_until,
)

CALLS = int(os.environ.get("GRPC_LITE_SOAK_CALLS", "1500"))
SEED = int(os.environ.get("GRPC_LITE_SOAK_SEED", "7"))
CALLERS = 50
DEADLINE = 2.0
SLACK = 0.1
# Each caller waits uniform(0, PACE) between its calls: about 330 calls/s in all, so the
# fault loop has time to act during a round.
PACE = 0.3
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
# Memory left allocated by the second round (tracemalloc, after gc) may not exceed this.
MEMORY_TOLERANCE = 256 * 1024

pytestmark = [
    pytest.mark.soak,
    pytest.mark.integration,
    pytest.mark.timeout(90 + int(CALLS * 0.02)),
]

GREETER = helloworld_pb2.DESCRIPTOR.services_by_name["Greeter"]

# The seed article's config in grpc-go's CapitalCase spelling, with retries on
# UNAVAILABLE and client-side health checking of the whole server ("").
SERVICE_CONFIG = {
    "LoadBalancingConfig": [{"round_robin": {}}],
    "MethodConfig": [
        {
            "Name": [{"Service": "helloworld.Greeter"}],
            "RetryPolicy": {
                "MaxAttempts": 3,
                "InitialBackoff": "0.05s",
                "MaxBackoff": "0.05s",
                "BackoffMultiplier": 1.0,
                "RetryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
    "HealthCheckConfig": {"ServiceName": ""},
}
# Reconnect quickly after a restart (the defaults, 1 s growing to 120 s, are for
# production; the soak wants many reconnections).
OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]

FAULTS = ("graceful_restart", "hard_restart", "health_flip", "delay", "drain")
# The fault loop stops injecting after this many faults in a round (it also stops when the
# callers are done); each fault lasts at most about a second.
MAX_FAULTS = max(10, CALLS // 10)
# Statuses a call may end with besides OK. Only a deadline could legitimately cut a call
# here (the backends are loopback and at least one is always healthy); a retryable
# failure (UNAVAILABLE) is not allowed.
ALLOWED_FAILURES = {"DEADLINE_EXCEEDED"}


@dataclass
class RoundResult:
    calls: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    late: list[tuple[float, str]] = field(default_factory=list)
    slowest: float = 0.0
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    retries: int = 0
    attempts: int = 0
    max_recovery: float = 0.0
    seconds: float = 0.0


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend]]:
    """Three backends on the same port, 127.0.0.1/.2/.3; every one stopped at teardown."""
    started: list[Backend] = []
    try:
        first = await Backend(HOSTS[0], 0).start()
        started.append(first)
        for host in HOSTS[1:]:
            started.append(await Backend(host, first.port).start())
        yield started
    finally:
        for b in started:
            b.delay = 0.0
            await b.stop()


class _LogCounter(logging.Handler):
    """Counts the ``grpc_lite`` log records by level and keeps none of them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.levels: collections.Counter[str] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.levels[record.levelname] += 1


@pytest.fixture
def log_counter() -> Any:
    """The grpc_lite logger goes to a counting handler only during the soak: pytest's own
    log capture keeps every record (with the strings it refers to), which would show up
    as memory growth that is the test harness's, not the client's."""
    logger = logging.getLogger("grpc_lite")
    handler = _LogCounter()
    propagate = logger.propagate
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _ready_addresses(ch: grpc_lite.Channel) -> set[str]:
    return {
        sc.address
        for sc in ch.snapshot().subchannels
        if sc.state is grpc_lite.ChannelConnectivity.READY
    }


async def _fault(kind: str, backend: Backend, rng: random.Random) -> None:
    if kind == "graceful_restart":
        await backend.stop(grace=rng.uniform(0.2, 0.5))
        await asyncio.sleep(rng.uniform(0.05, 0.3))
        await backend.start()
    elif kind == "hard_restart":
        backend.abort_connections()
        await backend.stop()
        await asyncio.sleep(rng.uniform(0.05, 0.3))
        await backend.start()
    elif kind == "health_flip":
        backend.set_health("", "NOT_SERVING")
        await asyncio.sleep(rng.uniform(0.1, 0.4))
        backend.set_health("", "SERVING")
    elif kind == "delay":
        backend.delay = rng.uniform(0.02, 0.15)
        await asyncio.sleep(rng.uniform(0.1, 0.4))
        backend.delay = 0.0
    elif kind == "drain":
        await backend.drain(grace=rng.uniform(0.2, 0.5))
    else:  # pragma: no cover
        raise AssertionError(kind)


async def run_round(backends: list[Backend], result: RoundResult) -> None:
    """One round: a fresh channel, CALLS calls from CALLERS callers under the fault loop,
    then close(). Every fault is undone before it returns."""
    loop = asyncio.get_running_loop()
    port = backends[0].port
    target = "ipv4:" + ",".join(f"{h}:{port}" for h in HOSTS)
    addresses = {f"{h}:{port}" for h in HOSTS}
    attempts_before = sum(b.calls["/helloworld.Greeter/SayHello"] for b in backends)
    ch = grpc_lite.insecure_channel(target, OPTIONS, service_config=SERVICE_CONFIG)

    def on_event(event: Any) -> None:
        if event.subject == "retry":
            result.retries += 1

    remove = ch.add_trace_listener(on_event)
    started = loop.time()
    try:
        ch.get_state(try_to_connect=True)
        assert await wait_until(lambda: _ready_addresses(ch) == addresses, 5.0), (
            f"not all backends READY: {_ready_addresses(ch)}"
        )
        say = grpc_lite.Stub(ch, GREETER).SayHello
        counter = itertools.count()
        done = asyncio.Event()
        replies = {f"Hello soak from {a}" for a in addresses}

        async def caller(index: int) -> None:
            rng = random.Random(SEED * 1000 + index)
            while next(counter) < CALLS:
                await asyncio.sleep(rng.uniform(0, PACE))
                t0 = loop.time()
                try:
                    reply = await say(helloworld_pb2.HelloRequest(name="soak"), timeout=DEADLINE)
                    outcome = "OK" if reply.message in replies else "wrong-reply"
                    details = reply.message
                except grpc_lite.RpcError as exc:
                    outcome, details = exc.code().name, exc.details() or ""
                elapsed = loop.time() - t0
                result.calls += 1
                result.outcomes[outcome] += 1
                result.slowest = max(result.slowest, elapsed)
                if outcome != "OK":
                    result.failures.append(f"{outcome} after {elapsed:.3f}s: {details}")
                if elapsed > DEADLINE + SLACK:
                    result.late.append((elapsed, outcome))

        async def fault_loop() -> None:
            rng = random.Random(SEED)
            busy: set[int] = set()
            tasks: set[asyncio.Task[None]] = set()

            async def run(i: int, kind: str, frng: random.Random) -> None:
                backend = backends[i]
                try:
                    await _fault(kind, backend, frng)
                    t0 = loop.time()
                    # Busy until the channel sees it READY and SERVING again.
                    await wait_until(lambda: backend.address in _ready_addresses(ch), 10.0)
                    result.max_recovery = max(result.max_recovery, loop.time() - t0)
                finally:
                    busy.discard(i)

            while not done.is_set() and sum(result.faults.values()) < MAX_FAULTS:
                await asyncio.sleep(rng.uniform(0.05, 0.2))
                kind, pick, frng = rng.choice(FAULTS), rng.random(), random.Random(rng.random())
                if len(busy) >= 2:
                    continue
                ready = _ready_addresses(ch)
                candidates = [
                    i
                    for i in range(3)
                    if i not in busy
                    and any(
                        j != i and j not in busy and backends[j].address in ready for j in range(3)
                    )
                ]
                if not candidates:
                    continue
                i = candidates[int(pick * len(candidates))]
                busy.add(i)
                result.faults[kind] += 1
                task = loop.create_task(run(i, kind, frng))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)

        faults = loop.create_task(fault_loop())
        try:
            await asyncio.gather(*(caller(i) for i in range(CALLERS)))
        finally:
            done.set()
            await faults
    finally:
        remove()
        await ch.close()
        for b in backends:  # every fault undone (a fault interrupted by an error, too)
            b.delay = 0.0
            b.set_health("", "SERVING")
            if not b.serving:
                await b.start()
    result.seconds = loop.time() - started
    result.attempts = sum(b.calls["/helloworld.Greeter/SayHello"] for b in backends)
    result.attempts -= attempts_before


@dataclass
class Resources:
    tasks: int
    fds: int
    client_sockets: int
    server_sockets: int

    def __str__(self) -> str:
        return (
            f"tasks={self.tasks} fds={self.fds} client_sockets={self.client_sockets} "
            f"server_sockets={self.server_sockets}"
        )


def _resources(port: int) -> Resources:
    return Resources(
        tasks=len(other_tasks()),
        fds=fd_count(),
        client_sockets=established_to(port, HOSTS),
        server_sockets=established_from(port),
    )


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


async def _settled(port: int, before: Resources, tasks_before: set[Any]) -> Resources:
    """Resources once the sockets closed and the server-side tasks ended (bounded wait)."""
    await wait_until(
        lambda: (
            established_to(port, HOSTS) == 0
            and established_from(port) == 0
            and fd_count() <= before.fds
            and not (other_tasks() - tasks_before)
        ),
        3.0,
    )
    return _resources(port)


def _summary(n: int, r: RoundResult, before: Resources, after: Resources, extra: str) -> str:
    failures = {k: v for k, v in r.outcomes.items() if k != "OK"}
    return (
        f"soak round {n}: {r.calls} calls in {r.seconds:.1f}s (seed {SEED}, {CALLERS} callers, "
        f"deadline {DEADLINE}s): OK {r.outcomes['OK']}, failures by status {failures or '{}'}; "
        f"slowest call {r.slowest:.3f}s; faults {sum(r.faults.values())} "
        f"{dict(sorted(r.faults.items()))}; attempts seen by servers {r.attempts}, "
        f"retries {r.retries}; max recovery {r.max_recovery:.2f}s; "
        f"resources before [{before}] after close [{after}]{extra}"
    )


def _memory_filters() -> list[tracemalloc.Filter]:
    """Leave out tracemalloc's own data, import machinery, and log records (pytest keeps
    every record of the test's log capture; the channel logs WARNINGs on failed reconnects)."""
    return [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
        tracemalloc.Filter(False, "<unknown>"),
        tracemalloc.Filter(False, logging.__file__, all_frames=True),
        tracemalloc.Filter(False, "*/_pytest/logging.py", all_frames=True),
    ]


def _top_growth(diff: list[tracemalloc.StatisticDiff], n: int) -> str:
    lines = []
    for d in diff[:n]:
        where = " <- ".join(
            f"{os.path.basename(fr.filename)}:{fr.lineno}" for fr in reversed(d.traceback)
        )
        lines.append(f"  {d.size_diff / 1024:+.1f} KiB ({d.count_diff:+d} blocks) at {where}")
    return "\n".join(lines)


async def test_fault_soak(backends: list[Backend], log_counter: _LogCounter) -> None:
    """See the module docstring. Two identical rounds (same seed), both under tracemalloc;
    memory still allocated after round 2 is compared with what was allocated after round 1
    (each after close() and gc)."""
    port = backends[0].port
    gc.collect()
    tasks_before = other_tasks()
    before = _resources(port)
    assert before.client_sockets == 0
    rss0 = _rss_kib()
    tracemalloc.start(8)
    try:
        r1 = RoundResult()
        await run_round(backends, r1)
        after1 = await _settled(port, before, tasks_before)
        gc.collect()
        snap1 = tracemalloc.take_snapshot()
        rss1 = _rss_kib()
        logs = f"; grpc_lite log records {dict(log_counter.levels)}"
        print("\n" + _summary(1, r1, before, after1, f"{logs}; RSS {rss0} -> {rss1} KiB"))
        log_counter.levels.clear()

        r2 = RoundResult()
        await run_round(backends, r2)
        after2 = await _settled(port, before, tasks_before)
        gc.collect()
        snap2 = tracemalloc.take_snapshot()
        rss2 = _rss_kib()
    finally:
        tracemalloc.stop()
    filters = _memory_filters()
    diff = snap2.filter_traces(filters).compare_to(snap1.filter_traces(filters), "traceback")
    growth = sum(d.size_diff for d in diff)
    memory = (
        f"; grpc_lite log records {dict(log_counter.levels)}; memory after round 2 vs "
        f"after round 1: {growth / 1024:+.1f} KiB traced "
        f"(tolerance {MEMORY_TOLERANCE // 1024} KiB), RSS {rss1} -> {rss2} KiB"
    )
    print(_summary(2, r2, before, after2, memory))
    failures = r1.outcomes + r2.outcomes
    del failures["OK"]
    print(
        f"soak total: {r1.calls + r2.calls} calls, failures by status {dict(failures)}, "
        f"faults injected {sum((r1.faults + r2.faults).values())}, "
        f"resources before [{before}] after [{after2}], "
        f"memory round 2 vs round 1 {growth / 1024:+.1f} KiB"
    )
    if os.environ.get("GRPC_LITE_SOAK_TOP"):
        print(_top_growth(diff, int(os.environ["GRPC_LITE_SOAK_TOP"])))

    for n, r, after in ((1, r1, after1), (2, r2, after2)):
        assert r.calls == CALLS, (n, r.calls)
        assert r.outcomes["UNAVAILABLE"] == 0, (n, r.failures[:10])
        assert set(r.outcomes) - {"OK"} <= ALLOWED_FAILURES, (n, r.failures[:10])
        assert not r.late, (n, sorted(r.late)[-5:])
        assert sum(r.faults.values()) >= 3, (n, "the fault loop hardly ran", r.faults)
        # Nothing left after close().
        assert after.client_sockets == 0, (n, after)
        assert after.server_sockets == 0, (n, after)
        assert after.fds == before.fds, (n, before, after)
        assert after.tasks <= before.tasks, (n, before, after)
    leaked = other_tasks() - tasks_before
    assert not leaked, task_names(leaked)
    assert growth <= MEMORY_TOLERANCE, (
        f"memory grew by {growth / 1024:.1f} KiB in round 2:\n{_top_growth(diff, 10)}"
    )

"""The load schedules and the engine's dispatch, on virtual time (no real sleeping).

The engine runs against fake methods (coroutines that take a chosen service time) on a
loop whose clock jumps to the next timer, so each test is exact and instant.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import pytest

from grpc_lite._load._describe import MethodInfo, _file_set
from grpc_lite._load._engine import Engine, ShardResult
from grpc_lite._load._histogram import value_of
from grpc_lite._load._schedule import ConcurrencySchedule, RateSchedule
from grpc_lite._load._spec import RunSpec, ScheduleSpec
from grpc_lite._proto import helloworld_pb2
from tests.load._virtual import VirtualTimeLoop

MS = 1_000_000
SAY_HELLO = helloworld_pb2.DESCRIPTOR.services_by_name["Greeter"].methods_by_name["SayHello"]
METHOD = MethodInfo("helloworld.Greeter", "SayHello", _file_set(SAY_HELLO))


# ---------------------------------------------------------------------------- schedules


def test_const_rate_due_times() -> None:
    s = RateSchedule.build("const", rps=200)
    assert [s.time_of(i) for i in range(4)] == [0.0, 0.005, 0.01, 0.015]
    assert s.count_at(1.0) == pytest.approx(200)


def test_step_rate_is_ghz_step_pacer() -> None:
    """100/s, +100 every second, up to 300/s, then 300/s for ever."""
    s = RateSchedule.build("step", start=100, step=100, end=300, step_duration=1.0)
    assert [s.rate_at(t) for t in (0.5, 1.5, 2.5, 10)] == [100, 200, 300, 300]
    assert s.count_at(1.0) == pytest.approx(100)
    assert s.count_at(2.0) == pytest.approx(300)
    assert s.count_at(3.0) == pytest.approx(600)
    # time_of inverts count_at, in every segment, also when asked out of order.
    for i in (0, 1, 99, 100, 101, 299, 300, 599, 1000, 5):
        assert s.count_at(s.time_of(i)) == pytest.approx(i)
    assert s.time_of(100) == pytest.approx(1.0)
    assert s.time_of(300) == pytest.approx(2.0)


def test_line_rate_and_max_duration() -> None:
    """line: the step is the slope per second; max-duration freezes the rate there."""
    s = RateSchedule.build("line", start=10, step=5, max_duration=3.0)
    assert [s.rate_at(t) for t in (0, 1, 2, 3, 60)] == [10, 15, 20, 25, 25]
    down = RateSchedule.build("step", start=20, step=-10, step_duration=1.0, max_duration=5)
    assert down.count_at(5.0) == pytest.approx(30)
    assert down.time_of(29) == pytest.approx(1.9)
    assert math.isinf(down.time_of(30))  # the rate fell to zero: nothing more is due


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "step", "start": 10, "step": 0, "end": 20, "step_duration": 1}, "non-zero"),
        ({"kind": "step", "start": 10, "step": 1, "end": 20}, "step duration"),
        ({"kind": "line", "start": 10, "step": 1}, "end value or a max duration"),
        ({"kind": "step", "start": 10, "step": 1, "end": 5, "step_duration": 1}, "never reaches"),
        ({"kind": "step", "start": 0, "step": 1, "end": 5, "step_duration": 1}, "load-start"),
        ({"kind": "wave", "start": 10, "step": 1, "end": 5}, "unknown"),
    ],
)
def test_bad_schedules_are_refused(kwargs: dict[str, Any], message: str) -> None:
    kind = kwargs.pop("kind")
    with pytest.raises(ValueError, match=message):
        RateSchedule.build(kind, **kwargs)


def test_concurrency_schedule_changes() -> None:
    c = ConcurrencySchedule.build("step", start=2, step=2, end=6, step_duration=5.0)
    assert c.changes() == [(0.0, 2), (5.0, 4), (10.0, 6)]
    assert c.maximum() == 6
    assert [c.share(5, k, 3) for k in range(3)] == [2, 2, 1]
    assert ConcurrencySchedule.build("line", start=1, step=1, max_duration=2).changes() == [
        (0.0, 1),
        (1.0, 2),
        (2.0, 3),
    ]


# ---------------------------------------------------------------------------- the engine


def _run(
    spec: RunSpec,
    service: Callable[[float, bytes], float],
    *,
    shard: int = 0,
    shards: int = 1,
    seen: list[tuple[float, bytes]] | None = None,
) -> ShardResult:
    """Run one shard on virtual time; ``service(now, request)`` is each call's duration."""
    loop = VirtualTimeLoop()

    async def fake_call(request: bytes, **kwargs: Any) -> bytes:
        now = loop.time()
        if seen is not None:
            seen.append((now, request))
        await asyncio.sleep(service(now, request))
        return b""

    async def main() -> ShardResult:
        # No polling before sends: on virtual time only waiting moves the clock.
        engine = Engine(spec, shard, shards, clock=loop.clock_ns, spin_ns=0)
        engine._callables = [fake_call]
        return await engine.run()

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def _latencies_at_least(result: ShardResult, ns: int) -> int:
    return sum(c for i, c in result.counts.items() if value_of(i) >= ns * 0.999)


def test_open_model_counts_the_queue_behind_a_stall() -> None:
    """No coordinated omission: at 100/s with one worker, one 300 ms stall delays the 29
    requests due during it, and each is measured from its due time. A closed-loop tool
    would see one slow call; here 23 calls take 100 ms or more."""
    spec = RunSpec(
        "fake",
        METHOD,
        data='{"name": "x"}',
        total=None,
        duration=1.0,
        rate=ScheduleSpec("const", 100),
        concurrency=ScheduleSpec("const", 1),
    )
    stalled = [False]

    def service(now: float, request: bytes) -> float:
        if now >= 0.2 and not stalled[0]:
            stalled[0] = True
            return 0.3
        return 0.001

    r = _run(spec, service)
    assert r.count == 100
    assert r.slowest_ns == pytest.approx(300 * MS, rel=1e-6)
    assert _latencies_at_least(r, 100 * MS) == 23
    # The stalled call itself, then 0.501 - 0.21 = 291 ms for the next one due.
    assert _latencies_at_least(r, 290 * MS) == 2
    # The sends themselves were late by the stall (send lag), the rate still averages 100/s.
    assert r.lag_max_ns == pytest.approx(290 * MS, rel=1e-3)


def test_open_model_sends_on_the_clock() -> None:
    """With workers to spare each request leaves at its due time exactly."""
    seen: list[tuple[float, bytes]] = []
    spec = RunSpec(
        "fake",
        METHOD,
        total=None,
        duration=0.5,
        rate=ScheduleSpec("const", 40),
        concurrency=ScheduleSpec("const", 4),
    )
    r = _run(spec, lambda now, req: 0.07, seen=seen)
    assert r.count == 20
    assert [round(t, 6) for t, _ in seen] == [round(i / 40, 6) for i in range(20)]
    assert r.fastest_ns == pytest.approx(70 * MS) and r.slowest_ns == pytest.approx(70 * MS)


def test_closed_model_and_concurrency_steps() -> None:
    """Closed model: each worker calls back to back; the worker count steps 1, 2, 3."""
    spec = RunSpec(
        "fake",
        METHOD,
        total=None,
        duration=3.0,
        concurrency=ScheduleSpec("step", 0, start=1, step=1, end=3, step_duration=1.0),
    )
    r = _run(spec, lambda now, req: 0.01)
    assert r.workers_max == 3
    per_second = [iv.count for iv in r.intervals]
    assert per_second[:3] == [pytest.approx(n, abs=2) for n in (100, 200, 300)]
    assert r.count == pytest.approx(600, abs=4)


def test_step_load_schedule_per_second() -> None:
    spec = RunSpec(
        "fake",
        METHOD,
        total=None,
        duration=4.0,
        rate=ScheduleSpec("step", 0, start=100, step=100, end=300, step_duration=1.0),
        concurrency=ScheduleSpec("const", 10),
    )
    r = _run(spec, lambda now, req: 0.001)
    assert [iv.count for iv in r.intervals][:4] == [
        pytest.approx(n, abs=1) for n in (100, 200, 300, 300)
    ]
    assert r.count == 900


def test_shards_split_the_global_schedule_exactly() -> None:
    """Three shards at 300/s send request numbers k, k+3, ... each at the global due time:
    together exactly requests 0..299 at i/300 s."""
    spec = RunSpec(
        "fake",
        METHOD,
        data='{"name": "{{.RequestNumber}}"}',
        total=None,
        duration=1.0,
        rate=ScheduleSpec("const", 300),
        concurrency=ScheduleSpec("const", 6),
    )
    sent: dict[int, float] = {}
    for shard in range(3):
        seen: list[tuple[float, bytes]] = []
        r = _run(spec, lambda now, req: 0.002, shard=shard, shards=3, seen=seen)
        assert r.count == 100
        for t, request in seen:
            number = int(helloworld_pb2.HelloRequest.FromString(request).name)
            assert number % 3 == shard
            sent[number] = t
    assert sorted(sent) == list(range(300))
    assert all(sent[i] == pytest.approx(i / 300, abs=1e-9) for i in sent)


def test_total_and_skip_first() -> None:
    spec = RunSpec("fake", METHOD, total=50, skip_first=10, concurrency=ScheduleSpec("const", 3))
    r = _run(spec, lambda now, req: 0.005)
    assert r.count == 40 and r.ok == 40 and r.status == {"OK": 40}


@pytest.mark.parametrize(
    ("mode", "count", "cancelled"),
    [("wait", 9, 0), ("close", 9, 3), ("ignore", 6, 0)],
)
def test_duration_stop(mode: str, count: int, cancelled: int) -> None:
    """-z with calls in flight: wait for them, count them as Canceled (close), or drop
    them (ignore). Three workers, 400 ms calls, -z 1s: each worker's calls end at 0.4 s and
    0.8 s, and a third is in flight at 1 s until 1.2 s."""
    spec = RunSpec(
        "fake",
        METHOD,
        total=None,
        duration=1.0,
        duration_stop=mode,
        concurrency=ScheduleSpec("const", 3),
    )
    r = _run(spec, lambda now, req: 0.4)
    assert r.count == count
    assert r.status.get("Canceled", 0) == cancelled
    assert r.elapsed_s == pytest.approx(1.2 if mode == "wait" else 1.0, abs=1e-6)


def test_open_model_sends_everything_due_even_when_behind() -> None:
    """A sender that fell behind still sends every request due before -z ends (the rate
    is exact), and above 4,000/s sends are coalesced on a grid of at most 0.2 ms."""
    seen: list[tuple[float, bytes]] = []
    spec = RunSpec(
        "fake",
        METHOD,
        total=None,
        duration=0.5,
        rate=ScheduleSpec("const", 10_000),
        concurrency=ScheduleSpec("const", 2),
    )
    r = _run(spec, lambda now, req: 0.0003, seen=seen)  # 2 workers: at most ~6,700/s
    assert r.count == 5000
    assert r.lag_max_ns > 100 * MS  # it fell behind, and says so
    fast = RunSpec(
        "fake",
        METHOD,
        total=None,
        duration=0.1,
        rate=ScheduleSpec("const", 10_000),
        concurrency=ScheduleSpec("const", 50),
    )
    seen.clear()
    r = _run(fast, lambda now, req: 0.001, seen=seen)
    assert r.count == 1000
    sends = sorted({round(t * 1e6) for t, _ in seen})
    assert all(t % 200 == 0 for t in sends)  # on the 0.2 ms grid
    assert len(sends) == 501  # request 0 at once, then two per send (due 100 us apart)

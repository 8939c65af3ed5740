"""Helpers of the xDS acceptance tests (not collected: no ``test_`` prefix): a grpc_lite
``xds:///`` client on the rig, a background traffic loop that records every RPC, the
"moves within T" measure and the distribution checks of issue 17's acceptance list.

"Moves within T" (issue 17, C1): from the moment the test's change (a snapshot update, a
backend stopped) returns to the first block of ``BLOCK`` consecutive RPCs that are all on
the new target; the time reported is when the first RPC of that block completed.
Distribution checks: Pearson's chi-square with alpha = 1e-6 (as grpc-go's
``internal/testutils/roundrobin/roundrobin.go``), plus a plain +-3-point band.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc_lite
from grpc_lite._proto import testing_pb2
from tests.peers import xds

UNARY = "/grpc.testing.TestService/UnaryCall"
BLOCK = 50
ALPHA = 1e-6


def figure(name: str, value: object) -> None:
    """Print one measured figure (``pytest -s`` or ``-rA`` shows them)."""
    print(f"XDS-FIGURE {name}: {value}", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def summary(seconds: Sequence[float]) -> str:
    """``p50 X ms, max Y ms (n=N)``."""
    return (
        f"p50 {ms(statistics.median(seconds))}, max {ms(max(seconds))}, "
        f"min {ms(min(seconds))} (n={len(seconds)})"
    )


class Client:
    """A grpc_lite channel to an ``xds:///`` target with the rig's bootstrap in
    ``grpc_lite.xds_bootstrap_config`` (plus any other options)."""

    def __init__(
        self,
        target: str,
        bootstrap: str,
        *,
        resource_timeout: float | None = None,
        failover_timeout: float | None = None,
    ) -> None:
        options: list[tuple[str, Any]] = [("grpc_lite.xds_bootstrap_config", bootstrap)]
        if resource_timeout is not None:
            options.append(("grpc_lite.xds_resource_timeout_s", resource_timeout))
        if failover_timeout is not None:
            options.append(("grpc_lite.xds_failover_timeout_s", failover_timeout))
        self.created = time.monotonic()
        self.channel = grpc_lite.insecure_channel(target, options=options)
        #: Every trace event of the channel with the time.monotonic() it was delivered at.
        self.trace: list[tuple[float, str, str]] = []
        self.channel.add_trace_listener(
            lambda e: self.trace.append((time.monotonic(), e.subject, e.description))
        )
        self._call = self.channel.unary_unary(
            UNARY,
            request_serializer=testing_pb2.SimpleRequest.SerializeToString,
            response_deserializer=testing_pb2.SimpleResponse.FromString,
        )

    def event_time(self, subject: str, description: str, since: float = 0.0) -> float:
        """The time.monotonic() of the first trace event ``subject``/``description`` at or
        after ``since``."""
        for at, s, d in self.trace:
            if at >= since and s == subject and d == description:
                return at
        raise AssertionError(f"no trace event {subject}: {description} since {since}")

    async def rpc(self, *, deadline: float = 5.0, wait_for_ready: bool | None = None) -> str:
        """One UnaryCall; the ``server_id`` of the backend that answered."""
        response = await self._call(
            testing_pb2.SimpleRequest(), timeout=deadline, wait_for_ready=wait_for_ready
        )
        server_id: str = response.server_id
        return server_id

    async def rpcs(self, n: int, *, concurrency: int = 1, deadline: float = 5.0) -> list[str]:
        """``n`` RPCs, ``concurrency`` at a time; their server_ids (in completion order)."""
        out: list[str] = []
        remaining = iter(range(n))

        async def worker() -> None:
            for _ in remaining:
                out.append(await self.rpc(deadline=deadline))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return out

    async def close(self) -> None:
        await self.channel.close()


@dataclass
class Rpc:
    started: float  # time.monotonic()
    done: float
    server_id: str | None
    error: str | None  # "CODE: details" of a failed RPC


@dataclass
class Traffic:
    """RPCs one after another on ``client`` in a background task, every one recorded."""

    client: Client
    deadline: float = 5.0
    records: list[Rpc] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _stop: bool = False

    async def __aenter__(self) -> Traffic:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop = True
        assert self._task is not None
        await self._task

    async def _run(self) -> None:
        while not self._stop:
            started = time.monotonic()
            try:
                server_id = await self.client.rpc(deadline=self.deadline)
            except grpc_lite.AioRpcError as exc:
                self.records.append(
                    Rpc(started, time.monotonic(), None, f"{exc.code().name}: {exc.details()}")
                )
                await asyncio.sleep(0.001)  # a failing channel must not spin the loop
            else:
                self.records.append(Rpc(started, time.monotonic(), server_id, None))

    def failures(self, since: float = 0.0) -> list[Rpc]:
        return [r for r in self.records if r.error is not None and r.started >= since]

    def counts(self, since: float = 0.0) -> Counter[str | None]:
        return Counter(r.server_id for r in self.records if r.started >= since)

    async def until(self, what: str, condition: Callable[[], object], within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {within} s: {what}; last RPCs: {self.tail()}")
            await asyncio.sleep(0.01)

    async def settle(self, targets: Iterable[str], within: float = 10.0) -> None:
        """Wait for a block of BLOCK consecutive RPCs all on ``targets`` (each among them)."""
        wanted = set(targets)
        start = time.monotonic()
        await self.until(
            f"a block of {BLOCK} RPCs on {sorted(wanted)}",
            lambda: _first_block(self.records, start, wanted, cover=True) is not None,
            within,
        )

    async def moved(
        self, since: float, targets: Iterable[str], *, cover: bool = False, within: float = 10.0
    ) -> float:
        """Seconds from ``since`` to the first block of BLOCK consecutive RPCs started after
        it that are all on ``targets`` (and, with ``cover``, reach every one of them)."""
        wanted = set(targets)
        found: list[float] = []

        def check() -> bool:
            at = _first_block(self.records, since, wanted, cover=cover)
            if at is None:
                return False
            found.append(at)
            return True

        await self.until(f"traffic moves to {sorted(wanted)}", check, within)
        return found[0] - since

    def tail(self, n: int = 8) -> list[str]:
        return [r.server_id or str(r.error) for r in self.records[-n:]]


def _first_block(
    records: Sequence[Rpc], since: float, targets: set[str], *, cover: bool
) -> float | None:
    """The completion time of the first RPC of the first all-``targets`` block after ``since``."""
    run_start: int | None = None
    for i, r in enumerate(records):
        if r.started < since:
            continue
        if r.server_id in targets:
            if run_start is None:
                run_start = i
            block = records[run_start : i + 1]
            if len(block) >= BLOCK and (
                not cover or {x.server_id for x in block[-BLOCK:]} == targets
            ):
                return records[i + 1 - BLOCK].done
        else:
            run_start = None
    return None


def chi_square_two(observed: Mapping[str, int], expected_share: Mapping[str, float]) -> float:
    """Pearson's chi-square p-value for two buckets (1 degree of freedom: the survival
    function of chi-square(1) at x is erfc(sqrt(x / 2)))."""
    assert len(expected_share) == 2
    total = sum(observed.get(k, 0) for k in expected_share)
    statistic = sum(
        (observed.get(k, 0) - total * share) ** 2 / (total * share)
        for k, share in expected_share.items()
    )
    return math.erfc(math.sqrt(statistic / 2))


async def rig_call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A blocking rig control call off the event loop (traffic keeps flowing meanwhile)."""
    return await asyncio.to_thread(function, *args, **kwargs)


def two_listeners(names: Sequence[str], backends: Sequence[Sequence[str]]) -> dict[str, Any]:
    """One snapshot with a full LDS -> RDS -> CDS -> EDS chain per name."""
    merged: dict[str, Any] = {"listeners": [], "routes": [], "clusters": [], "endpoints": []}
    for name, group in zip(names, backends, strict=True):
        part = xds.simple_scenario(name, group)
        for key in merged:
            merged[key].extend(part[key])
    return merged

"""The frozen-backend scenario (issue 19; not collected: no ``test_`` prefix).

Three `_counting_backend` processes on 127.0.0.1, .2 and .3 (one port) behind one round_robin
channel with ``healthCheckConfig``, and 50 callers calling ``freeze.Counter/Call`` back to
back (a short pause between calls, a unique ``x-call-id`` each, a 1 s deadline) for
``RUN`` seconds, while one backend at a time is frozen with SIGSTOP and resumed with SIGCONT
(`FREEZES`). A frozen backend keeps its connection and its health stream open, so
round_robin keeps picking it: every attempt sent there waits until the call's deadline or the
attempt's own timeout.

Policies (gRFC A6): ``hedging`` (maxAttempts 3, hedgingDelay 200 ms) or ``retry``
(maxAttempts 3, perAttemptRecvTimeout 300 ms, backoff 10-50 ms, UNAVAILABLE retryable).
``avoid=False`` turns grpc_lite's previous-hosts preference off, with the channel option
``grpc_lite.avoid_previous_hosts`` = 0 (``switch="option"``) or the policy's
``avoidPreviousHosts: false`` (``switch="config"``).

`run_scenario` returns what the callers saw (failed calls and their codes) and what the
servers counted (each call's attempts: which backend, and its ``grpc-previous-rpc-attempts``).

``python -m tests.e2e.resilience._freeze [ROUNDS]`` runs both policies with the preference off and
on, ROUNDS times each (the same freeze schedule), and prints the failed-call counts.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc_lite
from tests.e2e.resilience._counting_backend import CALL, CALL_ID, SERVICE, STATS

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
REPO_ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)
CALLERS = 50
DEADLINE = 1.0
PAUSE = 0.02  # between one caller's calls
# (backend index, frozen at, resumed at), seconds from the start of the load; one at a time.
FREEZES = ((1, 0.5, 2.0), (2, 2.5, 4.0), (0, 4.5, 6.0))
RUN = 6.5  # callers start no call after this

HEDGING = {
    "maxAttempts": 3,
    "hedgingDelay": "0.2s",
    "nonFatalStatusCodes": ["UNAVAILABLE"],
}
RETRY = {
    "maxAttempts": 3,
    "initialBackoff": "0.01s",
    "maxBackoff": "0.05s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
    "perAttemptRecvTimeout": "0.3s",
}


def service_config(policy: str, *, avoid_in_config: bool | None = None) -> str:
    """round_robin, health checks and ``policy`` ("hedging" or "retry") for freeze.Counter;
    ``avoid_in_config`` sets the policy's ``avoidPreviousHosts`` (None: left out)."""
    key, body = ("hedgingPolicy", HEDGING) if policy == "hedging" else ("retryPolicy", RETRY)
    body = dict(body)
    if avoid_in_config is not None:
        body["avoidPreviousHosts"] = avoid_in_config
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "healthCheckConfig": {"serviceName": ""},
            "methodConfig": [{"name": [{"service": SERVICE}], key: body}],
        }
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Backends:
    """Three counting backend processes on .1/.2/.3, one port. `close` kills them (SIGKILL
    needs no SIGCONT), whatever state they are in."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.port = 0
        self.frozen: set[int] = set()

    @property
    def addresses(self) -> list[str]:
        return [f"{host}:{self.port}" for host in HOSTS]

    def start(self) -> None:
        for _ in range(5):
            port = _free_port()
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tests.e2e.resilience._counting_backend",
                        host,
                        str(port),
                    ],
                    cwd=REPO_ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                for host in HOSTS
            ]
            self.procs.extend(procs)
            lines = []
            for proc in procs:
                assert proc.stdout is not None
                lines.append(proc.stdout.readline().strip())
            if all(line == str(port).encode() for line in lines):
                self.procs = procs
                self.port = port
                return
            self.close()  # the port was taken on .2 or .3 meanwhile: another one
        raise AssertionError("could not start three backends on one port")

    def freeze(self, index: int) -> None:
        os.kill(self.procs[index].pid, signal.SIGSTOP)
        self.frozen.add(index)

    def resume(self, index: int) -> None:
        os.kill(self.procs[index].pid, signal.SIGCONT)
        self.frozen.discard(index)

    def close(self) -> None:
        procs, self.procs = self.procs, []
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        self.frozen.clear()


@contextmanager
def backends() -> Iterator[Backends]:
    b = Backends()
    try:
        b.start()
        yield b
    finally:
        b.close()


@dataclass
class Run:
    """What one scenario run saw."""

    calls: int = 0
    failed: collections.Counter[str] = field(default_factory=collections.Counter)
    # call id -> [(backend, grpc-previous-rpc-attempts)] as the servers counted them.
    attempts: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    # (seconds since the start, call id, code, details) of every failed call.
    failures: list[tuple[float, str, str, str]] = field(default_factory=list)
    snapshot: Any = None

    @property
    def failed_calls(self) -> int:
        return sum(self.failed.values())

    @property
    def repeats(self) -> list[str]:
        """Calls with two attempts on one backend (at the servers)."""
        return [
            call_id
            for call_id, seen in self.attempts.items()
            if len({b for b, _ in seen}) != len(seen)
        ]

    @property
    def later_attempts(self) -> int:
        """Retries and hedges the servers saw (grpc-previous-rpc-attempts > 0)."""
        return sum(1 for seen in self.attempts.values() for _, previous in seen if previous)

    def summary(self) -> str:
        snap = self.snapshot
        return (
            f"{self.calls} calls, {self.failed_calls} failed {dict(self.failed)}; "
            f"at the servers {sum(len(s) for s in self.attempts.values())} attempts, "
            f"{self.later_attempts} retries/hedges, {len(self.repeats)} calls with two "
            f"attempts on one backend; client: {snap.attempts_on_new_hosts} attempts on new "
            f"hosts, {snap.attempts_on_previous_hosts} on previous hosts"
        )


async def _until(predicate: Any, seconds: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.02)


async def _stats(address: str) -> list[tuple[str, int]]:
    async with grpc_lite.insecure_channel(address) as ch:
        reply = json.loads(await ch.unary_unary(STATS)(b"", timeout=5))
    return [(call_id, previous) for call_id, previous in reply["attempts"]]


async def run_scenario(
    b: Backends, policy: str, *, avoid: bool = True, switch: str = "option"
) -> Run:
    """Run the load and the freeze schedule once on ``b`` (fresh backends: their counts are
    read at the end)."""
    options: list[tuple[str, Any]] = []
    avoid_in_config: bool | None = None
    if not avoid:
        if switch == "option":
            options.append(("grpc_lite.avoid_previous_hosts", 0))
        else:
            avoid_in_config = False
    target = "ipv4:" + ",".join(b.addresses)
    run = Run()
    loop = asyncio.get_running_loop()
    async with grpc_lite.insecure_channel(
        target, options, service_config=service_config(policy, avoid_in_config=avoid_in_config)
    ) as ch:
        ch.get_state(try_to_connect=True)
        await _until(
            lambda: (
                sum(
                    sc.state is grpc_lite.ChannelConnectivity.READY
                    for sc in ch.snapshot().subchannels
                )
                == 3
            ),
            10.0,
            "three READY and SERVING subchannels",
        )
        call = ch.unary_unary(CALL)
        start = loop.time()
        stop_at = start + RUN

        async def caller(k: int) -> None:
            n = 0
            while loop.time() < stop_at:
                call_id = f"{k}-{n}"
                n += 1
                run.calls += 1
                try:
                    await call(b"x", timeout=DEADLINE, metadata=((CALL_ID, call_id),))
                except grpc_lite.RpcError as exc:
                    code = exc.code().name
                    run.failed[code] += 1
                    run.failures.append((loop.time() - start, call_id, code, exc.details() or ""))
                await asyncio.sleep(PAUSE)

        async def freezer() -> None:
            try:
                for index, frozen_at, resumed_at in FREEZES:
                    await asyncio.sleep(max(0.0, start + frozen_at - loop.time()))
                    b.freeze(index)
                    await asyncio.sleep(max(0.0, start + resumed_at - loop.time()))
                    b.resume(index)
            finally:
                for index in list(b.frozen):
                    b.resume(index)

        await asyncio.gather(freezer(), *(caller(k) for k in range(CALLERS)))
        run.snapshot = ch.snapshot()
    # Every backend runs again: let the last one work through what queued up while frozen.
    await asyncio.sleep(0.3)
    for address in b.addresses:
        for call_id, previous in await _stats(address):
            run.attempts.setdefault(call_id, []).append((address, previous))
    return run


async def _main(rounds: int) -> None:
    for policy in ("hedging", "retry"):
        for avoid in (False, True):
            for i in range(rounds):
                with backends() as b:
                    run = await run_scenario(b, policy, avoid=avoid)
                mode = "on " if avoid else "off"
                print(f"{policy:8} avoidPreviousHosts {mode} round {i + 1}: {run.summary()}")


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]) if len(sys.argv) > 1 else 1))

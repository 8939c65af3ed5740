"""Where the CPU of a unary RPC goes with OpenTelemetry metrics on (issue 15).

Steadier than RPC/s on a shared machine: instruction counts (valgrind's callgrind, every
thread of the client process) and cProfile breakdowns of the same unary workload the
end-to-end benchmark runs (``unary:100``, ``benchmarks.client``'s clients, the grpc-go
server of ``benchmarks/run.py``), plus the OpenTelemetry SDK's own ``Histogram.record()``
and ``Counter.add()`` in isolation::

    python -m benchmarks.otel_cost                    # callgrind: instructions per RPC
    python -m benchmarks.otel_cost --profile          # cProfile: per-RPC time by component
    python -m benchmarks.otel_cost --sdk              # callgrind: one SDK record()/add()

Instructions per RPC are the difference between two runs of different lengths (``--calls``
and twice that) divided by the difference in calls, so start-up, connection and warm-up
cancel out. The client runs in its own process (``--one``, below) with the server outside
it, so only the client's instructions count.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._profiles import by_component, callgrind_instructions
from .client import CLIENTS, UNARY_PAYLOAD, GrpcLiteClient

CLIENT_NAMES = ("grpc_lite", "grpc_lite_otel", "grpc_aio", "grpc_lite_otel_noop")


class _NoOpOtelClient(GrpcLiteClient):
    """The plugin on the OpenTelemetry API's no-op meter provider: grpc_lite's own share of
    the cost of metrics (its hooks and the traced stream), without the SDK's."""

    def _make_channel(self, target: str, service_config: str | None) -> Any:
        from opentelemetry.metrics import NoOpMeterProvider

        import grpc_lite
        from grpc_lite.opentelemetry import OpenTelemetryPlugin

        plugin = OpenTelemetryPlugin(meter_provider=NoOpMeterProvider())
        return grpc_lite.insecure_channel(target, observability=[plugin])


_CLIENTS: dict[str, Any] = {**CLIENTS, "grpc_lite_otel_noop": _NoOpOtelClient}

# cProfile groups: the first pattern matching a function's file names its component.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("grpc_lite/opentelemetry/", "grpc_lite.opentelemetry (the plugin)"),
    ("opentelemetry/sdk/", "OpenTelemetry SDK"),
    ("opentelemetry/", "OpenTelemetry API"),
    ("grpc_lite/", "grpc_lite (the rest)"),
    ("asyncio/", "asyncio"),
    ("grpc/", "grpc.aio"),
)


async def _run(client_name: str, target: str, warmup: int, calls: int, inflight: int) -> None:
    client = _CLIENTS[client_name]()
    await client.connect(target)
    unary = client.unary()

    async def worker(n: int) -> None:
        for _ in range(n):
            await unary(UNARY_PAYLOAD)

    async def batch(total: int) -> None:
        share, extra = divmod(total, inflight)
        await asyncio.gather(*(worker(share + (i < extra)) for i in range(inflight)))

    await batch(warmup)
    profile = os.environ.get("OTEL_COST_PROFILE", "")
    profiler = cProfile.Profile() if profile else None
    start = time.process_time()
    if profiler is not None:
        profiler.enable()
    await batch(calls)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    cpu = time.process_time() - start
    print(f"CPU {cpu / calls * 1e6:.2f} us/RPC over {calls} calls", flush=True)
    await client.close()


def _one(args: argparse.Namespace) -> None:
    asyncio.run(_run(args.client, args.target, args.warmup, args.calls, args.inflight))


def _callgrind_ir(cmd: list[str]) -> int:
    """Instructions (Ir) of the whole client process, every thread."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                "--collect-atstart=yes",
                *cmd,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return callgrind_instructions(out)


def _client_cmd(client: str, target: str, calls: int, warmup: int, inflight: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks.otel_cost",
        "--one",
        "--client",
        client,
        "--target",
        target,
        "--calls",
        str(calls),
        "--warmup",
        str(warmup),
        "--inflight",
        str(inflight),
    ]


def _with_server(fn: Any) -> Any:
    from .run import start_server

    server = start_server("go", pin=False)
    try:
        return fn(server.target)
    finally:
        server.stop()


def _instructions(args: argparse.Namespace) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found (apt-get install valgrind)")

    def measure(target: str) -> None:
        for client in args.clients:
            short = _callgrind_ir(
                _client_cmd(client, target, args.calls, args.warmup, args.inflight)
            )
            long = _callgrind_ir(
                _client_cmd(client, target, 2 * args.calls, args.warmup, args.inflight)
            )
            per = (long - short) / args.calls
            print(f"{client:16} {per:12,.0f} instructions per RPC", flush=True)

    _with_server(measure)


def _profile(args: argparse.Namespace) -> None:
    def measure(target: str) -> None:
        for client in args.clients:
            with tempfile.TemporaryDirectory() as tmp:
                path = str(Path(tmp) / "prof")
                cmd = _client_cmd(client, target, args.calls, args.warmup, args.inflight)
                subprocess.run(cmd, check=True, env=dict(os.environ, OTEL_COST_PROFILE=path))
                stats = pstats.Stats(path)
            print(f"{client} (cProfile, per RPC; profiling inflates times)")
            for name, ncalls, tottime in by_component(stats, COMPONENTS):
                print(
                    f"  {name:40} {ncalls / args.calls:7.1f} calls"
                    f" {tottime / args.calls * 1e6:7.2f} us"
                )
            if args.top:
                stats.sort_stats("tottime").print_stats(args.top)

    _with_server(measure)


SDK_SNIPPET = """
import sys
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
n = int(sys.argv[1])
meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("x")
h = meter.create_histogram("h", unit="s")
c = meter.create_counter("c")
attrs = {"grpc.method": "grpc_lite.bench.Bench/Unary", "grpc.target": "dns:///localhost:1",
         "grpc.status": "OK"}
two = {"grpc.method": "grpc_lite.bench.Bench/Unary", "grpc.target": "dns:///localhost:1"}
what = sys.argv[2]
if what.startswith("hooks"):
    from opentelemetry.metrics import NoOpMeterProvider
    from grpc_lite.opentelemetry import OpenTelemetryPlugin
    from grpc_lite.status import StatusCode
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    if what == "hooks_noop":
        provider = NoOpMeterProvider()
    plugin = OpenTelemetryPlugin(meter_provider=provider)
    method = plugin.channel_observer("localhost:1", "dns:///localhost:1").method_observer(
        "/grpc_lite.bench.Bench/Unary", True)
    frame = bytes(22)
    OK = StatusCode.OK
    for _ in range(n):
        call = method.start_call()
        attempt = call.start_attempt(False)
        attempt.headers()
        attempt.message_sent(frame)
        attempt.message_received(17, None)
        attempt.end(OK, "")
        call.end(OK, "")
    n = 0
for _ in range(n):
    if what == "record3":
        h.record(0.001, attrs)
    elif what == "record0":
        h.record(0.001)
    elif what == "add2":
        c.add(1, two)
    else:
        pass
"""


def _sdk(args: argparse.Namespace) -> None:
    n = args.calls
    base = [_callgrind_ir([sys.executable, "-c", SDK_SNIPPET, str(k), "none"]) for k in (n, 2 * n)]
    for what in ("record3", "record0", "add2", "hooks", "hooks_noop"):
        runs = [
            _callgrind_ir([sys.executable, "-c", SDK_SNIPPET, str(k), what]) for k in (n, 2 * n)
        ]
        per = ((runs[1] - runs[0]) - (base[1] - base[0])) / n
        print(f"{what:8} {per:10,.0f} instructions per call", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--one", action="store_true", help="run one client (internal)")
    parser.add_argument("--profile", action="store_true", help="cProfile breakdown")
    parser.add_argument("--sdk", action="store_true", help="the SDK's record()/add() alone")
    parser.add_argument("--client", default="grpc_lite_otel", choices=CLIENT_NAMES)
    parser.add_argument("--clients", default=",".join(CLIENT_NAMES))
    parser.add_argument("--target", default="")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--inflight", type=int, default=100)
    parser.add_argument("--top", type=int, default=0, help="--profile: print the top N")
    args = parser.parse_args(argv)
    args.clients = [c for c in args.clients.split(",") if c]
    if args.one:
        _one(args)
    elif args.profile:
        _profile(args)
    elif args.sdk:
        _sdk(args)
    else:
        _instructions(args)


if __name__ == "__main__":
    main()

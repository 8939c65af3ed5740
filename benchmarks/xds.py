"""What an ``xds:///`` channel costs against a plain round_robin channel (issue 17, "Cost").

Both channels reach the same backends: the xDS test rig (``peers/xds``, driven by
``tests/peers/xds.py``) with ``--backends`` grpc-go TestService backends in one locality,
behind its go-control-plane management server:

- ``xds``: ``insecure_channel("xds:///svc")`` with ``GRPC_XDS_BOOTSTRAP_CONFIG`` pointing at
  the rig; one listener, route, cluster (ROUND_ROBIN) and locality, so the LB tree is
  xds_cluster_manager -> cds -> priority -> cluster_impl -> weighted_target -> round_robin
  and every RPC also goes through the xds ConfigSelector;
- ``rr``: ``insecure_channel("ipv4:A1,A2,...", service_config=
  '{"loadBalancingConfig":[{"round_robin":{}}]}')`` to the same backend addresses.

Each cell is unary ``/grpc.testing.TestService/UnaryCall`` (an empty SimpleRequest) at
``--inflight`` calls in flight on one channel, in a fresh interpreter pinned to core 0; the
rig (its management server and backends, one Go process) is pinned to core 1. Cells
alternate (xds, rr, xds, rr, ... ``--rounds`` times) so drift hits both alike::

    python -m benchmarks.xds                      # RPC/s, CPU per RPC, the ratio (~1 min)
    python -m benchmarks.xds --instructions       # callgrind: instructions per RPC, each path
    python -m benchmarks.xds --profile            # cProfile: per-RPC calls and time by module

Instructions per RPC (``--instructions``) are ``(I(2N) - I(N)) / N`` of two valgrind
callgrind runs of the client process (every thread) doing N and 2N calls after the same
warm-up, so start-up, the xDS handshake and connection set-up cancel out: steadier than wall
clock on a shared machine. Results go to ``benchmarks/results/xds-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._profiles import by_component, callgrind_instructions
from .client import _cpu_seconds, _percentile, _Phase, _unary_worker

METHOD = "/grpc.testing.TestService/UnaryCall"
REQUEST = b""  # an empty grpc.testing.SimpleRequest
SERVICE = "svc"
RR_SERVICE_CONFIG = '{"loadBalancingConfig":[{"round_robin":{}}]}'
CHANNELS = ("xds", "rr")
CLIENT_CORE, SERVER_CORE = "0", "1"
REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
# cProfile groups: the first pattern in a function's file name names its component.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("grpc_lite/xds/_selector", "xds ConfigSelector"),
    ("grpc_lite/xds/_balancers/cluster_manager", "xds cluster_manager picker"),
    ("grpc_lite/xds/_balancers/cluster_impl", "xds cluster_impl picker + on_done"),
    ("grpc_lite/xds/_balancers/weighted_target", "xds weighted_target picker"),
    ("grpc_lite/xds/", "xds (other)"),
    ("grpc_lite/balancer/", "grpc_lite.balancer (round_robin, PickResult)"),
    ("grpc_lite/_call_config", "grpc_lite._call_config"),
    ("grpc_lite/", "grpc_lite (the rest)"),
    ("asyncio/", "asyncio"),
)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- one client


def _make_channel(kind: str, addresses: list[str]) -> Any:
    import grpc_lite

    if kind == "xds":
        if not os.environ.get("GRPC_XDS_BOOTSTRAP_CONFIG"):
            raise SystemExit("--channel xds needs GRPC_XDS_BOOTSTRAP_CONFIG")
        return grpc_lite.insecure_channel(f"xds:///{SERVICE}")
    if kind == "rr":
        if not addresses:
            raise SystemExit("--channel rr needs --addresses A1,A2,...")
        return grpc_lite.insecure_channel(
            "ipv4:" + ",".join(addresses), service_config=RR_SERVICE_CONFIG
        )
    raise SystemExit(f"unknown --channel {kind!r} (xds or rr)")


async def _connect(args: argparse.Namespace) -> tuple[Any, Any]:
    channel = _make_channel(args.channel, args.addresses)
    await asyncio.wait_for(channel.channel_ready(), args.connect_timeout)
    unary = channel.unary_unary(METHOD)
    await unary(REQUEST)
    return channel, unary


async def _timed(args: argparse.Namespace) -> dict[str, Any]:
    """A measured window of ``--duration`` s after ``--warmup`` s (benchmarks.client's loop)."""
    channel, unary = await _connect(args)
    phase = _Phase()
    samples: list[float] = []
    tasks = [
        asyncio.ensure_future(_unary_worker(unary, REQUEST, phase, samples))
        for _ in range(args.inflight)
    ]
    await asyncio.sleep(args.warmup)
    phase.measuring = True
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    await asyncio.sleep(args.duration)
    phase.measuring = False
    elapsed, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    phase.stop = True
    count = len(samples)
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    await channel.close()
    samples.sort()
    p50, p99 = _percentile(samples, 0.5), _percentile(samples, 0.99)
    return {
        "channel": args.channel,
        "count": count,
        "elapsed_s": elapsed,
        "rate": count / elapsed,
        "cpu_per_rpc_us": cpu / count * 1e6 if count else None,
        "client_cpu_pct": 100 * cpu / elapsed,
        "p50_us": p50 * 1e6 if p50 is not None else None,
        "p99_us": p99 * 1e6 if p99 is not None else None,
    }


async def _counted(args: argparse.Namespace) -> dict[str, Any]:
    """``--warmup-calls`` then ``--calls`` calls at ``--inflight`` (for callgrind, cProfile)."""
    channel, unary = await _connect(args)

    async def worker(n: int) -> None:
        for _ in range(n):
            await unary(REQUEST)

    async def batch(total: int) -> None:
        share, extra = divmod(total, args.inflight)
        await asyncio.gather(*(worker(share + (i < extra)) for i in range(args.inflight)))

    await batch(args.warmup_calls)
    profile = os.environ.get("XDS_BENCH_PROFILE", "")
    profiler = cProfile.Profile() if profile else None
    gc0 = [s["collections"] for s in gc.get_stats()]
    cpu0 = time.process_time()
    if profiler is not None:
        profiler.enable()
    await batch(args.calls)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    cpu = time.process_time() - cpu0
    gc1 = [s["collections"] for s in gc.get_stats()]
    await channel.close()
    return {
        "channel": args.channel,
        "calls": args.calls,
        "cpu_per_rpc_us": cpu / args.calls * 1e6,
        # Garbage collections by generation during the measured calls.
        "gc_collections": [b - a for a, b in zip(gc0, gc1, strict=True)],
        "gc_objects": len(gc.get_objects()),
    }


def _one(args: argparse.Namespace) -> None:
    result = asyncio.run(_counted(args) if args.calls else _timed(args))
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- the runner


def _can_pin() -> bool:
    if shutil.which("taskset") is None:
        return False
    return {int(CLIENT_CORE), int(SERVER_CORE)} <= os.sched_getaffinity(0)


def _proc_cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _client_argv(
    args: argparse.Namespace, channel: str, addresses: list[str], calls: int = 0
) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "benchmarks.xds",
        "--one",
        "--channel",
        channel,
        "--addresses",
        ",".join(addresses),
        "--inflight",
        str(args.inflight),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
    ]
    if calls:
        argv += ["--calls", str(calls), "--warmup-calls", str(args.warmup_calls)]
        # Under valgrind the client runs ~50x slower: the handshakes and first pick too.
        argv += ["--connect-timeout", "600"]
    return argv


def _run_client(argv: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"client {argv[-12:]} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    raise RuntimeError(f"client printed no RESULT:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def _callgrind_ir(argv: list[str], env: dict[str, str]) -> int:
    """Instructions (Ir) of the whole client process, every thread."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=1800,
            cwd=REPO,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"valgrind {argv[3:]} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
            )
        return callgrind_instructions(out)


class _Rig:
    """The rig with ``n`` backends in one locality and the ``svc`` scenario set."""

    def __init__(self, backends: int, pin: bool) -> None:
        from tests.peers import xds

        self.rig = xds.start(backends=backends)
        try:
            names = [f"b{i}" for i in range(backends)]
            self.rig.set_snapshot(xds.simple_scenario(SERVICE, names))
            self.addresses = [self.rig.backend_addresses[n] for n in names]
            if pin:
                # Every thread of the Go process, and the ones it starts later.
                subprocess.run(
                    ["taskset", "-a", "-p", "-c", SERVER_CORE, str(self.rig.process.pid)],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
        except BaseException:
            self.rig.stop()
            raise
        self.env = dict(os.environ, GRPC_XDS_BOOTSTRAP_CONFIG=self.rig.bootstrap_json())

    def shares(self) -> dict[str, int]:
        return self.rig.rpc_counts()

    def stop(self) -> None:
        self.rig.stop()


def _side_by_side(args: argparse.Namespace, rig: _Rig, pin: bool) -> dict[str, Any]:
    cells: list[dict[str, Any]] = []
    timeout = args.warmup + args.duration + 60
    for r in range(args.rounds):
        order = CHANNELS if r % 2 == 0 else CHANNELS[::-1]
        for channel in order:
            argv = _client_argv(args, channel, rig.addresses)
            if pin:
                argv = ["taskset", "-c", CLIENT_CORE, *argv]
            rig.rig.reset_counts()
            server0 = _proc_cpu_seconds(rig.rig.process.pid)
            result = _run_client(argv, rig.env, timeout)
            server1 = _proc_cpu_seconds(rig.rig.process.pid)
            counts = rig.shares()
            result["round"] = r + 1
            result["backend_rpcs"] = counts
            if server0 is not None and server1 is not None:
                # Over the whole client process (connect and warm-up too): an upper bound.
                result["server_cpu_s"] = server1 - server0
            cells.append(result)
            _log(
                f"round {r + 1}/{args.rounds} {channel:3}  {result['rate'] / 1e3:6.1f}k RPC/s"
                f"  CPU {result['cpu_per_rpc_us']:5.1f} us/RPC  client CPU"
                f" {result['client_cpu_pct']:3.0f}%  p50 {result['p50_us'] / 1e3:.2f} ms"
                f"  backends {sorted(counts.values())}"
            )
    summary: dict[str, Any] = {}
    for channel in CHANNELS:
        mine = [c for c in cells if c["channel"] == channel]
        summary[channel] = {
            "rate_median": statistics.median(c["rate"] for c in mine),
            "cpu_per_rpc_us_median": statistics.median(c["cpu_per_rpc_us"] for c in mine),
        }
    per_round = []
    for r in range(1, args.rounds + 1):
        by = {c["channel"]: c for c in cells if c["round"] == r}
        per_round.append(by["xds"]["rate"] / by["rr"]["rate"])
    summary["ratio_of_medians"] = summary["xds"]["rate_median"] / summary["rr"]["rate_median"]
    summary["ratio_per_round"] = per_round
    summary["cpu_ratio"] = (
        summary["xds"]["cpu_per_rpc_us_median"] / summary["rr"]["cpu_per_rpc_us_median"]
    )
    print(
        f"\nunary at {args.inflight} in flight, {len(rig.addresses)} backends, medians of"
        f" {args.rounds} alternated rounds of {args.duration:g} s:"
    )
    for channel, label in (("xds", f"xds:///{SERVICE}"), ("rr", "ipv4: + round_robin")):
        s = summary[channel]
        print(
            f"  {label:22} {s['rate_median']:9,.0f} RPC/s"
            f"  {s['cpu_per_rpc_us_median']:5.1f} us CPU/RPC"
        )
    ok = summary["ratio_of_medians"] >= 0.90
    print(
        f"  xds / rr RPC/s: {summary['ratio_of_medians']:.3f} (rounds "
        + " ".join(f"{x:.3f}" for x in per_round)
        + f"); CPU per RPC xds / rr: {summary['cpu_ratio']:.3f}"
        + f"  target >= 0.90: {'met' if ok else 'MISSED'}"
    )
    return {"cells": cells, "summary": summary}


def _instructions(args: argparse.Namespace, rig: _Rig) -> dict[str, Any]:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found (apt-get install valgrind)")
    out: dict[str, Any] = {}
    for channel in CHANNELS:
        runs = []
        for calls in (args.ir_calls, 2 * args.ir_calls):
            # The interpreter binary itself (not a shim script): valgrind follows it.
            argv = _client_argv(args, channel, rig.addresses, calls)
            argv[0] = os.path.realpath(sys.executable)
            runs.append(_callgrind_ir(argv, rig.env))
        per = (runs[1] - runs[0]) / args.ir_calls
        out[channel] = {"runs": runs, "per_rpc": per}
        _log(f"{channel:3} {per:12,.0f} instructions per RPC  (runs {runs})")
    diff = out["xds"]["per_rpc"] - out["rr"]["per_rpc"]
    out["xds_minus_rr"] = diff
    out["ratio"] = out["xds"]["per_rpc"] / out["rr"]["per_rpc"]
    print(
        f"\ninstructions per unary RPC at {args.inflight} in flight ((I(2N)-I(N))/N,"
        f" N={args.ir_calls}):"
        f"\n  xds:///{SERVICE}           {out['xds']['per_rpc']:12,.0f}"
        f"\n  ipv4: + round_robin    {out['rr']['per_rpc']:12,.0f}"
        f"\n  xds - rr: {diff:+,.0f} ({100 * (out['ratio'] - 1):+.1f}%)"
        f"; the RPC/s this predicts for xds: {1 / out['ratio']:.3f}x rr"
    )
    return out


def _profile(args: argparse.Namespace, rig: _Rig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for channel in CHANNELS:
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "prof")
            argv = _client_argv(args, channel, rig.addresses, args.ir_calls)
            _run_client(argv, dict(rig.env, XDS_BENCH_PROFILE=path), 600)
            stats = pstats.Stats(path)
        print(f"{channel} (cProfile, per RPC; profiling inflates times)")
        rows = {}
        for name, ncalls, tottime in by_component(stats, COMPONENTS):
            per_calls, per_us = ncalls / args.ir_calls, tottime / args.ir_calls * 1e6
            rows[name] = {"calls": per_calls, "us": per_us}
            print(f"  {name:46} {per_calls:6.1f} calls {per_us:7.2f} us")
        if args.top:
            stats.sort_stats("tottime").print_stats(args.top)
        out[channel] = rows
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rounds", type=int, default=5, help="alternated rounds (5)")
    p.add_argument("--duration", type=float, default=3.0, help="measured seconds per cell (3)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per cell (1)")
    p.add_argument("--inflight", type=int, default=100, help="calls in flight (100)")
    p.add_argument("--backends", type=int, default=4, help="rig backends, one locality (4)")
    p.add_argument("--no-pin", dest="pin", action="store_false", help="no taskset")
    p.add_argument("--instructions", action="store_true", help="callgrind instead of RPC/s")
    p.add_argument("--profile", action="store_true", help="cProfile breakdown instead")
    p.add_argument("--ir-calls", type=int, default=3000, help="N of --instructions/--profile")
    p.add_argument("--warmup-calls", type=int, default=1000)
    p.add_argument("--top", type=int, default=0, help="--profile: the top N functions too")
    p.add_argument("--json", type=Path, help="result file (default benchmarks/results/...)")
    # A single client process (the runner's cells).
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--channel", choices=CHANNELS, help=argparse.SUPPRESS)
    p.add_argument("--addresses", default="", help=argparse.SUPPRESS)
    p.add_argument("--calls", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--connect-timeout", type=float, default=20.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.addresses = [a for a in args.addresses.split(",") if a]
    if args.one:
        _one(args)
        return 0
    for name in ("rounds", "inflight", "backends", "ir_calls"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    pin = args.pin and _can_pin()
    started = time.strftime("%Y%m%d-%H%M%S")
    rig = _Rig(args.backends, pin)
    report: dict[str, Any] = {
        "settings": {k: v for k, v in vars(args).items() if k != "json"} | {"pinned": pin},
        "load_average_before": os.getloadavg(),
    }
    try:
        if args.instructions:
            report["instructions"] = _instructions(args, rig)
        elif args.profile:
            report["profile"] = _profile(args, rig)
        else:
            report |= _side_by_side(args, rig, pin)
    finally:
        rig.stop()
    report["load_average_after"] = os.getloadavg()
    path = args.json or RESULTS / f"xds-{started}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str))
    _log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

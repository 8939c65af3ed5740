"""`grpc-lite load` against ghz, and Locust's GrpcUser against grpcio + gevent (issue 18).

    python -m benchmarks.load               # every experiment (~6 min)
    python -m benchmarks.load --quick       # short cells, one round (~1.5 min)
    python -m benchmarks.load --only throughput,rate

One grpc-go server (benchmarks/goserver, built like `python -m benchmarks` builds it) is
pinned to core 1; each load generator runs pinned to core 0 (``taskset -c 0``), so both
tools get the same single core. ghz is built from the Go module proxy at the version
pinned in ``benchmarks/ghz/go.mod`` into ``build/ghz`` (never committed). Both tools call
``/grpc_lite.bench.Bench/Unary`` with the same 17-byte request, described to them by
``benchmarks/load/bench.proto``.

Experiments:

- ``throughput``: closed model, ``-c 100``, one connection, one core each, ``--duration``
  seconds, ``--rounds`` interleaved rounds; the median RPS and the ratio to ghz. Then both
  with ``--cpus 2`` on cores 0-1 (the server still pinned to core 1, so it shares a core).
- ``scaling``: ``-c 100`` with ``--cpus 1`` on core 0 and ``--cpus 2`` on cores 0-1, both
  tools, ``--rounds`` interleaved rounds, against ``benchmarks/h2echo`` on core 1 (a
  frame-level unary echo costing a few microseconds per call, so on a 2-core machine the
  second core is mostly the generator's; against grpc-go the server takes most of it):
  median RPS and the ratio of two cores to one, with the server's CPU per call.
- ``rate``: ``--rps`` 1,000 / 10,000 / 20,000 for ``--duration`` seconds on one core: the
  achieved rate (calls / total time of the report) against the target, for both tools.
- ``latency``: ``--rps 200`` (a rate nobody struggles with) for ``--duration`` seconds,
  ``--rounds`` interleaved rounds of ghz, grpc-lite and grpc-lite ``--busy-poll``: every
  call's latency from ``-O influx-details``, p50/p90/p99/p99.9 per round and over all
  rounds pooled, and the pooled ratios to ghz.
- ``locust``: a standalone headless Locust process pinned to core 0, ``--users`` users
  with no wait, calling Unary: ``GrpcUser`` against a grpcio user with
  ``grpc.experimental.gevent.init_gevent()`` (the usual recipe). RPS from Locust's CSV.

Everything is written to ``benchmarks/results/load-<timestamp>.json`` (gitignored).
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.run import BENCH_DIR, REPO_ROOT, RESULTS_DIR, Server, _can_pin, log, start_server

GHZ_DIR = BENCH_DIR / "ghz"
GHZ_BIN = REPO_ROOT / "build" / "ghz"
PROTO = BENCH_DIR / "load" / "bench.proto"
CALL = "grpc_lite.bench.Bench/Unary"
DATA = '{"name": "grpc_lite bench"}'  # 17 bytes as a message, as benchmarks.client sends

GRPCIO_LOCUSTFILE = """
import time

import grpc
import grpc.experimental.gevent as grpc_gevent
from locust import User, constant, task

grpc_gevent.init_gevent()
REQUEST = b"\\n\\x0fgrpc_lite bench"


class GrpcioUser(User):
    wait_time = constant(0)

    def on_start(self):
        self.channel = grpc.insecure_channel(self.host)
        self.unary = self.channel.unary_unary("/grpc_lite.bench.Bench/Unary")

    @task
    def unary(self):
        started = time.perf_counter()
        exception = None
        try:
            self.unary(REQUEST, timeout=30)
        except grpc.RpcError as exc:
            exception = exc
        self.environment.events.request.fire(
            request_type="grpc", name="Unary", response_time=(time.perf_counter() - started) * 1000,
            response_length=17, exception=exception, context={},
        )

    def on_stop(self):
        self.channel.close()
"""

GRPC_LITE_LOCUSTFILE = """
from locust import constant, task

from grpc_lite.contrib.locust import GrpcUser

REQUEST = b"\\n\\x0fgrpc_lite bench"


class LiteUser(GrpcUser):
    wait_time = constant(0)

    @task
    def unary(self):
        self.call("/grpc_lite.bench.Bench/Unary", REQUEST, name="Unary")
"""


def build_ghz() -> Path:
    """``go build`` ghz at the version pinned in benchmarks/ghz/go.mod into build/ghz."""
    sources = [GHZ_DIR / "go.mod", GHZ_DIR / "go.sum"]
    if GHZ_BIN.exists() and GHZ_BIN.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return GHZ_BIN
    GHZ_BIN.parent.mkdir(parents=True, exist_ok=True)
    log(f"building ghz (benchmarks/ghz/go.mod) -> {GHZ_BIN.relative_to(REPO_ROOT)}")
    subprocess.run(
        ["go", "build", "-mod=readonly", "-o", str(GHZ_BIN), "github.com/bojand/ghz/cmd/ghz"],
        cwd=GHZ_DIR,
        check=True,
        timeout=900,
    )
    return GHZ_BIN


def ghz_version() -> str:
    for line in (GHZ_DIR / "go.mod").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "github.com/bojand/ghz":
            return parts[1]
    return "?"


def _pinned(cores: str, cmd: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", cores, *cmd] if pin else cmd


def _run_json(cmd: list[str], timeout: float) -> dict[str, Any]:
    """Run a load generator that prints a JSON report; one retry if it printed none."""
    for attempt in (1, 2):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        try:
            report: dict[str, Any] = json.loads(done.stdout)
            return report
        except json.JSONDecodeError:
            log(f"  no report from {' '.join(cmd[:6])}... (exit {done.returncode}, try {attempt}):")
            log("    " + done.stderr[-2000:].replace("\n", "\n    "))
    raise RuntimeError(f"{cmd[:6]}... printed no report twice")


def _command(
    tool: str, server: Server, seconds: float, cpus: int, output: str, args: list[str]
) -> list[str]:
    """ghz or grpc-lite load calling Unary for ``seconds`` with the same flags, ``-O output``."""
    common = [
        "--insecure", "--proto", str(PROTO), "--call", CALL, "-d", DATA,
        "-z", f"{seconds}s", "--cpus", str(cpus), "-O", output, *args,
    ]  # fmt: skip
    if tool == "ghz":
        return [str(GHZ_BIN), *common, server.target]
    return [sys.executable, "-m", "grpc_lite", "load", server.target, *common]


def run_tool(
    tool: str, server: Server, args: list[str], *, cpus: int, cores: str, pin: bool, seconds: float
) -> dict[str, Any]:
    cmd = _command(tool, server, seconds, cpus, "json", args)
    started = time.perf_counter()
    report = _run_json(_pinned(cores, cmd, pin), timeout=seconds + 60)
    wall = time.perf_counter() - started
    dist = {d["percentage"]: d["latency"] for d in report.get("latencyDistribution") or []}
    errors = sum((report.get("errorDistribution") or {}).values())
    return {
        "tool": tool,
        "args": args,
        "cpus": cpus,
        "count": report["count"],
        "errors": errors,
        "rps": report["rps"],
        "total_s": report["total"] / 1e9,
        "p50_us": dist.get(50, 0) / 1e3,
        "p90_us": dist.get(90, 0) / 1e3,
        "p99_us": dist.get(99, 0) / 1e3,
        "wall_s": wall,
    }


def _fmt(rps: float) -> str:
    return f"{rps / 1000:.1f}k" if rps >= 1000 else f"{rps:.0f}"


def throughput(server: Server, pin: bool, seconds: float, rounds: int) -> dict[str, Any]:
    cells: list[dict[str, Any]] = []
    for r in range(rounds):
        for tool in ("ghz", "grpc-lite"):
            cell = run_tool(
                tool, server, ["-c", "100"], cpus=1, cores="0", pin=pin, seconds=seconds
            )
            cell["round"] = r + 1
            cells.append(cell)
            log(f"  throughput round {r + 1} {tool:<9} 1 core  {_fmt(cell['rps'])} RPS")
    for tool in ("ghz", "grpc-lite"):
        cell = run_tool(tool, server, ["-c", "100"], cpus=2, cores="0,1", pin=pin, seconds=seconds)
        cells.append(cell)
        log(f"  throughput {tool:<9} --cpus 2 on cores 0-1  {_fmt(cell['rps'])} RPS")
    one = {
        tool: statistics.median(c["rps"] for c in cells if c["tool"] == tool and c["cpus"] == 1)
        for tool in ("ghz", "grpc-lite")
    }
    two = {
        tool: next(c["rps"] for c in cells if c["tool"] == tool and c["cpus"] == 2) for tool in one
    }
    per_round = [
        next(c["rps"] for c in cells if c.get("round") == r + 1 and c["tool"] == "grpc-lite")
        / next(c["rps"] for c in cells if c.get("round") == r + 1 and c["tool"] == "ghz")
        for r in range(rounds)
    ]
    return {
        "cells": cells,
        "one_core": one,
        "ratio": one["grpc-lite"] / one["ghz"],
        "ratio_per_round": per_round,
        "two_cpus": two,
        "scaling": {tool: two[tool] / one[tool] for tool in one},
    }


def scaling(pin: bool, seconds: float, rounds: int) -> dict[str, Any]:
    """``-c 100`` with ``--cpus 1`` on core 0 against ``--cpus 2`` on cores 0-1, both tools,
    ``rounds`` interleaved rounds, against h2echo pinned to core 1: a server that costs a
    few microseconds per call, so the second core is mostly the load generator's."""
    server = start_server("h2echo", pin)
    cells: list[dict[str, Any]] = []
    try:
        for r in range(rounds):
            for tool in ("ghz", "grpc-lite"):
                for cpus, cores in ((1, "0"), (2, "0,1")):
                    before = server.cpu_seconds()
                    cell = run_tool(
                        tool, server, ["-c", "100"], cpus=cpus, cores=cores, pin=pin,
                        seconds=seconds,
                    )  # fmt: skip
                    after = server.cpu_seconds()
                    cell["round"] = r + 1
                    if before is not None and after is not None and cell["count"]:
                        cell["server_us_per_call"] = (after - before) / cell["count"] * 1e6
                    cells.append(cell)
                    log(
                        f"  scaling round {r + 1} {tool:<9} --cpus {cpus} on cores {cores:<3} "
                        f"{_fmt(cell['rps'])} RPS, server "
                        f"{cell.get('server_us_per_call', 0):.1f} us CPU per call"
                    )
    finally:
        server.stop()
    rps = {
        tool: {
            cpus: statistics.median(
                c["rps"] for c in cells if c["tool"] == tool and c["cpus"] == cpus
            )
            for cpus in (1, 2)
        }
        for tool in ("ghz", "grpc-lite")
    }
    return {
        "server": server.description,
        "cells": cells,
        "rps": rps,
        "scaling": {tool: v[2] / v[1] for tool, v in rps.items()},
        "two_cpus_ratio": rps["grpc-lite"][2] / rps["ghz"][2],
    }


def rate(server: Server, pin: bool, seconds: float) -> dict[str, Any]:
    rows = []
    for target in (1000, 10000, 20000):
        for tool in ("grpc-lite", "ghz"):
            cell = run_tool(
                tool, server, ["--rps", str(target), "-c", "200"], cpus=1, cores="0", pin=pin,
                seconds=seconds,
            )  # fmt: skip
            cell["target"] = target
            cell["error_pct"] = 100.0 * (cell["rps"] - target) / target
            rows.append(cell)
            log(
                f"  rate {target:>6}/s {tool:<9} achieved {cell['rps']:.1f}/s "
                f"({cell['error_pct']:+.2f}%), p50 {cell['p50_us']:.0f} us"
            )
    return {"cells": rows}


LATENCY_TOOLS = {  # name: (tool, extra flags)
    "ghz": ("ghz", []),
    "grpc-lite": ("grpc-lite", []),
    "grpc-lite --busy-poll": ("grpc-lite", ["--busy-poll"]),
}


def run_latencies(
    tool: str, server: Server, args: list[str], *, pin: bool, seconds: float
) -> list[int]:
    """Every call's latency (ns) from the tool's ``-O influx-details`` lines (both write
    ghz's ``ghz_detail ... latency=N`` format), on core 0."""
    cmd = _pinned("0", _command(tool, server, seconds, 1, "influx-details", args), pin)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    found = [int(m.group(1)) for m in re.finditer(r" latency=(\d+)i?,", done.stdout)]
    if not found:
        raise RuntimeError(f"{tool}: no calls in its report ({done.stderr[-1500:]})")
    return found


def _percentiles(values: list[int]) -> dict[str, float]:
    ordered = sorted(values)
    n = len(ordered)
    return {
        f"p{p:g}": ordered[max(0, math.ceil(p / 100 * n) - 1)] / 1e3 for p in (50, 90, 99, 99.9)
    }


def latency(server: Server, pin: bool, seconds: float, rounds: int) -> dict[str, Any]:
    """ghz, grpc-lite and grpc-lite --busy-poll at 200/s, ``rounds`` interleaved rounds.

    Each round's percentiles, and each tool's percentiles over all its rounds' calls
    pooled (the machine's state drifts over seconds; interleaving and pooling spread
    that drift over the tools alike). Percentiles are in microseconds."""
    pooled: dict[str, list[int]] = {name: [] for name in LATENCY_TOOLS}
    cells: list[dict[str, Any]] = []
    for r in range(rounds):
        for name, (tool, extra) in LATENCY_TOOLS.items():
            values = run_latencies(
                tool, server, ["--rps", "200", "-c", "10", *extra], pin=pin, seconds=seconds
            )
            pooled[name].extend(values)
            cell = {"tool": name, "round": r + 1, "calls": len(values), **_percentiles(values)}
            cells.append(cell)
            log(
                f"  latency at 200/s round {r + 1} {name:<21} p50 {cell['p50']:.0f} us  "
                f"p90 {cell['p90']:.0f} us  p99 {cell['p99']:.0f} us"
            )
    pooled_pct = {name: _percentiles(values) for name, values in pooled.items()}
    ghz = pooled_pct["ghz"]
    ratios = {
        name: {p: v / ghz[p] for p, v in pct.items()}
        for name, pct in pooled_pct.items()
        if name != "ghz"
    }
    return {"cells": cells, "pooled_us": pooled_pct, "ratio_to_ghz": ratios}


def locust_cell(
    name: str, locustfile: str, server: Server, pin: bool, seconds: float, users: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="grpc_lite_locust_") as tmp:
        path = Path(tmp) / "locustfile.py"
        path.write_text(locustfile)
        cmd = [
            sys.executable, "-m", "locust", "-f", str(path), "--headless", "-u", str(users),
            "-r", str(users), "-t", f"{max(1, round(seconds))}s", "--host", server.target,
            "--csv", str(Path(tmp) / "run"), "--only-summary", "--loglevel", "WARNING",
            "--stop-timeout", "5",
        ]  # fmt: skip
        done = subprocess.run(
            _pinned("0", cmd, pin), capture_output=True, text=True, timeout=seconds + 90
        )
        if not (Path(tmp) / "run_stats.csv").exists():
            raise RuntimeError(
                f"locust wrote no stats (exit {done.returncode}): {done.stderr[-1500:]}"
            )
        rows = {r["Name"]: r for r in csv.DictReader((Path(tmp) / "run_stats.csv").open())}
    total = rows["Aggregated"]
    cell = {
        "user": name,
        "users": users,
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "rps": float(total["Requests/s"]),
        "p50_ms": float(total["50%"]),
        "p99_ms": float(total["99%"]),
        "exit": done.returncode,
    }
    log(f"  locust {name:<16} {users} users  {cell['rps']:.0f} RPS  failures {cell['failures']}")
    return cell


def locust(server: Server, pin: bool, seconds: float, users: int) -> dict[str, Any]:
    lite = locust_cell("GrpcUser", GRPC_LITE_LOCUSTFILE, server, pin, seconds, users)
    grpcio = locust_cell("grpcio + gevent", GRPCIO_LOCUSTFILE, server, pin, seconds, users)
    return {
        "cells": [lite, grpcio],
        "ratio": lite["rps"] / grpcio["rps"] if grpcio["rps"] else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__)
    parser.add_argument("--only", default="throughput,scaling,rate,latency,locust")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds")
    parser.add_argument("--users", type=int, default=50, help="Locust users")
    parser.add_argument("--quick", action="store_true", help="3 s cells, one round")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds = 3.0, 1
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    pin = not args.no_pin and _can_pin()
    build_ghz()
    server = start_server("go", pin)
    results: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "ghz": ghz_version(),
        "server": server.description,
        "python": sys.version.split()[0],
        "pinned": pin,
        "duration_s": args.duration,
        "load_average": os.getloadavg(),
    }
    try:
        if "throughput" in only:
            log("throughput: closed model, -c 100")
            results["throughput"] = throughput(server, pin, args.duration, args.rounds)
        if "scaling" in only:
            log("scaling: --cpus 1 and 2, against h2echo")
            results["scaling"] = scaling(pin, args.duration, args.rounds)
        if "rate" in only:
            log("rate accuracy: open model")
            results["rate"] = rate(server, pin, args.duration)
        if "latency" in only:
            log("latency at a fixed low rate")
            results["latency"] = latency(server, pin, args.duration, args.rounds)
        if "locust" in only:
            log("Locust: one standalone process on one core")
            results["locust"] = locust(server, pin, args.duration, args.users)
    finally:
        server.stop()
    results["load_average_after"] = os.getloadavg()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"load-{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    print(render(results))
    log(f"results: {path.relative_to(REPO_ROOT)}")
    return 0


def render(results: dict[str, Any]) -> str:
    out = [f"ghz {results['ghz']}, server {results['server']}, pinned {results['pinned']}"]
    t = results.get("throughput")
    if t:
        out.append(
            f"unary -c 100, one core: grpc-lite {_fmt(t['one_core']['grpc-lite'])} RPS, "
            f"ghz {_fmt(t['one_core']['ghz'])} RPS: {t['ratio']:.2f}x "
            f"(rounds {' '.join(f'{r:.2f}' for r in t['ratio_per_round'])})"
        )
        out.append(
            f"--cpus 2 on two cores: grpc-lite {_fmt(t['two_cpus']['grpc-lite'])} "
            f"({t['scaling']['grpc-lite']:.2f}x its one core), ghz {_fmt(t['two_cpus']['ghz'])} "
            f"({t['scaling']['ghz']:.2f}x)"
        )
    sc = results.get("scaling")
    if sc:
        for tool, v in sc["rps"].items():
            out.append(
                f"against h2echo, {tool:<9} --cpus 1 on one core {_fmt(v[1])} RPS, --cpus 2 on "
                f"two cores {_fmt(v[2])} RPS: {sc['scaling'][tool]:.2f}x"
            )
        out.append(f"--cpus 2 on two cores, grpc-lite / ghz: {sc['two_cpus_ratio']:.2f}x")
    r = results.get("rate")
    if r:
        for c in r["cells"]:
            out.append(
                f"--rps {c['target']:>6} {c['tool']:<9} achieved {c['rps']:>9.1f}/s "
                f"({c['error_pct']:+.2f}%)  p50 {c['p50_us']:.0f} us  p99 {c['p99_us']:.0f} us"
            )
    lat = results.get("latency")
    if lat:
        for tool, m in lat["pooled_us"].items():
            out.append(
                f"--rps 200 {tool:<21} pooled "
                + "  ".join(f"{p} {v:.0f} us" for p, v in m.items())
                + (
                    "  ("
                    + ", ".join(f"{p} {v:.2f}x" for p, v in lat["ratio_to_ghz"][tool].items())
                    + " ghz)"
                    if tool in lat["ratio_to_ghz"]
                    else ""
                )
            )
    loc = results.get("locust")
    if loc:
        for c in loc["cells"]:
            out.append(
                f"Locust {c['user']:<16} {c['users']} users: {c['rps']:.0f} RPS, "
                f"p50 {c['p50_ms']:.0f} ms, failures {c['failures']}"
            )
        if loc["ratio"]:
            out.append(f"GrpcUser / grpcio + gevent: {loc['ratio']:.1f}x")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())

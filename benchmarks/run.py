"""grpc_lite benchmark runner: every client against one fast server, in one run.

    python -m benchmarks                 # full run (about 3 minutes)
    python -m benchmarks --quick         # smoke run (1 repeat, short cells)
    python -m benchmarks --help

Starts a grpc-go server (``benchmarks/goserver``, built on first use into ``benchmarks/.build``)
pinned to core 1, then runs each (workload, client) cell in a fresh interpreter pinned to core 0
(``python -m benchmarks.client``), for ``--repeats`` rounds. The rounds are interleaved (round 1
of every cell, then round 2, ...) so that drift on the machine hits every client alike. Prints
the medians with ratios to grpc.aio, and writes everything to ``benchmarks/results/<ts>.json``.
See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
BUILD_DIR = BENCH_DIR / ".build"
RESULTS_DIR = BENCH_DIR / "results"
GO_SRC = BENCH_DIR / "goserver" / "main.go"
GO_BIN = BUILD_DIR / "benchserver"
GO_CLIENT_SRC = BENCH_DIR / "goclient" / "main.go"
GO_CLIENT_BIN = BUILD_DIR / "benchclient"
GOPATH = "/usr/share/gocode"
GO_GRPC_PKG = Path(GOPATH) / "src" / "google.golang.org" / "grpc"

BASELINE = "grpc_aio"
ALL_CLIENTS = ["grpc_lite", "grpc_lite_uvloop", "grpc_aio", "grpclib", "grpc_go"]
DEFAULT_WORKLOADS = ["unary:1", "unary:100", "stream:1"]
ALL_WORKLOADS = ["unary:1", "unary:10", "unary:100", "stream:1"]
CLIENT_LABELS = {
    "grpc_lite": "grpc_lite (asyncio)",
    "grpc_lite_uvloop": "grpc_lite (uvloop)",
    "grpc_aio": "grpc.aio",
    "grpclib": "grpclib",
    "grpc_go": "grpc-go (reference)",
}
CLIENT_CORE = "0"
SERVER_CORE = "1"


def log(msg: str = "", end: str = "\n") -> None:
    sys.stderr.write(msg + end)
    sys.stderr.flush()


# --------------------------------------------------------------------------- server


@dataclass
class Server:
    kind: str  # "grpc-go" or "grpcio"
    proc: subprocess.Popen[str]
    port: int
    description: str

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float | None:
        """utime+stime of the server process (all threads), from /proc."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12])  # utime, stime
            return ticks / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def stop(self) -> None:
        """Stop by PID: SIGTERM, then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _go_available() -> str | None:
    """None if the grpc-go server can be built, else the reason."""
    if shutil.which("go") is None:
        return "`go` not found (apt-get install -y golang-go golang-google-grpc-dev)"
    if not GO_GRPC_PKG.is_dir():
        return f"{GO_GRPC_PKG} missing (apt-get install -y golang-google-grpc-dev)"
    return None


def build_go(src: Path = GO_SRC, binary: Path = GO_BIN) -> Path:
    """Build one Go program (GOPATH mode, Debian's grpc-go) unless it is up to date."""
    if binary.exists() and binary.stat().st_mtime >= src.stat().st_mtime:
        return binary
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    log(f"building {src.relative_to(REPO_ROOT)} -> {binary.relative_to(REPO_ROOT)}")
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOFLAGS="")
    env.setdefault("GOCACHE", str(BUILD_DIR / "gocache"))
    subprocess.run(
        ["go", "build", "-o", str(binary), str(src)],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    return binary


def _pin(core: str, cmd: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", core, *cmd] if pin else cmd


def start_server(kind: str, pin: bool) -> Server:
    if kind in ("auto", "go"):
        reason = _go_available()
        if reason is None:
            try:
                binary = build_go()
            except (subprocess.SubprocessError, OSError) as exc:
                reason = f"go build failed: {exc}"
        if reason is not None:
            if kind == "go":
                raise SystemExit(f"grpc-go server unavailable: {reason}")
            log(f"WARNING: grpc-go server unavailable ({reason}).")
            log("WARNING: falling back to a grpcio (grpc.aio) server, which is slow and may be")
            log("WARNING: the bottleneck: absolute figures and ratios are NOT comparable.")
            kind = "grpcio"
        else:
            kind = "go"
    if kind == "go":
        cmd = [str(binary), "-addr", "127.0.0.1:0"]
        server_kind = "grpc-go"
        desc = _go_server_description()
    else:
        cmd = [sys.executable, str(BENCH_DIR / "pyserver.py"), "--addr", "127.0.0.1:0"]
        server_kind = "grpcio"
        import grpc

        desc = f"grpcio {grpc.__version__} grpc.aio server (fallback)"
    proc = subprocess.Popen(
        _pin(SERVER_CORE, cmd, pin),
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until it listens or dies
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"server did not start: {line!r}")
        port = int(line.split()[1])
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return Server(kind=server_kind, proc=proc, port=port, description=desc)


def _go_server_description() -> str:
    version = "?"
    try:
        for line in (GO_GRPC_PKG / "version.go").read_text().splitlines():
            if "Version = " in line:
                version = line.split('"')[1]
    except OSError:
        pass
    go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    return f"grpc-go {version} ({go.removeprefix('go version ')})"


# --------------------------------------------------------------------------- clients


def client_unavailable(client: str) -> str | None:
    """None if the client can run, else why not (checked in a subprocess, like the cells)."""
    if client == "grpc_go":
        reason = _go_available()
        if reason is None:
            try:
                build_go(GO_CLIENT_SRC, GO_CLIENT_BIN)
            except (subprocess.SubprocessError, OSError) as exc:
                reason = f"go build failed: {exc}"
        return reason
    probes = {
        "grpc_lite": "import grpc_lite; grpc_lite.insecure_channel",
        "grpc_lite_uvloop": "import uvloop, grpc_lite; grpc_lite.insecure_channel",
        "grpc_aio": "import grpc.aio",
        "grpclib": "import grpclib.client",
    }
    r = subprocess.run(
        [sys.executable, "-c", probes[client]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if r.returncode == 0:
        return None
    last = (r.stderr.strip().splitlines() or ["import failed"])[-1]
    return last


@dataclass
class CellRun:
    workload: str
    client: str
    round: int
    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    server_cpu_pct: float | None = None
    # Client CPU as % of its core over the window, and the CPU that neither the client nor
    # the server used on the two cores (other processes, softirq): a noisy-machine indicator.
    client_cpu_pct: float | None = None
    other_cpu_pct: float | None = None
    wall_s: float = 0.0
    connected: bool = False  # the client said READY
    stderr_tail: str | None = None  # the end of the client's stderr when the cell failed


def _read_tail(f: Any) -> str:
    f.flush()
    f.seek(0)
    return str(f.read())


_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


def _last_error(stderr: str) -> str | None:
    """The final exception of a traceback, its multi-line repr folded onto one line."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    for i in range(len(lines) - 1, -1, -1):
        if _EXC_LINE.match(lines[i]):
            return " ".join(" ".join(lines[i:]).split())[:300]
    return lines[-1][:300] if lines else None


def run_cell(
    server: Server, client: str, workload: str, rnd: int, args: argparse.Namespace
) -> CellRun:
    runner = (
        [str(GO_CLIENT_BIN)]
        if client == "grpc_go"
        else [sys.executable, "-m", "benchmarks.client", "--client", client]
    )
    cmd = [
        *runner,
        "--workload",
        workload,
        "--target",
        server.target,
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
    ]
    started = time.monotonic()
    deadline = started + args.warmup + args.duration + args.cell_timeout
    errfile = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
    )
    proc = subprocess.Popen(
        _pin(CLIENT_CORE, cmd, args.pin),
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        # A file, not a pipe: a chatty client must never block on a full stderr pipe.
        stderr=errfile,
        text=True,
    )
    cell = CellRun(workload=workload, client=client, round=rnd, ok=False)
    cpu0 = t0 = None
    busy0: float | None = None
    busy1: float | None = None
    cores = [CLIENT_CORE, SERVER_CORE] if args.pin else None
    try:
        # Read the protocol lines; the sampling of the server's CPU brackets the measured window.
        import selectors

        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cell did not finish in {deadline - started:.0f}s")
            if not sel.select(remaining):
                continue
            line = proc.stdout.readline()
            if not line:
                break
            line = line.rstrip("\n")
            if line == "READY":
                cell.connected = True
            elif line == "MEASURE_START":
                cpu0, t0 = server.cpu_seconds(), time.monotonic()
                busy0 = _cores_busy_seconds(cores)
            elif line == "MEASURE_END":
                cpu1, t1 = server.cpu_seconds(), time.monotonic()
                busy1 = _cores_busy_seconds(cores)
                if cpu0 is not None and cpu1 is not None and t0 is not None and t1 > t0:
                    cell.server_cpu_pct = 100.0 * (cpu1 - cpu0) / (t1 - t0)
            elif line.startswith("RESULT "):
                cell.result = json.loads(line[len("RESULT ") :])
        sel.close()
        rc = proc.wait(max(0.1, deadline - time.monotonic()))
        stderr = _read_tail(errfile)
        if rc != 0 or not cell.result:
            cell.stderr_tail = stderr[-12000:]
        if rc == 0 and cell.result:
            cell.ok = True
            r = cell.result
            if r.get("elapsed_s"):
                cell.client_cpu_pct = 100.0 * r["client_cpu_s"] / r["elapsed_s"]
                if busy0 is not None and busy1 is not None and cell.server_cpu_pct is not None:
                    busy_pct = 100.0 * (busy1 - busy0) / r["elapsed_s"]
                    cell.other_cpu_pct = max(
                        0.0, busy_pct - cell.client_cpu_pct - cell.server_cpu_pct
                    )
        else:
            cell.error = _last_error(stderr) or f"exit {rc}"
    except (TimeoutError, subprocess.TimeoutExpired) as exc:
        cell.error = f"timeout: {exc}{' (after READY)' if cell.connected else ' (before READY)'}"
        # Ask the client where it is stuck (benchmarks/client.py: SIGUSR1 dumps the threads'
        # stacks, SIGUSR2 the asyncio tasks'); the dump lands in the JSON (stderr_tail).
        if proc.poll() is None:
            for sig in (signal.SIGUSR2, signal.SIGUSR1):
                proc.send_signal(sig)
                time.sleep(0.3)
        cell.stderr_tail = None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if cell.error and cell.stderr_tail is None:
            cell.stderr_tail = _read_tail(errfile)[-12000:]
        if proc.stdout is not None:
            proc.stdout.close()
        errfile.close()
    cell.wall_s = time.monotonic() - started
    return cell


def _cores_busy_seconds(cores: list[str] | None) -> float | None:
    """Busy (non-idle) CPU seconds of the given cores (all cores if None), from /proc/stat."""
    names = {f"cpu{c}" for c in cores} if cores else {"cpu"}
    total = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                parts = line.split()
                if parts and parts[0] in names:
                    # user nice system idle iowait irq softirq steal ...
                    v = [int(x) for x in parts[1:9]]
                    total += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    except (OSError, ValueError, IndexError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- report


def _fmt_rate(v: float | None) -> str:
    if v is None:
        return "n/a"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def _fmt_us(v: float | None) -> str:
    if v is None:
        return "n/a"
    if v >= 10_000:
        return f"{v / 1000:.0f} ms"
    if v >= 1000:
        return f"{v / 1000:.2f} ms"
    if v < 10:
        return f"{v:.1f} us"
    return f"{v:.0f} us"


def _fmt_pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f}%"


def _median(values: list[float | None]) -> float | None:
    vs = [v for v in values if v is not None]
    return statistics.median(vs) if vs else None


def summarize(
    cells: list[CellRun], workloads: list[str], clients: list[str], unavailable: dict[str, str]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for w in workloads:
        base = [c for c in cells if c.workload == w and c.client == BASELINE and c.ok]
        base_by_round = {c.round: c.result["rate"] for c in base}
        base_rate = _median([c.result["rate"] for c in base])
        for cl in clients:
            runs = [c for c in cells if c.workload == w and c.client == cl]
            ok = [c for c in runs if c.ok]
            row: dict[str, Any] = {"workload": w, "client": cl, "runs": len(ok)}
            if cl in unavailable:
                row["status"] = "n/a"
                row["reason"] = unavailable[cl]
            elif not ok:
                row["status"] = "failed" if runs else "skipped"
                row["reason"] = next((c.error for c in runs if c.error), None)
            else:
                row["status"] = "ok"
                rate = _median([c.result["rate"] for c in ok])
                row.update(
                    rate=rate,
                    rates=[c.result["rate"] for c in ok],
                    p50_us=_median([c.result["p50_us"] for c in ok]),
                    p99_us=_median([c.result["p99_us"] for c in ok]),
                    cpu_per_op_us=_median([c.result["cpu_per_op_us"] for c in ok]),
                    server_cpu_pct=_median([c.server_cpu_pct for c in ok]),
                    client_cpu_pct=_median([c.client_cpu_pct for c in ok]),
                    other_cpu_pct=_median([c.other_cpu_pct for c in ok]),
                    vs_baseline=(rate / base_rate) if (rate and base_rate) else None,
                )
                # Ratio in each round against the baseline of the same round: how stable it is.
                per_round = [
                    c.result["rate"] / base_by_round[c.round]
                    for c in ok
                    if base_by_round.get(c.round)
                ]
                row["round_ratios"] = per_round
                if len(ok) < len(runs):
                    row["reason"] = next((c.error for c in runs if c.error), None)
            rows.append(row)
    return rows


def render_table(rows: list[dict[str, Any]]) -> str:
    header = [
        "workload",
        "client",
        "rate/s",
        "vs grpc.aio",
        "ratio range",
        "p50",
        "p99",
        "CPU/op",
        "client CPU",
        "server CPU",
        "other CPU",
    ]
    lines = [header]
    for r in rows:
        label = CLIENT_LABELS.get(r["client"], r["client"])
        if r["status"] != "ok":
            lines.append([r["workload"], label, r["status"], *[""] * (len(header) - 3)])
            continue
        rr = r.get("round_ratios") or []
        ratio_range = f"{min(rr):.2f}-{max(rr):.2f}" if len(rr) > 1 else ""
        lines.append(
            [
                r["workload"],
                label,
                _fmt_rate(r["rate"]),
                f"{r['vs_baseline']:.2f}x" if r.get("vs_baseline") else "n/a",
                ratio_range,
                _fmt_us(r["p50_us"]),
                _fmt_us(r["p99_us"]),
                _fmt_us(r["cpu_per_op_us"]),
                _fmt_pct(r.get("client_cpu_pct")),
                _fmt_pct(r.get("server_cpu_pct")),
                _fmt_pct(r.get("other_cpu_pct")),
            ]
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    out = []
    for i, row in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(widths[j]) for j, c in enumerate(row)) + " |")
        if i == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("grpcio", "grpclib", "h2", "uvloop", "protobuf", "grpc-lite"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _git_rev() -> str | None:
    r = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    return r.stdout.strip() or None


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark grpc_lite against grpc.aio and grpclib on a grpc-go server.",
    )
    p.add_argument("--duration", type=float, default=3.0, help="measured seconds per cell (3)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell (1)")
    p.add_argument("--repeats", type=int, default=3, help="rounds; the median is reported (3)")
    p.add_argument(
        "--clients",
        default=",".join(ALL_CLIENTS),
        help=f"comma-separated subset of {','.join(ALL_CLIENTS)} (all)",
    )
    p.add_argument(
        "--workloads",
        default=",".join(DEFAULT_WORKLOADS),
        help="comma-separated, each unary:N or stream:N with N in flight on one connection, "
        f"or 'all' for {','.join(ALL_WORKLOADS)} ({','.join(DEFAULT_WORKLOADS)})",
    )
    p.add_argument(
        "--server",
        choices=["auto", "go", "grpcio"],
        default="auto",
        help="auto: grpc-go if it builds, else the grpcio fallback with a warning",
    )
    p.add_argument(
        "--max-time",
        type=float,
        default=900.0,
        help="bound on the whole run in seconds; cells that would pass it are skipped (900)",
    )
    p.add_argument(
        "--cell-timeout",
        type=float,
        default=30.0,
        help="seconds a cell may take beyond warm-up + duration before it is killed (30)",
    )
    p.add_argument("--no-pin", dest="pin", action="store_false", help="do not use taskset")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 round, 0.3 s + 1 s cells")
    p.add_argument("--json", type=Path, default=None, help="JSON output path (results/<ts>.json)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup, args.duration = 1, 0.3, 1.0
    args.client_list = [c.strip() for c in args.clients.split(",") if c.strip()]
    for c in args.client_list:
        if c not in ALL_CLIENTS:
            p.error(f"unknown client {c!r}")
    if BASELINE not in args.client_list:
        log(f"note: {BASELINE} not in --clients: no ratios")
    args.workload_list = (
        ALL_WORKLOADS
        if args.workloads == "all"
        else [w.strip() for w in args.workloads.split(",") if w.strip()]
    )
    for w in args.workload_list:
        kind, _, n = w.partition(":")
        if kind not in ("unary", "stream") or not n.isdigit() or int(n) < 1:
            p.error(f"bad workload {w!r} (want unary:N or stream:N)")
    return args


def _can_pin() -> bool:
    if shutil.which("taskset") is None:
        log("WARNING: taskset not found: client and server are not pinned")
        return False
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:
        cpus = set(range(os.cpu_count() or 1))
    if not {int(CLIENT_CORE), int(SERVER_CORE)} <= cpus:
        log(
            f"WARNING: cores {CLIENT_CORE},{SERVER_CORE} not both available"
            f" ({sorted(cpus)}): not pinning"
        )
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.pin:
        args.pin = _can_pin()
    run_started = time.monotonic()
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")

    unavailable: dict[str, str] = {}
    clients = list(args.client_list)
    for c in clients:
        reason = client_unavailable(c)
        if reason is not None:
            unavailable[c] = reason
            log(f"{CLIENT_LABELS[c]}: n/a ({reason})")
    runnable = [c for c in clients if c not in unavailable]
    # The baseline first in each round, so every other client is measured next to it.
    runnable.sort(key=lambda c: (c != BASELINE, ALL_CLIENTS.index(c)))

    plan = [(r, w, c) for r in range(args.repeats) for w in args.workload_list for c in runnable]
    cell_estimate = args.warmup + args.duration + 1.0
    cells: list[CellRun] = []
    truncated = 0
    # A client that cannot even connect is not tried again in this run (each try can cost
    # the whole cell timeout).
    broken: dict[str, str] = {}
    connect_failures: dict[str, int] = {}
    server = start_server(args.server, args.pin)
    try:
        log(
            f"server: {server.description} on {server.target}"
            f"{f' (pinned to core {SERVER_CORE})' if args.pin else ''}; "
            f"{len(plan)} cells of {args.warmup:g}+{args.duration:g} s, "
            f"about {len(plan) * cell_estimate / 60:.1f} min"
        )
        width = len(str(len(plan)))
        for i, (rnd, w, c) in enumerate(plan, 1):
            spent = time.monotonic() - run_started
            if spent + cell_estimate > args.max_time:
                truncated = len(plan) - i + 1
                log(f"time budget of {args.max_time:g}s reached: skipping {truncated} cells")
                break
            if server.proc.poll() is not None:
                raise SystemExit(f"server exited with {server.proc.returncode}")
            if c in broken:
                cells.append(CellRun(workload=w, client=c, round=rnd, ok=False, error=broken[c]))
                continue
            log(
                f"[{i:>{width}}/{len(plan)} {spent:5.0f}s] round {rnd + 1}/{args.repeats}"
                f"  {w:<10} {CLIENT_LABELS[c]:<20} ... ",
                end="",
            )
            cell = run_cell(server, c, w, rnd, args)
            cells.append(cell)
            if cell.ok:
                connect_failures[c] = 0
                log(
                    f"{_fmt_rate(cell.result['rate'])}/s  p50 {_fmt_us(cell.result['p50_us'])}"
                    f"  p99 {_fmt_us(cell.result['p99_us'])}"
                    f"  CPU client {_fmt_pct(cell.client_cpu_pct)}"
                    f" server {_fmt_pct(cell.server_cpu_pct)} other {_fmt_pct(cell.other_cpu_pct)}"
                )
            else:
                log(f"FAILED: {cell.error}")
                # Two connect failures in a row: skip the client's remaining cells (one
                # could be a passing hiccup, e.g. the tree being edited under the run).
                connect_failures[c] = 0 if cell.connected else connect_failures.get(c, 0) + 1
                if connect_failures[c] >= 2:
                    broken[c] = f"could not connect: {cell.error}"
                    log(f"{CLIENT_LABELS[c]}: not connecting, its remaining cells are skipped")
    finally:
        server.stop()

    rows = summarize(cells, args.workload_list, clients, unavailable)
    table = render_table(rows)
    total = time.monotonic() - run_started
    print()
    pinning = (
        f"pinned client core {CLIENT_CORE} / server core {SERVER_CORE}"
        if args.pin
        else "not pinned"
    )
    print(
        f"server: {server.description}; client: Python {platform.python_version()}, {pinning}; "
        f"medians of {args.repeats} x {args.duration:g} s (after {args.warmup:g} s warm-up)"
    )
    print(table)
    print(
        "rate/s: RPCs per second (unary) or messages per second (stream); p50/p99: per-RPC latency "
        "(unary) or gap between messages (stream);\nratio range: per-round ratio to grpc.aio; "
        "CPU/op: client process CPU time per RPC or message;\n"
        "client/server CPU: % of its one core; "
        "other CPU: what else ran on the two cores (other processes, softirq), in % of one core."
    )
    for c, reason in unavailable.items():
        print(f"  {CLIENT_LABELS[c]}: n/a: {reason}")
    notes: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        if r["client"] not in unavailable and r.get("reason"):
            reason = r["reason"].removeprefix("could not connect: ")
            notes.setdefault((r["client"], reason), []).append(r["workload"])
    for (c, reason), wls in notes.items():
        print(f"  {CLIENT_LABELS[c]} ({', '.join(wls)}): {reason}")
    hot = [r for r in rows if (r.get("server_cpu_pct") or 0) > 90]
    if hot:
        print(
            "WARNING: the server used >90% of its core in "
            + ", ".join(f"{r['workload']}/{r['client']}" for r in hot)
            + ": it may be the bottleneck there"
        )
    noisy = [r for r in rows if (r.get("other_cpu_pct") or 0) > 25]
    if noisy:
        print(
            "WARNING: other work used >25% of a core during "
            + ", ".join(f"{r['workload']}/{r['client']}" for r in noisy)
            + ": the machine was busy, expect noise"
        )
    if server.kind != "grpc-go":
        print("WARNING: fallback grpcio server: figures are not comparable with grpc-go runs")
    if truncated:
        print(f"WARNING: time budget reached, {truncated} cells skipped")

    out = args.json or RESULTS_DIR / f"{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "timestamp": stamp,
        "git_rev": _git_rev(),
        "server": {"kind": server.kind, "description": server.description},
        "machine": {"cpu": _cpu_model(), "cores": os.cpu_count(), "pinned": args.pin},
        "versions": _versions(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeats": args.repeats,
            "workloads": args.workload_list,
            "clients": clients,
            "max_time_s": args.max_time,
        },
        "total_s": total,
        "truncated_cells": truncated,
        "summary": rows,
        "cells": [cell.__dict__ for cell in cells],
        "table": table,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    shown = out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out
    print(f"results: {shown} ({total:.0f} s)")
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):
        # `python benchmarks/run.py`: make `benchmarks` importable for the clients' `-m`.
        sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())

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
# The fixed cost of a server and little else (benchmarks/h2echo/main.go): for measuring
# a load generator's scaling over cores when the server must share them.
H2ECHO_SRC = BENCH_DIR / "h2echo" / "main.go"
H2ECHO_BIN = BUILD_DIR / "h2echo"
# The Go module of both programs: it pins grpc-go (go.sum committed).
GO_MOD = BENCH_DIR / "go.mod"
GO_SUM = BENCH_DIR / "go.sum"
GO_INSTALL_HINT = "Go >= 1.26 from https://go.dev/dl/ (benchmarks/go.mod pins grpc-go)"
GO_BUILD_HINT = (
    "needs Go >= 1.26, and the Go module proxy or a module cache holding the pinned grpc-go"
)

BASELINE = "grpc_aio"
ALL_CLIENTS = [
    "grpc_lite",
    "grpc_lite_uvloop",
    "grpc_lite_otel",
    "grpc_aio",
    "grpc_aio_uvloop",
    "grpclib",
    "grpc_go",
]
ALL_WORKLOADS = [
    "unary:1",
    "unary:10",
    "unary:100",
    "stream:1",
    "download:1",
    "upload:1",
    "rr:100",
]
DEFAULT_WORKLOADS = ALL_WORKLOADS
WORKLOAD_KINDS = ("unary", "stream", "upload", "download", "rr")
CLIENT_LABELS = {
    "grpc_lite": "grpc_lite (asyncio)",
    "grpc_lite_uvloop": "grpc_lite (uvloop)",
    "grpc_lite_otel": "grpc_lite + OTel metrics",
    "grpc_aio": "grpc.aio (asyncio)",
    "grpc_aio_uvloop": "grpc.aio (uvloop)",
    "grpclib": "grpclib",
    "grpc_go": "grpc-go (reference)",
}
# (client, workload kind) pairs that cannot run, and why: shown as n/a in the table.
UNSUPPORTED = {
    ("grpclib", "rr"): "grpclib has no name resolution, load balancing or retry policy "
    "(one host:port per Channel)",
}
# The rr workload's three backends: the main server (127.0.0.1) and two more.
RR_HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
CLIENT_CORE = "0"
SERVER_CORE = "1"


def log(msg: str = "", end: str = "\n") -> None:
    sys.stderr.write(msg + end)
    sys.stderr.flush()


# --------------------------------------------------------------------------- server


@dataclass
class Server:
    kind: str  # "grpc-go", "grpcio" or "h2echo"
    proc: subprocess.Popen[str]
    port: int
    description: str
    host: str = "127.0.0.1"

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

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
    """None if the grpc-go programs can be built, else the reason."""
    if shutil.which("go") is None:
        return f"`go` not found (install {GO_INSTALL_HINT})"
    if not (GO_MOD.is_file() and GO_SUM.is_file()):
        return f"{GO_MOD.relative_to(REPO_ROOT)} or go.sum missing"
    return None


def build_go(src: Path = GO_SRC, binary: Path = GO_BIN) -> Path:
    """Build one Go program against the grpc-go pinned in benchmarks/go.mod, unless the
    binary is newer than its main.go, go.mod and go.sum. The first build downloads the
    pinned modules through the Go module proxy (GOPROXY) unless they are in the module
    cache; ``-mod=readonly``: the committed go.sum decides every version."""
    sources = (src, GO_MOD, GO_SUM)
    if binary.exists() and binary.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return binary
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    log(f"building {src.relative_to(REPO_ROOT)} -> {binary.relative_to(REPO_ROOT)}")
    subprocess.run(
        ["go", "build", "-mod=readonly", "-o", str(binary), f"./{src.parent.name}"],
        cwd=BENCH_DIR,
        env=dict(os.environ, GO111MODULE="on"),
        check=True,
        timeout=600,
    )
    return binary


def _pin(core: str, cmd: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", core, *cmd] if pin else cmd


def start_server(kind: str, pin: bool, host: str = "127.0.0.1") -> Server:
    if kind == "h2echo":
        reason = _go_available()
        if reason is not None:
            raise SystemExit(f"h2echo unavailable: {reason}")
        binary = build_go(H2ECHO_SRC, H2ECHO_BIN)
        desc = "h2echo (benchmarks/h2echo: a frame-level unary echo, not a full gRPC server)"
        return _start(kind, [str(binary), "-addr", f"{host}:0"], desc, pin, host)
    if kind in ("auto", "go"):
        reason = _go_available()
        if reason is None:
            try:
                binary = build_go()
            except (subprocess.SubprocessError, OSError) as exc:
                reason = f"go build failed ({GO_BUILD_HINT}): {exc}"
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
        cmd = [str(binary), "-addr", f"{host}:0"]
        server_kind = "grpc-go"
        desc = _go_server_description()
    else:
        cmd = [sys.executable, str(BENCH_DIR / "pyserver.py"), "--addr", f"{host}:0"]
        server_kind = "grpcio"
        import grpc

        desc = f"grpcio {grpc.__version__} grpc.aio server (fallback)"
    return _start(server_kind, cmd, desc, pin, host)


def _start(server_kind: str, cmd: list[str], desc: str, pin: bool, host: str) -> Server:
    """Start a server on the server core; it prints "LISTENING <port>" when it listens."""
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
    return Server(kind=server_kind, proc=proc, port=port, description=desc, host=host)


def _go_server_description() -> str:
    """grpc-go's version as built into the server binary, and the Go toolchain."""
    version = "?"
    info = subprocess.run(["go", "version", "-m", str(GO_BIN)], capture_output=True, text=True)
    for line in info.stdout.splitlines():
        fields = line.split()
        if fields[:2] == ["dep", "google.golang.org/grpc"] and len(fields) >= 3:
            version = fields[2].removeprefix("v")
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
                reason = f"go build failed ({GO_BUILD_HINT}): {exc}"
        return reason
    probes = {
        "grpc_lite": "import grpc_lite; grpc_lite.insecure_channel",
        "grpc_lite_uvloop": "import uvloop, grpc_lite; grpc_lite.insecure_channel",
        "grpc_lite_otel": "import grpc_lite.opentelemetry, opentelemetry.sdk.metrics",
        "grpc_aio": "import grpc.aio",
        "grpc_aio_uvloop": "import uvloop, grpc.aio",
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


def _servers_cpu(servers: list[Server]) -> float | None:
    total = 0.0
    for s in servers:
        v = s.cpu_seconds()
        if v is None:
            return None
        total += v
    return total


def run_cell(
    servers: list[Server], client: str, workload: str, rnd: int, args: argparse.Namespace
) -> CellRun:
    """One cell; ``servers`` is the main server, or the three rr backends for ``rr:N``."""
    runner = (
        [str(GO_CLIENT_BIN)]
        if client == "grpc_go"
        else [sys.executable, "-m", "benchmarks.client", "--client", client]
    )
    if workload.startswith("rr:"):
        from benchmarks.client import RR_SERVICE_CONFIG

        target = "ipv4:" + ",".join(s.target for s in servers)
        if client == "grpc_go":
            runner += ["--service-config", RR_SERVICE_CONFIG]
    else:
        target = servers[0].target
    cmd = [
        *runner,
        "--workload",
        workload,
        "--target",
        target,
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
                cpu0, t0 = _servers_cpu(servers), time.monotonic()
                busy0 = _cores_busy_seconds(cores)
            elif line == "MEASURE_END":
                cpu1, t1 = _servers_cpu(servers), time.monotonic()
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


def _kind(workload: str) -> str:
    return workload.partition(":")[0]


def _metric(cell: CellRun, name: str) -> float | None:
    r = cell.result
    if name == "rate":
        return r.get("rate")
    if name == "mbps":
        return r["rate"] * r["bytes_per_op"] / 1e6 if r.get("bytes_per_op") else None
    if name == "cpu10k":  # client CPU seconds per 10k RPCs (or messages)
        v = r.get("cpu_per_op_us")
        return v / 100.0 if v is not None else None
    return r.get(name)  # p50_us, p99_us, cpu_per_op_us


# metric -> key of its ratio to the baseline in a summary row
_RATIOS = {"rate": "vs_baseline", "p50_us": "p50_vs_baseline", "cpu10k": "cpu_vs_baseline"}


def _ratio_to(
    cells: list[CellRun], workload: str, client: str, ref: str, metric: str
) -> tuple[float | None, list[float]]:
    """(ratio of the medians, per-round ratios) of `client` to `ref` for one metric."""
    mine = [c for c in cells if c.workload == workload and c.client == client and c.ok]
    refs = [c for c in cells if c.workload == workload and c.client == ref and c.ok]
    a = _median([_metric(c, metric) for c in mine])
    b = _median([_metric(c, metric) for c in refs])
    ref_by_round = {c.round: _metric(c, metric) for c in refs}
    per_round = []
    for c in mine:
        v, rv = _metric(c, metric), ref_by_round.get(c.round)
        if v is not None and rv:
            per_round.append(v / rv)
    return (a / b if a is not None and b else None), per_round


def summarize(
    cells: list[CellRun], workloads: list[str], clients: list[str], unavailable: dict[str, str]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for w in workloads:
        for cl in clients:
            runs = [c for c in cells if c.workload == w and c.client == cl]
            ok = [c for c in runs if c.ok]
            row: dict[str, Any] = {"workload": w, "client": cl, "runs": len(ok)}
            if cl in unavailable:
                row["status"] = "n/a"
                row["reason"] = unavailable[cl]
            elif (cl, _kind(w)) in UNSUPPORTED:
                row["status"] = "n/a"
                row["reason"] = UNSUPPORTED[(cl, _kind(w))]
            elif not ok:
                row["status"] = "failed" if runs else "skipped"
                row["reason"] = next((c.error for c in runs if c.error), None)
            else:
                row["status"] = "ok"
                row.update(
                    rate=_median([c.result["rate"] for c in ok]),
                    rates=[c.result["rate"] for c in ok],
                    mbps=_median([_metric(c, "mbps") for c in ok]),
                    p50_us=_median([c.result["p50_us"] for c in ok]),
                    p99_us=_median([c.result["p99_us"] for c in ok]),
                    cpu_per_op_us=_median([c.result["cpu_per_op_us"] for c in ok]),
                    cpu_s_per_10k=_median([_metric(c, "cpu10k") for c in ok]),
                    server_cpu_pct=_median([c.server_cpu_pct for c in ok]),
                    client_cpu_pct=_median([c.client_cpu_pct for c in ok]),
                    other_cpu_pct=_median([c.other_cpu_pct for c in ok]),
                )
                for metric, key in _RATIOS.items():
                    ratio, per_round = _ratio_to(cells, w, cl, BASELINE, metric)
                    row[key] = ratio
                    # Ratio in each round against the baseline of the same round: stability.
                    row[key.replace("vs_baseline", "round_ratios")] = per_round
                if len(ok) < len(runs):
                    row["reason"] = next((c.error for c in runs if c.error), None)
            rows.append(row)
    return rows


def _fmt_ratio(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}x"


def _fmt_range(rr: list[float] | None) -> str:
    return f"{min(rr):.2f}-{max(rr):.2f}" if rr and len(rr) > 1 else ""


def _fmt_row_rate(r: dict[str, Any]) -> str:
    if r.get("mbps") is not None:
        return f"{r['mbps']:.0f} MB/s"
    unit = "msg/s" if _kind(r["workload"]) == "stream" else "RPC/s"
    return f"{_fmt_rate(r['rate'])} {unit}"


def render_table(rows: list[dict[str, Any]]) -> str:
    header = [
        "workload",
        "client",
        "rate",
        "vs grpc.aio",
        "ratio range",
        "p50",
        "p50 vs aio",
        "p99",
        "CPU s/10k",
        "CPU vs aio",
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
        cpu10k = r.get("cpu_s_per_10k")
        lines.append(
            [
                r["workload"],
                label,
                _fmt_row_rate(r),
                _fmt_ratio(r.get("vs_baseline")),
                _fmt_range(r.get("round_ratios")),
                _fmt_us(r["p50_us"]),
                _fmt_ratio(r.get("p50_vs_baseline")),
                _fmt_us(r["p99_us"]),
                "n/a" if cpu10k is None else f"{cpu10k:.2f} s",
                _fmt_ratio(r.get("cpu_vs_baseline")),
                _fmt_pct(r.get("client_cpu_pct")),
                _fmt_pct(r.get("server_cpu_pct")),
                _fmt_pct(r.get("other_cpu_pct")),
            ]
        )
    return _markdown(lines)


def _markdown(lines: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    out = []
    for i, row in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(widths[j]) for j, c in enumerate(row)) + " |")
        if i == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


# --------------------------------------------------------------------------- targets

# The issues' target table (grpc_lite on asyncio unless a 7th item names the client):
# (label, workload, metric, reference client, comparison, threshold[, client])
TARGETS: list[tuple[Any, ...]] = [
    ("unary, 100 in flight, RPC/s", "unary:100", "rate", "grpc_aio", ">=", 3.0),
    ("unary, 1 in flight, p50 latency", "unary:1", "p50_us", "grpc_aio", "<=", 0.6),
    ("unary, round_robin x3 + retry, RPC/s", "rr:100", "rate", "grpc_aio", ">=", 2.5),
    ("server streaming, messages/s", "stream:1", "rate", "grpc_aio", ">=", 5.0),
    ("1 MiB response, MB/s", "download:1", "rate", "grpc_aio", ">=", 1.5),
    ("1 MiB request, MB/s", "upload:1", "rate", "grpc_aio", ">=", 0.8),
    ("client CPU per 10k unary at 100 in flight", "unary:100", "cpu10k", "grpc_aio", "<=", 0.35),
    ("unary, 100 in flight, vs grpclib", "unary:100", "rate", "grpclib", ">=", 6.0),
    # issue 15: OpenTelemetry metrics on (every A66/A96/A94/A78 metric, the SDK as it comes)
    (
        "unary, 100 in flight, OTel metrics on, RPC/s",
        "unary:100",
        "rate",
        "grpc_aio",
        ">=",
        2.0,
        "grpc_lite_otel",
    ),
]
TARGET_CLIENT = "grpc_lite"


def evaluate_targets(cells: list[CellRun], workloads: list[str]) -> list[dict[str, Any]]:
    out = []
    for label, w, metric, ref, op, threshold, *client in TARGETS:
        item: dict[str, Any] = {
            "target": label,
            "workload": w,
            "metric": metric,
            "reference": ref,
            "want": f"{op} {threshold:g}x",
        }
        if w not in workloads:
            item.update(status="not run", ratio=None, round_ratios=[])
        else:
            who = client[0] if client else TARGET_CLIENT
            ratio, per_round = _ratio_to(cells, w, who, ref, metric)
            item.update(ratio=ratio, round_ratios=per_round)
            if ratio is None:
                item["status"] = "no data"
            else:
                met = ratio >= threshold if op == ">=" else ratio <= threshold
                item["status"] = "met" if met else "MISSED"
        out.append(item)
    return out


def render_targets(targets: list[dict[str, Any]]) -> str:
    lines = [["target (grpc_lite asyncio)", "vs", "want", "measured", "per round", "status"]]
    for t in targets:
        lines.append(
            [
                t["target"],
                CLIENT_LABELS.get(t["reference"], t["reference"]),
                t["want"],
                _fmt_ratio(t["ratio"]),
                " ".join(f"{v:.2f}" for v in t["round_ratios"]),
                t["status"],
            ]
        )
    return _markdown(lines)


# --------------------------------------------------------------------------- chart


def write_chart(rows: list[dict[str, Any]], workloads: list[str], path: Path, title: str) -> bool:
    """A PNG: one panel per workload, a bar per client, labelled with the ratio to grpc.aio.

    Returns False (and prints a note) when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib not installed (pip install -e '.[bench]'): no PNG chart")
        return False
    panels: list[tuple[str, str, str]] = []  # (workload, metric key, y label)
    for w in workloads:
        kind = _kind(w)
        if kind in ("upload", "download"):
            panels.append((w, "mbps", "MB/s"))
        else:
            panels.append((w, "rate", "messages/s" if kind == "stream" else "RPC/s"))
        if w == "unary:1":
            panels.append((w, "p50_us", "p50 latency (us), lower is better"))
        if w == "unary:100":
            panels.append((w, "cpu_s_per_10k", "client CPU s / 10k RPCs, lower is better"))
    ncols = 3
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.6 * nrows), squeeze=False)
    ratio_key = {
        "rate": "vs_baseline",
        "mbps": "vs_baseline",
        "p50_us": "p50_vs_baseline",
        "cpu_s_per_10k": "cpu_vs_baseline",
    }
    palette = ["#1f77b4", "#6baed6", "#d62728", "#ff9896", "#2ca02c", "#7f7f7f"]
    for ax, (w, key, ylabel) in zip(axes.flat, panels, strict=False):
        rs = [r for r in rows if r["workload"] == w]
        names, values, notes, colors = [], [], [], []
        for r in rs:
            names.append(CLIENT_LABELS.get(r["client"], r["client"]).replace(" (", "\n("))
            colors.append(palette[ALL_CLIENTS.index(r["client"]) % len(palette)])
            if r["status"] == "ok" and r.get(key) is not None:
                values.append(r[key])
                ratio = r.get(ratio_key[key])
                notes.append(f"{ratio:.2f}x" if ratio is not None else "")
            else:
                values.append(0)
                notes.append(r["status"])
        bars = ax.bar(range(len(values)), values, color=colors)
        for b, note in zip(bars, notes, strict=True):
            ax.annotate(
                note,
                (b.get_x() + b.get_width() / 2, b.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_xticks(range(len(names)), names, fontsize=7)
        ax.set_title(f"{w}: {ylabel.split(',')[0]}", fontsize=10)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.margins(y=0.15)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title + "  (labels: ratio to grpc.aio asyncio)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


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
        default="all",
        help="comma-separated, each KIND:N with N in flight on one connection, KIND one of "
        f"{', '.join(WORKLOAD_KINDS)}; or 'all' (the default: {','.join(DEFAULT_WORKLOADS)})",
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
        default=1500.0,
        help="bound on the whole run in seconds; cells that would pass it are skipped (1500)",
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
        if kind not in WORKLOAD_KINDS or not n.isdigit() or int(n) < 1:
            p.error(f"bad workload {w!r} (want KIND:N, KIND one of {', '.join(WORKLOAD_KINDS)})")
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
    load_before = os.getloadavg()
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

    plan = [
        (r, w, c)
        for r in range(args.repeats)
        for w in args.workload_list
        for c in runnable
        if (c, _kind(w)) not in UNSUPPORTED
    ]
    cell_estimate = args.warmup + args.duration + 1.0
    cells: list[CellRun] = []
    truncated = 0
    # A client that cannot even connect is not tried again in this run (each try can cost
    # the whole cell timeout).
    broken: dict[str, str] = {}
    connect_failures: dict[str, int] = {}
    server = start_server(args.server, args.pin)
    rr_servers = [server]
    try:
        if any(_kind(w) == "rr" for w in args.workload_list):
            # Two more backends on other loopback addresses, on the server core too.
            kind = "go" if server.kind == "grpc-go" else "grpcio"
            for host in RR_HOSTS[1:]:
                rr_servers.append(start_server(kind, args.pin, host=host))
            log("rr backends: " + ", ".join(s.target for s in rr_servers))
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
            for s in rr_servers:
                if s.proc.poll() is not None:
                    raise SystemExit(f"server {s.target} exited with {s.proc.returncode}")
            if c in broken:
                cells.append(CellRun(workload=w, client=c, round=rnd, ok=False, error=broken[c]))
                continue
            log(
                f"[{i:>{width}}/{len(plan)} {spent:5.0f}s] round {rnd + 1}/{args.repeats}"
                f"  {w:<10} {CLIENT_LABELS[c]:<20} ... ",
                end="",
            )
            cell = run_cell(rr_servers if _kind(w) == "rr" else [server], c, w, rnd, args)
            cells.append(cell)
            if cell.ok:
                connect_failures[c] = 0
                mbps = _metric(cell, "mbps")
                log(
                    (
                        f"{mbps:.0f} MB/s"
                        if mbps is not None
                        else f"{_fmt_rate(cell.result['rate'])}/s"
                    )
                    + f"  p50 {_fmt_us(cell.result['p50_us'])}"
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
        for s in reversed(rr_servers):
            s.stop()

    load_after = os.getloadavg()
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
    print(
        f"machine: {_cpu_model()}, {os.cpu_count()} cores; load average (1/5/15 min) "
        f"before {' '.join(f'{v:.2f}' for v in load_before)}, "
        f"after {' '.join(f'{v:.2f}' for v in load_after)}"
    )
    print(table)
    print(
        "rate: RPC/s (unary, rr), messages/s (stream), MB/s of 1 MiB payloads (upload, download);"
        " vs grpc.aio: ratio to grpc.aio (asyncio) of the medians;\n"
        "ratio range: per-round ratio to grpc.aio in the same round; p50/p99: per-RPC latency "
        "(unary) or gap between messages (stream);\n"
        "CPU s/10k: client process CPU seconds (getrusage, all threads) per 10k RPCs or messages;"
        "\nclient/server CPU: % of its one core (rr: the 3 backends together); "
        "other CPU: what else ran on the two cores (other processes, softirq), in % of one core."
    )
    for c, reason in unavailable.items():
        print(f"  {CLIENT_LABELS[c]}: n/a: {reason}")
    for (c, k), reason in UNSUPPORTED.items():
        if c in clients and c not in unavailable and any(_kind(w) == k for w in args.workload_list):
            print(f"  {CLIENT_LABELS[c]} ({k}): n/a: {reason}")
    notes: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        if r["client"] not in unavailable and r["status"] != "n/a" and r.get("reason"):
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

    targets = evaluate_targets(cells, args.workload_list)
    print()
    print("targets (issue 6), grpc_lite on asyncio against the reference in the same run:")
    print(render_targets(targets))
    met = sum(t["status"] == "met" for t in targets)
    print(f"{met}/{len(targets)} targets met")

    out = args.json or RESULTS_DIR / f"{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "timestamp": stamp,
        "git_rev": _git_rev(),
        "server": {"kind": server.kind, "description": server.description},
        "machine": {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "pinned": args.pin,
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        },
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
        "targets": targets,
        "cells": [cell.__dict__ for cell in cells],
        "table": table,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    shown = out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out
    png = out.with_suffix(".png")
    title = f"grpc_lite benchmarks {stamp} ({_cpu_model() or platform.machine()}, {server.kind})"
    if write_chart(rows, args.workload_list, png, title):
        shown_png = png.relative_to(REPO_ROOT) if png.is_relative_to(REPO_ROOT) else png
        print(f"chart: {shown_png}")
    print(f"results: {shown} ({total:.0f} s)")
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):
        # `python benchmarks/run.py`: make `benchmarks` importable for the clients' `-m`.
        sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())

"""``grpc-lite load`` for real: subprocesses against grpc_lite.testing.Backend (issue 18).

Each test starts its Backend on the test's loop and runs the command with
``asyncio.create_subprocess_exec``, so the server answers while the command runs.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from grpc_lite import StatusCode
from grpc_lite.testing import Backend
from tests.e2e.load._cli import SAY_HELLO, load, record_greeter

pytestmark = [pytest.mark.integration]

GREETER = "helloworld.Greeter/SayHello"
REPO = Path(__file__).resolve().parents[3]
HELLO_PROTO = REPO / "proto" / "helloworld" / "helloworld.proto"
GHZ_KEYS = {
    "date",
    "endReason",
    "options",
    "count",
    "total",
    "average",
    "fastest",
    "slowest",
    "rps",
    "errorDistribution",
    "statusCodeDistribution",
    "latencyDistribution",
    "histogram",
    "details",
}


@pytest.fixture
async def backend() -> Backend:  # type: ignore[misc]
    async with Backend() as b:
        yield b


async def test_unary_through_reflection_ghz_json(backend: Backend) -> None:
    """Types from reflection; -O json is ghz's schema, durations in ns; the server saw
    exactly -n calls."""
    out = await load(
        backend.address, "--insecure", "--call", GREETER, "-d", '{"name": "x"}',
        "-n", "300", "-c", "10", "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = out.json()
    assert set(report) >= GHZ_KEYS
    assert report["count"] == 300
    assert backend.calls[SAY_HELLO] == 300
    assert report["statusCodeDistribution"] == {"OK": 300}
    assert report["errorDistribution"] == {}
    assert report["endReason"] == "normal"
    for key in ("total", "average", "fastest", "slowest"):
        assert isinstance(report[key], int) and report[key] > 0
    assert report["fastest"] <= report["average"] <= report["slowest"] < report["total"]
    assert report["rps"] == pytest.approx(300 / (report["total"] / 1e9))
    assert [d["percentage"] for d in report["latencyDistribution"]] == [10, 25, 50, 75, 90, 95, 99]
    lat = [d["latency"] for d in report["latencyDistribution"]]
    assert lat == sorted(lat) and report["fastest"] <= lat[0] and lat[-1] <= report["slowest"]
    hist = report["histogram"]
    assert len(hist) == 11 and sum(b["count"] for b in hist) == 300
    assert hist[0]["mark"] == report["fastest"] / 1e9
    assert sum(b["frequency"] for b in hist) == pytest.approx(1.0)
    assert report["options"]["call"] == "helloworld.Greeter.SayHello"
    assert report["options"]["total"] == 300 and report["options"]["concurrency"] == 10
    lite = report["grpcLite"]
    assert lite["latencyDistribution"][-1]["percentage"] == 99.9
    assert lite["backends"] == {backend.address: {"attempts": 300, "ok": 300, "failed": 0}}
    assert lite["hdrHistogram"]  # HdrHistogram's standard encoding


async def test_summary_is_ghz_layout(backend: Backend) -> None:
    out = await load(
        backend.address, "--insecure", "--call", GREETER, "-n", "50", "-c", "5", "--cpus", "1"
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for heading in (
        "Summary:",
        "  Count:\t50",
        "  Requests/sec:\t",
        "Response time histogram:",
        "Latency distribution:",
        "  99.9 % in ",
        "Status code distribution:",
        "  [OK]   50 responses",
    ):
        assert heading in text, heading
    assert len(re.findall(r"^  \d+\.\d{3}\s+\[\d+\]\s+\|", text, re.M)) == 11
    assert "Error distribution:" not in text


async def test_templates_and_metadata_with_two_processes(backend: Backend) -> None:
    """{{.RequestNumber}} is global across --cpus 2 processes: every number once;
    metadata templates render per call."""
    seen = record_greeter(backend)
    out = await load(
        backend.address, "--insecure", "--call", GREETER,
        "-d", '{"name": "{{.RequestNumber}}-{{.WorkerID}}"}',
        "-m", '{"x-req": "{{.RequestNumber}}", "x-fixed": "yes"}',
        "-n", "200", "-c", "8", "--cpus", "2", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.json()["count"] == 200
    numbers = sorted(int(n.split("-")[0]) for n in seen.names)
    assert numbers == list(range(200))
    assert {n.split("-", 1)[1][:3] for n in seen.names} == {"g0c", "g1c"}
    assert all(md["x-fixed"] == "yes" for md in seen.metadata)
    assert sorted(int(md["x-req"]) for md in seen.metadata) == list(range(200))
    assert out.json()["options"]["CPUs"] == 2


async def test_proto_with_import_paths_and_protoset(backend: Backend, tmp_path: Path) -> None:
    """--proto + -i compiles the file; --protoset reads a compiled set: no reflection."""
    copy = tmp_path / "protos" / "helloworld.proto"
    copy.parent.mkdir()
    copy.write_text(HELLO_PROTO.read_text())
    out = await load(
        backend.address, "--insecure", "--call", GREETER, "--proto", "helloworld.proto",
        "-i", str(copy.parent), "-n", "20", "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.json()["count"] == 20
    assert out.json()["options"]["proto"] == "helloworld.proto"

    from grpc_tools import protoc

    protoset = tmp_path / "hello.protoset"
    assert (
        protoc.main(["protoc", f"-I{copy.parent}", f"-o{protoset}", "--include_imports", str(copy)])
        == 0
    )
    out = await load(
        backend.address, "--insecure", "--call", GREETER, "--protoset", str(protoset),
        "-n", "20", "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.json()["count"] == 20
    assert backend.calls[SAY_HELLO] == 40


async def test_data_from_stdin_and_file(backend: Backend, tmp_path: Path) -> None:
    seen = record_greeter(backend)
    out = await load(
        backend.address, "--insecure", "--call", GREETER, "-d", "@", "-n", "3", "--cpus", "1",
        stdin=b'{"name": "from-stdin"}',
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = tmp_path / "data.json"
    data.write_text('[{"name": "a"}, {"name": "b"}]')
    out = await load(
        backend.address, "--insecure", "--call", GREETER, "-D", str(data), "-n", "4",
        "-c", "1", "--cpus", "1",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    # An array for a unary method: element RequestNumber % len, as ghz.
    assert seen.names == ["from-stdin"] * 3 + ["a", "b", "a", "b"]


async def test_failed_calls_exit_1_with_ghz_error_distribution(backend: Backend) -> None:
    backend.fail_next(5, StatusCode.UNAVAILABLE, "try later", method=SAY_HELLO)
    out = await load(
        backend.address, "--insecure", "--call", GREETER, "-n", "40", "-c", "2",
        "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 1
    assert "5 of 40 calls failed" in out.stderr
    report = out.json()
    assert report["statusCodeDistribution"] == {"OK": 35, "Unavailable": 5}
    assert report["errorDistribution"] == {"rpc error: code = Unavailable desc = try later": 5}
    assert sum(b["count"] for b in report["histogram"]) == 35  # OK calls only, as ghz


async def test_asserts_decide_the_exit_status(backend: Backend) -> None:
    backend.fail_next(2, StatusCode.INTERNAL, "boom", method=SAY_HELLO)
    args = [backend.address, "--insecure", "--call", GREETER, "-n", "100", "--cpus", "1"]
    ok = await load(*args, "--assert", "errors<5%", "--assert", "p99<10s,rps>1")
    assert ok.returncode == 0, ok.stderr
    backend.fail_next(2, StatusCode.INTERNAL, "boom", method=SAY_HELLO)
    broken = await load(*args, "--assert", "p50<1ns,errors<=1")
    assert broken.returncode == 1
    lines = [ln for ln in broken.stderr.splitlines() if "assert failed" in ln]
    assert len(lines) == 2
    assert "p50<1ns (measured" in lines[0] and "errors<=1 (measured 2)" in lines[1]


async def test_open_model_rate(backend: Backend) -> None:
    """--rps schedules calls on the clock: 200/s for 1.5 s is 300 calls at ~200/s."""
    out = await load(
        backend.address, "--insecure", "--call", GREETER, "--rps", "200", "-z", "1500ms",
        "-c", "10", "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = out.json()
    assert report["count"] == 300
    assert report["endReason"] == "timeout"
    assert report["rps"] == pytest.approx(200, rel=0.05)
    lag = report["grpcLite"]["sendLag"]
    assert lag["p50"] < 2_000_000  # the sends left on time
    assert report["grpcLite"]["openModel"] is True


async def test_busy_poll_reaches_every_worker_process(backend: Backend) -> None:
    """--busy-poll: each worker process's loop polled instead of blocking, and the report
    says so (options and grpcLite); without it, neither does."""
    common = [
        backend.address, "--insecure", "--call", GREETER, "--rps", "100", "-z", "1s",
        "-c", "4", "--cpus", "2", "-O", "json",
    ]  # fmt: skip
    busy = await load(*common, "--busy-poll")
    assert busy.returncode == 0, busy.stderr
    report = busy.json()
    assert report["count"] == 100 and report["grpcLite"]["cpus"] == 2
    assert report["grpcLite"]["busyPoll"] is True
    assert report["options"]["busy-poll"] is True
    plain = await load(*common)
    assert plain.returncode == 0, plain.stderr
    assert plain.json()["grpcLite"]["busyPoll"] is False
    assert "busy-poll" not in plain.json()["options"]


async def test_skip_first_and_connections(backend: Backend) -> None:
    before = backend.connections_accepted
    out = await load(
        backend.address, "--insecure", "--call", GREETER, "-n", "100", "--skipFirst", "10",
        "--connections", "3", "-c", "6", "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.json()["count"] == 90
    assert backend.calls[SAY_HELLO] == 100
    # Three load connections plus the one that checked the target and read reflection.
    assert backend.connections_accepted - before == 4


async def test_server_streaming_counts_messages(backend: Backend) -> None:
    data = json.dumps({"response_parameters": [{"size": 8}] * 5})
    out = await load(
        backend.address, "--insecure", "--call", "grpc.testing.TestService/StreamingOutputCall",
        "-d", data, "-n", "20", "-c", "4", "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lite = out.json()["grpcLite"]
    assert lite["kind"] == "server-streaming"
    assert lite["messagesReceived"] == 100
    # --stream-call-count ends each call after 2 messages; such calls count as OK.
    out = await load(
        backend.address, "--insecure", "--call", "grpc.testing.TestService/StreamingOutputCall",
        "-d", data, "-n", "20", "-c", "4", "--stream-call-count", "2", "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.json()["grpcLite"]["messagesReceived"] == 40
    assert out.json()["statusCodeDistribution"] == {"OK": 20}


async def test_client_streaming_and_bidi(backend: Backend) -> None:
    items = json.dumps([{"payload": {"body": "AAAA"}}] * 3)
    out = await load(
        backend.address, "--insecure", "--call", "grpc.testing.TestService/StreamingInputCall",
        "-d", items, "-n", "10", "-c", "2", "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.json()["grpcLite"]["messagesSent"] == 30
    bidi = json.dumps([{"response_parameters": [{"size": 1}]}] * 2)
    out = await load(
        backend.address, "--insecure", "--call", "grpc.testing.TestService/FullDuplexCall",
        "-d", bidi, "-n", "6", "-c", "2", "--stream-call-count", "5",
        "--stream-interval", "1ms", "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lite = out.json()["grpcLite"]
    assert lite["kind"] == "bidi"
    assert lite["messagesSent"] == 30 and lite["messagesReceived"] == 30
    # --stream-call-duration: each call sends every 20 ms for 100 ms, then half-closes.
    out = await load(
        backend.address, "--insecure", "--call", "grpc.testing.TestService/FullDuplexCall",
        "-d", bidi, "-n", "2", "-c", "2", "--stream-call-duration", "100ms",
        "--stream-interval", "20ms", "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    sent = out.json()["grpcLite"]["messagesSent"]
    assert 6 <= sent <= 14
    assert out.json()["fastest"] >= 90_000_000


async def test_round_robin_retries_and_backends() -> None:
    """--lb round_robin over two backends: calls per backend from snapshot(); a retry
    policy's extra attempts are counted."""
    async with Backend() as one, Backend() as two:
        target = f"ipv4:{one.address},{two.address}"
        config = {
            "methodConfig": [
                {
                    "name": [{"service": "helloworld.Greeter"}],
                    "retryPolicy": {
                        "maxAttempts": 3,
                        "initialBackoff": "0.01s",
                        "maxBackoff": "0.05s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
        one.fail_next(3, StatusCode.UNAVAILABLE, "retry me", method=SAY_HELLO)
        out = await load(
            target, "--insecure", "--call", GREETER, "--lb", "round_robin",
            "--service-config", json.dumps(config), "-n", "200", "-c", "4", "--cpus", "1",
            "-O", "json",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        report = out.json()
        assert report["statusCodeDistribution"] == {"OK": 200}
        lite = report["grpcLite"]
        assert lite["retries"] == 3
        backends = lite["backends"]
        assert set(backends) == {one.address, two.address}
        assert sum(b["attempts"] for b in backends.values()) == 203
        assert backends[one.address]["attempts"] == one.calls[SAY_HELLO]
        assert backends[two.address]["attempts"] == two.calls[SAY_HELLO]
        assert min(b["ok"] for b in backends.values()) >= 80
        assert (
            "Calls per backend"
            in (
                await load(
                    target,
                    "--insecure",
                    "--call",
                    GREETER,
                    "--lb",
                    "round_robin",
                    "-n",
                    "10",
                    "--cpus",
                    "1",
                )
            ).stdout
        )


async def test_csv_and_influx(backend: Backend) -> None:
    args = [backend.address, "--insecure", "--call", GREETER, "-n", "25", "--cpus", "1"]
    csv = await load(*args, "-O", "csv")
    assert csv.returncode == 0, csv.stderr
    rows = csv.stdout.strip().splitlines()
    assert rows[0] == "duration (ms),status,error"
    assert len(rows) == 26 and all(re.fullmatch(r"\d+\.\d\d,OK,", r) for r in rows[1:])
    summary = await load(*args, "-O", "influx-summary", "--name", "my run")
    assert summary.returncode == 0, summary.stderr
    line = summary.stdout.strip()
    assert line.startswith('ghz_run,name="my\\ run",')
    assert " count=25,total=" in line and ",errors=0 " in line
    details = await load(*args, "-O", "influx-details")
    lines = details.stdout.strip().splitlines()
    assert len(lines) == 25 and all(ln.startswith("ghz_detail,") for ln in lines)
    assert all(",hasError=false latency=" in ln for ln in lines)


async def test_output_file_and_report_from(backend: Backend, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    out = await load(
        backend.address, "--insecure", "--call", GREETER, "-n", "30", "--cpus", "1",
        "-O", "json", "-o", str(path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    saved = json.loads(path.read_text())
    again = await load("--report-from", str(path), "-O", "summary")
    assert again.returncode == 0, again.stderr
    assert f"  Count:\t{saved['count']}" in again.stdout
    rerun = await load("--report-from", str(path), "--assert", "count>=1000")
    assert rerun.returncode == 1 and "count>=1000 (measured 30)" in rerun.stderr


async def test_progress_lines(backend: Backend) -> None:
    out = await load(
        backend.address, "--insecure", "--call", GREETER, "--rps", "50", "-z", "2200ms",
        "--cpus", "1", "--progress", "lines",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("[")]
    assert len(lines) >= 2
    # 50 due in the first second (51 when the one due at 1 s ends before the tick).
    assert re.match(r"\[\s+1s\]\s+5[01] req/s\s+p50\s+\S+ ms\s+p99\s+\S+ ms\s+errors 0", lines[0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--call", "helloworld.Greeter/Nope"], "has no method 'Nope'"),
        (["--call", "no.Such/Method"], "not found"),
        (["--call", "Greeter"], "--call must look like"),
        (["--call", "helloworld.Greeter"], "service 'helloworld' not found"),
        (["--call", GREETER, "-d", "{bad"], "invalid data JSON"),
        (["--call", GREETER, "-d", '{"nam": "x"}'], "does not fit helloworld.HelloRequest"),
        (["--call", GREETER, "-d", '{"name": "{{.Nope}}"}'], "unknown template field"),
        (["--call", GREETER, "-m", '{"a": 1}'], "JSON object of strings"),
        (["--call", GREETER, "--assert", "p99<<5ms"], "bad --assert"),
        (["--call", GREETER, "--assert", "p99<5"], "needs a unit"),
        (["--call", GREETER, "--proto", "/no/such.proto"], "cannot read --proto"),
        (["--call", GREETER, "--protoset", "/no/such.pb"], "cannot read --protoset"),
        (["--call", GREETER, "-z", "5x"], "invalid duration"),
        (["--call", GREETER, "-c", "0"], "-c must be at least 1"),
        (["--call", GREETER, "--load-schedule", "step", "--load-start", "10"], "non-zero step"),
        (["--call", GREETER, "--lb", "no_such_policy"], "invalid service config"),
        (["--call", GREETER, "--cert", "x.pem"], "TLS option"),
        (["--call", GREETER, "-O", "xml"], "invalid choice"),
    ],
)
async def test_bad_input_is_one_line_exit_2_and_no_load(
    backend: Backend, args: list[str], message: str
) -> None:
    out = await load(backend.address, "--insecure", "-n", "5", "--cpus", "1", *args)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert out.stdout == ""
    assert backend.calls[SAY_HELLO] == 0


async def test_unreachable_target_and_bad_proto(tmp_path: Path) -> None:
    out = await load(
        "127.0.0.1:1", "--insecure", "--call", GREETER, "--connect-timeout", "1s", "--cpus", "1"
    )
    assert out.returncode == 2
    assert out.stderr.startswith("grpc-lite load: error: cannot connect to 127.0.0.1:1")
    assert len(out.stderr.strip().splitlines()) == 1
    broken = tmp_path / "broken.proto"
    broken.write_text('syntax = "proto3";\nmessage A { strng x = 1; }\n')
    out = await load(
        "127.0.0.1:1", "--insecure", "--call", "A/B", "--proto", str(broken), "--cpus", "1"
    )
    assert out.returncode == 2
    assert "cannot compile --proto" in out.stderr and "strng" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_load_help_lists_ghz_flags() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "grpc_lite", "load", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert out.returncode == 0
    for flag in (
        "--call", "--proto", "--protoset", "-i", "-d", "-D", "-m", "--insecure", "--cacert",
        "--cert", "--key", "--cname", "--authority", "-n", "-z", "-t", "--skipFirst", "-c",
        "--connections", "-r", "--rps", "--load-schedule", "--load-start", "--load-step",
        "--load-end", "--load-step-duration", "--concurrency-schedule", "--stream-interval",
        "--stream-call-duration", "--stream-call-count", "--lb", "--cpus", "-O", "-o",
        "--assert",
    ):  # fmt: skip
        assert re.search(rf"(^|[\s,]){re.escape(flag)}\b", out.stdout), flag


async def test_load_and_concurrency_schedules(backend: Backend) -> None:
    """--load-schedule step: 50/s then 100/s (one second each); the per-second timeline
    shows the step. --concurrency-schedule line: 1, 2, 3 workers."""
    out = await load(
        backend.address, "--insecure", "--call", GREETER, "--load-schedule", "step",
        "--load-start", "50", "--load-step", "50", "--load-step-duration", "1s",
        "--load-end", "100", "-z", "2s", "-c", "10", "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = out.json()
    assert report["count"] == 150
    timeline = [t["count"] for t in report["grpcLite"]["timeline"]]
    assert timeline[0] == pytest.approx(50, abs=2) and timeline[1] == pytest.approx(100, abs=2)
    assert report["options"]["load-schedule"] == "step"
    assert report["options"]["load-step-duration"] == 1_000_000_000
    backend.delay = 0.01
    out = await load(
        backend.address, "--insecure", "--call", GREETER, "--concurrency-schedule", "line",
        "--concurrency-start", "1", "--concurrency-step", "1", "--concurrency-end", "3",
        "-z", "3s", "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = out.json()
    assert report["grpcLite"]["workers"] == 3
    first, second, third = (t["count"] for t in report["grpcLite"]["timeline"][:3])
    assert first < second < third
    assert third == pytest.approx(3 * first, rel=0.35)


async def test_ctrl_c_reports_and_stops_the_workers(backend: Backend) -> None:
    """SIGINT ends the run early: the report so far (endReason "cancel"), exit status 130,
    and the --cpus worker processes are gone."""
    import asyncio
    import signal
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "grpc_lite", "load", backend.address, "--insecure",
        "--call", GREETER, "-z", "30s", "-c", "4", "--cpus", "2", "-O", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        while backend.calls[SAY_HELLO] < 50:  # noqa: ASYNC110 - the server counts calls
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130, err.decode()
    report = json.loads(out)
    assert report["endReason"] == "cancel"
    assert 0 < report["count"] <= backend.calls[SAY_HELLO]
    assert report["statusCodeDistribution"] == {"OK": report["count"]}
    # The workers closed their connections: wait for the server to see it (bounded).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while backend.current_connections and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    assert backend.current_connections == 0


async def test_hedged_attempts_are_counted(backend: Backend) -> None:
    """A hedging policy that sends a second attempt after 10 ms to a server that takes
    50 ms: every call is hedged once, and the report counts the hedges and attempts."""
    config = {
        "methodConfig": [
            {
                "name": [{"service": "helloworld.Greeter"}],
                "hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "0.01s"},
            }
        ]
    }
    backend.delay = 0.05
    out = await load(
        backend.address, "--insecure", "--call", GREETER, "--service-config",
        json.dumps(config), "-n", "20", "-c", "2", "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lite = out.json()["grpcLite"]
    assert lite["hedges"] == 20 and lite["retries"] == 0
    assert lite["backends"][backend.address]["attempts"] == 40

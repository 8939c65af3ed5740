"""The grpc-lite command, run for real in a subprocess (issue 5 "Tests")."""

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.servers.harness import RunningServer

pytestmark = [pytest.mark.integration]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grpc_lite", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def reflection_server(interop_server: RunningServer) -> Iterator[RunningServer]:
    """A grpcio TestService server with health and reflection (grpcio-reflection)."""
    yield interop_server


@pytest.mark.timeout(30)
def test_call_through_reflection(reflection_server: RunningServer) -> None:
    """`call` builds the request from the server's reflection service and prints JSON."""
    out = run_cli(
        "call",
        reflection_server.address,
        "/grpc.testing.TestService/UnaryCall",
        "--data",
        '{"response_size": 4}',
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    body = json.loads("\n".join(lines[:-1]))
    assert body["payload"]["body"] == "AAAAAA=="  # four zero bytes
    assert json.loads(lines[-1]) == {"status": "OK"}


@pytest.mark.timeout(30)
def test_call_reports_the_status(reflection_server: RunningServer) -> None:
    """A failing call prints its status and exits non-zero."""
    data = '{"response_status": {"code": 5, "message": "nope"}}'
    out = run_cli(
        "call", reflection_server.address, "/grpc.testing.TestService/UnaryCall", "--data", data
    )
    assert out.returncode == 1
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "status": "NOT_FOUND",
        "details": "nope",
    }


@pytest.fixture
def bare_greeter() -> Iterator[str]:
    """A grpcio server with the Greeter only: no reflection, no health."""
    from concurrent import futures

    import grpc

    from tests.protos.helloworld import helloworld_pb2_grpc
    from tests.servers.greeter import GreeterServicer

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    helloworld_pb2_grpc.add_GreeterServicer_to_server(GreeterServicer("bare"), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait()


@pytest.mark.timeout(30)
def test_call_without_reflection_is_a_clear_error(bare_greeter: str) -> None:
    """A server without reflection: a one-line error naming the problem."""
    out = run_cli("call", bare_greeter, "/helloworld.Greeter/SayHello")
    assert out.returncode == 1
    assert "no reflection service" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("call", "bogus-scheme://x/y", "/a.B/C"), "invalid target"),
        (("call", "127.0.0.1:1", "/a.B/C", "--timeout", "2s"), "UNAVAILABLE"),
        (("call", "127.0.0.1:1", "/a.B/C", "--data", "{bad"), "invalid --data JSON"),
        (("watch", "127.0.0.1:1", "--service-config", "[1"), "invalid service config JSON"),
        (("health", "dns:///127.0.0.1:", ""), "invalid target"),
    ],
)
def test_errors_are_one_line_and_non_zero(args: tuple[str, ...], message: str) -> None:
    """Bad target, unreachable server, bad JSON: exit 1 with one line on stderr."""
    out = run_cli(*args)
    assert out.returncode == 1
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(30)
def test_health_reports_serving_and_not_serving(reflection_server: RunningServer) -> None:
    """`health` checks each resolved backend; exit 0 only when all are SERVING."""
    out = run_cli("health", reflection_server.address)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{reflection_server.address}: SERVING"
    from grpc_health.v1 import health_pb2

    reflection_server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    out = run_cli("health", reflection_server.address)
    assert out.returncode == 2
    assert out.stdout.strip() == f"{reflection_server.address}: NOT_SERVING"


@pytest.mark.timeout(30)
def test_watch_json_emits_states_calls_and_summary(reflection_server: RunningServer) -> None:
    """`watch --json` emits event lines (IDLE -> CONNECTING -> READY), snapshots and a
    summary with per-backend call results."""
    out = run_cli(
        "watch",
        reflection_server.address,
        "--json",
        "--call",
        "/grpc.testing.TestService/EmptyCall",
        "--interval",
        "200ms",
        "--duration",
        "1s",
    )
    assert out.returncode == 0, out.stderr
    objects = [json.loads(line) for line in out.stdout.splitlines()]
    transitions = [
        o["description"] for o in objects if o["type"] == "event" and o["subject"] == "channel"
    ]
    assert "IDLE -> CONNECTING" in transitions
    assert "CONNECTING -> READY" in transitions
    summary = objects[-1]
    assert summary["type"] == "summary"
    assert summary["calls_ok"] >= 3
    assert summary["calls_failed"] == 0
    assert summary["per_backend"][reflection_server.address]["ok"] == summary["calls_ok"]


@pytest.mark.timeout(30)
def test_every_command_has_help_with_an_example() -> None:
    """`--help` on each command explains it with an example."""
    for command in ("watch", "health", "call", "demo"):
        out = run_cli(command, "--help")
        assert out.returncode == 0
        assert "example: grpc-lite" in out.stdout


@pytest.mark.timeout(90)
def test_demo_runs_with_zero_failures() -> None:
    """`grpc-lite demo` runs the scale-down story to completion with no failed call when
    retries and health checks are on, and stops every backend it started."""
    out = run_cli("demo", "--json", "--speed", "2", timeout=80)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["type"] == "summary"
    assert summary["failed"] == 0, summary
    assert set(summary["per_backend"]) == {"backend-1", "backend-2", "backend-3"}
    assert summary["calls"] > 100


@pytest.mark.timeout(60)
async def test_watch_json_follows_a_backend_that_stops_and_returns() -> None:
    """`watch --json` on a backend that starts, stops and comes back: the subchannel's
    events go CONNECTING -> READY, then leave READY when it stops, and reach READY again
    when it returns; the summary counts calls made while it was up."""
    import asyncio
    import signal

    from grpc_lite.testing import Backend

    backend = await Backend().start()
    subject = f"subchannel {backend.address}"
    lines: list[str] = []

    async def until(description: str = "", calls: int = 0) -> None:
        """Read watch's output until the subchannel reports ``description``, or until a
        snapshot shows at least ``calls`` calls answered by it."""
        assert proc.stdout is not None
        while True:
            raw = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert raw, f"watch ended before {description or calls!r}"
            lines.append(raw.decode())
            event = json.loads(raw)
            if description:
                if event.get("subject") == subject and event["description"].startswith(description):
                    return
            elif event["type"] == "snapshot":
                answered = [
                    sc["calls_succeeded"]
                    for sc in event["subchannels"]
                    if sc["address"] == backend.address
                ]
                if answered and answered[0] >= calls:
                    return

    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "grpc_lite",
            "watch",
            backend.address,
            "--json",
            "--lb",
            "round_robin",
            "--call",
            "/helloworld.Greeter/SayHello",
            "--interval",
            "200ms",
            "--duration",
            "20s",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await until("CONNECTING -> READY")
        await until(calls=3)
        await backend.stop()
        await until("READY -> IDLE")
        await backend.start()
        await until("CONNECTING -> READY")
        await until(calls=5)
        proc.send_signal(signal.SIGINT)
        rest, err = await asyncio.wait_for(proc.communicate(), 30)
        out = "".join(lines).encode() + rest
    finally:
        await backend.stop()
    assert proc.returncode == 0, err.decode()
    objects = [json.loads(line) for line in out.decode().splitlines()]
    moves = [
        o["description"].split(":")[0]
        for o in objects
        if o["type"] == "event" and o["subject"] == subject and "->" in o["description"]
    ]
    assert moves[:2] == ["IDLE -> CONNECTING", "CONNECTING -> READY"], moves
    left = moves.index("READY -> IDLE")
    assert "CONNECTING -> READY" in moves[left:], moves
    summary = objects[-1]
    assert summary["type"] == "summary"
    assert summary["calls_ok"] >= 5
    assert summary["per_backend"][backend.address]["ok"] == summary["calls_ok"]


@pytest.mark.timeout(60)
async def test_watch_ends_cleanly_on_ctrl_c_with_a_summary() -> None:
    """Ctrl-C (SIGINT) ends `watch` cleanly: exit status 0 and the summary is printed."""
    import asyncio
    import signal

    from grpc_lite.testing import Backend

    async with Backend() as backend:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "grpc_lite",
            "watch",
            backend.address,
            "--call",
            "/helloworld.Greeter/SayHello",
            "--interval",
            "100ms",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert b"channel" in first
        await asyncio.sleep(0.4)
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "summary:" in text
    assert backend.address in text.split("summary:")[1]


@pytest.mark.timeout(60)
async def test_health_watch_streams_changes() -> None:
    """`health --watch` prints each backend's status as it changes."""
    import asyncio

    from grpc_lite.testing import Backend

    async with Backend() as backend:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "grpc_lite",
            "health",
            backend.address,
            "--watch",
            "--duration",
            "3s",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert first.decode().rstrip().endswith(f"{backend.address}: SERVING")
        backend.set_health("", "NOT_SERVING")
        second = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert second.decode().rstrip().endswith(f"{backend.address}: NOT_SERVING")
        _out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()


@pytest.mark.timeout(30)
async def test_call_through_reflection_v1() -> None:
    """`call` against a server with grpc.reflection.v1 (grpc_lite.testing.Backend): the
    request type comes from v1 reflection (no fallback needed) and the reply is JSON."""
    import asyncio

    from grpc_lite.testing import Backend

    async with Backend(backend_id="b-1") as backend:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "grpc_lite",
            "call",
            backend.address,
            "/helloworld.Greeter/SayHello",
            "--data",
            '{"name": "you"}',
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert backend.calls["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"] >= 1
        assert backend.calls["/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"] == 0
    assert proc.returncode == 0, err.decode()
    lines = out.decode().strip().splitlines()
    assert json.loads("\n".join(lines[:-1])) == {"message": "Hello you from b-1"}
    assert json.loads(lines[-1]) == {"status": "OK"}

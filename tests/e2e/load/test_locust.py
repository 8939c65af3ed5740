"""grpc_lite.contrib.locust.GrpcUser under a real Locust master and two workers.

Everything runs as subprocesses on loopback (this process never imports locust, whose
gevent monkeypatching would reach the test runner): a Backend on the test's loop, a
headless master expecting two workers, the workers. After the run the master's CSV
totals must equal what the server counted: every call is reported once, to the master.
"""

from __future__ import annotations

import asyncio
import csv
import socket
import sys
from pathlib import Path

import pytest

from grpc_lite.testing import Backend
from tests.e2e.load._cli import SAY_HELLO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOCUSTFILE = """
from locust import constant, task

from grpc_lite.contrib.locust import GrpcUser
from grpc_lite.testing import helloworld_pb2


class Greeter(GrpcUser):
    service = helloworld_pb2.DESCRIPTOR.services_by_name["Greeter"]
    wait_time = constant(0.002)

    @task(3)
    def hello(self) -> None:
        reply = self.stub.SayHello(helloworld_pb2.HelloRequest(name="locust"))
        assert reply is None or reply.message.startswith("Hello locust")

    @task(1)
    def raw(self) -> None:
        self.call(
            "/helloworld.Greeter/SayHello",
            helloworld_pb2.HelloRequest(name="raw").SerializeToString(),
            name="raw SayHello",
        )

    @task(1)
    def stream(self) -> None:
        replies = self.stub.SayHelloStreamReply(helloworld_pb2.HelloRequest(name="s"))
        assert replies is None or len(replies) == 3

    @task(1)
    def failing(self) -> None:
        self.call("/helloworld.Greeter/NoSuchMethod", b"", name="missing")
"""


def _free_port_pair() -> int:
    """A port P with P+1 also free (Locust's master binds both)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text().splitlines()))


def _locust() -> list[str]:
    return [sys.executable, "-m", "locust"]


@pytest.mark.timeout(120)
async def test_master_and_two_workers_count_every_call(tmp_path: Path) -> None:
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    port = _free_port_pair()
    procs: list[asyncio.subprocess.Process] = []
    async with Backend() as backend:
        try:
            master = await asyncio.create_subprocess_exec(
                *_locust(), "-f", str(locustfile), "--master", "--headless",
                "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                "--expect-workers", "2", "--expect-workers-max-wait", "30",
                "-u", "10", "-r", "10", "-t", "3s", "--stop-timeout", "10",
                "--host", backend.address, "--csv", str(tmp_path / "run"),
                "--loglevel", "WARNING",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                cwd=tmp_path,
            )  # fmt: skip
            procs.append(master)
            for _ in range(2):
                procs.append(
                    await asyncio.create_subprocess_exec(
                        *_locust(),
                        "-f",
                        str(locustfile),
                        "--worker",
                        "--master-host",
                        "127.0.0.1",
                        "--master-port",
                        str(port),
                        "--stop-timeout",
                        "10",
                        "--loglevel",
                        "WARNING",
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=asyncio.subprocess.DEVNULL,
                        cwd=tmp_path,
                    )
                )
            out, _ = await asyncio.wait_for(master.communicate(), 90)
            for worker in procs[1:]:
                await asyncio.wait_for(worker.wait(), 30)
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        served = backend.calls[SAY_HELLO]
        streamed = backend.calls["/helloworld.Greeter/SayHelloStreamReply"]
        missing = backend.calls["/helloworld.Greeter/NoSuchMethod"]
    log = out.decode(errors="replace")
    rows = {row["Name"]: row for row in _csv(tmp_path / "run_stats.csv")}
    hello = rows["/helloworld.Greeter/SayHello"]
    raw = rows["raw SayHello"]
    failing = rows["missing"]
    total = rows["Aggregated"]
    assert hello["Type"] == "grpc"
    assert int(hello["Failure Count"]) == 0 and int(raw["Failure Count"]) == 0, log[-3000:]
    assert int(hello["Request Count"]) + int(raw["Request Count"]) == served
    # A method the server lacks fails UNIMPLEMENTED; the server still saw each call.
    assert int(failing["Request Count"]) == int(failing["Failure Count"]) == missing > 0
    stream = rows["/helloworld.Greeter/SayHelloStreamReply"]
    assert int(stream["Request Count"]) == streamed > 0 and int(stream["Failure Count"]) == 0
    # A server stream's length is the three replies' serialized sizes.
    assert float(stream["Average Content Size"]) > 3 * len("Hello s from 127.0.0.1:1")
    assert int(total["Request Count"]) == served + streamed + missing
    assert served > 500  # two workers, ten users, three seconds
    failures = _csv(tmp_path / "run_failures.csv")
    assert any("UNIMPLEMENTED" in row["Error"] for row in failures)

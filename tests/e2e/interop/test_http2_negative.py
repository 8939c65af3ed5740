"""gRPC's negative HTTP/2 interop cases (grpc/grpc doc/negative-http2-interop-test-descriptions.md):
grpc_lite.interop.http2_client against the misbehaving server of tests/peers/http2_server.py.

In-process (server and client on the test's loop), every case passes its client checks and
the server's own; a client pointed at a server that misbehaves differently FAILs (so the
checks are real); the command-line client runs against the server process."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from grpc_lite.interop import http2_client
from tests.peers._base import REPO
from tests.peers.http2_server import CASES, PAD_LENGTH, Http2TestServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_client_and_server_know_the_same_cases() -> None:
    assert tuple(http2_client.CASES) == CASES


@pytest.mark.parametrize("case", CASES)
async def test_case_passes_against_its_server(case: str) -> None:
    async with Http2TestServer(case) as server:
        await http2_client.run_case(case, server.target)
        assert await server.check() == []
        peer = server.peer
        if case == "goaway":
            # Two calls, each on its own connection, each connection sent a GOAWAY.
            assert [st.connection.index for st in peer.streams] == [0, 1]
            assert all(c.goaways_sent for c in peer.connections)
        elif case == "ping":
            (conn,) = peer.connections
            assert conn.pings_sent == 4
            assert conn.ping_acks_received == 4
        elif case == "max_streams":
            assert len(peer.streams) == 1 + http2_client.MAX_STREAMS_CALLS
            assert server.max_open == 1
            assert {st.connection.index for st in peer.streams} == {0}
        elif case.startswith("rst_"):
            (stream,) = peer.streams
            rst = [r for r in stream.connection.sent_frames if r.type_name == "RST_STREAM"]
            assert [r.error_code for r in rst] == [0]
        elif case == "data_frame_padding":
            data = [r for r in peer.connection.sent_frames if r.type_name == "DATA"]
            assert len(data) > 60_000  # 314164 bytes, 5 per frame
            assert {r.pad_length for r in data} == {PAD_LENGTH}


@pytest.mark.parametrize(
    "client_case,server_case,why",
    [
        ("rst_after_header", "ping", "succeeded"),
        ("rst_during_data", "max_streams", "succeeded"),
        ("rst_after_data", "goaway", "succeeded"),
        ("goaway", "rst_after_header", "first UnaryCall failed: INTERNAL"),
        ("ping", "rst_during_data", "UnaryCall failed: INTERNAL"),
        ("max_streams", "rst_after_data", "first UnaryCall failed: INTERNAL"),
        ("data_frame_padding", "rst_after_data", "failed: INTERNAL"),
    ],
)
async def test_case_fails_against_a_server_misbehaving_differently(
    client_case: str, server_case: str, why: str
) -> None:
    async with Http2TestServer(server_case) as server:
        with pytest.raises(AssertionError, match=why):
            await http2_client.run_case(client_case, server.target)


async def test_server_checks_fail_when_the_client_does_not_do_its_part() -> None:
    """The goaway server's own check (two connections) fails when the client makes one call
    (the ping case's client passes its own checks against it)."""
    async with Http2TestServer("goaway") as server:
        await http2_client.run_case("ping", server.target)
        problems = await server.check()
    assert problems == ["the client's calls used 1 connection(s), want 2 (one per GOAWAY)"]


async def test_unknown_case() -> None:
    with pytest.raises(ValueError, match="unknown test case"):
        await http2_client.run_case("no_such_case", "127.0.0.1:1")
    with pytest.raises(ValueError, match="unknown test case"):
        Http2TestServer("no_such_case")


def test_cli_refuses_an_unknown_case(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--server_port", "1", "--test_case", "goaway,no_such_case"]
    assert http2_client.main(argv) == 2
    assert "unknown test case(s) no_such_case" in capsys.readouterr().err


async def _run(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 40)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_cli_against_the_server_process() -> None:
    """``python -m grpc_lite.interop.http2_client`` (grpc's flags) against ``python -m
    tests.peers.http2_server --test_case goaway``: PASS and exit 0 for goaway; FAIL and exit 1
    for rst_after_header, whose call this server does not reset; the server's check passes."""
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.peers.http2_server",
        "--port",
        "0",
        "--test_case",
        "goaway",
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert server.stdout is not None
        first = (await asyncio.wait_for(server.stdout.readline(), 30)).decode()
        assert first.startswith("LISTENING "), first
        port = first.split()[1]
        client = [sys.executable, "-m", "grpc_lite.interop.http2_client"]
        where = ["--server_host", "127.0.0.1", "--server_port", port]

        code, out = await _run(*client, *where, "--test_case", "goaway")
        assert code == 0, out
        lines = out.splitlines()
        assert lines[0].startswith("PASS goaway ("), out
        assert lines[1:] == ["1 passed, 0 failed"]

        code, out = await _run(*client, *where, "--test_case=rst_after_header")
        assert code == 1, out
        lines = out.splitlines()
        assert lines[0].startswith("FAIL rst_after_header: "), out
        assert "succeeded" in lines[0]
        assert lines[1:] == ["0 passed, 1 failed"]

        server.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(server.communicate(), 30)
        assert server.returncode == 0, rest.decode()
        assert rest.decode().splitlines() == ["CHECK PASS goaway"]
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()

"""``python -m grpc_lite.interop.client``: its flags, its output and its exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grpc_lite.interop import client
from tests.peers import grpcio
from tests.peers._base import REPO, make_tls_files
from tests.servers.harness import RunningServer, ServerFactory


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grpc_lite.interop.client", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_cli_runs_every_case_over_tls(tmp_path: Path) -> None:
    """The flags every gRPC language uses; one PASS line per case; exit 0."""
    tls = make_tls_files(tmp_path)
    peer = grpcio.start(tls)
    try:
        result = _run_cli(
            "--server_host=127.0.0.1",
            f"--server_port={peer.port}",
            "--use_tls=true",
            "--use_test_ca",
            f"--ca_file={tls.ca}",
            f"--server_host_override={tls.server_name}",
            "--test_case=all",
        )
    finally:
        peer.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines[:-1]] == list(client.CASES)
    assert all(line.startswith("PASS ") for line in lines[:-1])
    assert lines[-1] == f"{len(client.CASES)} passed, 0 failed"


@pytest.mark.integration
def test_cli_fails_a_case_the_server_does_not_honour(interop_server: RunningServer) -> None:
    """A grpcio server that ignores expect_compressed: the probe succeeds, so
    client_compressed_unary FAILs (naming the probe) and the exit status is 1; a case that
    passes next to it still prints PASS."""
    result = _run_cli(
        "--server_host",
        "127.0.0.1",
        "--server_port",
        str(interop_server.port),
        "--test_case",
        "empty_unary,client_compressed_unary",
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("PASS empty_unary")
    assert lines[1].startswith("FAIL client_compressed_unary: probe")
    assert "want INVALID_ARGUMENT" in lines[1]
    assert lines[2] == "1 passed, 1 failed"


def test_cli_refuses_an_unknown_case() -> None:
    result = _run_cli("--test_case", "empty_unary,no_such_case")
    assert result.returncode == 2
    assert "unknown test case(s) no_such_case" in result.stderr


def test_use_test_ca_needs_a_ca_file() -> None:
    settings = client.Settings(use_tls=True, use_test_ca=True)
    with pytest.raises(SystemExit, match="--use_test_ca needs --ca_file"):
        settings.new_channel()


@pytest.mark.parametrize(
    ("argv", "use_tls"),
    [
        ([], False),
        (["--use_tls"], True),
        (["--use_tls=true"], True),
        (["--use_tls", "false"], False),
        (["--use_tls=False"], False),
        (["--use_tls=1"], True),
    ],
)
def test_boolean_flags_take_every_spelling(argv: list[str], use_tls: bool) -> None:
    args = client._parser().parse_args([*argv, "--server_port", "1"])
    assert client.settings_from_args(args).use_tls is use_tls


def test_a_boolean_flag_rejects_other_words(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        client._parser().parse_args(["--use_tls=maybe"])
    assert "not a boolean: 'maybe'" in capsys.readouterr().err


def test_soak_flags_reach_the_settings() -> None:
    args = client._parser().parse_args(
        ["--soak_iterations=3", "--soak_max_failures=1", "--soak_num_threads=2"]
    )
    settings = client.settings_from_args(args)
    assert (settings.soak_iterations, settings.soak_max_failures) == (3, 1)
    assert settings.soak_num_threads == 2


@pytest.mark.integration
async def test_rpc_soak_counts_latency_over_the_limit_as_failure(
    grpc_server_factory: ServerFactory,
) -> None:
    """rpc_soak: an iteration slower than soak_per_iteration_max_acceptable_latency_ms is a
    failure; more failures than soak_max_failures fail the case, naming the latency."""
    server = grpc_server_factory.interop()
    settings = client.Settings(
        server_host="127.0.0.1",
        server_port=server.port or 0,
        soak_iterations=3,
        soak_per_iteration_max_acceptable_latency_ms=0,
    )
    async with settings.new_channel() as channel:
        result = await client.run_case("rpc_soak", settings, channel)
        assert not result.passed
        assert "3 failures, at most 0 allowed" in result.detail
        assert "latency" in result.detail
        settings.soak_max_failures = 3
        assert (await client.run_case("rpc_soak", settings, channel)).passed

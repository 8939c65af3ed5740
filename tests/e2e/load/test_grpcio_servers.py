"""``grpc-lite load`` against grpcio servers: reflection (v1alpha), TLS flags, mTLS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.harness import RunningServer, ServerFactory, TLSMaterial

pytestmark = [pytest.mark.integration]

UNARY = "grpc.testing.TestService/UnaryCall"


def run_load(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grpc_lite", "load", *args],
        capture_output=True,
        text=True,
        timeout=50,
    )


def test_grpcio_interop_server_through_reflection(interop_server: RunningServer) -> None:
    out = run_load(
        interop_server.address, "--insecure", "--call", UNARY, "-d", '{"response_size": 16}',
        "-n", "120", "-c", "6", "--cpus", "1", "-O", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert '"count":120' in out.stdout
    assert interop_server.recorder.count("UnaryCall") == 120


def test_grpcio_status_codes(interop_server: RunningServer) -> None:
    """A server-chosen status lands in ghz's status and error distributions."""
    data = '{"response_status": {"code": 5, "message": "nope"}}'
    out = run_load(
        interop_server.address, "--insecure", "--call", UNARY, "-d", data, "-n", "10",
        "--cpus", "1",
    )  # fmt: skip
    assert out.returncode == 1
    assert "[NotFound]   10 responses" in out.stdout
    assert "rpc error: code = NotFound desc = nope" in out.stdout


def _write(tmp: Path, name: str, data: bytes) -> str:
    path = tmp / name
    path.write_bytes(data)
    return str(path)


def test_tls_flags(
    grpc_server_factory: ServerFactory, tls_material: TLSMaterial, tmp_path: Path
) -> None:
    """--cacert verifies; --cname names the certificate when dialing by another name;
    --skipTLS skips verification; without a CA the handshake fails before any load."""
    server = grpc_server_factory.interop(tls=tls_material)
    ca = _write(tmp_path, "ca.pem", tls_material.ca_pem)
    common = ["--call", UNARY, "-n", "20", "--cpus", "1", "-O", "json"]
    out = run_load(f"localhost:{server.port}", "--cacert", ca, *common)
    assert out.returncode == 0, out.stderr
    # 127.0.0.2 is not in the certificate: --cname says which name to verify.
    out = run_load(f"127.0.0.1:{server.port}", "--cacert", ca, "--cname", "localhost", *common)
    assert out.returncode == 0, out.stderr
    out = run_load(f"localhost:{server.port}", "--skipTLS", *common)
    assert out.returncode == 0, out.stderr
    out = run_load(f"localhost:{server.port}", "--connect-timeout", "2s", *common)
    assert out.returncode == 2
    assert "CERTIFICATE_VERIFY_FAILED" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert server.recorder.count("UnaryCall") == 60


def test_mutual_tls(
    grpc_server_factory: ServerFactory, tls_material: TLSMaterial, tmp_path: Path
) -> None:
    server = grpc_server_factory.interop(tls=tls_material, require_client_auth=True)
    ca = _write(tmp_path, "ca.pem", tls_material.ca_pem)
    cert = _write(tmp_path, "cert.pem", tls_material.client_cert_chain_pem)
    key = _write(tmp_path, "key.pem", tls_material.client_key_pem)
    out = run_load(
        f"localhost:{server.port}", "--cacert", ca, "--cert", cert, "--key", key,
        "--call", UNARY, "-n", "10", "--cpus", "1",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert server.recorder.count("UnaryCall") == 10


def test_progress_bar_on_a_terminal(interop_server: RunningServer) -> None:
    """On a terminal (a pty here) the live line and rich's progress bar are drawn on
    stderr each second; the report still goes to stdout alone."""
    import os
    import pty
    import threading

    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_lite",
                "load",
                interop_server.address,
                "--insecure",
                "--call",
                UNARY,
                "--rps",
                "100",
                "-z",
                "2500ms",
                "--cpus",
                "1",
                "-O",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
            timeout=50,
            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
        )
    finally:
        os.close(slave)
        reader.join(5)
        os.close(master)
    screen = b"".join(chunks).decode(errors="replace")
    assert out.returncode == 0
    assert '"count":250' in out.stdout
    assert "req/s" in screen and "p99" in screen
    assert "━" in screen  # rich's progress bar

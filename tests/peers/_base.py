"""What the peer modules share: TLS files, a started server process, port helpers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Pinned sources of the peers (committed): peers/go, peers/java, peers/node.
PEERS_DIR = REPO / "peers"
#: Build outputs (git-ignored): binaries, class paths, node_modules stay out of the repository.
BUILD_DIR = REPO / "build" / "peers"


class PeerError(RuntimeError):
    """A peer could not be built or started; the message names the peer and the cause."""


@dataclass(frozen=True)
class TlsFiles:
    """A server certificate made by the tests, written to files the peers can read."""

    cert_chain: Path  # PEM: the server certificate (then its chain)
    private_key: Path  # PEM: its key (PKCS#8)
    ca: Path  # PEM: the CA that signed it
    server_name: str  # a DNS name the certificate is valid for (--server_host_override)


@dataclass
class PeerProcess:
    """A running peer server; ``stop()`` ends it (the tests always call it)."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(peer: PeerProcess, timeout: float = 60.0) -> None:
    """Wait until the peer accepts TCP connections on its port (or fail naming it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if peer.process.poll() is not None:
            raise PeerError(
                f"{peer.name} exited with {peer.process.returncode} before listening:\n"
                + peer.output()[-4000:]
            )
        try:
            with socket.create_connection(("127.0.0.1", peer.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    peer.stop()
    raise PeerError(f"{peer.name} did not listen on port {peer.port} within {timeout} s")


def spawn(
    name: str,
    argv: Sequence[str],
    port: int,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> PeerProcess:
    """Start ``argv`` (a server that will listen on 127.0.0.1:``port``) and wait for it."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    log = BUILD_DIR / f"{name}-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    peer = PeerProcess(name, port, process, log)
    wait_listening(peer, timeout)
    return peer


def run_build(
    name: str,
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 900.0,
) -> None:
    """Run one build step; a failure raises PeerError with the step's output."""
    result = subprocess.run(
        list(argv),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise PeerError(
            f"building {name}: {' '.join(argv)} exited {result.returncode}:\n"
            + (result.stdout + result.stderr)[-6000:]
        )


#: The DNS name in the test certificates; clients connect to 127.0.0.1 and override to it.
SERVER_NAME = "server.grpc-lite.test"


def make_tls_files(directory: Path) -> TlsFiles:
    """A fresh CA and a server certificate for SERVER_NAME, localhost and 127.0.0.1.

    The key is written as unencrypted PKCS#8 (``BEGIN PRIVATE KEY``), which Go, Java
    (Netty) and Node all read."""
    import trustme
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA()
    cert = ca.issue_cert(SERVER_NAME, "localhost", "127.0.0.1")
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), password=None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        cert_chain=directory / "server-chain.pem",
        private_key=directory / "server-key.pem",
        ca=directory / "ca.pem",
        server_name=SERVER_NAME,
    )
    files.cert_chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    files.private_key.write_bytes(pkcs8)
    files.ca.write_bytes(ca.cert_pem.bytes())
    return files

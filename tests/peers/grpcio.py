"""grpcio's TestService server (tests/servers/interop.py) in its own process."""

from __future__ import annotations

import sys

import grpc

from tests.peers._base import REPO, PeerProcess, TlsFiles, free_port, spawn

NAME = "grpcio"
VERSION = grpc.__version__
#: It implements every case this client runs (it checks expect_compressed by sniffing).
UNSUPPORTED: dict[str, str] = {}


def build() -> None:
    """Nothing to build: grpcio comes from constraints.txt."""


def start(tls: TlsFiles | None) -> PeerProcess:
    port = free_port()
    argv = [sys.executable, "-m", "tests.peers.grpcio_server", "--port", str(port)]
    if tls is not None:
        argv += ["--use_tls", "--tls_cert_file", str(tls.cert_chain)]
        argv += ["--tls_key_file", str(tls.private_key)]
    return spawn(NAME, argv, port, cwd=REPO)

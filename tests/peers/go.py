"""grpc-go's own interop server (``google.golang.org/grpc/interop/server``) as a test peer.

``peers/go/go.mod`` pins grpc-go and lists the server's package as a ``tool``, so ``go build``
of that package, with the versions in the committed ``go.sum`` (``-mod=readonly``: nothing
is resolved or upgraded at build time), gives grpc-go's own binary, not a rewrite.

The server's flags (``interop/server/server.go``): ``--port``, ``--use_tls``,
``--tls_cert_file``, ``--tls_key_file`` (``--use_alts`` is for GCP only). It listens on
``:PORT`` (every interface), serves ``grpc.testing.TestService`` and ORCA, and exits on
SIGTERM (Go's default).
"""

from __future__ import annotations

import os
import shutil

from tests.peers._base import (
    BUILD_DIR,
    PEERS_DIR,
    PeerError,
    PeerProcess,
    TlsFiles,
    free_port,
    run_build,
    spawn,
)

NAME = "grpc-go"
VERSION = "v1.85.0"

#: The module that pins grpc-go (go.mod, go.sum).
SOURCE_DIR = PEERS_DIR / "go"
PACKAGE = "google.golang.org/grpc/interop/server"
BINARY = BUILD_DIR / "go-interop-server"

_TEST_UTILS = "interop/test_utils.go"
_NO_GZIP = "interop/server/server.go links no gzip codec (no google.golang.org/grpc/encoding/gzip)"
_NO_AUTH = (
    f"the server never fills SimpleResponse.username/oauth_scope ({_TEST_UTILS} UnaryCall);"
    " a cloud-to-prod case"
)

#: Interop test case -> why grpc-go's interop server (v1.85.0) cannot run it.
UNSUPPORTED: dict[str, str] = {
    "client_compressed_unary": (
        f"ignores SimpleRequest.expect_compressed ({_TEST_UTILS} UnaryCall), so the"
        " uncompressed probe gets OK, not INVALID_ARGUMENT; and a gzip request gets"
        f" UNIMPLEMENTED: {_NO_GZIP}"
    ),
    "client_compressed_streaming": (
        "ignores StreamingInputCallRequest.expect_compressed"
        f" ({_TEST_UTILS} StreamingInputCall), so the probe gets OK, not INVALID_ARGUMENT;"
        f" and a gzip request gets UNIMPLEMENTED: {_NO_GZIP}"
    ),
    "server_compressed_unary": (
        f"ignores SimpleRequest.response_compressed ({_TEST_UTILS} UnaryCall): responses are"
        f" never compressed; {_NO_GZIP}"
    ),
    "server_compressed_streaming": (
        "ignores ResponseParameters.compressed"
        f" ({_TEST_UTILS} StreamingOutputCall): responses are never compressed; {_NO_GZIP}"
    ),
    "very_large_request": (
        "the server keeps grpc-go's default 4 MiB receive limit (interop/server/server.go"
        " sets no MaxRecvMsgSize), so the 10 MiB request gets RESOURCE_EXHAUSTED"
    ),
    "cacheable_unary": (
        "CacheableUnaryCall is not implemented: testServer embeds"
        f" UnimplementedTestServiceServer ({_TEST_UTILS}), so it answers UNIMPLEMENTED"
    ),
    "pick_first_unary": (
        f"the server never fills SimpleResponse.server_id ({_TEST_UTILS} UnaryCall); only"
        " grpc-go's xDS test server does"
    ),
    "compute_engine_creds": _NO_AUTH,
    "service_account_creds": _NO_AUTH,
    "jwt_token_creds": _NO_AUTH,
    "oauth2_auth_token": _NO_AUTH,
    "per_rpc_creds": _NO_AUTH,
    "google_default_credentials": _NO_AUTH,
    "compute_engine_channel_credentials": _NO_AUTH,
}


def _newest_source_mtime() -> float:
    newest = 0.0
    for name in ("go.mod", "go.sum"):
        newest = max(newest, (SOURCE_DIR / name).stat().st_mtime)
    for path in SOURCE_DIR.rglob("*.go"):
        newest = max(newest, path.stat().st_mtime)
    return newest


def up_to_date() -> bool:
    """The binary exists and is newer than go.mod, go.sum and every .go file in peers/go."""
    return BINARY.exists() and BINARY.stat().st_mtime > _newest_source_mtime()


def build() -> None:
    """``go build`` grpc-go's interop server into BUILD_DIR unless the binary is up to date.

    ``-mod=readonly`` on the command line (it wins over a GOFLAGS=-mod=mod): the committed
    go.sum decides every version, and a go.mod that needs updating fails the build."""
    if up_to_date():
        return
    if shutil.which("go") is None:
        raise PeerError(f"building {NAME}: `go` is not on PATH")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    partial = BINARY.with_name(f"{BINARY.name}.partial-{os.getpid()}")
    try:
        run_build(
            NAME,
            ["go", "build", "-mod=readonly", "-trimpath", "-o", str(partial), PACKAGE],
            cwd=SOURCE_DIR,
        )
        # Renamed into place: a concurrent start() never runs a half-written binary.
        partial.replace(BINARY)
    finally:
        partial.unlink(missing_ok=True)


def start(tls: TlsFiles | None) -> PeerProcess:
    """Start the server on a free port (plaintext, or TLS with ``tls``'s cert and key)."""
    build()
    port = free_port()
    argv = [str(BINARY), f"--port={port}"]
    if tls is not None:
        argv += [
            "--use_tls=true",
            f"--tls_cert_file={tls.cert_chain}",
            f"--tls_key_file={tls.private_key}",
        ]
    else:
        argv.append("--use_tls=false")
    peer = spawn(NAME, argv, port)
    peer.extra["version"] = VERSION
    return peer

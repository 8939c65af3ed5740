"""grpc-js: the TestService server in ``peers/node/server.js`` on pinned @grpc/grpc-js.

``build()`` runs ``npm ci`` from ``peers/node/package-lock.json`` (node_modules stays in
``peers/node/``, git-ignored); ``start()`` runs ``node server.js`` on a free loopback port.
"""

from __future__ import annotations

import json
import shutil

from tests.peers._base import (
    PEERS_DIR,
    PeerError,
    PeerProcess,
    TlsFiles,
    free_port,
    run_build,
    spawn,
)

NAME = "grpc-js"
#: The exact @grpc/grpc-js version pinned in peers/node/package.json and package-lock.json.
VERSION = "1.14.7"

NODE_DIR = PEERS_DIR / "node"
NODE_MODULES = NODE_DIR / "node_modules"
LOCK_FILE = NODE_DIR / "package-lock.json"

_NO_REQUEST_FLAG = (
    "grpc-js decompresses a request before the handler runs and drops grpc-encoding from "
    "the metadata it sees; whether a message was compressed is not exposed, so the server "
    "cannot fail the uncompressed expect_compressed probe with INVALID_ARGUMENT"
)
_NO_RESPONSE_COMPRESSION = (
    "the grpc-js server never compresses a response: every message goes out with the "
    "compressed flag 0 (and grpc-encoding: identity), so response_compressed / "
    "ResponseParameters.compressed cannot be honoured"
)

#: Interop case -> why this server cannot run it.
UNSUPPORTED: dict[str, str] = {
    "client_compressed_unary": _NO_REQUEST_FLAG,
    "client_compressed_streaming": _NO_REQUEST_FLAG,
    "server_compressed_unary": _NO_RESPONSE_COMPRESSION,
    "server_compressed_streaming": _NO_RESPONSE_COMPRESSION,
}


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise PeerError(f"{NAME}: node is not on PATH")
    return node


def _installed() -> bool:
    """node_modules holds the pinned grpc-js and is not older than the lock file."""
    marker = NODE_MODULES / ".package-lock.json"  # npm rewrites it on every install
    package = NODE_MODULES / "@grpc" / "grpc-js" / "package.json"
    try:
        if marker.stat().st_mtime < LOCK_FILE.stat().st_mtime:
            return False
        return bool(json.loads(package.read_text()).get("version") == VERSION)
    except (OSError, ValueError):
        return False


def build() -> None:
    """``npm ci`` when node_modules is missing, stale or holds another grpc-js."""
    if _installed():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise PeerError(f"{NAME}: npm is not on PATH")
    run_build(NAME, [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR)
    if not _installed():
        raise PeerError(f"{NAME}: npm ci did not install @grpc/grpc-js {VERSION}")


def start(tls: TlsFiles | None) -> PeerProcess:
    """Start server.js on 127.0.0.1 at a free port (TLS with ``tls``'s files if given)."""
    port = free_port()
    argv = [_node(), str(NODE_DIR / "server.js"), "--port", str(port)]
    if tls is not None:
        argv += [
            "--use_tls",
            "--tls_cert_file",
            str(tls.cert_chain),
            "--tls_key_file",
            str(tls.private_key),
        ]
    peer = spawn(NAME, argv, port, cwd=NODE_DIR)
    peer.extra["version"] = VERSION
    return peer

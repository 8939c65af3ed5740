"""grpc-java's interop TestService (``io.grpc.testing.integration.TestServiceImpl``) as a peer.

``peers/java/pom.xml`` pins ``io.grpc:grpc-interop-testing`` and grpc-netty;
``peers/java/src/main/java/io/grpclite/peers/InteropServer.java`` is a small main serving
grpc-java's own ``TestServiceImpl`` with its echo-metadata interceptors (the stock
``TestServiceServer`` only knows grpc-java's bundled test certificates). Maven compiles it into
``build/peers/java`` and writes the runtime class path (jars in ``~/.m2``) to ``classpath.txt``.

grpc-interop-testing is published on Maven Central up to 1.79.0 (1.80-1.85.1 exist for the
other grpc-java artifacts only), so every grpc artifact is pinned at 1.79.0.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

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

NAME = "grpc-java"
VERSION = "1.79.0"

SOURCE_DIR = PEERS_DIR / "java"
POM = SOURCE_DIR / "pom.xml"
#: Maven's build directory (the pom's ``peer.build.dir``).
OUT_DIR = BUILD_DIR / "java"
CLASSES = OUT_DIR / "classes"
CLASSPATH_FILE = OUT_DIR / "classpath.txt"
MAIN_CLASS = "io.grpclite.peers.InteropServer"
_MAIN_CLASS_FILE = CLASSES / "io" / "grpclite" / "peers" / "InteropServer.class"

#: A small heap and the serial collector keep the JVM light on a 2-core machine (~110 MB
#: resident after some calls); C1 only: quicker start, and grpc-java's speed is not under test.
JVM_OPTIONS = ("-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")

_EXPECT_COMPRESSED = (
    "TestServiceImpl ignores expect_compressed: the probe (an uncompressed request with "
    "expect_compressed=true) gets OK, not INVALID_ARGUMENT (grpc-java's own client runs the "
    "*_noprobe variant against it); gzip-compressed requests are decoded"
)
_AUTH = (
    "needs Google credentials; TestServiceImpl ignores fill_username and fill_oauth_scope "
    "(it never sets username or oauth_scope)"
)
_ORCA = (
    "InteropServer installs no ORCA (the stock TestServiceServer adds grpc-xds's "
    "OrcaServiceImpl and OrcaMetricReportingServerInterceptor), and the client needs an "
    "ORCA-reading load-balancing policy"
)

#: Interop case -> why grpc-java's TestServiceImpl (as served here) cannot run it.
UNSUPPORTED: dict[str, str] = {
    "client_compressed_unary": _EXPECT_COMPRESSED,
    "client_compressed_streaming": _EXPECT_COMPRESSED,
    "server_compressed_streaming": (
        "TestServiceImpl ignores ResponseParameters.compressed: streamed responses go out with "
        "grpc-encoding identity and no message compressed (only UnaryCall honours "
        "response_compressed, for the whole call)"
    ),
    "cacheable_unary": (
        "TestServiceImpl does not implement CacheableUnaryCall (UNIMPLEMENTED); the case also "
        "needs a caching proxy"
    ),
    "compute_engine_creds": _AUTH,
    "jwt_token_creds": _AUTH,
    "oauth2_auth_token": _AUTH,
    "per_rpc_creds": _AUTH,
    "google_default_credentials": _AUTH,
    "compute_engine_channel_credentials": _AUTH,
    "service_account_creds": _AUTH,
    "pick_first_unary": (
        "TestServiceImpl never fills SimpleResponse.server_id (only grpc-java's XdsTestServer "
        "does); the case also needs several backends behind one name"
    ),
    "orca_per_rpc": _ORCA,
    "orca_oob": _ORCA,
}


def _tool(name: str) -> str:
    if name == "java" and os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        if candidate.is_file():
            return str(candidate)
    path = shutil.which(name)
    if path is None:
        raise PeerError(f"{NAME}: `{name}` is not on PATH (Java 17+ and Maven are needed)")
    return path


def _sources() -> list[Path]:
    return [POM, *sorted((SOURCE_DIR / "src").rglob("*.java"))]


def _classpath_entries() -> list[str]:
    return [entry for entry in CLASSPATH_FILE.read_text().strip().split(os.pathsep) if entry]


def is_built() -> bool:
    """The compiled main and the class path exist, are newer than every source, and every
    jar on the class path is still in the local Maven repository."""
    try:
        built = min(_MAIN_CLASS_FILE.stat().st_mtime, CLASSPATH_FILE.stat().st_mtime)
        newest = max(path.stat().st_mtime for path in _sources())
        entries = _classpath_entries()
    except (OSError, ValueError):
        return False
    return built >= newest and bool(entries) and all(os.path.isfile(e) for e in entries)


def build() -> None:
    """Compile InteropServer and resolve the class path (Maven); quick when up to date.

    A lock file keeps concurrent callers (pytest workers, the build script) from running
    Maven in the same directory at once."""
    if is_built():
        return
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with open(OUT_DIR.parent / "java.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_built():
            return
        run_build(
            NAME,
            [_tool("mvn"), "-B", "-q", "-Dstyle.color=never", "-f", str(POM), "compile"],
            cwd=SOURCE_DIR,
        )
        # Maven leaves an up-to-date class file's time alone: mark the build as done.
        _MAIN_CLASS_FILE.touch()
        CLASSPATH_FILE.touch()
    if not is_built():
        raise PeerError(f"{NAME}: Maven finished but {_MAIN_CLASS_FILE} or the class path is off")


def start(tls: TlsFiles | None = None) -> PeerProcess:
    """Start grpc-java's TestService on 127.0.0.1 (TLS with ``tls``'s files, else plaintext);
    builds first if needed (a few stat calls when up to date)."""
    build()
    port = free_port()
    classpath = os.pathsep.join([str(CLASSES), *_classpath_entries()])
    argv = [_tool("java"), *JVM_OPTIONS, "-cp", classpath, MAIN_CLASS, f"--port={port}"]
    if tls is not None:
        argv += [
            "--use_tls=true",
            f"--tls_cert_file={tls.cert_chain}",
            f"--tls_key_file={tls.private_key}",
        ]
    peer = spawn(NAME, argv, port, cwd=SOURCE_DIR)
    peer.extra["version"] = VERSION
    return peer

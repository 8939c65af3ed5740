"""Start and stop grpcio servers for grpc_lite's integration tests.

The servers are grpcio's *sync* ``grpc.server`` on a ``ThreadPoolExecutor``: they run on
their own threads, so a test's asyncio loop (where the grpc_lite client lives) never shares
work with them. Every server also serves ``grpc.health.v1.Health`` (grpcio-health-checking,
plus ``List``) and server reflection (grpcio-reflection, v1alpha only).

Entry points: :func:`tests.servers.interop.start_interop_server`,
:func:`tests.servers.greeter.start_greeter_server`, and :class:`ServerFactory` (what the
``grpc_server_factory`` fixture returns), which stops everything it started at teardown.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import trustme
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

#: Options every test server gets unless the caller overrides them. SO_REUSEPORT is grpcio's
#: default; with it, two servers can bind the same address and the kernel splits connections
#: between them, which would make "which backend answered" tests flaky.
DEFAULT_SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (("grpc.so_reuseport", 0),)

Metadata = tuple[tuple[str, str | bytes], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedCall:
    """One RPC as a test servicer saw it."""

    method: str  # e.g. "/grpc.testing.TestService/UnaryCall"
    metadata: Metadata  # invocation metadata as grpcio reports it (no pseudo/reserved headers)
    peer: str  # grpcio's peer string, e.g. "ipv4:127.0.0.1:50312"

    def get(self, key: str) -> str | bytes | None:
        """The first value of metadata ``key`` (lower-case), or None."""
        for k, v in self.metadata:
            if k == key:
                return v
        return None


class CallRecorder:
    """Thread-safe list of the calls a servicer received (any thread may call ``record``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[RecordedCall] = []

    def record(self, method: str, context: grpc.ServicerContext) -> None:
        call = RecordedCall(
            method=method,
            metadata=tuple((m.key, m.value) for m in context.invocation_metadata()),
            peer=context.peer(),
        )
        with self._lock:
            self._calls.append(call)

    @property
    def calls(self) -> list[RecordedCall]:
        """A snapshot of every call so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def count(self, method: str | None = None) -> int:
        """How many calls (to ``method``, a full path or a bare name like "UnaryCall")."""
        return sum(1 for c in self.calls if method is None or _method_matches(c.method, method))

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


def _method_matches(full: str, wanted: str) -> bool:
    return full == wanted or full.rsplit("/", 1)[-1] == wanted


class HealthServicer(health.HealthServicer):  # type: ignore[misc]
    """grpcio-health-checking's servicer plus ``List`` (A90), which 1.85 leaves unimplemented.

    ``set(service, status)`` takes a ``ServingStatus`` int; see :data:`SERVING` and friends.
    The overall service "" starts SERVING (grpcio's default).
    """

    def List(self, request: Any, context: grpc.ServicerContext) -> Any:
        response = health_pb2.HealthListResponse()
        with self._lock:
            for service, status in self._server_status.items():
                response.statuses[service].status = status
        return response


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
UNKNOWN = health_pb2.HealthCheckResponse.UNKNOWN


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSMaterial:
    """A throwaway CA and a server certificate for "localhost", 127.0.0.1 and ::1."""

    ca: trustme.CA
    ca_pem: bytes
    server_key_pem: bytes
    server_cert_chain_pem: bytes
    client_key_pem: bytes  # a client certificate from the same CA, for mutual TLS
    client_cert_chain_pem: bytes

    @classmethod
    def create(cls) -> TLSMaterial:
        ca = trustme.CA()
        server = ca.issue_cert("localhost", "127.0.0.1", "::1")
        client = ca.issue_cert("client.grpc-lite.test")
        return cls(
            ca=ca,
            ca_pem=ca.cert_pem.bytes(),
            server_key_pem=server.private_key_pem.bytes(),
            server_cert_chain_pem=b"".join(blob.bytes() for blob in server.cert_chain_pems),
            client_key_pem=client.private_key_pem.bytes(),
            client_cert_chain_pem=b"".join(blob.bytes() for blob in client.cert_chain_pems),
        )

    def client_ssl_context(self, *, client_cert: bool = False) -> ssl.SSLContext:
        """A verifying client context that trusts :attr:`ca_pem`, ALPN ``h2``."""
        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        context.set_alpn_protocols(["h2"])
        if client_cert:
            with tempfile.TemporaryDirectory() as tmp:
                key, chain = os.path.join(tmp, "key.pem"), os.path.join(tmp, "chain.pem")
                with open(key, "wb") as f:
                    f.write(self.client_key_pem)
                with open(chain, "wb") as f:
                    f.write(self.client_cert_chain_pem)
                context.load_cert_chain(chain, key)
        return context

    def server_credentials(self, *, require_client_auth: bool = False) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.server_key_pem, self.server_cert_chain_pem)],
            root_certificates=self.ca_pem if require_client_auth else None,
            require_client_auth=require_client_auth,
        )


@dataclass(slots=True, kw_only=True)
class RunningServer:
    """A started grpcio server. ``target`` is what to dial (same as ``address``)."""

    server: grpc.Server
    address: str  # "127.0.0.1:PORT", "[::1]:PORT" or "unix:/tmp/.../s.sock"
    host: str | None  # None for a Unix socket
    port: int | None  # None for a Unix socket
    health: HealthServicer
    servicer: Any  # the service implementation; has ``.recorder`` (a CallRecorder)
    tls: TLSMaterial | None = None
    unix_path: str | None = None
    _executor: futures.ThreadPoolExecutor
    _cleanup_dir: str | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def target(self) -> str:
        return self.address

    @property
    def recorder(self) -> CallRecorder:
        recorder: CallRecorder = self.servicer.recorder
        return recorder

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def stop(self, grace: float | None = None, *, wait: bool = True) -> threading.Event:
        """Stop the server (grpcio ``Server.stop``): GOAWAY, then cancel what is left.

        With ``wait`` this blocks until shutdown completes, up to ``grace`` seconds. From an
        async test that needs its client to keep running during the grace period (a drain
        test), use :meth:`stop_async` or ``wait=False`` instead. Idempotent.
        """
        done = self.server.stop(grace)
        if not self._stopped.is_set():
            self._stopped.set()
            threading.Thread(target=self._finish, args=(done,), daemon=True).start()
        if wait:
            done.wait()
        return done

    async def stop_async(self, grace: float | None = None) -> None:
        """:meth:`stop` without blocking the event loop while the server drains."""
        done = self.stop(grace, wait=False)
        await asyncio.to_thread(done.wait)

    def _finish(self, done: threading.Event) -> None:
        done.wait()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._cleanup_dir is not None:
            shutil.rmtree(self._cleanup_dir, ignore_errors=True)


def short_unix_path() -> tuple[str, str]:
    """A fresh socket path short enough for sun_path (108 bytes); returns (path, its dir)."""
    directory = tempfile.mkdtemp(prefix="grpclite-", dir="/tmp")
    return os.path.join(directory, "s.sock"), directory


def loopback_aliases_available(hosts: Iterable[str] = ("127.0.0.2", "127.0.0.3")) -> bool:
    """Whether this machine can bind the extra 127/8 addresses (Linux can; macOS needs aliases)."""
    for host in hosts:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, 0))
            except OSError:
                return False
    return True


def _format_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def start_server(
    register: Callable[[grpc.Server], tuple[Any, Sequence[str]]],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    options: Sequence[tuple[str, Any]] = (),
    tls: TLSMaterial | None = None,
    require_client_auth: bool = False,
    unix_path: str | None = None,
    compression: grpc.Compression | None = None,
    max_workers: int = 32,
) -> RunningServer:
    """Build, bind and start a server; ``register`` adds the services and returns
    ``(servicer, full service names)``. Health and reflection are added here.

    ``unix_path``: bind only ``unix:<path>`` (no TCP); pass ``"auto"`` for a fresh temporary
    path that is removed when the server stops. ``compression``: the server's default
    response compression. ``options``: grpcio server options, applied over
    :data:`DEFAULT_SERVER_OPTIONS`.
    """
    merged = dict(DEFAULT_SERVER_OPTIONS)
    merged.update(options)
    executor = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc-srv")
    server = grpc.server(executor, options=list(merged.items()), compression=compression)
    servicer, service_names = register(server)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in service_names:
        health_servicer.set(name, SERVING)
    reflection.enable_server_reflection(
        (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )

    cleanup_dir = None
    if unix_path is not None:
        if unix_path == "auto":
            unix_path, cleanup_dir = short_unix_path()
        bind = f"unix:{unix_path}"
    else:
        bind = _format_host_port(host, port)
    try:
        if tls is not None:
            creds = tls.server_credentials(require_client_auth=require_client_auth)
            bound = server.add_secure_port(bind, creds)
        else:
            bound = server.add_insecure_port(bind)
    except RuntimeError as exc:  # grpcio raises RuntimeError when it cannot bind
        executor.shutdown(wait=False)
        raise OSError(f"cannot bind {bind}: {exc}") from exc
    server.start()
    if unix_path is not None:
        return RunningServer(
            server=server,
            address=bind,
            host=None,
            port=None,
            health=health_servicer,
            servicer=servicer,
            tls=tls,
            unix_path=unix_path,
            _executor=executor,
            _cleanup_dir=cleanup_dir,
        )
    return RunningServer(
        server=server,
        address=_format_host_port(host, bound),
        host=host,
        port=bound,
        health=health_servicer,
        servicer=servicer,
        tls=tls,
        _executor=executor,
    )


class ServerFactory:
    """Starts interop and greeter servers and stops all of them in :meth:`stop_all`.

    ``factory(kind="interop", host="127.0.0.1", port=0, **kwargs)`` forwards ``kwargs`` to
    :func:`~tests.servers.interop.start_interop_server` or
    :func:`~tests.servers.greeter.start_greeter_server`.
    """

    def __init__(self) -> None:
        self.servers: list[RunningServer] = []

    def __call__(
        self, kind: str = "interop", host: str = "127.0.0.1", port: int = 0, **kwargs: Any
    ) -> RunningServer:
        if kind == "interop":
            from tests.servers.interop import start_interop_server

            server = start_interop_server(host, port, **kwargs)
        elif kind == "greeter":
            from tests.servers.greeter import start_greeter_server

            server = start_greeter_server(host, port, **kwargs)
        else:
            raise ValueError(f"unknown server kind {kind!r}")
        self.servers.append(server)
        return server

    def interop(self, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> RunningServer:
        return self("interop", host, port, **kwargs)

    def greeter(self, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> RunningServer:
        return self("greeter", host, port, **kwargs)

    def many(
        self,
        hosts: Sequence[str] = ("127.0.0.1", "127.0.0.2", "127.0.0.3"),
        *,
        kind: str = "greeter",
        port: int = 0,
        same_port: bool = True,
        **kwargs: Any,
    ) -> list[RunningServer]:
        """One server per host. With ``same_port`` they share one port number (the first
        server picks it when ``port`` is 0; retried a few times if another host's port is
        taken). Greeter backends default to ``backend_id`` = their address."""
        attempts = 5 if same_port and port == 0 else 1
        for attempt in range(attempts):
            started: list[RunningServer] = []
            try:
                chosen = port
                for host in hosts:
                    server = self(kind, host, chosen, **kwargs)
                    started.append(server)
                    if same_port:
                        chosen = server.port or 0
                return started
            except OSError:
                for server in started:
                    server.stop()
                    self.servers.remove(server)
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def stop_all(self, grace: float | None = None) -> None:
        events = [server.stop(grace, wait=False) for server in self.servers]
        for event in events:
            event.wait()
        self.servers.clear()

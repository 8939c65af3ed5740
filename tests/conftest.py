"""Shared pytest fixtures. Keep each group in its own section."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.harness import (
    RunningServer,
    ServerFactory,
    TLSMaterial,
    loopback_aliases_available,
)

# Generated protobuf modules (test_pb2_grpc.py matches test_*.py); nothing to collect there.
collect_ignore_glob = ["protos/*"]

# --- grpcio test servers (tests/servers/) ------------------------------------------------


@pytest.fixture
def grpc_server_factory() -> Iterator[ServerFactory]:
    """Start grpcio servers: ``factory("interop"|"greeter", host, port, **kw)``,
    ``factory.interop(...)``, ``factory.greeter(...)``, ``factory.many(hosts, ...)``.
    Everything it started is stopped at teardown."""
    factory = ServerFactory()
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def interop_server(grpc_server_factory: ServerFactory) -> RunningServer:
    """grpc.testing.TestService (+ health, reflection) on 127.0.0.1, a free port."""
    return grpc_server_factory.interop()


@pytest.fixture(scope="session")
def tls_material() -> TLSMaterial:
    """A trustme CA (``.ca_pem``) and a server certificate for localhost/127.0.0.1/::1."""
    return TLSMaterial.create()


@pytest.fixture
def tls_interop_server(
    grpc_server_factory: ServerFactory, tls_material: TLSMaterial
) -> RunningServer:
    """The interop server over TLS; ``.tls.ca_pem`` verifies it (dial "localhost:PORT" or
    ``.address``)."""
    return grpc_server_factory.interop(tls=tls_material)


@pytest.fixture
def unix_interop_server(grpc_server_factory: ServerFactory) -> RunningServer:
    """The interop server on a fresh Unix socket; ``.address`` is "unix:/tmp/.../s.sock"."""
    return grpc_server_factory.interop(unix_path="auto")


@pytest.fixture
def greeter_server(grpc_server_factory: ServerFactory) -> RunningServer:
    """helloworld.Greeter on 127.0.0.1 answering "Hello NAME from 127.0.0.1:PORT"."""
    return grpc_server_factory.greeter()


@pytest.fixture
def greeter_backends(grpc_server_factory: ServerFactory) -> list[RunningServer]:
    """Three Greeter backends on 127.0.0.1, .2 and .3, all on the same port; each says its
    own address. Fails where the extra loopback addresses cannot be bound (Linux binds the
    whole 127.0.0.0/8 on lo; the control-plane tests need it)."""
    if not loopback_aliases_available():
        pytest.fail("127.0.0.2/127.0.0.3 not bindable on this machine")
    return grpc_server_factory.many(("127.0.0.1", "127.0.0.2", "127.0.0.3"), kind="greeter")


# --- proxy environment (grpc_lite._proxy) ---------------------------------------------------

_PROXY_VARIABLES = ("grpc_proxy", "https_proxy", "http_proxy", "no_grpc_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Channels read the proxy variables when created: a developer's http_proxy must not
    send the suite's loopback calls through their proxy. Proxy tests set them explicitly."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)

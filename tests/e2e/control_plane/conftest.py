"""Fixtures for the control-plane integration tests: a registered ManualResolver under a
fresh scheme, Greeter backends on 127.0.0.1-.4 (same port) and a real DNS server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import grpc_lite.resolver
from tests.dnsmasq import Dnsmasq, start_dnsmasq
from tests.servers.harness import RunningServer, ServerFactory


@pytest.fixture
def manual_resolver() -> Iterator[grpc_lite.resolver.ManualResolver]:
    """A ManualResolver registered under a scheme no other test uses; dial
    ``f"{r.scheme}:///backends"``. Unregistered at teardown."""
    scheme = f"cptest{uuid.uuid4().hex[:10]}"
    resolver = grpc_lite.resolver.ManualResolver(scheme)
    grpc_lite.resolver.register(resolver)
    try:
        yield resolver
    finally:
        grpc_lite.resolver.unregister_for_testing(scheme)


@pytest.fixture
def four_backends(grpc_server_factory: ServerFactory) -> list[RunningServer]:
    """Greeter backends on 127.0.0.1, .2, .3 and .4, all on one port; each says its address."""
    return grpc_server_factory.many(
        ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"), kind="greeter"
    )


@pytest.fixture
def dnsmasq(tmp_path: Path) -> Iterator[Dnsmasq]:
    """dnsmasq on 127.0.0.1 at a free port: ``svc.test`` -> 127.0.0.1, .2, .3 and a TXT
    ``_grpc_config.svc.test`` selecting round_robin (tests/dnsmasq.py)."""
    with start_dnsmasq(tmp_path) as server:
        yield server

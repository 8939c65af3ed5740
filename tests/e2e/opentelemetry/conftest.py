from __future__ import annotations

from collections.abc import Iterator

import pytest

from grpc_lite import _observability
from tests.e2e.opentelemetry._util import Telemetry


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    try:
        yield t
    finally:
        t.close()


@pytest.fixture(autouse=True)
def no_global_plugins() -> Iterator[None]:
    """Every test starts and ends without globally registered plugins."""
    assert _observability.global_plugins() == ()
    yield
    for plugin in _observability.global_plugins():
        _observability.deregister_global(plugin)

from __future__ import annotations

from collections.abc import Iterator

import pytest

from grpc_lite import _observability
from tests.e2e.opentelemetry._util import Telemetry


@pytest.fixture(params=[True, False], ids=["local", "api"])
def telemetry(request: pytest.FixtureRequest) -> Iterator[Telemetry]:
    """Every test runs twice: with the plugin's histograms aggregated locally and merged at
    collection, and recorded through Histogram.record; both must read the same."""
    t = Telemetry(local_aggregation=request.param)
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

"""Fixtures for resolver tests: a recording ResolverChannel, a fake clock and fake DNS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from grpc_lite.resolver import ResolverState
from tests.fakes.clock import FakeClock
from tests.fakes.dns import FakeDns


class FakeResolverChannel:
    """Implements grpc_lite.resolver.ResolverChannel; records what the resolver pushed."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self._options = dict(options or {})
        self.states: list[ResolverState] = []
        self.errors: list[Exception] = []
        self.events: list[ResolverState | Exception] = []
        self.accept = True

    @property
    def channel_options(self) -> Mapping[str, Any]:
        return self._options

    def update_state(self, state: ResolverState) -> bool:
        self.states.append(state)
        self.events.append(state)
        return self.accept

    def report_error(self, exc: Exception) -> None:
        self.errors.append(exc)
        self.events.append(exc)

    @property
    def addresses(self) -> list[str]:
        """The addresses of the last state."""
        return [a.addr for a in self.states[-1].addresses] if self.states else []


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_dns() -> FakeDns:
    return FakeDns()


@pytest.fixture
def resolver_channel() -> FakeResolverChannel:
    return FakeResolverChannel()

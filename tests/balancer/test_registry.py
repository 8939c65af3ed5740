"""The balancer registry and its built-ins (items 81, 90; grpc-go balancer.Register/Get)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from grpc_lite import balancer
from grpc_lite.balancer import (
    BalancerChannel,
    ChannelState,
    PickFirstBuilder,
    RoundRobinBuilder,
)
from grpc_lite.balancer.pick_first import PickFirstBalancer, PickFirstConfig
from grpc_lite.balancer.round_robin import RoundRobinBalancer
from grpc_lite.status import RpcError
from tests.fakes.balancer_channel import FakeBalancerChannel


class _NullBalancer:
    def update_channel_state(self, state: ChannelState) -> bool:
        return True

    def resolver_error(self, error: RpcError) -> None:
        pass

    def exit_idle(self) -> None:
        pass

    def close(self) -> None:
        pass


class _CustomBuilder:
    name = "Custom_Policy"

    def build(self, channel: BalancerChannel) -> _NullBalancer:
        return _NullBalancer()

    def parse_config(self, config: Mapping[str, Any]) -> Any:
        return dict(config)


@pytest.fixture
def custom() -> Iterator[_CustomBuilder]:
    builder = _CustomBuilder()
    balancer.register(builder)
    yield builder
    balancer.unregister_for_testing(builder.name)


def test_builtins_are_registered() -> None:
    """Items 81 / 90: pick_first and round_robin are registered on import."""
    assert isinstance(balancer.get("pick_first"), PickFirstBuilder)
    assert isinstance(balancer.get("round_robin"), RoundRobinBuilder)


@pytest.mark.parametrize("name", ["PICK_FIRST", "Pick_First", "pick_first"])
def test_lookup_is_case_insensitive(name: str) -> None:
    """Policy names in service configs match case-insensitively."""
    assert isinstance(balancer.get(name), PickFirstBuilder)
    rr_name = name.lower().replace("pick_first", "round_robin").upper()
    assert isinstance(balancer.get(rr_name), RoundRobinBuilder)


def test_unknown_name_is_none() -> None:
    assert balancer.get("grpclb") is None
    assert balancer.get("") is None


def test_register_and_unregister_custom(custom: _CustomBuilder) -> None:
    """User policies register by name; the test-only unregister removes them."""
    assert balancer.get("custom_policy") is custom
    assert balancer.get("CUSTOM_POLICY") is custom
    balancer.unregister_for_testing("CUSTOM_POLICY")
    assert balancer.get("custom_policy") is None


def test_builtin_builders_build_their_balancers() -> None:
    """The registered builders satisfy BalancerBuilder and build the right balancers."""
    pf = balancer.get("pick_first")
    rr = balancer.get("round_robin")
    assert pf is not None and rr is not None
    assert isinstance(pf.build(FakeBalancerChannel()), PickFirstBalancer)
    assert isinstance(rr.build(FakeBalancerChannel()), RoundRobinBalancer)
    assert pf.parse_config({"shuffleAddressList": True}) == PickFirstConfig(
        shuffle_address_list=True
    )


def test_builtin_builders_are_exported() -> None:
    assert "PickFirstBuilder" in balancer.__all__
    assert "RoundRobinBuilder" in balancer.__all__

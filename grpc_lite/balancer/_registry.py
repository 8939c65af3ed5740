"""Policy name -> BalancerBuilder (grpc-go: balancer.Register / Get)."""

from ._api import BalancerBuilder

_builders: dict[str, BalancerBuilder] = {}


def register(builder: BalancerBuilder) -> None:
    """Register `builder` under `builder.name` (lowercase); a later one replaces an earlier one."""
    name = builder.name
    if not isinstance(name, str) or not name:
        raise ValueError(f"balancer builder name must be a non-empty str, got {name!r}")
    _builders[name.lower()] = builder


def get(name: str) -> BalancerBuilder | None:
    """The builder registered under `name` (case-insensitive), or None."""
    return _builders.get(name.lower())


def unregister_for_testing(name: str) -> None:
    _builders.pop(name.lower(), None)

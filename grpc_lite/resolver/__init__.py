"""Name resolution: the public resolver extension API and the built-in resolvers.

Built-in schemes (registered on import): `dns` (the default), `passthrough`, `unix`,
`unix-abstract`, `ipv4`, `ipv6`. `ManualResolver` is for tests and applications that push
addresses themselves; register it under a scheme of your choice.
"""

from __future__ import annotations

from grpc_lite.resolver._api import (
    Address,
    AddressKey,
    BuildOptions,
    ConfigSelector,
    Endpoint,
    EndpointKey,
    Resolver,
    ResolverBuilder,
    ResolverChannel,
    ResolverState,
    RpcConfig,
    RpcInfo,
    Target,
    address_key,
    endpoint_key,
)
from grpc_lite.resolver._registry import (
    get,
    get_default_scheme,
    register,
    set_default_scheme,
    unregister_for_testing,
)
from grpc_lite.resolver._target import default_authority, parse_target
from grpc_lite.resolver.dns import DnsResolverBuilder
from grpc_lite.resolver.ipv import Ipv4ResolverBuilder, Ipv6ResolverBuilder
from grpc_lite.resolver.manual import ManualResolver
from grpc_lite.resolver.passthrough import PassthroughResolverBuilder
from grpc_lite.resolver.unix import UnixAbstractResolverBuilder, UnixResolverBuilder

__all__ = [
    "Address",
    "AddressKey",
    "BuildOptions",
    "ConfigSelector",
    "DnsResolverBuilder",
    "Endpoint",
    "EndpointKey",
    "ManualResolver",
    "Resolver",
    "ResolverBuilder",
    "ResolverChannel",
    "ResolverState",
    "RpcConfig",
    "RpcInfo",
    "Target",
    "address_key",
    "default_authority",
    "endpoint_key",
    "get",
    "get_default_scheme",
    "parse_target",
    "register",
    "register_builtins",
    "set_default_scheme",
    "unregister_for_testing",
]


def register_builtins() -> None:
    """(Re-)register the built-in resolvers; import does this once."""
    for builder in (
        DnsResolverBuilder(),
        PassthroughResolverBuilder(),
        UnixResolverBuilder(),
        UnixAbstractResolverBuilder(),
        Ipv4ResolverBuilder(),
        Ipv6ResolverBuilder(),
    ):
        register(builder)


register_builtins()

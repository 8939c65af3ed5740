"""The resolver extension API (grpc-go: package resolver, resolver.go).

A `ResolverBuilder` is registered under a URI scheme. When a channel leaves IDLE it builds a
`Resolver` for its parsed `Target`, handing it a `ResolverChannel`: the only view of the
channel a resolver gets. The resolver pushes `ResolverState`s (addresses, service config) or
errors into it, from any code running on the channel's event loop. Its timers
(`ResolverChannel.call_later`) run on the channel's serializer, like `resolve_now()` and
`close()`, so none of these is ever called while another one runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVarTuple, Unpack

if TYPE_CHECKING:
    from grpc_lite._clock import Clock, TimerHandle
    from grpc_lite.service_config import MethodConfig

__all__ = [
    "Address",
    "AddressKey",
    "BuildOptions",
    "ConfigSelector",
    "Endpoint",
    "EndpointKey",
    "Resolver",
    "ResolverBuilder",
    "ResolverChannel",
    "ResolverState",
    "RpcConfig",
    "RpcInfo",
    "Target",
    "address_key",
    "endpoint_key",
]

_Ts = TypeVarTuple("_Ts")


@dataclass(frozen=True, slots=True)
class Address:
    """One address a subchannel can dial (grpc-go: resolver.Address).

    `addr` is `"host:port"` (an IPv6 host in brackets: `"[::1]:443"`), `"unix:/path"` (or a
    relative `"unix:path"`) or `"unix-abstract:name"` (the transport prepends the NUL byte).
    """

    addr: str
    _: KW_ONLY
    server_name: str | None = None
    """Overrides the channel's `:authority` (and TLS name) for this address."""
    attributes: tuple[tuple[str, Hashable], ...] = ()
    """Opaque (key, value) pairs for the balancer; hashable so the address is too."""

    def attribute(self, key: str, default: Any = None) -> Any:
        for k, v in self.attributes:
            if k == key:
                return v
        return default


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One backend, reachable at any of its addresses (grpc-go: resolver.Endpoint)."""

    addresses: tuple[Address, ...]
    _: KW_ONLY
    attributes: tuple[tuple[str, Hashable], ...] = ()


AddressKey = tuple[str, str | None]
EndpointKey = frozenset[AddressKey]


def address_key(address: Address) -> AddressKey:
    """What makes two addresses the same backend: a balancer keeps one subchannel per key.

    The attributes are left out, as grpc-go's ``resolver.AddressMap`` ignores
    BalancerAttributes: a change of attributes alone must not cost a reconnect.
    """
    return (address.addr, address.server_name)


def endpoint_key(endpoint: Endpoint) -> EndpointKey:
    """What makes two endpoints the same backend: the set of their address keys.

    As grpc-go's ``resolver.EndpointMap``: the order of the addresses and the attributes do
    not count, so a parent policy keeps an endpoint's child when only those change.
    """
    return frozenset(address_key(a) for a in endpoint.addresses)


@dataclass(frozen=True, slots=True)
class ResolverState:
    """What a resolver produced (grpc-go: resolver.State).

    `addresses` and `endpoints` are two views of the same list: give either and the other is
    filled in (one endpoint per address, or the endpoints' addresses in order).

    `service_config` is the service config JSON text the resolver found, or None when it has
    none (the channel then uses its default config). `service_config_error` says the
    resolver found a config but it is invalid: the channel keeps the config it had, or treats
    a fresh channel as a resolution failure (A21 §Behavior on receiving a new gRPC Config).
    """

    addresses: tuple[Address, ...] = ()
    _: KW_ONLY
    endpoints: tuple[Endpoint, ...] = ()
    service_config: str | None = None
    service_config_error: str | None = None
    attributes: tuple[tuple[str, Hashable], ...] = ()
    config_selector: ConfigSelector | None = None
    """Per-RPC configuration (grpc-go: iresolver.ConfigSelector, gRFC A31): when set, the
    channel asks it for every RPC before it looks up the method config and picks. None: the
    service config's method configs apply as usual."""

    def __post_init__(self) -> None:
        # Accept lists from hand-written code; keep the frozen value hashable.
        if not isinstance(self.addresses, tuple):
            object.__setattr__(self, "addresses", tuple(self.addresses))
        if not isinstance(self.endpoints, tuple):
            object.__setattr__(self, "endpoints", tuple(self.endpoints))
        if self.addresses and not self.endpoints:
            object.__setattr__(self, "endpoints", tuple(Endpoint((a,)) for a in self.addresses))
        elif self.endpoints and not self.addresses:
            object.__setattr__(
                self, "addresses", tuple(a for e in self.endpoints for a in e.addresses)
            )

    def replace(self, **changes: Any) -> ResolverState:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True, kw_only=True, init=False)
class RpcInfo:
    """What a `ConfigSelector` sees of an RPC (grpc-go: iresolver.RPCInfo)."""

    method: str
    """The full method path, ``/package.Service/Method``."""
    metadata: tuple[tuple[str, str | bytes], ...] = ()
    """The call's metadata as the application gave it."""

    def __init__(self, *, method: str, metadata: tuple[tuple[str, str | bytes], ...] = ()) -> None:
        # Made per call with metadata on a channel with a selector: the slots are set through
        # their descriptors, not object.__setattr__ per field as a frozen dataclass's
        # generated __init__ does (about 30% fewer instructions; still frozen, equal, hashed
        # and repr'd as the dataclass it is).
        _set_rpc_method(self, method)
        _set_rpc_metadata(self, metadata)


_set_rpc_method = RpcInfo.__dict__["method"].__set__
_set_rpc_metadata = RpcInfo.__dict__["metadata"].__set__


@dataclass(frozen=True, slots=True, kw_only=True)
class RpcConfig:
    """What a `ConfigSelector` decided for one RPC (grpc-go: iresolver.RPCConfig).

    `method_config` replaces the service config's method config for this RPC when not None
    (A31: an xDS route's timeout and retry policy). `attributes` reach the picker as
    `PickInfo.attributes`. `on_committed` runs once when the call commits to an attempt (or
    ends without one): an xDS cluster's reference count is released there.
    """

    method_config: MethodConfig | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    on_committed: Callable[[], None] | None = None


class ConfigSelector(Protocol):
    """Chooses the configuration of each RPC; published by a resolver in `ResolverState`.

    Called from any coroutine of the channel's loop, concurrently with the resolver: it
    must be immutable (publish a new one to change it). Raise `grpc_lite.RpcError` to fail
    the RPC (A28: no matching route, or a non-forwarding action, is UNAVAILABLE).
    """

    def select(self, info: RpcInfo) -> RpcConfig: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A parsed channel target (grpc-go: resolver.Target).

    For `dns://8.8.8.8/example.com:443`: scheme `dns`, authority `8.8.8.8`, endpoint
    `example.com:443`, path `/example.com:443`. `endpoint` is the URI path without its
    leading "/" (or the opaque part, as in `unix:relative/path`); `path` keeps the slash,
    which unix targets need. `url` is the string that was parsed: for a target without a
    registered scheme it is the `dns:///`-prefixed form.
    """

    scheme: str
    authority: str
    endpoint: str
    url: str
    path: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildOptions:
    """What a builder gets besides the target and the channel (grpc-go: BuildOptions).

    `channel_options` are the channel's options as given (grpc channel-argument names, for
    example `grpc.dns_min_time_between_resolutions_ms`). `clock` is the channel's clock;
    None means the real one.
    """

    channel_options: Mapping[str, Any] = field(default_factory=dict)
    disable_service_config: bool = False
    clock: Clock | None = None


class ResolverChannel(Protocol):
    """The channel as a resolver sees it (grpc-go: resolver.ClientConn).

    Implemented by the channel's `_ResolverWrapper`. Call it from code on the channel's event
    loop only; the wrapper queues the work on the channel's serializer.
    """

    @property
    def channel_options(self) -> Mapping[str, Any]:
        """The channel's options (same mapping as `BuildOptions.channel_options`)."""
        ...

    def update_state(self, state: ResolverState) -> bool:
        """Push a new resolution result.

        Returns False when the balancer rejected it (grpc-go ErrBadResolverState), which a
        polling resolver takes as a reason to re-resolve with backoff.
        """
        ...

    def report_error(self, exc: Exception) -> None:
        """Report a resolution failure; the channel keeps its last good state."""
        ...

    def call_later(
        self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> TimerHandle:
        """Run ``callback(*args)`` on the channel's serializer after `delay` seconds.

        The resolver's timers: the callback is queued on the serializer when the timer fires,
        so it never runs while `resolve_now()` or `close()` does. ``delay <= 0`` queues it at
        once. Cancel with the handle's ``cancel()``; once the resolver is closed its timers
        never run.
        """
        ...


class Resolver:
    """A running resolver for one channel (grpc-go: resolver.Resolver).

    `resolve_now()` is a hint to re-resolve (after a connection loss, say); the resolver may
    ignore or pace it. `close()` stops all work; both are sync and called from the channel's
    serializer.
    """

    def resolve_now(self) -> None:
        """Hint that a new resolution would be useful. The default does nothing."""

    def close(self) -> None:
        """Stop resolving; after this, push nothing more to the channel."""

    async def wait_closed(self) -> None:
        """After `close()`, wait until the resolver's background work has finished.

        The channel awaits this when it shuts down so that no task outlives it. The
        default has nothing to wait for.
        """

    def debug_info(self) -> dict[str, Any] | None:
        """What the resolver wants `Channel.snapshot()` to show of it (``resolver``): a dict
        of JSON-like values (the xDS resolver: its client's server, stream and resources,
        grpc's CSDS view), or None (the default) for nothing. Called on the channel's loop,
        between the resolver's callbacks; it must not raise or block."""
        return None


class ResolverBuilder:
    """Builds resolvers for one URI scheme (grpc-go: resolver.Builder).

    Subclasses set `scheme` and implement `build`. `validate_target` lets a builder reject a
    malformed target when the channel is created (`ValueError`), before anything is built.
    """

    scheme: str = ""

    def build(self, target: Target, channel: ResolverChannel, options: BuildOptions) -> Resolver:
        raise NotImplementedError

    def validate_target(self, target: Target) -> None:
        """Raise ValueError naming the problem if `target` cannot work with this scheme."""

    def default_authority(self, target: Target) -> str:
        """The `:authority` for this target when none is configured (grpc-go initAuthority).

        The endpoint as written; `":port"` becomes `"localhost:port"`, as grpc-go does.
        """
        endpoint = target.endpoint
        if endpoint.startswith(":"):
            return "localhost" + endpoint
        return endpoint

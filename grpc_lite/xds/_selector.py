"""The xds resolver's ConfigSelector: virtual host choice and per-RPC route matching.

- `choose_virtual_host` picks the virtual host for the channel's data-plane authority in
  Envoy's order (envoy.config.route.v3.VirtualHost.domains): an exact domain, then the
  longest suffix wildcard (`*.foo.com`, `*-bar.foo.com`), then the longest prefix wildcard
  (`foo.*`), then `*`. Matching ignores case; a wildcard never matches the empty string;
  a domain with a `*` anywhere else is never matched. gRFC A27 "Virtual host selection";
  grpc-go: xdsresource.FindBestMatchingVirtualHost.
- `XdsConfigSelector.select` runs per RPC (gRFC A28 route matching, A31 ConfigSelector): the
  first route whose path matcher accepts the method wins (`prefix`, `path`, or `safe_regex`
  matched against the whole path; `case_sensitive: false` applies to prefix and path only,
  as Envoy's RouteMatch.case_sensitive says). Its cluster becomes the pick attribute
  `xds.cluster` = `"cluster:NAME"` (the xds_cluster_manager child name), and the listener's
  `max_stream_duration` the method timeout (A31). No matching route, or a non-forwarding
  one, fails the RPC with UNAVAILABLE (A28).

Cluster references (A31 "Cluster refcounting"): with a `refs` factory, each `select()` takes
a reference on the chosen cluster's `ClusterRef` and the RpcConfig's `on_committed` drops it.
The resolver keeps a cluster in the LB config while it has references, so an RPC that chose a
cluster under an old route configuration still finds it when it picks.

Everything per route is computed when the selector is built; `select()` is a loop of string
comparisons returning a shared, immutable `RpcConfig`.
"""

from __future__ import annotations

import enum
import re
import types
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from grpc_lite.resolver import RpcConfig, RpcInfo
from grpc_lite.service_config import MethodConfig
from grpc_lite.status import RpcError, StatusCode
from grpc_lite.xds._model import ListenerResource, Route, VirtualHost

__all__ = [
    "CLUSTER_ATTRIBUTE",
    "ClusterRef",
    "FailingConfigSelector",
    "XdsConfigSelector",
    "child_name",
    "choose_virtual_host",
    "domain_match",
    "route_clusters",
]

CLUSTER_ATTRIBUTE = "xds.cluster"


def child_name(cluster: str) -> str:
    """The xds_cluster_manager child for `cluster` (grpc-go: clusterPrefix + name)."""
    return "cluster:" + cluster


# --- virtual host selection -----------------------------------------------------------------


class DomainKind(enum.IntEnum):
    """Kinds of VirtualHost.domains patterns, best first."""

    EXACT = 0
    SUFFIX = 1  # "*.foo.com": the wildcard first
    PREFIX = 2  # "foo.*": the wildcard last
    UNIVERSAL = 3  # "*"
    INVALID = 4  # a "*" anywhere else: matches nothing


def _domain_kind(pattern: str) -> DomainKind:
    if pattern == "*":
        return DomainKind.UNIVERSAL
    stars = pattern.count("*")
    if stars == 0:
        return DomainKind.EXACT
    if stars == 1 and pattern.startswith("*"):
        return DomainKind.SUFFIX
    if stars == 1 and pattern.endswith("*"):
        return DomainKind.PREFIX
    return DomainKind.INVALID


def domain_match(pattern: str, host: str) -> DomainKind | None:
    """How `pattern` matches `host` (both compared lower-cased), or None."""
    pattern = pattern.lower()
    host = host.lower()
    kind = _domain_kind(pattern)
    if kind is DomainKind.EXACT:
        return kind if host == pattern else None
    if kind is DomainKind.UNIVERSAL:
        return kind
    # Envoy: "Wildcards will not match the empty string": the host is longer than the rest.
    if kind is DomainKind.SUFFIX:
        return kind if len(host) >= len(pattern) and host.endswith(pattern[1:]) else None
    if kind is DomainKind.PREFIX:
        return kind if len(host) >= len(pattern) and host.startswith(pattern[:-1]) else None
    return None


def choose_virtual_host(virtual_hosts: Sequence[VirtualHost], authority: str) -> VirtualHost | None:
    """The virtual host for `authority`, in Envoy's order; None when no domain matches.

    Best kind first (exact, suffix, prefix, universal); within a kind the longest pattern;
    on a full tie the first virtual host listed.
    """
    best: VirtualHost | None = None
    best_rank: tuple[int, int] | None = None
    for vhost in virtual_hosts:
        for pattern in vhost.domains:
            kind = domain_match(pattern, authority)
            if kind is None:
                continue
            rank = (int(kind), -len(pattern))
            if best_rank is None or rank < best_rank:
                best, best_rank = vhost, rank
    return best


# --- route matching -------------------------------------------------------------------------


class ClusterRef(Protocol):
    """A reference count on one cluster, kept by the resolver (A31)."""

    count: int

    def release(self) -> None:
        """Drop one reference (the RpcConfig's on_committed)."""
        ...


def route_clusters(virtual_host: VirtualHost) -> tuple[str, ...]:
    """The clusters the virtual host's routes name, in route order, each once (A74: the
    clusters the dependency manager watches and the xds_cluster_manager children)."""
    names: dict[str, None] = {}
    for route in virtual_host.routes:
        if not route.non_forwarding and route.cluster is not None:
            names.setdefault(route.cluster, None)
    return tuple(names)


# Path matcher kinds: plain ints, compared per RPC.
_ANY = 0  # prefix "" (or "/": every gRPC path starts with it)
_PREFIX = 1
_PATH = 2
_REGEX = 3
_PREFIX_NOCASE = 4
_PATH_NOCASE = 5


def _matcher(route: Route) -> tuple[int, Any]:
    if route.prefix is not None:
        if route.prefix in ("", "/"):
            return _ANY, None
        if route.case_sensitive:
            return _PREFIX, route.prefix
        return _PREFIX_NOCASE, route.prefix.lower()
    if route.path is not None:
        if route.case_sensitive:
            return _PATH, route.path
        return _PATH_NOCASE, route.path.lower()
    if route.safe_regex is not None:
        # The decoder accepted the regex (it NACKs what Python's re cannot compile).
        return _REGEX, re.compile(route.safe_regex)
    raise ValueError("route has no path matcher (prefix, path or safe_regex)")


class XdsConfigSelector:
    """The ConfigSelector of one published xDS config (immutable; any coroutine may call)."""

    __slots__ = ("_default", "_default_ref", "_routes", "_virtual_host")

    def __init__(
        self,
        virtual_host: VirtualHost,
        listener: ListenerResource,
        refs: Callable[[str], ClusterRef] | None = None,
    ) -> None:
        self._virtual_host = virtual_host.name
        duration = listener.max_stream_duration
        # Envoy: a max_stream_duration of 0 means no limit; A31 treats it as unset.
        method_config = MethodConfig(timeout=duration) if duration and duration > 0 else None
        configs: dict[str, tuple[RpcConfig, ClusterRef | None]] = {}
        routes: list[tuple[int, Any, RpcConfig | None, ClusterRef | None, str]] = []
        for route in virtual_host.routes:
            kind, value = _matcher(route)
            config: RpcConfig | None = None
            ref: ClusterRef | None = None
            refusal = ""
            if route.non_forwarding or route.cluster is None:
                refusal = (
                    f"the matching route of virtual host {virtual_host.name!r} has a "
                    f"{route.action or 'missing'} action, which grpc_lite does not forward"
                )
            else:
                if route.cluster not in configs:
                    ref = refs(route.cluster) if refs is not None else None
                    configs[route.cluster] = (
                        RpcConfig(
                            method_config=method_config,
                            attributes=types.MappingProxyType(
                                {CLUSTER_ATTRIBUTE: child_name(route.cluster)}
                            ),
                            on_committed=ref.release if ref is not None else None,
                        ),
                        ref,
                    )
                config, ref = configs[route.cluster]
            routes.append((kind, value, config, ref, refusal))
            if kind == _ANY:
                break  # later routes can never match
        # The common table (one default route) answers without a loop.
        self._default: RpcConfig | None = None
        self._default_ref: ClusterRef | None = None
        if len(routes) == 1 and routes[0][0] == _ANY and routes[0][2] is not None:
            self._default, self._default_ref = routes[0][2], routes[0][3]
        self._routes = tuple(routes)

    def select(self, info: RpcInfo) -> RpcConfig:
        default = self._default
        if default is not None:
            if (ref := self._default_ref) is not None:
                ref.count += 1
            return default
        path = info.method
        lowered: str | None = None
        for kind, value, config, ref, refusal in self._routes:
            if kind == 0:  # _ANY
                hit = True
            elif kind == 1:  # _PREFIX
                hit = path.startswith(value)
            elif kind == 2:  # _PATH
                hit = path == value
            elif kind == 3:  # _REGEX
                hit = value.fullmatch(path) is not None
            else:
                if lowered is None:
                    lowered = path.lower()
                hit = lowered.startswith(value) if kind == 4 else lowered == value
            if hit:
                if config is None:
                    raise RpcError(StatusCode.UNAVAILABLE, f"xDS: {path}: {refusal}")
                if ref is not None:
                    ref.count += 1
                return config
        raise RpcError(
            StatusCode.UNAVAILABLE,
            f"xDS: no route in virtual host {self._virtual_host!r} matches {path}",
        )


class FailingConfigSelector:
    """Fails every RPC with UNAVAILABLE and `message` (A74: the listener or route
    configuration is unusable and there is no earlier config to keep)."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def select(self, info: RpcInfo) -> RpcConfig:
        raise RpcError(StatusCode.UNAVAILABLE, self.message)

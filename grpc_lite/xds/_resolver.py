"""The xds resolver: gRFC A74's XdsDependencyManager and the A27 resolver on top of it.

One `XdsResolver` per `xds:///NAME` channel. It loads the bootstrap, acquires the process's
shared XdsClient for it, and watches every resource the channel depends on:

    LDS NAME (through the bootstrap's client_default_listener_resource_name_template, A47)
      -> RDS (unless the listener inlines its RouteConfiguration)
        -> the virtual host for the data-plane authority (NAME), in Envoy's domain order
          -> CDS for every cluster a route of that virtual host names
            -> EDS for every cluster (its eds_service_name, or its own name)

It publishes one immutable `XdsConfig` (A74) at a time, and only when it is complete: every
watched resource has arrived, or is known not to exist, or failed before arriving. A cluster
whose CDS or EDS resource is missing is in the config with its error (RPCs routed to it
fail; other clusters keep working). So a route change that names a new cluster keeps the
old config in force until the new cluster's CDS and EDS resources are in: no tear.

The published state is the LB tree's input (see the xds_cluster_manager, cds, priority
policies in grpc_lite/xds/_balancers)::

    ResolverState(service_config={"loadBalancingConfig": [{"xds_cluster_manager_experimental":
                      {"children": {"cluster:NAME": {"childPolicy": [{"cds_experimental":
                      {"cluster": "NAME"}}]}}}}]},
                  attributes=(("xds.config", XdsConfig), ("xds.client", XdsClient),
                              ("xds.failover_timeout", seconds)),
                  config_selector=XdsConfigSelector)

Errors (A74 "Changes in xds Resolver"): the listener or route configuration not existing,
failing before it ever arrived, or having no virtual host for the authority, makes every RPC
fail with UNAVAILABLE naming the resource (a `FailingConfigSelector`), dropping the previous
config. An error on a resource the resolver already has (a NACK, a lost ADS stream) is
ambient: the resource stays in use (A88). A bootstrap that cannot be loaded is a resolver
error (`report_error`): RPCs fail with UNAVAILABLE and the bootstrap problem.

Cluster references (A31, A74): every RPC the selector routes holds a reference on its
cluster until it commits (`RpcConfig.on_committed`); a cluster the route configuration no
longer names stays watched and in the config while it has references, and goes when the last
one is dropped, so an RPC that chose it under the old routes still finds it when it picks.

Threading: the XdsClient calls the watchers from its own task on the channel's loop; each
callback is moved onto the channel's serializer with `ResolverChannel.call_later(0, ...)`,
where all of this resolver's state lives (one writer).

grpc-go: internal/xds/xdsdepmgr (the dependency manager), internal/xds/resolver (the
resolver and its config selector).
"""

from __future__ import annotations

import enum
import json
import logging
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from grpc_lite.resolver import (
    BuildOptions,
    Resolver,
    ResolverChannel,
    ResolverState,
    Target,
)
from grpc_lite.xds._model import (
    ClusterConfig,
    ClusterResource,
    EndpointsResource,
    ListenerResource,
    ResourceType,
    RouteConfigResource,
    XdsConfig,
)
from grpc_lite.xds._selector import (
    FailingConfigSelector,
    XdsConfigSelector,
    child_name,
    choose_virtual_host,
    route_clusters,
)

__all__ = [
    "WatchEvent",
    "WatchStatus",
    "XdsDeps",
    "XdsResolver",
    "service_config_json",
]

log = logging.getLogger("grpc_lite.xds")

RESOURCE_TIMEOUT_OPTION = "grpc_lite.xds_resource_timeout_s"
FAILOVER_TIMEOUT_OPTION = "grpc_lite.xds_failover_timeout_s"
DEFAULT_RESOURCE_TIMEOUT = 15.0  # gRFC A57
DEFAULT_FAILOVER_TIMEOUT = 10.0  # gRFC A56


class XdsClientLike(Protocol):
    """What the resolver uses of grpc_lite.xds._client.XdsClient."""

    def watch(self, rtype: ResourceType, name: str, watcher: Any) -> Callable[[], None]: ...

    def release(self) -> None: ...

    def debug_info(self) -> dict[str, Any]: ...

    async def wait_closed(self) -> None: ...


class BootstrapLike(Protocol):
    """What the resolver uses of grpc_lite.xds._bootstrap.Bootstrap (the rest goes to the
    XdsClient)."""

    def listener_resource_name(self, authority_path: str) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class XdsDeps:
    """The resolver's collaborators: the real ones (`default_deps`) or a test's fakes."""

    load_bootstrap: Callable[[Mapping[str, Any]], BootstrapLike]
    """Channel options -> Bootstrap; raises ValueError (BootstrapError) naming the problem."""
    acquire: Callable[..., XdsClientLike]
    """``acquire(bootstrap, resource_timeout=seconds, clock=clock)`` (refcounted)."""
    listener: ResourceType
    route_config: ResourceType
    cluster: ResourceType
    endpoints: ResourceType


def default_deps() -> XdsDeps:
    """The real bootstrap loader, XdsClient and resource types; registers the xDS LB
    policies the published service config names."""
    # Imported here, not at module level: the dependency manager's unit tests run on fakes
    # without protobuf, and these load the descriptor pool.
    from grpc_lite.xds._balancers import register_xds_policies
    from grpc_lite.xds._bootstrap import load_bootstrap
    from grpc_lite.xds._client import acquire
    from grpc_lite.xds._resources import CLUSTER, ENDPOINTS, LISTENER, ROUTE_CONFIG

    register_xds_policies()
    return XdsDeps(
        load_bootstrap=load_bootstrap,
        acquire=acquire,
        listener=LISTENER,
        route_config=ROUTE_CONFIG,
        cluster=CLUSTER,
        endpoints=ENDPOINTS,
    )


def service_config_json(cluster_names: Iterable[str]) -> str:
    """The service config for the LB tree: one xds_cluster_manager child per cluster."""
    children = {
        child_name(name): {"childPolicy": [{"cds_experimental": {"cluster": name}}]}
        for name in cluster_names
    }
    return json.dumps(
        {"loadBalancingConfig": [{"xds_cluster_manager_experimental": {"children": children}}]},
        separators=(",", ":"),
    )


# --- one watched resource ---------------------------------------------------------------


class WatchStatus(enum.Enum):
    """What the resolver knows of one watched resource."""

    WAITING = "waiting"  # requested, nothing heard yet
    RECEIVED = "received"  # have it (possibly with an ambient error since)
    DOES_NOT_EXIST = "does not exist"
    FAILED = "failed"  # an error before the resource ever arrived


class WatchEvent(enum.Enum):
    RESOURCE = "resource"
    DOES_NOT_EXIST = "does not exist"
    ERROR = "error"


_S, _E = WatchStatus, WatchEvent
TRANSITIONS: dict[tuple[WatchStatus, WatchEvent], WatchStatus] = {
    (_S.WAITING, _E.RESOURCE): _S.RECEIVED,
    (_S.WAITING, _E.DOES_NOT_EXIST): _S.DOES_NOT_EXIST,
    (_S.WAITING, _E.ERROR): _S.FAILED,
    (_S.RECEIVED, _E.RESOURCE): _S.RECEIVED,
    (_S.RECEIVED, _E.DOES_NOT_EXIST): _S.DOES_NOT_EXIST,
    (_S.RECEIVED, _E.ERROR): _S.RECEIVED,  # ambient (A88): keep using the resource
    (_S.DOES_NOT_EXIST, _E.RESOURCE): _S.RECEIVED,
    (_S.DOES_NOT_EXIST, _E.DOES_NOT_EXIST): _S.DOES_NOT_EXIST,
    (_S.DOES_NOT_EXIST, _E.ERROR): _S.DOES_NOT_EXIST,  # still the best knowledge
    (_S.FAILED, _E.RESOURCE): _S.RECEIVED,
    (_S.FAILED, _E.DOES_NOT_EXIST): _S.DOES_NOT_EXIST,
    (_S.FAILED, _E.ERROR): _S.FAILED,
}
"""Every (status, event) pair, so a watch never gets stuck in an unforeseen state."""

_KIND_NAMES = {
    "LDS": "listener",
    "RDS": "route configuration",
    "CDS": "cluster",
    "EDS": "endpoints",
}

R = TypeVar("R")


class _Watch(Generic[R]):
    """One resource watch. The XdsClient calls the `on_*` methods (its XdsWatcher); they hop
    onto the serializer, where `apply` (the only writer of `status`) runs."""

    __slots__ = ("_cancel", "_owner", "cancelled", "error", "kind", "name", "resource", "status")

    def __init__(self, owner: XdsResolver, kind: str, name: str) -> None:
        self._owner = owner
        self.kind = kind  # "LDS", "RDS", "CDS", "EDS"
        self.name = name
        self.status = WatchStatus.WAITING
        self.resource: R | None = None
        self.error: str | None = None  # the last error (ambient when RECEIVED)
        self.cancelled = False
        self._cancel: Callable[[], None] | None = None

    # XdsWatcher (called by the XdsClient from its task)
    def on_resource(self, type_url: str, name: str, resource: object) -> None:
        self._owner._deliver(self, WatchEvent.RESOURCE, resource)

    def on_does_not_exist(self, type_url: str, name: str) -> None:
        self._owner._deliver(self, WatchEvent.DOES_NOT_EXIST, None)

    def on_error(self, type_url: str, name: str, error: str) -> None:
        self._owner._deliver(self, WatchEvent.ERROR, error)

    def apply(self, event: WatchEvent, payload: object) -> None:
        self.status = TRANSITIONS[(self.status, event)]
        if event is WatchEvent.RESOURCE:
            self.resource = payload  # type: ignore[assignment]
            self.error = None
        elif event is WatchEvent.DOES_NOT_EXIST:
            self.resource = None
            self.error = None
        else:
            self.error = str(payload)

    def cancel(self) -> None:
        self.cancelled = True
        if self._cancel is not None:
            cancel, self._cancel = self._cancel, None
            cancel()

    def failure(self) -> str:
        """Why this resource cannot be used (status DOES_NOT_EXIST or FAILED)."""
        what = f"xDS {_KIND_NAMES[self.kind]} resource {self.name!r}"
        if self.status is WatchStatus.DOES_NOT_EXIST:
            return f"{what} does not exist"
        return f"{what}: {self.error}"

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "status": self.status.value}
        if self.error is not None:
            info["error"] = self.error
        return info


class _ClusterRef:
    """The reference count of one cluster (A31); `count` is raised by the selector per RPC
    and lowered by `release` when the RPC commits, both on the channel's loop."""

    __slots__ = ("_owner", "count", "name")

    def __init__(self, owner: XdsResolver, name: str) -> None:
        self._owner = owner
        self.name = name
        self.count = 0

    def release(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._owner._ref_dropped(self)


# --- the resolver -----------------------------------------------------------------------


class XdsResolver(Resolver):
    """The resolver of one `xds:///NAME` channel (grpc-go: xdsResolver + xdsdepmgr)."""

    def __init__(
        self,
        target: Target,
        channel: ResolverChannel,
        options: BuildOptions,
        deps: XdsDeps | None = None,
    ) -> None:
        self._channel = channel
        self._options = options
        self._authority = target.endpoint  # the data-plane authority (A27)
        self._deps = deps
        self._failover_timeout = float(
            options.channel_options.get(FAILOVER_TIMEOUT_OPTION, DEFAULT_FAILOVER_TIMEOUT)
        )
        self._resource_timeout = float(
            options.channel_options.get(RESOURCE_TIMEOUT_OPTION, DEFAULT_RESOURCE_TIMEOUT)
        )
        self._client: XdsClientLike | None = None
        self._released: XdsClientLike | None = None  # after close(), for wait_closed()
        self._closed = False
        self._setup_error: str | None = None
        self._lds: _Watch[ListenerResource] | None = None
        self._rds: _Watch[RouteConfigResource] | None = None
        self._cds: dict[str, _Watch[ClusterResource]] = {}
        self._eds: dict[str, _Watch[EndpointsResource]] = {}
        self._refs: dict[str, _ClusterRef] = {}
        self._routed: tuple[str, ...] = ()  # the clusters the current routes name
        self._route_config_name: str | None = None  # for debug_info: "" means inline
        self._virtual_host: str | None = None
        self._published: XdsConfig | str | None = None  # the last config, or failure text
        self.published_count = 0
        self._start()

    # -- setup ---------------------------------------------------------------------------

    def _start(self) -> None:
        try:
            deps = self._deps if self._deps is not None else default_deps()
            self._deps = deps
            bootstrap = deps.load_bootstrap(self._options.channel_options)
            client = deps.acquire(
                bootstrap, resource_timeout=self._resource_timeout, clock=self._options.clock
            )
        except ValueError as exc:  # BootstrapError, or a resource timeout the client rejects
            self._setup_failed(exc)
            return
        self._setup_error = None
        self._client = client
        # A47: client_default_listener_resource_name_template, "%s" by default.
        name = bootstrap.listener_resource_name(self._authority)
        try:
            # The first watch of a new client starts its ADS channel to server_uri.
            self._lds = self._watch(deps.listener, name)
        except ValueError as exc:  # a server_uri no channel accepts
            self._client = None
            client.release()
            self._setup_failed(exc)

    def _setup_failed(self, exc: ValueError) -> None:
        self._setup_error = f"xDS bootstrap: {exc}"
        self._channel.report_error(exc)

    def _watch(self, rtype: ResourceType, name: str) -> _Watch[Any]:
        assert self._client is not None
        watch: _Watch[Any] = _Watch(self, rtype.short_name, name)
        watch._cancel = self._client.watch(rtype, name, watch)
        return watch

    # -- Resolver ------------------------------------------------------------------------

    def resolve_now(self) -> None:
        """Re-resolution has nothing to redo once the XdsClient is watching (the control
        plane pushes changes; logical DNS clusters, A74's reason to re-resolve, come later).
        A bootstrap that failed to load is loaded again."""
        if not self._closed and self._client is None:
            self._start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        watches: list[_Watch[Any]] = [*self._cds.values(), *self._eds.values()]
        watches += [w for w in (self._lds, self._rds) if w is not None]
        for watch in watches:
            watch.cancel()
        self._cds.clear()
        self._eds.clear()
        self._lds = self._rds = None
        if self._client is not None:
            client, self._client = self._client, None
            self._released = client
            client.release()

    async def wait_closed(self) -> None:
        """Wait for the XdsClient's ADS stream and channel to end when this resolver held
        its last reference (the client waits for nothing otherwise)."""
        if self._released is not None:
            await self._released.wait_closed()

    def debug_info(self) -> dict[str, Any]:
        """The CSDS-like view of this channel: the XdsClient's cache and what this resolver
        watches and published (`ChannelSnapshot.resolver`)."""
        published = self._published
        if self._setup_error is not None:
            status = self._setup_error
        elif isinstance(published, XdsConfig):
            status = "ok"
        elif isinstance(published, str):
            status = f"failing: {published}"
        else:
            status = "waiting for resources"
        clusters: dict[str, Any] = {}
        for name, watch in self._cds.items():
            info = watch.describe()
            cluster = watch.resource
            if watch.status is WatchStatus.RECEIVED and cluster is not None:
                eds = self._eds.get(cluster.eds_resource_name)
                if eds is not None:
                    info["endpoints"] = eds.describe()
            clusters[name] = info
        return {
            "status": status,
            "authority": self._authority,
            "xds_client": self._client.debug_info() if self._client is not None else None,
            "listener": self._lds.describe() if self._lds is not None else None,
            "route_config": (
                self._rds.describe()
                if self._rds is not None
                else ({"inline": True} if self._route_config_name == "" else None)
            ),
            "virtual_host": self._virtual_host,
            "clusters": clusters,
        }

    # -- watcher events ------------------------------------------------------------------

    def _deliver(self, watch: _Watch[Any], event: WatchEvent, payload: object) -> None:
        """From the XdsClient's task: queue the event on the serializer."""
        if self._closed or watch.cancelled:
            return
        self._channel.call_later(0, self._on_event, watch, event, payload)

    def _on_event(self, watch: _Watch[Any], event: WatchEvent, payload: object) -> None:
        if self._closed or watch.cancelled:
            return
        watch.apply(event, payload)
        self._update()

    # -- the dependency walk ---------------------------------------------------------------

    def _update(self) -> None:
        """Serializer-only: follow LDS -> RDS -> vhost -> CDS -> EDS, adjust the watches to
        what the current resources name, and publish when everything is in."""
        lds = self._lds
        if lds is None or lds.status is WatchStatus.WAITING:
            return
        listener = lds.resource
        if lds.status is not WatchStatus.RECEIVED or listener is None:
            self._set_rds(None)
            self._fail(lds.failure())
            return
        if listener.route_config is not None:
            self._set_rds(None)
            self._route_config_name = ""
            route_config = listener.route_config
        else:
            assert listener.route_config_name is not None
            rds = self._set_rds(listener.route_config_name)
            assert rds is not None
            if rds.status is WatchStatus.WAITING:
                return
            if rds.status is not WatchStatus.RECEIVED or rds.resource is None:
                self._fail(rds.failure())
                return
            route_config = rds.resource
        vhost = choose_virtual_host(route_config.virtual_hosts, self._authority)
        if vhost is None:
            self._fail(
                f"xDS: no virtual host in route configuration {route_config.name!r} matches "
                f"the authority {self._authority!r}"
            )
            return
        self._virtual_host = vhost.name
        routed = self._routed = route_clusters(vhost)
        # Forget unreferenced clusters neither these routes nor the selector in force (which
        # calls may still be using until the channel applies the next one) name.
        published = self._published.clusters if isinstance(self._published, XdsConfig) else {}
        for name in [
            n
            for n, r in self._refs.items()
            if r.count <= 0 and n not in routed and n not in published
        ]:
            del self._refs[name]
        # Clusters RPCs still refer to stay until those RPCs commit (A31).
        names = routed + tuple(n for n, r in self._refs.items() if r.count > 0 and n not in routed)
        self._set_clusters(names)
        clusters: dict[str, ClusterConfig | str] = {}
        eds_names: set[str] = set()
        complete = True
        for name in names:
            cds = self._cds[name]
            cluster = cds.resource
            if cds.status is WatchStatus.WAITING:
                complete = False
            elif cds.status is not WatchStatus.RECEIVED or cluster is None:
                clusters[name] = cds.failure()
            else:
                eds_name = cluster.eds_resource_name
                eds_names.add(eds_name)
                eds = self._eds.get(eds_name)
                if eds is None:
                    eds = self._eds[eds_name] = self._watch(self._deps_().endpoints, eds_name)
                if eds.status is WatchStatus.WAITING:
                    complete = False
                elif eds.status is WatchStatus.RECEIVED and eds.resource is not None:
                    clusters[name] = ClusterConfig(cluster=cluster, endpoints=eds.resource)
                else:
                    clusters[name] = ClusterConfig(cluster=cluster, error=eds.failure())
        self._set_endpoints(eds_names)
        if complete:
            self._publish(
                XdsConfig(
                    listener=listener,
                    route_config=route_config,
                    virtual_host=vhost,
                    clusters=types.MappingProxyType(clusters),
                )
            )

    def _deps_(self) -> XdsDeps:
        assert self._deps is not None
        return self._deps

    def _set_rds(self, name: str | None) -> _Watch[RouteConfigResource] | None:
        """Watch route configuration `name` (None: none), cancelling any other."""
        current = self._rds
        if current is not None and current.name == name:
            return current
        if current is not None:
            current.cancel()
            self._rds = None
        self._route_config_name = name
        if name is not None:
            self._rds = self._watch(self._deps_().route_config, name)
        return self._rds

    def _set_clusters(self, names: tuple[str, ...]) -> None:
        for name in [n for n in self._cds if n not in names]:
            self._cds.pop(name).cancel()
        for name in names:
            if name not in self._cds:
                self._cds[name] = self._watch(self._deps_().cluster, name)

    def _set_endpoints(self, names: set[str]) -> None:
        for name in [n for n in self._eds if n not in names]:
            self._eds.pop(name).cancel()

    # -- publishing ------------------------------------------------------------------------

    def _fail(self, message: str) -> None:
        """The listener or route configuration is unusable: drop the cluster watches and
        fail every RPC naming the problem (A74)."""
        self._virtual_host = None
        self._routed = ()
        self._set_clusters(())
        self._set_endpoints(set())
        if self._published == message:
            return
        self._published = message
        log.warning("xds:///%s: %s", self._authority, message)
        self._push(
            ResolverState(
                service_config=service_config_json(()),
                attributes=self._attributes(None),
                config_selector=FailingConfigSelector(message),
            )
        )

    def _publish(self, config: XdsConfig) -> None:
        if self._published == config:
            return
        self._published = config
        self._push(
            ResolverState(
                service_config=service_config_json(config.clusters),
                attributes=self._attributes(config),
                config_selector=XdsConfigSelector(
                    config.virtual_host, config.listener, self._cluster_ref
                ),
            )
        )

    def _cluster_ref(self, name: str) -> _ClusterRef:
        ref = self._refs.get(name)
        if ref is None:
            ref = self._refs[name] = _ClusterRef(self, name)
        return ref

    def _ref_dropped(self, ref: _ClusterRef) -> None:
        """From a call's coroutine: the last RPC routed to `ref` committed."""
        if not self._closed and ref.name not in self._routed:
            self._channel.call_later(0, self._on_ref_dropped, ref)

    def _on_ref_dropped(self, ref: _ClusterRef) -> None:
        if not self._closed and ref.count <= 0 and self._refs.get(ref.name) is ref:
            self._update()  # drops the cluster the routes no longer name

    def _attributes(self, config: XdsConfig | None) -> tuple[tuple[str, Any], ...]:
        attributes: tuple[tuple[str, Any], ...] = (
            ("xds.client", self._client),
            ("xds.failover_timeout", self._failover_timeout),
        )
        if config is not None:
            attributes = (("xds.config", config), *attributes)
        return attributes

    def _push(self, state: ResolverState) -> None:
        self.published_count += 1
        if not self._channel.update_state(state):
            log.warning(
                "xds:///%s: the channel rejected the xDS service config %s",
                self._authority,
                state.service_config,
            )

"""The xDS LB policy tree (gRFC A27, A74, A56, A28, A32), registered on first use.

cluster_manager -> cds -> priority -> cluster_impl -> weighted_target -> round_robin:

- ``xds_cluster_manager_experimental`` (`cluster_manager`): one child per cluster, chosen
  per RPC by the ``xds.cluster`` attribute the xds resolver's ConfigSelector sets.
- ``cds_experimental`` (`cds`): reads the resolver's `XdsConfig` (attribute ``xds.config``)
  and builds the priority config and the endpoints of one cluster.
- ``priority_experimental`` (`priority`): A56 failover between EDS priorities.
- ``xds_cluster_impl_experimental`` (`cluster_impl`): drops and circuit breaking.
- ``weighted_target_experimental`` (`weighted_target`): localities by weight.

Every policy has ``debug_info() -> dict`` (its config, children and their states). The
xds resolver calls `register_xds_policies()` the first time it is built, so a channel that
never uses ``xds:///`` pays nothing at import.
"""

from __future__ import annotations

from grpc_lite import balancer

from .cds import CdsBuilder
from .cluster_impl import ClusterImplBuilder
from .cluster_manager import ClusterManagerBuilder
from .priority import PriorityBuilder
from .weighted_target import WeightedTargetBuilder

__all__ = [
    "CdsBuilder",
    "ClusterImplBuilder",
    "ClusterManagerBuilder",
    "PriorityBuilder",
    "WeightedTargetBuilder",
    "register_xds_policies",
]

_registered = False


def register_xds_policies() -> None:
    """Register the five xDS policies with `grpc_lite.balancer` (idempotent: once per
    process; a later call keeps what the first registered)."""
    global _registered
    if _registered:
        return
    _registered = True
    for builder in (
        ClusterManagerBuilder(),
        CdsBuilder(),
        PriorityBuilder(),
        ClusterImplBuilder(),
        WeightedTargetBuilder(),
    ):
        balancer.register(builder)

"""Load balancing: the extension API, the registry, the built-in policies and the helpers.

Built-ins: ``pick_first`` (the default) and ``round_robin``.  Users register
their own with :func:`register`; the service config's ``loadBalancingConfig``
(or ``grpc.lb_policy_name``) selects one by name.

Writing a balancer (grpc-go: package balancer): a `BalancerBuilder` builds a
`Balancer` for each channel and hands it a `BalancerChannel`, its only view of
the channel.  The balancer creates `Subchannel`s, publishes `BalancerState`s
(a state and an immutable `Picker`), asks for re-resolution, and sets timers
with `BalancerChannel.call_later`.  Every call into a balancer (its methods,
subchannel state listeners, timer callbacks) runs on the channel's serializer,
one at a time: a balancer needs no lock and no re-entrancy guard.

Helpers for policies made of policies:

- `GracefulSwitchBalancer` (grpc-go: internal/balancer/gracefulswitch): a
  current and a pending child policy; the pending one takes over when it is
  ready or the current one leaves READY.  The channel holds its policy in one.
- `ChildBalancers` (grpc-go: balancergroup, endpointsharding): child policies by
  key, name and config, each behind its own `BalancerChannel` whose state
  reports, subchannels and re-resolution requests the parent can intercept;
  `aggregate_state` is the usual aggregation (A61).  round_robin is a parent of
  one pick_first per endpoint built on it.
- `FixedResultPicker`: every RPC gets the same result (pick_first's READY
  picker); a parent may read its `result` instead of calling it.
- `grpc_lite.resolver.address_key` / `endpoint_key`: when two addresses or
  endpoints are the same backend.
"""

from ._api import (
    Balancer,
    BalancerBuilder,
    BalancerChannel,
    BalancerState,
    ChannelState,
    DroppedRpcError,
    ErrorPicker,
    FixedResultPicker,
    NoSubchannelAvailable,
    Picker,
    PickInfo,
    PickResult,
    QueuePicker,
    Subchannel,
    SubchannelState,
    TimerHandle,
)
from ._children import ChildBalancers, aggregate_state
from ._graceful_switch import GracefulSwitchBalancer
from ._registry import get, register, unregister_for_testing
from .pick_first import PickFirstBuilder
from .round_robin import RoundRobinBuilder

__all__ = [
    "Balancer",
    "BalancerBuilder",
    "BalancerChannel",
    "BalancerState",
    "ChannelState",
    "ChildBalancers",
    "DroppedRpcError",
    "ErrorPicker",
    "FixedResultPicker",
    "GracefulSwitchBalancer",
    "NoSubchannelAvailable",
    "PickFirstBuilder",
    "PickInfo",
    "PickResult",
    "Picker",
    "QueuePicker",
    "RoundRobinBuilder",
    "Subchannel",
    "SubchannelState",
    "TimerHandle",
    "aggregate_state",
    "get",
    "register",
    "unregister_for_testing",
]

register(PickFirstBuilder())
register(RoundRobinBuilder())

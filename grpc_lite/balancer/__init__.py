"""Load balancing: the extension API, the registry, and the built-in policies.

Built-ins: ``pick_first`` (the default) and ``round_robin``.  Users register
their own with :func:`register`; the service config's ``loadBalancingConfig``
(or ``grpc.lb_policy_name``) selects one by name.
"""

from ._api import (
    Balancer,
    BalancerBuilder,
    BalancerChannel,
    BalancerState,
    ChannelState,
    ErrorPicker,
    NoSubchannelAvailable,
    Picker,
    PickInfo,
    PickResult,
    QueuePicker,
    Subchannel,
    SubchannelState,
    TimerHandle,
)
from ._registry import get, register, unregister_for_testing
from .pick_first import PickFirstBuilder
from .round_robin import RoundRobinBuilder

__all__ = [
    "Balancer",
    "BalancerBuilder",
    "BalancerChannel",
    "BalancerState",
    "ChannelState",
    "ErrorPicker",
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
    "get",
    "register",
    "unregister_for_testing",
]

register(PickFirstBuilder())
register(RoundRobinBuilder())

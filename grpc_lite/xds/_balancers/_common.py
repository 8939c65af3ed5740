"""What the xDS LB policies share: child policy configs, hierarchical addresses, aggregation.

- `ChildPolicy` / `parse_child_policy`: a ``[{"name": {config}}, ...]`` list parsed as the
  service config parses ``loadBalancingConfig`` (the first registered entry wins, its config
  parsed by that policy's builder).
- Hierarchical addresses (gRFC A56 "Hierarchical Addresses"): every endpoint the cds policy
  builds carries ``("xds.path", (priority child, locality))``; `split_by_path` groups a
  multi-child policy's endpoints by the head of the path and removes it.
- `TrackedChildren`: `ChildBalancers` that also keep the balancer each child runs, for
  ``debug_info()``.
- `StateAggregator`: children's last states and pickers, aggregated as grpc-go's
  clustermanager/balancerstateaggregator.go and weightedtarget/weightedaggregator do (a child
  going from TRANSIENT_FAILURE to CONNECTING still counts as TRANSIENT_FAILURE).
- `JsonObject`: field readers that name the config path in every error.
- `ParentBalancer` / `NamedChildrenBalancer`: the skeleton of a parent policy over
  `TrackedChildren` (the Balancer calls that only forward to the children), and of one whose
  children are a {name: child policy} map aggregated by `StateAggregator`; `typed_config`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from grpc_lite._connectivity import ConnectivityState, ConnectivityStateEvaluator
from grpc_lite.balancer import (
    Balancer,
    BalancerChannel,
    BalancerState,
    ChannelState,
    ChildBalancers,
    ErrorPicker,
    Picker,
    QueuePicker,
    Subchannel,
    SubchannelState,
    get,
)
from grpc_lite.resolver import Endpoint
from grpc_lite.service_config import parse_service_config
from grpc_lite.status import RpcError, StatusCode

__all__ = [
    "ATTR_CLUSTER",
    "ATTR_LOCALITY",
    "ATTR_LOCALITY_WEIGHT",
    "ATTR_PATH",
    "ATTR_PRIORITY",
    "ChildPolicy",
    "JsonObject",
    "NamedChildrenBalancer",
    "ParentBalancer",
    "StateAggregator",
    "TrackedChildren",
    "attribute",
    "parse_child_policy",
    "split_by_path",
    "typed_config",
    "unavailable",
]

_S = ConnectivityState
_K = TypeVar("_K", bound=Hashable)
_C = TypeVar("_C")

ATTR_PATH = "xds.path"
ATTR_LOCALITY = "xds.locality"
ATTR_PRIORITY = "xds.priority"
ATTR_LOCALITY_WEIGHT = "xds.locality_weight"
ATTR_CLUSTER = "xds.cluster"

_CONNECTING = BalancerState(state=_S.CONNECTING, picker=QueuePicker())


def unavailable(message: str) -> RpcError:
    return RpcError(StatusCode.UNAVAILABLE, message)


def attribute(attributes: Iterable[tuple[str, Any]], key: str, default: Any = None) -> Any:
    """The value of `key` in a tuple of (key, value) pairs (ResolverState/Endpoint attributes)."""
    for k, v in attributes:
        if k == key:
            return v
    return default


# -- child policy configs ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChildPolicy:
    """A parsed child policy: its registered name and the config its builder parsed."""

    name: str
    config: Any
    raw: Any = None
    """The JSON list it was parsed from."""

    def as_json(self, full: bool) -> Any:
        """The JSON list it was parsed from (`full`), or just the chosen policy's name (what
        a parent's ``debug_info`` shows: the child's own ``debug_info`` has its config)."""
        return self.raw if full else self.name


def _validate(name: str, config: Mapping[str, Any]) -> Any:
    builder = get(name)
    if builder is None:
        raise KeyError(name)  # not registered: the next entry is tried
    return builder.parse_config(config)


def parse_child_policy(value: Any, where: str) -> ChildPolicy:
    """Parse a child policy list ``[{"policy": {...}}, ...]`` the way the service config
    parses ``loadBalancingConfig`` (grpc_lite.service_config): each entry one key, the first
    registered policy wins. Raises ValueError naming `where` and the problem."""
    if not isinstance(value, list) or not value:
        raise ValueError(
            f"{where}: must be a non-empty list of {{policy name: config}} objects, got {value!r}"
        )
    try:
        parsed = parse_service_config({"loadBalancingConfig": value}, lb_policy_validator=_validate)
    except ValueError as exc:
        message = str(exc)
        prefix = "loadBalancingConfig"
        if message.startswith(prefix):
            message = where + message[len(prefix) :]
        raise ValueError(message) from None
    name, config = parsed.lb_configs[0]
    return ChildPolicy(name=name, config=config, raw=value)


class JsonObject:
    """Reads the fields of one JSON object of a policy config; errors name `path`.

    Field names are exact (as grpc's JSON configs spell them). `done()` rejects any field
    that was not read: an unknown field is a mistake, not an option to ignore.
    """

    __slots__ = ("_fields", "_read", "path")

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise ValueError(f"{path}: must be a JSON object, got {value!r}")
        for key in value:
            if not isinstance(key, str):
                raise ValueError(f"{path}: keys must be strings, got {key!r}")
        self._fields: Mapping[str, Any] = value
        self._read: set[str] = set()
        self.path = path

    def _get(self, name: str, required: bool) -> Any:
        self._read.add(name)
        value = self._fields.get(name)
        if value is None and required:
            raise ValueError(f"{self.path}.{name}: required")
        return value

    def string(self, name: str, *, required: bool = True, default: str = "") -> str:
        value = self._get(name, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ValueError(f"{self.path}.{name}: must be a string, got {value!r}")
        return value

    def integer(
        self, name: str, *, required: bool = True, default: int = 0, minimum: int = 0
    ) -> int:
        value = self._get(name, required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ValueError(f"{self.path}.{name}: must be an integer, got {value!r}")
        if value < minimum:
            raise ValueError(f"{self.path}.{name}: must be >= {minimum}, got {value!r}")
        return int(value)

    def boolean(self, name: str, *, default: bool = False) -> bool:
        value = self._get(name, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ValueError(f"{self.path}.{name}: must be true or false, got {value!r}")
        return value

    def object(self, name: str, *, required: bool = True) -> Mapping[str, Any]:
        value = self._get(name, required)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError(f"{self.path}.{name}: must be a JSON object, got {value!r}")
        return value

    def array(self, name: str, *, required: bool = True) -> list[Any]:
        value = self._get(name, required)
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError(f"{self.path}.{name}: must be a JSON array, got {value!r}")
        return value

    def raw(self, name: str) -> Any:
        return self._get(name, False)

    def done(self) -> None:
        unknown = sorted(set(self._fields) - self._read)
        if unknown:
            raise ValueError(f"{self.path}: unknown field(s) {', '.join(map(repr, unknown))}")


# -- hierarchical addresses ----------------------------------------------------------------


def split_by_path(endpoints: Iterable[Endpoint]) -> dict[str, list[Endpoint]]:
    """Group endpoints by the head of their ``xds.path`` attribute, with the head removed
    (A56 "Hierarchical Addresses"). Endpoints without a path (or with an empty one) go to no
    child."""
    out: dict[str, list[Endpoint]] = {}
    for endpoint in endpoints:
        path = attribute(endpoint.attributes, ATTR_PATH)
        if not isinstance(path, tuple) or not path:
            continue
        head, rest = path[0], path[1:]
        attributes = tuple((k, rest if k == ATTR_PATH else v) for k, v in endpoint.attributes)
        out.setdefault(head, []).append(Endpoint(endpoint.addresses, attributes=attributes))
    return out


# -- children -------------------------------------------------------------------------------


class _TrackingBuilder:
    """A registered builder whose builds are remembered by key (for ``debug_info``)."""

    __slots__ = ("_built", "_inner", "_key")

    def __init__(self, inner: Any, built: dict[Any, Balancer], key: Any) -> None:
        self._inner = inner
        self._built = built
        self._key = key

    @property
    def name(self) -> str:
        return str(self._inner.name)

    def build(self, channel: BalancerChannel) -> Balancer:
        balancer: Balancer = self._inner.build(channel)
        self._built[self._key] = balancer
        return balancer

    def parse_config(self, config: Mapping[str, Any]) -> Any:
        return self._inner.parse_config(config)


class TrackedChildren(ChildBalancers[_K]):
    """`ChildBalancers` keyed by `_K`, whose children are built from registered policy names
    and remembered, so a parent's ``debug_info()`` can include its children's."""

    __slots__ = ("_built",)

    def __init__(
        self,
        channel: BalancerChannel,
        *,
        on_child_state: Callable[[_K, BalancerState], None],
        on_subchannel_state: Callable[[_K, Subchannel, SubchannelState], None] | None = None,
        on_resolve_now: Callable[[_K], None] | None = None,
    ) -> None:
        super().__init__(
            channel,
            on_child_state=on_child_state,
            on_subchannel_state=on_subchannel_state,
            on_resolve_now=on_resolve_now,
        )
        self._built: dict[_K, Balancer] = {}

    def update_policy(self, key: _K, policy: ChildPolicy, state: ChannelState) -> bool:
        """`update` with a parsed child policy (``state.config`` is replaced by its config)."""
        builder = get(policy.name)
        if builder is None:
            raise ValueError(f"no balancer named {policy.name!r} is registered")
        state = ChannelState(resolver_state=state.resolver_state, config=policy.config)
        return self.update(key, _TrackingBuilder(builder, self._built, key), state)

    def remove(self, key: _K) -> None:
        self._built.pop(key, None)
        super().remove(key)

    def close(self) -> None:
        self._built.clear()
        super().close()

    def exit_idle_child(self, key: _K) -> None:
        """Ask only the child for `key` to leave IDLE."""
        balancer = self._built.get(key)
        if balancer is not None and key in self:
            balancer.exit_idle()

    def child_debug_info(self, key: _K) -> dict[str, Any]:
        """The child's state and policy, and its own ``debug_info()`` when it has one."""
        state = self.state(key)
        info: dict[str, Any] = {
            "policy": self.policy(key),
            "state": state.state.name if state is not None else None,
        }
        balancer = self._built.get(key)
        debug = getattr(balancer, "debug_info", None)
        if callable(debug):
            info["balancer"] = debug()
        return info


# -- aggregation ----------------------------------------------------------------------------


class StateAggregator(Generic[_K]):
    """The last state and picker of each child, and their aggregate (grpc-go
    balancer.ConnectivityStateEvaluator): READY if any child is, else CONNECTING, else IDLE,
    else TRANSIENT_FAILURE (also with no children). A child that reported TRANSIENT_FAILURE
    keeps counting as TRANSIENT_FAILURE when it moves to CONNECTING (grpc-go
    clustermanager/balancerstateaggregator.go), so a cluster whose backends are all down does
    not flap to CONNECTING while they retry. New children start CONNECTING with a queueing
    picker.

    Owner-only (the parent policy, on the channel's serializer).
    """

    __slots__ = ("_counted", "_evaluator", "_states")

    def __init__(self) -> None:
        self._states: dict[_K, BalancerState] = {}
        self._counted: dict[_K, ConnectivityState] = {}
        self._evaluator = ConnectivityStateEvaluator()

    def add(self, key: _K) -> None:
        if key not in self._states:
            self._states[key] = _CONNECTING
            self._counted[key] = _S.CONNECTING
            self._evaluator.record_transition(_S.SHUTDOWN, _S.CONNECTING)

    def remove(self, key: _K) -> None:
        if key in self._states:
            del self._states[key]
            self._evaluator.record_transition(self._counted.pop(key), _S.SHUTDOWN)

    def record(self, key: _K, state: BalancerState) -> bool:
        """Record a child's report; False when `key` is not a child (a late report)."""
        if key not in self._states:
            return False
        old = self._counted[key]
        new = state.state
        if not (old is _S.TRANSIENT_FAILURE and new is _S.CONNECTING) and new is not old:
            self._evaluator.record_transition(old, new)
            self._counted[key] = new
        self._states[key] = state
        return True

    def current(self) -> ConnectivityState:
        return self._evaluator.current()

    def counted(self, key: _K) -> ConnectivityState:
        """The state `key` counts as in the aggregate."""
        return self._counted[key]

    def state(self, key: _K) -> BalancerState:
        return self._states[key]

    def names(self) -> Sequence[_K]:
        """The children, in the order they were added (a copy)."""
        return list(self._states)

    def __contains__(self, key: object) -> bool:
        return key in self._states

    def __len__(self) -> int:
        return len(self._states)


# -- parent policies ------------------------------------------------------------------------


def typed_config(state: ChannelState, kind: type[_C], policy: str) -> _C:
    """``state.config`` (what `policy`'s builder parsed); TypeError naming `policy` and
    `kind` when it is anything else."""
    config = state.config
    if not isinstance(config, kind):
        raise TypeError(f"{policy}: config must be a {kind.__name__}, got {config!r}")
    return config


class ParentBalancer(abc.ABC):
    """What the xDS parent policies share: the channel, `TrackedChildren` keyed by name, the
    closed flag, and the Balancer calls that only forward to the children. A resolver error
    while there is no child (no good update yet: no picker worth keeping) is published as
    TRANSIENT_FAILURE failing RPCs with it; otherwise the children get it.

    Subclasses implement `update_channel_state` and `_child_reported` (a child's report, never
    after `close`), and override `_report` to see what they publish.
    Callers: the channel's serializer only.
    """

    def __init__(self, channel: BalancerChannel) -> None:
        # Immutable after __init__.
        self._channel = channel
        self._children: TrackedChildren[str] = TrackedChildren(
            channel, on_child_state=self._on_child_state
        )
        # Serializer-only.
        self._closed = False

    @abc.abstractmethod
    def update_channel_state(self, state: ChannelState) -> bool: ...

    def resolver_error(self, error: RpcError) -> None:
        if self._closed:
            return
        if not self._children:
            self._report(_S.TRANSIENT_FAILURE, ErrorPicker(error))
            return
        self._children.resolver_error(error)

    def exit_idle(self) -> None:
        if not self._closed:
            self._children.exit_idle()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._children.close()

    @abc.abstractmethod
    def _child_reported(self, name: str, state: BalancerState) -> None:
        """The child `name` published `state` (never called after `close`)."""

    def _on_child_state(self, name: str, state: BalancerState) -> None:
        if not self._closed:
            self._child_reported(name, state)

    def _report(self, state: ConnectivityState, picker: Picker) -> None:
        self._channel.update_state(BalancerState(state=state, picker=picker))


class NamedChildrenBalancer(ParentBalancer):
    """A parent whose config names its children (cluster_manager, weighted_target): each
    update closes the children it no longer names and creates or updates the rest; their
    states are aggregated by `StateAggregator` and every change republishes (`_publish`)."""

    def __init__(self, channel: BalancerChannel) -> None:
        super().__init__(channel)
        # Serializer-only.
        self._states: StateAggregator[str] = StateAggregator()

    def _sync_children(self, children: Mapping[str, tuple[ChildPolicy, ChannelState]]) -> None:
        """Make the children exactly `children` ({name: (policy, state)}), then publish."""
        for name in self._states.names():
            if name not in children:
                self._states.remove(name)
                self._children.remove(name)
        for name, (policy, state) in children.items():
            self._states.add(name)
            self._children.update_policy(name, policy, state)
        self._publish()

    @abc.abstractmethod
    def _publish(self) -> None:
        """Publish the aggregate state and a picker over the children's last pickers."""

    def _child_reported(self, name: str, state: BalancerState) -> None:
        if self._states.record(name, state):
            self._publish()

    def _children_debug_info(self) -> dict[str, dict[str, Any]]:
        """Each child's ``child_debug_info``, in the order the children were added."""
        return {name: self._children.child_debug_info(name) for name in self._states.names()}

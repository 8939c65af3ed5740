"""ScriptedBalancer: a policy a test drives by hand, for tests of parent policies.

`ScriptedBuilder(name)` builds `ScriptedBalancer`s and keeps them in `built`. A balancer
records every call it gets (`calls`), creates one subchannel per address of each update
(`subchannels`), records its subchannels' states (`subchannel_states`), and publishes what the
test tells it to (`publish`). grpc-go counterpart: internal/testutils/stub (stub balancers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grpc_lite._connectivity import ConnectivityState
from grpc_lite.balancer import (
    BalancerChannel,
    BalancerState,
    ChannelState,
    ErrorPicker,
    Picker,
    PickInfo,
    PickResult,
    QueuePicker,
    Subchannel,
    SubchannelState,
)
from grpc_lite.status import RpcError, StatusCode

__all__ = ["FixedPicker", "ScriptedBalancer", "ScriptedBuilder"]

_S = ConnectivityState


class FixedPicker:
    """Picks one subchannel; `tag` says which balancer made it."""

    def __init__(self, tag: str, subchannel: Subchannel) -> None:
        self.tag = tag
        self.result = PickResult(subchannel=subchannel)

    def pick(self, info: PickInfo) -> PickResult:
        return self.result


class ScriptedBalancer:
    def __init__(self, channel: BalancerChannel, name: str, index: int) -> None:
        self.channel = channel
        self.tag = f"{name}#{index}"
        self.calls: list[str] = []
        self.subchannels: list[Subchannel] = []
        self.subchannel_states: list[tuple[str, ConnectivityState]] = []
        self.closed = False

    # -- Balancer --------------------------------------------------------------------------

    def update_channel_state(self, state: ChannelState) -> bool:
        self.calls.append("update")
        for address in state.resolver_state.addresses:
            sc = self.channel.new_subchannel([address], on_state_change=self._on_state)
            self.subchannels.append(sc)
        return bool(state.resolver_state.addresses)

    def resolver_error(self, error: RpcError) -> None:
        self.calls.append(f"resolver_error {error.details()}")

    def exit_idle(self) -> None:
        self.calls.append("exit_idle")

    def close(self) -> None:
        self.calls.append("close")
        self.closed = True

    # -- test controls ---------------------------------------------------------------------

    def publish(self, state: ConnectivityState) -> Picker:
        """Publish `state` with a picker fit for it; return the picker."""
        picker: Picker
        if state is _S.READY:
            picker = FixedPicker(self.tag, self.subchannels[0])
        elif state is _S.TRANSIENT_FAILURE:
            picker = ErrorPicker(RpcError(StatusCode.UNAVAILABLE, f"{self.tag} failing"))
        else:
            picker = QueuePicker()
        self.channel.update_state(BalancerState(state=state, picker=picker))
        return picker

    def _on_state(self, sc: Subchannel, state: SubchannelState) -> None:
        self.subchannel_states.append((sc.addresses[0].addr, state.state))


class ScriptedBuilder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.built: list[ScriptedBalancer] = []

    def build(self, channel: BalancerChannel) -> ScriptedBalancer:
        b = ScriptedBalancer(channel, self.name, len(self.built))
        self.built.append(b)
        return b

    def parse_config(self, config: Mapping[str, Any]) -> Any:
        return dict(config)

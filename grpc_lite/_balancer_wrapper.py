"""The channel as its balancer sees it (L4; grpc-go: ccBalancerWrapper).

The channel's balancer is a ``GracefulSwitchBalancer`` (grpc-go does the same):
the policy the service config names is its child, and a new policy takes over
gracefully.  The wrapper is built when the channel leaves IDLE and closed when it
goes back (or closes): whatever the balancer publishes after that is ignored.
Subchannel state changes and the balancer's timers are queued on the channel's
serializer before the balancer sees them.
"""

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, TypeVarTuple, Unpack

from ._clock import Clock, LoopClock, TimerHandle
from ._connectivity import ConnectivityState
from ._serializer import CallbackSerializer, SerializedTimer
from .balancer import (
    Balancer,
    BalancerChannel,
    BalancerState,
    ChannelState,
    Subchannel,
    SubchannelState,
)
from .resolver import Address
from .status import RpcError

if TYPE_CHECKING:
    from ._observability import MetricsRecorder
    from ._subchannel import Subchannel as _Subchannel

_Ts = TypeVarTuple("_Ts")
_B = TypeVar("_B", bound=Balancer)


class BalancerHost:
    """What a balancer wrapper needs from the channel."""

    target: str
    # The channel's non-per-call metrics (observability plugins), None without any.
    metrics_recorder: "MetricsRecorder | None" = None

    def new_subchannel(
        self,
        addresses: tuple[Address, ...],
        on_state_change: Callable[["_Subchannel", ConnectivityState, str | None], None],
        health_check: bool,
    ) -> "_Subchannel":
        raise NotImplementedError

    def balancer_state(self, wrapper: "BalancerWrapper[Any]", state: BalancerState) -> None:
        raise NotImplementedError

    def resolve_now(self) -> None:
        raise NotImplementedError


class BalancerWrapper(Generic[_B]):
    """Implements ``grpc_lite.balancer.BalancerChannel`` for one balancer instance.

    `build` makes the balancer from the wrapper (a ``BalancerBuilder.build``, or a
    balancer class such as ``GracefulSwitchBalancer``).

    Who may call: the balancer (from the serializer), and the channel (from the serializer).
    """

    def __init__(
        self,
        *,
        build: Callable[[BalancerChannel], _B],
        host: BalancerHost,
        serializer: CallbackSerializer,
        clock: Clock | None = None,
    ) -> None:
        self._host = host
        self._serializer = serializer
        self._clock: Clock = clock if clock is not None else LoopClock()
        self._subchannels: set[_Subchannel] = set()
        self.closed = False
        self.balancer: _B = build(self)

    # ------------------------------------------------------------------ BalancerChannel

    @property
    def target(self) -> str:
        return self._host.target

    @property
    def metrics_recorder(self) -> "MetricsRecorder | None":
        """Where a policy records its metrics (A78's pick_first ones), or None when the
        channel has no observability plugin (grpc-go: ClientConn.MetricsRecorder)."""
        return self._host.metrics_recorder

    def new_subchannel(
        self,
        addresses: Sequence[Address],
        *,
        on_state_change: Callable[[Subchannel, SubchannelState], None],
        health_check: bool = False,
    ) -> Subchannel:
        if self.closed:
            raise RuntimeError("new_subchannel() on a closed balancer")
        addrs = tuple(addresses)

        def changed(sc: "_Subchannel", state: ConnectivityState, error: str | None) -> None:
            # Queued: the balancer sees subchannel states one at a time, in order.
            self._serializer.schedule(self._deliver, on_state_change, sc, state, error)

        sc = self._host.new_subchannel(addrs, changed, health_check)
        self._subchannels.add(sc)
        return sc

    def _deliver(
        self,
        listener: Callable[[Subchannel, SubchannelState], None],
        sc: "_Subchannel",
        state: ConnectivityState,
        error: str | None,
    ) -> None:
        if state is ConnectivityState.SHUTDOWN:
            self._subchannels.discard(sc)
        if not self.closed:
            listener(sc, SubchannelState(state=state, error=error))

    def update_state(self, state: BalancerState) -> None:
        if self.closed:
            return
        self._host.balancer_state(self, state)

    def resolve_now(self) -> None:
        if not self.closed:
            self._host.resolve_now()

    def call_later(
        self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> TimerHandle:
        return SerializedTimer(self._serializer, self._clock, delay, self._if_open, callback, args)

    def _if_open(self, callback: Callable[..., object], args: tuple[object, ...]) -> None:
        if not self.closed:
            callback(*args)

    # ------------------------------------------------------------------ channel side

    def update_channel_state(self, state: ChannelState) -> bool:
        return self.balancer.update_channel_state(state)

    def resolver_error(self, error: RpcError) -> None:
        self.balancer.resolver_error(error)

    def exit_idle(self) -> None:
        self.balancer.exit_idle()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.balancer.close()
        for sc in list(self._subchannels):
            sc.shutdown()
        self._subchannels.clear()

    @property
    def subchannels(self) -> set["_Subchannel"]:
        return self._subchannels

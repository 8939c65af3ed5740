"""The channel as its resolver sees it (L4; grpc-go: ccResolverWrapper).

Every update the resolver pushes is queued on the channel's serializer, so the
balancer is never re-entered.  ``update_state`` reports whether the balancer
accepted the update when it could run at once (the usual case: resolvers push
from their own tasks); when it had to be queued behind other work it answers
True and the balancer's verdict is applied later.
"""

from collections.abc import Callable, Mapping
from typing import Any, TypeVarTuple, Unpack

from ._clock import Clock, LoopClock, TimerHandle
from ._serializer import CallbackSerializer, SerializedTimer
from .resolver import BuildOptions, Resolver, ResolverBuilder, ResolverState, Target

_Ts = TypeVarTuple("_Ts")


class ResolverWrapper:
    """Implements ``resolver.ResolverChannel`` for one channel (grpc-go: ccResolverWrapper).

    Who may call: the resolver, from code on the channel's loop; ``start``,
    ``resolve_now`` and ``close`` from the channel's serializer. The resolver's timers
    (``call_later``) run on the serializer too, on ``options.clock`` (the loop's by default).
    """

    def __init__(
        self,
        *,
        builder: ResolverBuilder,
        target: Target,
        options: BuildOptions,
        serializer: CallbackSerializer,
        on_state: Callable[[ResolverState], bool],
        on_error: Callable[[Exception], None],
    ) -> None:
        self._builder = builder
        self._target = target
        self._options = options
        self._serializer = serializer
        self._on_state = on_state
        self._on_error = on_error
        self._clock: Clock = options.clock if options.clock is not None else LoopClock()
        self._resolver: Resolver | None = None
        self._closed = False

    @property
    def channel_options(self) -> Mapping[str, Any]:
        return self._options.channel_options

    def start(self) -> None:
        self._resolver = self._builder.build(self._target, self, self._options)

    def update_state(self, state: ResolverState) -> bool:
        if self._closed:
            return False
        verdict: list[bool] = []

        def run() -> None:
            if not self._closed:
                verdict.append(self._on_state(state))

        if not self._serializer.schedule(run):
            return False
        return verdict[0] if verdict else True

    def report_error(self, exc: Exception) -> None:
        if self._closed:
            return

        def run() -> None:
            if not self._closed:
                self._on_error(exc)

        self._serializer.schedule(run)

    def call_later(
        self, delay: float, callback: Callable[[Unpack[_Ts]], object], *args: *_Ts
    ) -> TimerHandle:
        return SerializedTimer(self._serializer, self._clock, delay, self._if_open, callback, args)

    def _if_open(self, callback: Callable[..., object], args: tuple[object, ...]) -> None:
        if not self._closed:
            callback(*args)

    def resolve_now(self) -> None:
        if self._resolver is not None and not self._closed:
            self._resolver.resolve_now()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._resolver is not None:
            self._resolver.close()

    def debug_info(self) -> dict[str, Any] | None:
        """The resolver's `Resolver.debug_info()`; None before it is built or once closed."""
        if self._resolver is None or self._closed:
            return None
        return self._resolver.debug_info()

    async def wait_closed(self) -> None:
        if self._resolver is not None:
            await self._resolver.wait_closed()

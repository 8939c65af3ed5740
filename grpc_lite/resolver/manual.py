"""ManualResolver: a resolver driven by the application or a test (grpc-go: resolver/manual).

    r = ManualResolver("myscheme")
    grpc_lite.resolver.register(r)
    r.update_addresses(["127.0.0.1:50051"])        # before or after channels exist
    channel = grpc_lite.insecure_channel("myscheme:///anything")

State pushed before a channel is built is what that channel starts with. Every push goes to
every live channel built from this builder, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from grpc_lite.resolver._api import (
    Address,
    BuildOptions,
    Resolver,
    ResolverBuilder,
    ResolverChannel,
    ResolverState,
    Target,
)

__all__ = ["ManualResolver"]


class _ManualInstance(Resolver):
    """The per-channel resolver a ManualResolver builds."""

    __slots__ = ("_channel", "_owner", "target")

    def __init__(self, owner: ManualResolver, target: Target, channel: ResolverChannel) -> None:
        self._owner = owner
        self._channel = channel
        self.target = target

    def resolve_now(self) -> None:
        self._owner._on_resolve_now(self)

    def close(self) -> None:
        self._owner._on_close(self)


class ManualResolver(ResolverBuilder):
    """A builder (and the handle to push updates) for the scheme `scheme`.

    Call the update methods from code running on the channels' event loop.

    Attributes:
        resolve_now_count: how many times a channel asked for re-resolution.
        build_count / close_count: how many per-channel resolvers were built / closed.
        on_resolve_now: optional hook called with the target on every `resolve_now()`.
    """

    def __init__(self, scheme: str = "manual") -> None:
        if not scheme:
            raise ValueError("ManualResolver needs a non-empty scheme")
        self.scheme = scheme
        self.on_resolve_now: Callable[[Target], None] | None = None
        self.resolve_now_count = 0
        self.build_count = 0
        self.close_count = 0
        self._live: list[_ManualInstance] = []
        self._last_state: ResolverState | None = None
        self._last_error: Exception | None = None

    # -- ResolverBuilder ------------------------------------------------------------------

    def build(self, target: Target, channel: ResolverChannel, options: BuildOptions) -> Resolver:
        instance = _ManualInstance(self, target, channel)
        self._live.append(instance)
        self.build_count += 1
        if self._last_state is not None:
            channel.update_state(self._last_state)
        if self._last_error is not None:
            channel.report_error(self._last_error)
        return instance

    # -- pushing ----------------------------------------------------------------------------

    @property
    def last_state(self) -> ResolverState | None:
        return self._last_state

    @property
    def live_channels(self) -> int:
        """How many channels currently hold a resolver built from this builder."""
        return len(self._live)

    def update_addresses(
        self, addresses: Iterable[str | Address], *, service_config: str | None = None
    ) -> bool:
        """Push `addresses` ("host:port", "unix:/path", ...) with an optional config."""
        state = ResolverState(
            tuple(a if isinstance(a, Address) else Address(a) for a in addresses),
            service_config=service_config,
        )
        return self.update_state(state)

    def update_state(self, state: ResolverState) -> bool:
        """Push `state` to every live channel; True if none rejected it."""
        self._last_state = state
        self._last_error = None
        accepted = True
        for instance in tuple(self._live):
            if not instance._channel.update_state(state):
                accepted = False
        return accepted

    def report_error(self, exc: Exception) -> None:
        """Report a resolution failure to every live channel (each keeps its last state)."""
        self._last_error = exc
        for instance in tuple(self._live):
            instance._channel.report_error(exc)

    # -- called by the per-channel instances ------------------------------------------------

    def _on_resolve_now(self, instance: _ManualInstance) -> None:
        self.resolve_now_count += 1
        if self.on_resolve_now is not None:
            self.on_resolve_now(instance.target)

    def _on_close(self, instance: _ManualInstance) -> None:
        if instance in self._live:
            self._live.remove(instance)
            self.close_count += 1

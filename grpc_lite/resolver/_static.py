"""A resolver whose answer never changes (passthrough, unix, ipv4/ipv6 lists)."""

from __future__ import annotations

from grpc_lite.resolver._api import Resolver, ResolverChannel, ResolverState

__all__ = ["StaticResolver"]


class StaticResolver(Resolver):
    """Pushes one state when built; `resolve_now()` has nothing new to say.

    grpc-go: passthroughResolver / nopResolver.
    """

    __slots__ = ("state",)

    def __init__(self, channel: ResolverChannel, state: ResolverState) -> None:
        self.state = state
        channel.update_state(state)

    def resolve_now(self) -> None:
        # The answer cannot change (grpc-go's passthrough ResolveNow is a no-op too).
        pass

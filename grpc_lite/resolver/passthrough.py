"""`passthrough:///host:port`: the endpoint is the one address, no DNS.

grpc-go: internal/resolver/passthrough. The endpoint is handed over as written; the dialer
interprets it (it needs a port).
"""

from __future__ import annotations

from grpc_lite.resolver._api import (
    Address,
    BuildOptions,
    Resolver,
    ResolverBuilder,
    ResolverChannel,
    ResolverState,
    Target,
)
from grpc_lite.resolver._static import StaticResolver

__all__ = ["PassthroughResolverBuilder"]


class PassthroughResolverBuilder(ResolverBuilder):
    scheme = "passthrough"

    def validate_target(self, target: Target) -> None:
        if not target.endpoint:
            raise ValueError("passthrough: received empty target in Build()")

    def build(self, target: Target, channel: ResolverChannel, options: BuildOptions) -> Resolver:
        self.validate_target(target)
        return StaticResolver(channel, ResolverState((Address(target.endpoint),)))

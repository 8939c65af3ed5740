"""xDS: `xds:///` targets served by a control plane (gRFC A27, A74). Loaded on first use.

Importing this package is cheap: it registers the `xds` resolver scheme and nothing else.
The resolver, the XdsClient, the Envoy protos and the xDS LB policies are imported when the
first `xds:///` channel builds its resolver (grpc_lite/xds/_resolver.py), so a process that
never uses xDS never loads them.

Targets are `xds:///NAME` (grpc/grpc doc/naming.md): NAME is the listener resource name
(through the bootstrap's `client_default_listener_resource_name_template`) and the
data-plane authority the virtual host is chosen by. Federation (gRFC A47, `xds://AUTHORITY/`)
is not supported yet, so the target's authority must be empty.
"""

from __future__ import annotations

from collections.abc import Sequence

from grpc_lite.resolver import (
    BuildOptions,
    Resolver,
    ResolverBuilder,
    ResolverChannel,
    Target,
    register,
)

__all__ = ["XdsResolverBuilder", "cli_main"]


class XdsResolverBuilder(ResolverBuilder):
    """The `xds` scheme (grpc-go: xds/internal/resolver, xdsResolverBuilder)."""

    scheme = "xds"

    def validate_target(self, target: Target) -> None:
        if target.authority:
            raise ValueError(
                f"xds: the target's authority {target.authority!r} names an xDS server "
                "authority (gRFC A47 federation), which grpc_lite does not support yet; "
                f"write xds:///{target.endpoint or 'NAME'}"
            )
        if not target.endpoint:
            raise ValueError("xds: empty name; write xds:///NAME (NAME: the xDS listener)")

    def build(self, target: Target, channel: ResolverChannel, options: BuildOptions) -> Resolver:
        self.validate_target(target)
        # Deferred: the resolver pulls in the XdsClient, protobuf and the LB policies.
        from grpc_lite.xds._resolver import XdsResolver

        return XdsResolver(target, channel, options)

    def default_authority(self, target: Target) -> str:
        """The data-plane authority: the target's name as written (gRFC A27)."""
        return target.endpoint


def cli_main(argv: Sequence[str] | None = None) -> int:
    """``grpc-lite xds ARGS`` (``check``, ``dump``); returns the exit status. The command
    line's entry into this package, loaded when the subcommand runs."""
    from grpc_lite.xds._cli import main

    return main(argv)


register(XdsResolverBuilder())

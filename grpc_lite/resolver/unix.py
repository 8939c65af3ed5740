"""`unix:` and `unix-abstract:` targets (grpc/grpc doc/naming.md).

- `unix:path` (relative or absolute), `unix:/abs/path`, `unix:///abs/path` are valid;
  `unix://host/path` is not: a unix target has no authority.
- `unix-abstract:name` is the Linux abstract socket `\\0name`; the address is
  `"unix-abstract:name"` and the transport prepends the NUL. The name must not contain NUL.
- The default `:authority` is `localhost`.

grpc-go: internal/resolver/unix (it uses the URI path, or the opaque part when there is no
path, so `unix:///abs` and `unix:/abs` both mean `/abs`).
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

__all__ = ["UnixAbstractResolverBuilder", "UnixResolverBuilder"]


class UnixResolverBuilder(ResolverBuilder):
    scheme = "unix"

    def validate_target(self, target: Target) -> None:
        if target.authority:
            raise ValueError(
                f"{self.scheme}: invalid (non-empty) authority {target.authority!r}; "
                f"write {self.scheme}:///abs/path or {self.scheme}:path"
            )
        if not target.path:
            raise ValueError(f"{self.scheme}: empty path")
        if "\x00" in target.path:
            raise ValueError(f"{self.scheme}: path must not contain NUL")

    def build(self, target: Target, channel: ResolverChannel, options: BuildOptions) -> Resolver:
        self.validate_target(target)
        address = Address(f"{self.scheme}:{target.path}")
        return StaticResolver(channel, ResolverState((address,)))

    def default_authority(self, target: Target) -> str:
        return "localhost"


class UnixAbstractResolverBuilder(UnixResolverBuilder):
    scheme = "unix-abstract"

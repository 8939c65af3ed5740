"""Target parsing (grpc/grpc doc/naming.md; grpc-go clientconn.go parseTargetAndFindResolver).

1. Parse the target as an RFC 3986 URI. If it has a scheme that is registered, that
   resolver handles it.
2. Otherwise (no scheme, a scheme nobody registered, or not a URI at all) parse
   `<default scheme>:///<target>` instead. So `localhost:50051` is dns (a plain URI parse
   reads it as scheme "localhost"), and so are `127.0.0.1:50051` and `[::1]:50051`.
3. The chosen builder validates the target (`ResolverBuilder.validate_target`), so a
   malformed target raises ValueError when the channel is created.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from grpc_lite.resolver import _registry
from grpc_lite.resolver._api import ResolverBuilder, Target

__all__ = ["default_authority", "parse_target", "split_uri"]

# RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def split_uri(uri: str) -> tuple[str, str, str] | None:
    """Split `uri` into (scheme, authority, path-or-opaque), or None if it has no scheme.

    The scheme is lower-cased. The query and fragment are dropped, as grpc-go's endpoint
    does. The path is percent-decoded; an opaque part (`unix:rel/path`) is kept as written.
    """
    m = _SCHEME_RE.match(uri)
    if m is None:
        return None
    scheme = m.group(1).lower()
    rest = uri[m.end() :]
    rest = rest.split("#", 1)[0].split("?", 1)[0]
    if rest.startswith("//"):
        rest = rest[2:]
        slash = rest.find("/")
        if slash < 0:
            return scheme, rest, ""
        return scheme, rest[:slash], unquote(rest[slash:])
    if rest.startswith("/"):
        return scheme, "", unquote(rest)
    return scheme, "", rest


def _target_from(uri: str) -> Target | None:
    parts = split_uri(uri)
    if parts is None:
        return None
    scheme, authority, path = parts
    return Target(
        scheme=scheme, authority=authority, endpoint=path.removeprefix("/"), url=uri, path=path
    )


def resolve_scheme(target: str) -> tuple[Target, ResolverBuilder]:
    """Steps 1 and 2 of the module docstring, without validation."""
    parsed = _target_from(target)
    if parsed is not None:
        builder = _registry.get(parsed.scheme)
        if builder is not None:
            return parsed, builder
    default = _registry.get_default_scheme()
    canonical = f"{default}:///{target}"
    parsed = _target_from(canonical)
    builder = _registry.get(default)
    if parsed is None or builder is None:
        raise ValueError(
            f"invalid target {target!r}: no resolver registered for its scheme or for the "
            f"default scheme {default!r}"
        )
    return parsed, builder


def parse_target(target: str) -> Target:
    """Parse a channel target, choosing its resolver; ValueError names what is malformed."""
    if not isinstance(target, str):
        raise ValueError(f"target must be a str, got {type(target).__name__}")
    if not target:
        raise ValueError("invalid target '': empty target")
    parsed, builder = resolve_scheme(target)
    try:
        builder.validate_target(parsed)
    except ValueError as exc:
        if parsed.url != target:
            raise ValueError(f"invalid target {target!r} (read as {parsed.url!r}): {exc}") from None
        raise ValueError(f"invalid target {target!r}: {exc}") from None
    return parsed


def default_authority(target: Target) -> str:
    """The default `:authority` for `target` (naming.md; grpc-go initAuthority).

    The endpoint as written (`":port"` gets host `localhost`); `localhost` for unix targets.
    An explicit `grpc.default_authority` option or per-address server name wins over this.
    """
    builder = _registry.get(target.scheme)
    if builder is None:
        return ResolverBuilder().default_authority(target)
    return builder.default_authority(target)

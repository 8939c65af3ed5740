"""Scheme -> ResolverBuilder registry (grpc-go: resolver.Register / resolver.Get).

Register builders at import time or before creating the channels that use them; the
registry is process-global and not thread-safe, like grpc-go's.
"""

from __future__ import annotations

from grpc_lite.resolver._api import ResolverBuilder

__all__ = [
    "get",
    "get_default_scheme",
    "register",
    "set_default_scheme",
    "unregister_for_testing",
]

_builders: dict[str, ResolverBuilder] = {}
# naming.md: a target with no (registered) scheme is a dns target.
_default_scheme = "dns"


def register(builder: ResolverBuilder) -> None:
    """Register `builder` for `builder.scheme` (case-insensitive); replaces any earlier one."""
    scheme = builder.scheme
    if not scheme:
        raise ValueError(f"resolver builder {builder!r} has an empty scheme")
    _builders[scheme.lower()] = builder


def get(scheme: str) -> ResolverBuilder | None:
    """The builder registered for `scheme`, or None."""
    return _builders.get(scheme.lower())


def set_default_scheme(scheme: str) -> None:
    """Use `scheme` for targets that have no registered scheme (default: "dns")."""
    global _default_scheme
    if not scheme:
        raise ValueError("default scheme must not be empty")
    _default_scheme = scheme.lower()


def get_default_scheme() -> str:
    return _default_scheme


def unregister_for_testing(scheme: str) -> None:
    """Remove the builder for `scheme` (tests only; grpc-go unregisterForTesting)."""
    _builders.pop(scheme.lower(), None)

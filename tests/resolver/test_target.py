"""Target parsing and the default authority (naming.md; CONFORMANCE items 54, 55, 60-64)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from grpc_lite import resolver
from grpc_lite._hostport import split_host_port
from grpc_lite.resolver import ManualResolver, Target, default_authority, parse_target
from grpc_lite.resolver._target import resolve_scheme

# (target, scheme, authority, endpoint)
VALID = [
    # Item 54: no scheme, or an unregistered one -> the whole string is a dns target.
    ("localhost:50051", "dns", "", "localhost:50051"),
    ("127.0.0.1:50051", "dns", "", "127.0.0.1:50051"),
    ("[::1]:50051", "dns", "", "[::1]:50051"),
    ("example.com", "dns", "", "example.com"),
    ("foo:1234", "dns", "", "foo:1234"),
    (":50051", "dns", "", ":50051"),
    # Item 55: dns:[//authority/]host[:port].
    ("dns:///localhost:50051", "dns", "", "localhost:50051"),
    ("dns:localhost:50051", "dns", "", "localhost:50051"),
    ("dns://8.8.8.8/example.com:443", "dns", "8.8.8.8", "example.com:443"),
    ("dns://127.0.0.1:5353/svc.test:50051", "dns", "127.0.0.1:5353", "svc.test:50051"),
    ("dns://[::1]:53/svc.test", "dns", "[::1]:53", "svc.test"),
    ("DNS:///Example.com:80", "dns", "", "Example.com:80"),
    ("dns:///[::1]:50051", "dns", "", "[::1]:50051"),
    ("dns:///::1", "dns", "", "::1"),
    # Item 60.
    ("passthrough:///localhost:50051", "passthrough", "", "localhost:50051"),
    ("passthrough:///any thing", "passthrough", "", "any thing"),
    # Item 61.
    ("unix:relative/path.sock", "unix", "", "relative/path.sock"),
    ("unix:/tmp/x.sock", "unix", "", "tmp/x.sock"),
    ("unix:///tmp/x.sock", "unix", "", "tmp/x.sock"),
    # Item 62.
    ("unix-abstract:grpclite-test", "unix-abstract", "", "grpclite-test"),
    # Item 63.
    ("ipv4:127.0.0.1:1,127.0.0.2", "ipv4", "", "127.0.0.1:1,127.0.0.2"),
    ("ipv6:[::1]:50051,::2", "ipv6", "", "[::1]:50051,::2"),
]


@pytest.mark.parametrize(("target", "scheme", "authority", "endpoint"), VALID)
def test_valid_targets(target: str, scheme: str, authority: str, endpoint: str) -> None:
    """Each valid target maps to the expected (scheme, authority, endpoint)."""
    t = parse_target(target)
    assert (t.scheme, t.authority, t.endpoint) == (scheme, authority, endpoint)


def test_fallback_url_is_dns_prefixed() -> None:
    """A target without a registered scheme is read as dns:///<target>."""
    assert parse_target("localhost:50051").url == "dns:///localhost:50051"
    assert parse_target("dns:///x:1").url == "dns:///x:1"


def test_unknown_scheme_falls_back_before_validation() -> None:
    """`foo:bar` with unknown foo becomes dns:///foo:bar (item 54), then fails on the port."""
    t, builder = resolve_scheme("foo:bar")
    assert (t.scheme, t.authority, t.endpoint, builder.scheme) == ("dns", "", "foo:bar", "dns")
    with pytest.raises(ValueError, match="not a number"):
        parse_target("foo:bar")


def test_unix_path_keeps_the_slash() -> None:
    """unix targets keep absolute vs relative in Target.path."""
    assert parse_target("unix:///tmp/x.sock").path == "/tmp/x.sock"
    assert parse_target("unix:/tmp/x.sock").path == "/tmp/x.sock"
    assert parse_target("unix:rel.sock").path == "rel.sock"


INVALID = [
    ("", "empty target"),
    ("dns:///", "missing address"),
    ("dns:///:", "missing port"),
    ("dns:///127.0.0.1:", "missing port after port-separator colon"),
    ("127.0.0.1:", "missing port"),
    ("localhost:0", "outside 1-65535"),
    ("localhost:65536", "outside 1-65535"),
    ("dns:///host:-1", "not a number"),
    ("dns:///[::1", "missing ']'"),
    ("dns:///a:b:c", "too many colons"),
    ("dns:///foo/bar:80", "invalid host"),
    ("dns://not-an-ip/svc:80", "must be a DNS server's IP"),
    ("dns://1.2.3.4:0/svc:80", "invalid authority"),
    ("passthrough:///", "empty target"),
    ("unix://host/path", "authority"),
    ("unix-abstract://host/name", "authority"),
    ("unix:", "empty path"),
    ("bogus-scheme://x/y", "not a number"),
    ("ipv4:", "no addresses"),
    ("ipv4:1.2.3.4,", "empty address"),
    ("ipv4:::1", "too many colons"),
    ("ipv4:[::1]:80", "not an IPv4 address"),
    ("ipv4:localhost:80", "not an IP address"),
    ("ipv4:1.2.3.4:99999", "invalid port"),
    ("ipv6:127.0.0.1", "not an IPv6 address"),
    ("ipv6:[::1]", "missing port"),
]


@pytest.mark.parametrize(("target", "problem"), INVALID)
def test_malformed_targets_raise_value_error(target: str, problem: str) -> None:
    """Malformed targets raise ValueError naming the target and the problem."""
    with pytest.raises(ValueError, match=problem) as info:
        parse_target(target)
    assert repr(target) in str(info.value)


def test_bogus_scheme_message_shows_the_dns_reading() -> None:
    """The error says how an unregistered-scheme target was read."""
    with pytest.raises(ValueError, match=r"read as 'dns:///bogus-scheme://x/y'"):
        parse_target("bogus-scheme://x/y")


AUTHORITIES = [
    ("dns:///localhost:50051", "localhost:50051"),
    ("localhost:50051", "localhost:50051"),
    ("example.com", "example.com"),
    ("dns://8.8.8.8/example.com:443", "example.com:443"),
    (":50051", "localhost:50051"),
    ("[::1]:50051", "[::1]:50051"),
    ("passthrough:///10.0.0.1:80", "10.0.0.1:80"),
    ("unix:///tmp/x.sock", "localhost"),
    ("unix:rel.sock", "localhost"),
    ("unix-abstract:name", "localhost"),
    ("ipv4:127.0.0.1:1,127.0.0.2:2", "127.0.0.1:1,127.0.0.2:2"),
]


@pytest.mark.parametrize(("target", "authority"), AUTHORITIES)
def test_default_authority(target: str, authority: str) -> None:
    """The endpoint as written; localhost for unix (item 64)."""
    assert default_authority(parse_target(target)) == authority


@pytest.fixture
def custom_scheme() -> Iterator[ManualResolver]:
    r = ManualResolver("myscheme")
    resolver.register(r)
    try:
        yield r
    finally:
        resolver.unregister_for_testing("myscheme")


def test_registered_custom_scheme(custom_scheme: ManualResolver) -> None:
    """A registered scheme is used as-is, authority and all."""
    t = parse_target("myscheme://auth/any/thing")
    assert t == Target(
        scheme="myscheme",
        authority="auth",
        endpoint="any/thing",
        url="myscheme://auth/any/thing",
        path="/any/thing",
    )
    assert resolver.get("MyScheme") is custom_scheme


def test_unregistered_custom_scheme_is_dns() -> None:
    """Once unregistered, the same target is read as dns and rejected."""
    assert resolver.get("myscheme") is None
    with pytest.raises(ValueError):
        parse_target("myscheme:///x")


def test_default_scheme_can_change(custom_scheme: ManualResolver) -> None:
    """set_default_scheme changes where scheme-less targets go."""
    assert resolver.get_default_scheme() == "dns"
    resolver.set_default_scheme("myscheme")
    try:
        t = parse_target("localhost:50051")
        assert (t.scheme, t.endpoint) == ("myscheme", "localhost:50051")
    finally:
        resolver.set_default_scheme("dns")


def test_builtins_are_registered() -> None:
    for scheme in ("dns", "passthrough", "unix", "unix-abstract", "ipv4", "ipv6"):
        builder = resolver.get(scheme)
        assert builder is not None
        assert builder.scheme == scheme


@pytest.mark.parametrize(
    ("hostport", "expected"),
    [("a:1", ("a", "1")), ("[::1]:2", ("::1", "2")), ("a:", ("a", "")), (":3", ("", "3"))],
)
def test_split_host_port(hostport: str, expected: tuple[str, str]) -> None:
    assert split_host_port(hostport) == expected

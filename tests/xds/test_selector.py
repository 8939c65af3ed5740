"""The xds ConfigSelector: virtual host choice in Envoy's domain order, route matching
(gRFC A28), the listener's max_stream_duration as the method timeout (A31), and the
UNAVAILABLE errors for no route and non-forwarding routes."""

from __future__ import annotations

import pytest

from grpc_lite.resolver import RpcInfo
from grpc_lite.status import RpcError, StatusCode
from grpc_lite.xds._model import ListenerResource, Route, VirtualHost
from grpc_lite.xds._selector import (
    CLUSTER_ATTRIBUTE,
    DomainKind,
    FailingConfigSelector,
    XdsConfigSelector,
    choose_virtual_host,
    domain_match,
    route_clusters,
)

LISTENER = ListenerResource(name="svc", route_config_name="rc")


def vhost(name: str, *domains: str, routes: tuple[Route, ...] = ()) -> VirtualHost:
    return VirtualHost(
        name=name, domains=domains, routes=routes or (Route(prefix="", cluster=name),)
    )


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("svc", "svc", DomainKind.EXACT),
        ("SVC", "svc", DomainKind.EXACT),
        ("svc", "SvC", DomainKind.EXACT),
        ("svc", "svc2", None),
        ("svc:8080", "svc:8080", DomainKind.EXACT),
        ("svc", "svc:8080", None),
        ("*.foo.com", "a.foo.com", DomainKind.SUFFIX),
        ("*.foo.com", ".foo.com", None),  # a wildcard never matches the empty string
        ("*-bar.foo.com", "baz-bar.foo.com", DomainKind.SUFFIX),
        ("*-bar.foo.com", "-bar.foo.com", None),
        ("*.foo.com", "foo.com", None),
        ("foo.*", "foo.com", DomainKind.PREFIX),
        ("foo.*", "foo.", None),
        ("foo.*", "bar.foo.com", None),
        ("*", "anything", DomainKind.UNIVERSAL),
        ("*", "", DomainKind.UNIVERSAL),
        ("f*o", "foo", None),  # a wildcard in the middle never matches
        ("*foo*", "afoob", None),
    ],
)
def test_domain_match(pattern: str, host: str, expected: DomainKind | None) -> None:
    assert domain_match(pattern, host) is expected


@pytest.mark.parametrize(
    ("authority", "expected"),
    [
        ("foo.bar.com", "exact"),  # exact beats every wildcard
        ("x.bar.com", "long-suffix"),  # the longest suffix wins
        ("x.z.com", "short-suffix"),
        ("foo.baz", "long-prefix"),  # then the longest prefix
        ("fo.x", "short-prefix"),
        ("other", "universal"),
        ("FOO.BAR.COM", "exact"),
    ],
)
def test_virtual_host_order(authority: str, expected: str) -> None:
    hosts = [
        vhost("universal", "*"),
        vhost("short-prefix", "fo*"),
        vhost("long-prefix", "foo.*"),
        vhost("short-suffix", "*.com"),
        vhost("long-suffix", "*.bar.com"),
        vhost("exact", "unrelated", "foo.bar.com"),
    ]
    chosen = choose_virtual_host(hosts, authority)
    assert chosen is not None and chosen.name == expected
    # The order of the list does not matter, only the kind and the length.
    chosen = choose_virtual_host(list(reversed(hosts)), authority)
    assert chosen is not None and chosen.name == expected


def test_no_virtual_host_matches() -> None:
    assert choose_virtual_host([vhost("a", "a.com"), vhost("b", "*.b.com")], "c.com") is None
    assert choose_virtual_host([], "c.com") is None


def test_a_tie_goes_to_the_first_virtual_host() -> None:
    chosen = choose_virtual_host([vhost("one", "*.a.com"), vhost("two", "*.a.com")], "x.a.com")
    assert chosen is not None and chosen.name == "one"


def select(selector: XdsConfigSelector, method: str) -> str:
    return str(selector.select(RpcInfo(method=method)).attributes[CLUSTER_ATTRIBUTE])


ROUTES = (
    Route(path="/pkg.Svc/Exact", cluster="exact"),
    Route(path="/pkg.Svc/NoCase", case_sensitive=False, cluster="nocase-path"),
    Route(prefix="/pkg.Other/", cluster="other"),
    Route(prefix="/PKG.LOWER/", case_sensitive=False, cluster="nocase-prefix"),
    Route(safe_regex=r"/pkg\.Svc/Unary.*", cluster="regex"),
    Route(prefix="/pkg.Blocked/", non_forwarding=True, action="non_forwarding_action"),
    Route(prefix="/pkg.Svc/", cluster="svc"),
)


@pytest.mark.parametrize(
    ("method", "cluster"),
    [
        ("/pkg.Svc/Exact", "exact"),
        ("/pkg.Svc/exact", "svc"),  # path is case-sensitive by default
        ("/PKG.SVC/NOCASE", "nocase-path"),
        ("/pkg.Other/Anything", "other"),
        ("/pkg.lower/M", "nocase-prefix"),
        ("/Pkg.Lower/M", "nocase-prefix"),
        ("/pkg.Svc/UnaryCall", "regex"),
        ("/pkg.Svc/Unary", "regex"),
        ("/pkg.Svc/StreamingCall", "svc"),
        ("/pkg.Svc/XUnaryCall", "svc"),  # the regex must match the whole path
    ],
)
def test_first_matching_route_wins(method: str, cluster: str) -> None:
    selector = XdsConfigSelector(VirtualHost(name="vh", domains=("*",), routes=ROUTES), LISTENER)
    assert select(selector, method) == f"cluster:{cluster}"


def test_regex_ignores_case_sensitive() -> None:
    # Envoy: case_sensitive has no effect on safe_regex matching.
    routes = (Route(safe_regex="/a/B", case_sensitive=False, cluster="x"),)
    selector = XdsConfigSelector(VirtualHost(name="vh", domains=("*",), routes=routes), LISTENER)
    assert select(selector, "/a/B") == "cluster:x"
    with pytest.raises(RpcError):
        selector.select(RpcInfo(method="/a/b"))


def test_no_route_is_unavailable_naming_method_and_virtual_host() -> None:
    selector = XdsConfigSelector(VirtualHost(name="vh", domains=("*",), routes=ROUTES), LISTENER)
    with pytest.raises(RpcError) as info:
        selector.select(RpcInfo(method="/elsewhere.Svc/M"))
    assert info.value.code() is StatusCode.UNAVAILABLE
    assert "/elsewhere.Svc/M" in (info.value.details() or "")
    assert "'vh'" in (info.value.details() or "")


def test_non_forwarding_route_is_unavailable() -> None:
    selector = XdsConfigSelector(VirtualHost(name="vh", domains=("*",), routes=ROUTES), LISTENER)
    with pytest.raises(RpcError) as info:
        selector.select(RpcInfo(method="/pkg.Blocked/M"))
    assert info.value.code() is StatusCode.UNAVAILABLE
    details = info.value.details() or ""
    assert "/pkg.Blocked/M" in details and "non_forwarding_action" in details


@pytest.mark.parametrize("prefix", ["", "/"])
def test_default_route(prefix: str) -> None:
    routes = (Route(prefix=prefix, cluster="c"), Route(prefix="/x/", cluster="never"))
    selector = XdsConfigSelector(VirtualHost(name="vh", domains=("*",), routes=routes), LISTENER)
    config = selector.select(RpcInfo(method="/x/y"))
    assert dict(config.attributes) == {CLUSTER_ATTRIBUTE: "cluster:c"}
    assert config.method_config is None
    assert config.on_committed is None
    # One immutable config shared by every RPC.
    assert selector.select(RpcInfo(method="/a/b")) is config


def test_timeout_from_listener_max_stream_duration() -> None:
    listener = ListenerResource(name="svc", route_config_name="rc", max_stream_duration=1.5)
    selector = XdsConfigSelector(vhost("vh", "*"), listener)
    config = selector.select(RpcInfo(method="/a/b"))
    assert config.method_config is not None and config.method_config.timeout == 1.5
    zero = ListenerResource(name="svc", route_config_name="rc", max_stream_duration=0.0)
    assert (
        XdsConfigSelector(vhost("vh", "*"), zero).select(RpcInfo(method="/a/b")).method_config
        is None
    )


def test_route_clusters_in_order_once() -> None:
    routes = (
        Route(prefix="/a/", cluster="one"),
        Route(prefix="/b/", non_forwarding=True, action="redirect"),
        Route(prefix="/c/", cluster="two"),
        Route(prefix="", cluster="one"),
    )
    assert route_clusters(VirtualHost(name="vh", domains=("*",), routes=routes)) == ("one", "two")


def test_failing_selector() -> None:
    with pytest.raises(RpcError) as info:
        FailingConfigSelector("xDS listener resource 'missing' does not exist").select(
            RpcInfo(method="/a/b")
        )
    assert info.value.code() is StatusCode.UNAVAILABLE
    assert info.value.details() == "xDS listener resource 'missing' does not exist"


class Ref:
    def __init__(self) -> None:
        self.count = 0
        self.released = 0

    def release(self) -> None:
        self.count -= 1
        self.released += 1


def test_each_routed_rpc_holds_a_cluster_reference_until_committed() -> None:
    refs: dict[str, Ref] = {}

    def ref(name: str) -> Ref:
        return refs.setdefault(name, Ref())

    for routes in (ROUTES, (Route(prefix="", cluster="svc"),)):  # the loop and the fast path
        refs.clear()
        selector = XdsConfigSelector(
            VirtualHost(name="vh", domains=("*",), routes=routes), LISTENER, ref
        )
        configs = [selector.select(RpcInfo(method="/pkg.Svc/Other")) for _ in range(3)]
        assert refs["svc"].count == 3
        for config in configs:
            assert config.on_committed is not None
            config.on_committed()
        assert refs["svc"].count == 0 and refs["svc"].released == 3
    with pytest.raises(RpcError):
        XdsConfigSelector(
            VirtualHost(name="vh", domains=("*",), routes=ROUTES), LISTENER, ref
        ).select(RpcInfo(method="/nowhere/M"))

"""HTTP CONNECT proxy settings (gRFC A1; grpc_lite._proxy): the proxy URL, where it comes
from (option, then grpc_proxy / https_proxy / http_proxy), no_proxy matching, and what a
channel does with them (no I/O: the tunnel itself is tested in tests/e2e/channel/test_tinyproxy.py
and tests/e2e/transport/test_http_connect.py)."""

from __future__ import annotations

import logging

import pytest

import grpc_lite
from grpc_lite._options import parse_options
from grpc_lite._proxy import (
    HttpProxy,
    ProxySettings,
    parse_no_proxy,
    parse_proxy_url,
    proxy_settings,
)
from grpc_lite._transport._proxy import connect_request

SOURCE = "environment variable https_proxy"

# --------------------------------------------------------------------------- proxy URLs


@pytest.mark.parametrize(
    ("value", "host", "port", "username", "password"),
    [
        ("http://proxy.corp:3128", "proxy.corp", 3128, None, None),
        ("http://proxy.corp:3128/", "proxy.corp", 3128, None, None),
        ("HTTP://proxy.corp:3128", "proxy.corp", 3128, None, None),
        ("proxy.corp:3128", "proxy.corp", 3128, None, None),
        # No port: 443, as grpcio and grpc-go (they resolve the name as a dns target).
        ("http://proxy.corp", "proxy.corp", 443, None, None),
        ("proxy.corp", "proxy.corp", 443, None, None),
        ("http://127.0.0.1:8888", "127.0.0.1", 8888, None, None),
        ("http://[::1]:8888", "::1", 8888, None, None),
        ("[::1]:8888", "::1", 8888, None, None),
        ("http://user:pass@proxy:1", "proxy", 1, "user", "pass"),
        ("http://us%40er:p%3As%2Fs@proxy:1", "proxy", 1, "us@er", "p:s/s"),
        ("http://user@proxy:1", "proxy", 1, "user", None),
        ("http://user:p@ss@proxy:1", "proxy", 1, "user", "p@ss"),
        ("  http://proxy:1  ", "proxy", 1, None, None),
    ],
)
def test_proxy_url_parses(
    value: str, host: str, port: int, username: str | None, password: str | None
) -> None:
    proxy = parse_proxy_url(value, SOURCE)
    assert (proxy.host, proxy.port, proxy.username, proxy.password) == (
        host,
        port,
        username,
        password,
    )
    assert proxy.source == SOURCE


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("https://proxy:443", "scheme 'https' is not supported"),
        ("socks5://proxy:1080", "scheme 'socks5' is not supported"),
        ("http://", "no host"),
        ("http://:3128", "invalid host"),
        ("http://proxy:port", "invalid port 'port'"),
        ("http://proxy:0", "invalid port '0'"),
        ("http://proxy:65536", "invalid port '65536'"),
        ("http://proxy:3128/some/path", "no path"),
        ("http://proxy:3128?x=1", "no path"),
        ("http://::1:3128", "needs brackets"),
        ("http://[::1", "missing ']'"),
        ("http://[proxy]:1", "not an IPv6 address"),
        ("http://[::1]x", "junk after ']'"),
        ("http://pro xy:1", "invalid host"),
    ],
)
def test_malformed_proxy_url_names_the_source(value: str, why: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_proxy_url(value, SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: invalid HTTP proxy URL: ")
    assert why in message


def test_malformed_url_error_does_not_echo_the_password() -> None:
    with pytest.raises(ValueError) as info:
        parse_proxy_url("http://user:hunter2@proxy:bad", SOURCE)
    assert "hunter2" not in str(info.value)


def test_proxy_repr_and_authorization_hide_nothing_but_the_password() -> None:
    proxy = parse_proxy_url("http://alice:hunter2@proxy.corp:3128", SOURCE)
    assert "hunter2" not in repr(proxy) and "hunter2" not in str(proxy)
    assert repr(proxy) == f"<HttpProxy proxy.corp:3128 (with credentials) from {SOURCE}>"
    assert proxy.address == "proxy.corp:3128"
    # RFC 7617: base64("alice:hunter2").
    assert proxy.authorization == "Basic YWxpY2U6aHVudGVyMg=="
    # A user without a password: "user:" (grpc-go's url.User / basicAuth).
    assert parse_proxy_url("http://bob@p:1", SOURCE).authorization == "Basic Ym9iOg=="
    assert parse_proxy_url("http://p:1", SOURCE).authorization is None


def test_channel_options_repr_hides_the_proxy_url() -> None:
    options = parse_options([("grpc.http_proxy", "http://alice:hunter2@proxy:1")])
    assert options.http_proxy == "http://alice:hunter2@proxy:1"
    assert "hunter2" not in repr(options)


@pytest.mark.parametrize(
    ("option", "value"),
    [("grpc.http_proxy", 3128), ("grpc.enable_http_proxy", 2), ("grpc.enable_http_proxy", "0")],
)
def test_proxy_option_types(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        parse_options([(option, value)])


# --------------------------------------------------------------------------- where from


@pytest.mark.parametrize(
    ("option", "environ", "expected"),
    [
        (None, {}, None),
        (None, {"grpc_proxy": "a:1", "https_proxy": "b:1", "http_proxy": "c:1"}, "a:1"),
        (None, {"https_proxy": "b:1", "http_proxy": "c:1"}, "b:1"),
        (None, {"http_proxy": "c:1"}, "c:1"),
        (None, {"GRPC_PROXY": "a:1", "https_proxy": "b:1"}, "a:1"),
        (None, {"HTTPS_PROXY": "b:1", "http_proxy": "c:1"}, "b:1"),
        (None, {"HTTP_PROXY": "c:1"}, "c:1"),
        (None, {"grpc_proxy": "a:1", "GRPC_PROXY": "A:1"}, "a:1"),  # lower case first
        # The first variable set wins even when empty: "no proxy" (C-core's GetEnv order).
        (None, {"grpc_proxy": "", "https_proxy": "b:1"}, None),
        (None, {"https_proxy": " ", "http_proxy": "c:1"}, None),
        # httpoxy: under CGI, HTTP_PROXY is the request's Proxy header, never a setting.
        (None, {"HTTP_PROXY": "evil:1", "REQUEST_METHOD": "GET"}, None),
        (None, {"http_proxy": "c:1", "REQUEST_METHOD": "GET"}, "c:1"),
        # The channel option comes first; an empty one turns the environment's off.
        ("o:1", {"grpc_proxy": "a:1"}, "o:1"),
        ("", {"grpc_proxy": "a:1"}, None),
    ],
)
def test_proxy_source_order(option: str | None, environ: dict[str, str], expected: str) -> None:
    settings = proxy_settings(option, True, environ)
    assert (settings.proxy.address if settings is not None else None) == expected


def test_source_is_named() -> None:
    settings = proxy_settings(None, True, {"HTTPS_PROXY": "b:1"})
    assert settings is not None
    assert settings.proxy.source == "environment variable HTTPS_PROXY"
    settings = proxy_settings("o:1", True, {})
    assert settings is not None
    assert settings.proxy.source == "channel option 'grpc.http_proxy'"


def test_enable_http_proxy_zero_turns_everything_off() -> None:
    environ = {"grpc_proxy": "a:1", "https_proxy": "not a url://"}
    assert proxy_settings("http://o:1", False, environ) is None
    assert proxy_settings(None, False, environ) is None


def test_no_proxy_source_order() -> None:
    settings = proxy_settings(
        None, True, {"grpc_proxy": "a:1", "no_grpc_proxy": "x.test", "no_proxy": "y.test"}
    )
    assert settings is not None and settings.no_proxy is not None
    assert settings.no_proxy.source == "environment variable no_grpc_proxy"
    assert settings.for_host("x.test", 443) is None
    assert settings.for_host("y.test", 443) is settings.proxy
    settings = proxy_settings(None, True, {"grpc_proxy": "a:1", "NO_PROXY": "y.test"})
    assert settings is not None
    assert settings.for_host("y.test", 443) is None
    # no_proxy applies to the channel option's proxy too (C-core).
    settings = proxy_settings("o:1", True, {"no_proxy": "y.test"})
    assert settings is not None
    assert settings.for_host("y.test", 1) is None


# --------------------------------------------------------------------------- no_proxy


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypass"),
    [
        # "*" and empty lists
        ("*", "anything.example", 443, True),
        ("a.test, *", "10.1.2.3", 1, True),
        ("", "example.com", 443, False),
        (" , ,", "example.com", 443, False),
        # host names and domain suffixes (case-insensitive; a trailing dot is the same name)
        ("example.com", "example.com", 443, True),
        ("example.com", "EXAMPLE.com.", 443, True),
        ("example.com", "api.example.com", 443, True),
        ("example.com", "notexample.com", 443, False),
        (".example.com", "api.example.com", 443, True),
        (".example.com", "example.com", 443, True),
        ("*.example.com", "a.b.example.com", 443, True),
        ("Example.COM", "api.example.com", 443, True),
        ("example.com", "example.org", 443, False),
        ("localhost", "localhost", 50051, True),
        ("other.test,  localhost ", "localhost", 50051, True),
        # ports
        ("example.com:443", "example.com", 443, True),
        ("example.com:443", "example.com", 8443, False),
        ("10.0.0.1:50051", "10.0.0.1", 50051, True),
        ("10.0.0.1:50051", "10.0.0.1", 50052, False),
        ("[::1]:443", "::1", 443, True),
        ("[::1]:443", "::1", 444, False),
        # IP addresses
        ("127.0.0.1", "127.0.0.1", 1, True),
        ("127.0.0.1", "127.0.0.2", 1, False),
        ("::1", "::1", 1, True),
        ("[::1]", "::1", 1, True),
        ("::1", "[::1]", 1, True),
        ("0:0:0:0:0:0:0:1", "::1", 1, True),
        ("127.0.0.1", "::ffff:127.0.0.1", 1, True),
        ("127.0.0.1", "localhost", 1, False),  # names are not resolved to match IPs
        ("example.com", "93.184.216.34", 1, False),
        # CIDR ranges
        ("10.0.0.0/8", "10.200.3.4", 1, True),
        ("10.0.0.0/8", "11.0.0.1", 1, False),
        ("192.168.1.0/24", "192.168.1.77", 1, True),
        ("192.168.1.0/24", "192.168.2.1", 1, False),
        ("10.1.2.3/8", "10.9.9.9", 1, True),  # host bits are ignored
        ("127.0.0.0/8", "::ffff:127.0.0.5", 1, True),
        ("fd00::/8", "fd12::1", 1, True),
        ("fd00::/8", "fe80::1", 1, False),
        ("fd00::/8", "10.0.0.1", 1, False),
        ("10.0.0.0/8", "ten.example", 1, False),  # a CIDR never matches a name
        # unreadable entries are ignored, the rest still apply
        ("10.0.0.0/99, example.com", "example.com", 1, True),
        ("10.0.0.0/99", "10.0.0.1", 1, False),
        ("[::1, example.com", "example.com", 1, True),
        ("host:port, example.com", "example.com", 1, True),
    ],
)
def test_no_proxy_matching(no_proxy: str, host: str, port: int, bypass: bool) -> None:
    assert parse_no_proxy(no_proxy, "no_proxy").matches(host, port) is bypass


def test_for_host_without_no_proxy() -> None:
    proxy = HttpProxy(host="p", port=1, source=SOURCE)
    assert ProxySettings(proxy).for_host("anything", 1) is proxy


# --------------------------------------------------------------------------- the request


def test_connect_request_bytes() -> None:
    """A1: CONNECT names the target as given (unresolved), Host is the same; Basic
    credentials from the URL's user info; the channel's User-Agent (grpc-go sends one)."""
    proxy = HttpProxy(
        host="p", port=1, source=SOURCE, username="u", password="p@ss", user_agent="ua/1"
    )
    assert connect_request(proxy, "backend.example:443") == (
        b"CONNECT backend.example:443 HTTP/1.1\r\n"
        b"Host: backend.example:443\r\n"
        b"User-Agent: ua/1\r\n"
        b"Proxy-Authorization: Basic dTpwQHNz\r\n"
        b"\r\n"
    )
    plain = HttpProxy(host="p", port=1, source=SOURCE)
    assert connect_request(plain, "[::1]:50051") == (
        b"CONNECT [::1]:50051 HTTP/1.1\r\nHost: [::1]:50051\r\n\r\n"
    )


# --------------------------------------------------------------------------- the channel


def _descriptions(channel: grpc_lite.Channel) -> list[str]:
    return [e.description for e in channel.snapshot().events]


def test_malformed_env_proxy_fails_channel_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "ftp://alice:hunter2@proxy:21")
    with pytest.raises(ValueError) as info:
        grpc_lite.insecure_channel("backend.example:443")
    assert str(info.value).startswith("environment variable https_proxy: invalid HTTP proxy URL")
    assert "hunter2" not in str(info.value)


def test_malformed_option_proxy_fails_channel_creation() -> None:
    with pytest.raises(ValueError, match=r"^channel option 'grpc.http_proxy': invalid HTTP"):
        grpc_lite.insecure_channel("x:1", options=[("grpc.http_proxy", "http://p:notaport")])


def test_dns_target_goes_through_the_proxy_unresolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("grpc_proxy", "http://alice:hunter2@proxy.corp:3128")
    channel = grpc_lite.insecure_channel("dns:///backend.example")
    (note,) = _descriptions(channel)
    assert note == (
        "HTTP CONNECT proxy proxy.corp:3128 (from environment variable grpc_proxy) for "
        "backend.example:443; the proxy resolves the name"
    )
    assert "hunter2" not in repr(channel) and "hunter2" not in repr(channel.options)


def test_no_proxy_match_on_the_target_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "proxy.corp:3128")
    monkeypatch.setenv("no_proxy", ".example")
    channel = grpc_lite.insecure_channel("backend.example:50051")
    (note,) = _descriptions(channel)
    assert note == (
        "HTTP CONNECT proxy proxy.corp:3128 (from environment variable https_proxy) not used: "
        "backend.example:50051 matches environment variable no_proxy"
    )


def test_unix_targets_never_use_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("grpc_proxy", "proxy.corp:3128")
    assert _descriptions(grpc_lite.insecure_channel("unix:/tmp/x.sock")) == []
    assert _descriptions(grpc_lite.insecure_channel("unix-abstract:x")) == []


def test_no_proxy_environment_means_no_note(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="grpc_lite"):
        channel = grpc_lite.insecure_channel("backend.example:443")
    assert _descriptions(channel) == []
    assert "proxy" not in caplog.text


def test_enable_http_proxy_zero_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("grpc_proxy", "proxy.corp:3128")
    channel = grpc_lite.insecure_channel(
        "backend.example:443",
        options=[("grpc.enable_http_proxy", 0), ("grpc.http_proxy", "http://o:1")],
    )
    assert _descriptions(channel) == []

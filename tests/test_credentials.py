"""Credentials objects without a server: the plugin context rules, validation, reprs, the
local-address check, and the per-call checks made before anything is built."""

from __future__ import annotations

import functools
from typing import Any

import pytest

import grpc_lite
from grpc_lite._credentials import auth_context, local_address_error

L = grpc_lite.LocalConnectionType


@pytest.mark.parametrize(
    ("scheme", "authority", "path", "expected"),
    [
        (
            "https",
            "api.example.com:443",
            "/pkg.Svc/Get",
            ("https://api.example.com/pkg.Svc", "Get"),
        ),
        (
            "https",
            "api.example.com:8443",
            "/pkg.Svc/Get",
            ("https://api.example.com:8443/pkg.Svc", "Get"),
        ),
        ("https", "api.example.com", "/pkg.Svc/Get", ("https://api.example.com/pkg.Svc", "Get")),
        ("https", "[::1]:443", "/pkg.Svc/Get", ("https://[::1]/pkg.Svc", "Get")),
        ("https", "[::1]:50051", "/a.b.C/D/E", ("https://[::1]:50051/a.b.C/D", "E")),
        ("https", "host:443", "/Foo", ("https://host/Foo", "")),
        ("https", "host:443", "Foo", ("https://host", "")),
        # C-core drops :443 only for its TLS URL scheme; local credentials have no scheme.
        ("", "127.0.0.1:443", "/pkg.Svc/Get", ("://127.0.0.1:443/pkg.Svc", "Get")),
    ],
)
def test_service_url_rules(scheme: str, authority: str, path: str, expected: Any) -> None:
    """C-core's MakeServiceUrlAndMethod (src/core/lib/security/transport/auth_filters)."""
    assert tuple(auth_context(scheme, authority, path)) == expected


def test_access_token_repr_and_validation() -> None:
    creds = grpc_lite.access_token_call_credentials("tok-123")
    assert "tok-123" not in repr(creds)
    assert creds._static == (("authorization", "Bearer tok-123"),)
    with pytest.raises(ValueError) as info:
        grpc_lite.access_token_call_credentials("bad\ntok-123")
    assert "tok-123" not in str(info.value)
    with pytest.raises(TypeError):
        grpc_lite.access_token_call_credentials(b"bytes")  # type: ignore[arg-type]


def test_channel_credentials_repr_names_parts_only() -> None:
    ssl_creds = grpc_lite.ssl_channel_credentials()
    combined = grpc_lite.composite_channel_credentials(
        ssl_creds,
        grpc_lite.access_token_call_credentials("secret-a"),
        grpc_lite.metadata_call_credentials(lambda c, cb: None, name="vault"),
    )
    text = repr(combined)
    assert "secret-a" not in text
    assert "TLS (system roots)" in text and "'vault'" in text
    assert repr(grpc_lite.local_channel_credentials(L.UDS)) == "<ChannelCredentials local (UDS)>"
    # composing does not change the original
    assert ssl_creds.call_credentials is None
    assert combined.ssl_context is ssl_creds.ssl_context


def test_plugin_names_and_kinds() -> None:
    def sync_plugin(context: Any, callback: Any) -> None:
        pass

    async def async_plugin(context: Any) -> Any:
        return ()

    class AsyncCallable:
        async def __call__(self, context: Any) -> Any:
            return ()

    class SyncCallable:
        def __call__(self, context: Any, callback: Any) -> None:
            pass

    cases = [
        (sync_plugin, "sync_plugin", "sync"),
        (async_plugin, "async_plugin", "async"),
        (AsyncCallable(), "AsyncCallable", "async"),
        (SyncCallable(), "SyncCallable", "sync"),
        (functools.partial(async_plugin), "partial", "async"),
    ]
    for plugin, name, kind in cases:
        (p,) = grpc_lite.metadata_call_credentials(plugin)._plugins
        assert (p.name, p.kind) == (name, kind), plugin
    (p,) = grpc_lite.metadata_call_credentials(sync_plugin, name="given")._plugins
    assert p.name == "given"
    with pytest.raises(TypeError):
        grpc_lite.metadata_call_credentials("not callable")  # type: ignore[arg-type]


def test_composites_check_their_parts() -> None:
    token = grpc_lite.access_token_call_credentials("t")
    with pytest.raises(TypeError, match="CallCredentials"):
        grpc_lite.composite_call_credentials(token, "nope")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="CallCredentials"):
        grpc_lite.composite_channel_credentials(grpc_lite.local_channel_credentials(), object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ChannelCredentials"):
        grpc_lite.composite_channel_credentials(token, token)  # type: ignore[arg-type]
    both = grpc_lite.composite_call_credentials(token, grpc_lite.access_token_call_credentials("u"))
    assert both._static == (("authorization", "Bearer t"), ("authorization", "Bearer u"))
    with pytest.raises(ValueError, match="LocalConnectionType"):
        grpc_lite.local_channel_credentials("uds")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no TLS context"):
        grpc_lite.local_channel_credentials().ssl_context  # noqa: B018


@pytest.mark.parametrize(
    ("address", "tcp_ok", "uds_ok"),
    [
        ("127.0.0.1:50051", True, False),
        ("127.3.4.5:1", True, False),
        ("[::1]:50051", True, False),
        ("[::ffff:127.0.0.1]:5", True, False),
        ("localhost:80", True, False),
        ("10.1.2.3:443", False, False),
        ("[2001:db8::1]:443", False, False),
        ("example.com:443", False, False),
        ("unix:/tmp/s.sock", False, True),
        ("unix-abstract:name", False, True),
    ],
)
def test_local_address_check(address: str, tcp_ok: bool, uds_ok: bool) -> None:
    """grpcio's LocalConnectionType: LOCAL_TCP is loopback TCP only, UDS Unix sockets only."""
    assert (local_address_error(L.LOCAL_TCP, address) is None) is tcp_ok
    assert (local_address_error(L.UDS, address) is None) is uds_ok


async def test_per_call_credentials_checked_before_anything_starts() -> None:
    """On a TLS channel a wrong ``credentials=`` type is a TypeError; on a plaintext one
    any credentials are a UsageError (grpc.aio checks that first). No call is started."""
    secure = grpc_lite.secure_channel("127.0.0.1:1", grpc_lite.ssl_channel_credentials())
    plain = grpc_lite.insecure_channel("127.0.0.1:1")
    async with secure, plain:
        with pytest.raises(TypeError, match="CallCredentials"):
            secure.unary_unary("/s.S/M")(b"", credentials="token")  # type: ignore[arg-type]
        with pytest.raises(grpc_lite.UsageError, match="secure"):
            plain.unary_unary("/s.S/M")(b"", credentials="token")  # type: ignore[arg-type]
        assert secure.calls_started == plain.calls_started == 0
        assert secure.get_state() is plain.get_state() is grpc_lite.ChannelConnectivity.IDLE


def test_channel_takes_ssl_context_or_credentials_not_both() -> None:
    creds = grpc_lite.ssl_channel_credentials()
    with pytest.raises(ValueError, match="not both"):
        grpc_lite.Channel("localhost:1", ssl_context=creds.ssl_context, credentials=creds)

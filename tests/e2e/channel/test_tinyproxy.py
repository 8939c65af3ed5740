"""HTTP CONNECT proxies (gRFC A1) against a real proxy: tinyproxy on loopback
(tests/tinyproxy.py) in front of grpcio servers, plaintext and TLS.

The proxy's own log says which CONNECT requests it received, so every test can tell whether
a call went through it. Without the tinyproxy binary these tests fail, saying so.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

import grpc_lite
from grpc_lite._proto import testing_pb2
from tests.e2e.channel._util import SC
from tests.servers.harness import RunningServer, TLSMaterial
from tests.tinyproxy import free_port, start_tinyproxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(40)]

TEST_SERVICE = testing_pb2.DESCRIPTOR.services_by_name["TestService"]
FAST_BACKOFF = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 200)]
_S = grpc_lite.ChannelConnectivity


async def _call(channel: grpc_lite.Channel, *, wait_for_ready: bool = False) -> None:
    stub = grpc_lite.Stub(channel, TEST_SERVICE)
    response = await stub.UnaryCall(
        testing_pb2.SimpleRequest(response_size=1234), timeout=10, wait_for_ready=wait_for_ready
    )
    assert len(response.payload.body) == 1234


async def _failed_call(channel: grpc_lite.Channel) -> grpc_lite.RpcError:
    with pytest.raises(grpc_lite.RpcError) as info:
        await _call(channel)
    return info.value


def _events(channel: grpc_lite.Channel) -> list[str]:
    return [f"{e.subject}: {e.description}" for e in channel.snapshot().events]


async def test_plaintext_call_through_the_proxy_option(
    interop_server: RunningServer, tmp_path: Path
) -> None:
    """grpc.http_proxy: a dns target ("localhost:PORT") is not resolved by the client: the
    CONNECT names it as written and the proxy resolves it. The snapshot and the trace show
    the proxy."""
    port = interop_server.port
    assert port is not None
    with start_tinyproxy(tmp_path, [port]) as proxy:
        options = [("grpc.http_proxy", f"http://{proxy.address}")]
        async with grpc_lite.insecure_channel(f"localhost:{port}", options=options) as ch:
            await _call(ch)
            await _call(ch)
            snap = ch.snapshot()
            (sc,) = snap.subchannels
            assert sc.address == f"localhost:{port} via proxy {proxy.address}"
            assert sc.proxy == proxy.address
            assert snap.addresses == [f"localhost:{port}"]
            events = _events(ch)
        assert proxy.connects() == [f"localhost:{port}"]  # one tunnel for both calls
        assert proxy.established() == 1
    assert (
        f"channel: HTTP CONNECT proxy {proxy.address} (from channel option 'grpc.http_proxy') "
        f"for localhost:{port}; the proxy resolves the name"
    ) in events
    assert f"subchannel localhost:{port} via proxy {proxy.address}: CONNECTING -> READY" in events
    assert interop_server.recorder.count("UnaryCall") == 2


async def test_tls_through_the_proxy(
    grpc_server_factory: object, tls_material: TLSMaterial, tmp_path: Path
) -> None:
    """TLS runs inside the tunnel, end to end with the backend: SNI and verification use the
    backend's name ("localhost", in the test certificate), not the proxy's."""
    server = grpc_server_factory.interop(tls=tls_material)  # type: ignore[attr-defined]
    creds = grpc_lite.ssl_channel_credentials(root_certificates=tls_material.ca_pem)
    with start_tinyproxy(tmp_path, [server.port]) as proxy:
        options = [("grpc.http_proxy", proxy.address)]  # bare host:port works too
        async with grpc_lite.secure_channel(f"localhost:{server.port}", creds, options) as ch:
            await _call(ch)
            assert ch.get_state() is _S.READY
        assert proxy.connects() == [f"localhost:{server.port}"]
    assert server.recorder.count("UnaryCall") == 1


async def test_tls_through_the_proxy_checks_the_backend_name(
    grpc_server_factory: object, tls_material: TLSMaterial, tmp_path: Path
) -> None:
    """The backend's certificate is verified against the target name even inside the tunnel:
    a name the certificate does not have fails the handshake (UNAVAILABLE)."""
    server = grpc_server_factory.interop(tls=tls_material)  # type: ignore[attr-defined]
    creds = grpc_lite.ssl_channel_credentials(root_certificates=tls_material.ca_pem)
    with start_tinyproxy(tmp_path, [server.port]) as proxy:
        options = [
            ("grpc.http_proxy", proxy.address),
            ("grpc.ssl_target_name_override", "wrong.example"),
        ]
        async with grpc_lite.secure_channel(f"localhost:{server.port}", creds, options) as ch:
            error = await _failed_call(ch)
        assert proxy.connects() == [f"localhost:{server.port}"]
    assert error.code() is SC.UNAVAILABLE
    assert f"TLS handshake with localhost:{server.port} via proxy {proxy.address}" in (
        error.details() or ""
    )


async def test_environment_proxy_and_its_order(
    interop_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """grpc_proxy wins over https_proxy (here a port nobody listens on), read when the
    channel is created."""
    port = interop_server.port
    assert port is not None
    with start_tinyproxy(tmp_path, [port]) as proxy:
        monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{free_port()}")
        monkeypatch.setenv("GRPC_PROXY", f"http://{proxy.address}")
        channel = grpc_lite.insecure_channel(f"localhost:{port}")
        monkeypatch.delenv("GRPC_PROXY")  # too late: the channel has read it
        async with channel as ch:
            await _call(ch)
        assert proxy.connects() == [f"localhost:{port}"]

        monkeypatch.setenv("https_proxy", f"http://{proxy.address}")
        async with grpc_lite.insecure_channel(f"127.0.0.1:{port}") as ch:
            await _call(ch)
        assert proxy.connects() == [f"localhost:{port}", f"127.0.0.1:{port}"]


@pytest.mark.parametrize(
    ("target", "no_proxy"),
    [
        ("localhost:{port}", "localhost"),
        ("localhost:{port}", "*"),
        ("localhost:{port}", "example.com, LOCALHOST:{port}"),
        ("127.0.0.1:{port}", "127.0.0.0/8"),
        ("ipv4:127.0.0.1:{port}", "127.0.0.1"),
        ("ipv4:127.0.0.1:{port}", "10.0.0.0/8,127.0.0.0/8"),
        ("ipv6:[::1]:{port}", "::1"),
    ],
)
async def test_no_proxy_goes_direct(
    grpc_server_factory: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    no_proxy: str,
) -> None:
    """A target (dns: its name; ipv4:/ipv6: each address) matched by no_proxy connects
    directly: the proxy sees nothing."""
    host = "::1" if "ipv6" in target else "127.0.0.1"
    try:
        server = grpc_server_factory.interop(host=host)  # type: ignore[attr-defined]
    except OSError as exc:
        pytest.fail(f"cannot serve on {host}: this test needs the IPv6 loopback ({exc})")
    with start_tinyproxy(tmp_path, [server.port]) as proxy:
        monkeypatch.setenv("grpc_proxy", proxy.address)
        monkeypatch.setenv("no_proxy", no_proxy.format(port=server.port))
        async with grpc_lite.insecure_channel(target.format(port=server.port)) as ch:
            await _call(ch)
            assert ch.snapshot().subchannels[0].proxy is None
        assert proxy.connects() == []


async def test_ip_list_target_goes_through_the_proxy_per_address(
    interop_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ipv4: target's addresses are resolved already: each one is CONNECTed as an IP
    (A1 case 2); an address no_proxy matches (127.0.0.2 here) goes direct."""
    port = interop_server.port
    assert port is not None
    with start_tinyproxy(tmp_path, [port]) as proxy:
        monkeypatch.setenv("grpc_proxy", proxy.address)
        monkeypatch.setenv("no_grpc_proxy", "127.0.0.2")
        async with grpc_lite.insecure_channel(f"ipv4:127.0.0.1:{port}") as ch:
            await _call(ch)
        assert proxy.connects() == [f"127.0.0.1:{port}"]


async def test_enable_http_proxy_zero_goes_direct(
    interop_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = interop_server.port
    assert port is not None
    with start_tinyproxy(tmp_path, [port]) as proxy:
        monkeypatch.setenv("https_proxy", proxy.address)
        options = [("grpc.enable_http_proxy", 0), ("grpc.http_proxy", proxy.address)]
        async with grpc_lite.insecure_channel(f"localhost:{port}", options=options) as ch:
            await _call(ch)
            assert _events(ch)[0] == "channel: exiting idle mode"
        assert proxy.connects() == []


async def test_proxy_authentication(
    interop_server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """tinyproxy with BasicAuth: without credentials the CONNECT is refused with 407, the
    subchannel goes TRANSIENT_FAILURE and the call fails UNAVAILABLE naming the proxy and
    the status line; with user:pass in the URL (percent-encoded) the call goes through. The
    password is in no log line, trace event, snapshot or repr."""
    port = interop_server.port
    assert port is not None
    secret = "s3cr-t.x"  # tinyproxy's config takes [-a-z0-9._] only
    with start_tinyproxy(tmp_path, [port], basic_auth=("alice", secret)) as proxy:
        caplog.set_level(logging.DEBUG, logger="grpc_lite")
        options = [*FAST_BACKOFF, ("grpc.http_proxy", f"http://{proxy.address}")]
        async with grpc_lite.insecure_channel(f"localhost:{port}", options=options) as ch:
            error = await _failed_call(ch)
            assert error.code() is SC.UNAVAILABLE
            expected = (
                f"HTTP CONNECT via proxy {proxy.address} failed: 407 Proxy Authentication Required"
            )
            assert expected in (error.details() or "")
            (sc,) = ch.snapshot().subchannels
            assert sc.state is _S.TRANSIENT_FAILURE
            assert sc.last_error == expected
            assert sc.current_backoff is not None  # backing off before the next attempt
            assert (
                f"subchannel localhost:{port} via proxy {proxy.address}: CONNECTING -> "
                f"TRANSIENT_FAILURE: {expected}"
            ) in _events(ch)

        monkeypatch.setenv("grpc_proxy", f"http://alice:s3cr%2Dt.x@{proxy.address}")
        async with grpc_lite.insecure_channel(f"localhost:{port}") as ch:
            await _call(ch)
            visible = [
                repr(ch),
                repr(ch.options),
                json.dumps(ch.snapshot().to_dict()),
                repr(ch.snapshot()),
                *(repr(sc) for sc in ch._subchannels),
            ]
        assert proxy.connects() == [f"localhost:{port}", f"localhost:{port}"]
        assert proxy.established() == 1
    visible.append(caplog.text)
    for text in visible:
        assert secret not in text and "s3cr%2Dt.x" not in text
        assert "YWxpY2U6czNjci10Lng=" not in text  # base64("alice:s3cr-t.x")


async def test_proxy_down_then_back(
    interop_server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy nobody listens on: UNAVAILABLE naming it, TRANSIENT_FAILURE with backoff;
    once the proxy starts, the channel recovers on its own (a wait_for_ready call goes
    through)."""
    port = interop_server.port
    assert port is not None
    proxy_port = free_port()
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy_port}")
    async with grpc_lite.insecure_channel(f"localhost:{port}", options=FAST_BACKOFF) as ch:
        error = await _failed_call(ch)
        assert error.code() is SC.UNAVAILABLE
        assert (
            f"HTTP CONNECT via proxy 127.0.0.1:{proxy_port} failed: cannot connect to the "
            "proxy: Connection refused"
        ) in (error.details() or "")
        assert ch.get_state() is _S.TRANSIENT_FAILURE
        (sc,) = ch.snapshot().subchannels
        assert sc.state is _S.TRANSIENT_FAILURE
        assert sc.proxy == f"127.0.0.1:{proxy_port}"
        with start_tinyproxy(tmp_path, [port], port=proxy_port) as proxy:
            await _call(ch, wait_for_ready=True)
            assert ch.get_state() is _S.READY
            assert proxy.connects() == [f"localhost:{port}"]
        assert ch.snapshot().subchannels[0].connect_attempts >= 2


async def test_proxy_refuses_the_port(interop_server: RunningServer, tmp_path: Path) -> None:
    """A proxy policy refusal (tinyproxy's 403 for a port not in ConnectPort) is reported
    with its status line."""
    port = interop_server.port
    assert port is not None
    with start_tinyproxy(tmp_path, [port + 1 if port < 65535 else port - 1]) as proxy:
        options = [("grpc.http_proxy", proxy.address)]
        async with grpc_lite.insecure_channel(f"localhost:{port}", options=options) as ch:
            error = await _failed_call(ch)
    assert error.code() is SC.UNAVAILABLE
    assert f"HTTP CONNECT via proxy {proxy.address} failed: 403 Access violation" in (
        error.details() or ""
    )


async def test_round_robin_over_proxied_addresses(
    greeter_backends: list[RunningServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A1 case 2 with client-side balancing: an ipv4: list under round_robin keeps one
    subchannel per address, each with its own tunnel to that IP (127.0.0.3 is in no_proxy
    and goes direct), and calls reach every backend."""
    from grpc_lite.testing import helloworld_pb2

    port = greeter_backends[0].port
    assert port is not None
    hosts = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
    target = "ipv4:" + ",".join(f"{h}:{port}" for h in hosts)
    config = {"loadBalancingConfig": [{"round_robin": {}}]}
    with start_tinyproxy(tmp_path, [port]) as proxy:
        monkeypatch.setenv("grpc_proxy", proxy.address)
        monkeypatch.setenv("no_grpc_proxy", "127.0.0.3")
        async with grpc_lite.insecure_channel(target, service_config=config) as ch:
            stub = grpc_lite.Stub(ch, helloworld_pb2.DESCRIPTOR.services_by_name["Greeter"])
            replies: set[str] = set()
            for _ in range(100):  # until every subchannel is READY and has answered
                request = helloworld_pb2.HelloRequest(name="x")
                replies.add((await stub.SayHello(request, timeout=5)).message)
                if len(replies) == len(hosts):
                    break
                await asyncio.sleep(0.02)
            via = {sc.address.split(" ", 1)[0]: sc.proxy for sc in ch.snapshot().subchannels}
        assert sorted(proxy.connects()) == [f"127.0.0.1:{port}", f"127.0.0.2:{port}"]
    assert replies == {f"Hello x from {h}:{port}" for h in hosts}
    assert via == {
        f"127.0.0.1:{port}": proxy.address,
        f"127.0.0.2:{port}": proxy.address,
        f"127.0.0.3:{port}": None,
    }

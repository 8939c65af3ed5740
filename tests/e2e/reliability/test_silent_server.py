"""A server that accepts TCP but never sends SETTINGS (issue 7; CONFORMANCE 17, 78)."""

import asyncio

import pytest

import grpc_lite

pytestmark = [pytest.mark.integration, pytest.mark.timeout(15)]


class _Silent(asyncio.Protocol):
    accepted: list[float] = []
    transports: list[asyncio.BaseTransport] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _Silent.accepted.append(asyncio.get_running_loop().time())
        _Silent.transports.append(transport)


async def test_each_attempt_fails_at_the_connect_deadline() -> None:
    """78: with MIN_CONNECT_TIMEOUT 0.3 s an attempt to a silent server is abandoned after
    about 0.3 s (never READY: 17) and a new attempt follows; the subchannel's last error
    says it timed out waiting for the server's SETTINGS; a fail-fast RPC then fails
    UNAVAILABLE naming that."""
    _Silent.accepted = []
    _Silent.transports = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    options = [
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 300),
    ]
    try:
        async with grpc_lite.insecure_channel(f"127.0.0.1:{port}", options=options) as ch:
            started = loop.time()
            with pytest.raises(grpc_lite.RpcError) as info:
                await ch.unary_unary("/pkg.Svc/M")(b"", timeout=5)
            failed_after = loop.time() - started
            assert info.value.code() is grpc_lite.StatusCode.UNAVAILABLE
            assert "SETTINGS" in (info.value.details() or "")
            assert 0.25 <= failed_after < 1.0, failed_after
            for _ in range(100):
                if len(_Silent.accepted) >= 3:
                    break
                await asyncio.sleep(0.05)
            gaps = [b - a for a, b in zip(_Silent.accepted, _Silent.accepted[1:], strict=False)]
            assert len(gaps) >= 2, _Silent.accepted
            # Each attempt lasts the connect deadline (0.3 s) before the next one starts.
            assert all(0.25 <= g < 0.8 for g in gaps), gaps
            (sub,) = ch.snapshot().subchannels
            assert sub.connect_attempts >= 3
            assert "SETTINGS" in (sub.last_error or "")
            assert ch.get_state() is not grpc_lite.ChannelConnectivity.READY
    finally:
        for t in _Silent.transports:
            t.close()
        server.close()
        await server.wait_closed()

"""The grpcio test-server harness works (checked with a grpcio client, not grpc_lite)."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.protos.grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc
from tests.protos.helloworld import helloworld_pb2, helloworld_pb2_grpc
from tests.servers.harness import NOT_SERVING, RunningServer, ServerFactory, TLSMaterial

pytestmark = pytest.mark.integration


def _channel(server: RunningServer, **kwargs: object) -> grpc.Channel:
    return grpc.insecure_channel(server.address, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def stub(interop_server: RunningServer) -> Iterator[test_pb2_grpc.TestServiceStub]:
    with _channel(interop_server) as channel:
        yield test_pb2_grpc.TestServiceStub(channel)


def test_empty_and_large_unary(stub: test_pb2_grpc.TestServiceStub) -> None:
    assert stub.EmptyCall(empty_pb2.Empty()) == empty_pb2.Empty()
    request = messages_pb2.SimpleRequest(
        response_size=314159, payload=messages_pb2.Payload(body=b"\0" * 271828)
    )
    assert len(stub.UnaryCall(request).payload.body) == 314159


def test_streaming_shapes(stub: test_pb2_grpc.TestServiceStub) -> None:
    sizes = [31415, 9, 2653, 58979]
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=s) for s in sizes]
    )
    assert [len(r.payload.body) for r in stub.StreamingOutputCall(request)] == sizes

    inputs = [27182, 8, 1828, 45904]
    requests = (
        messages_pb2.StreamingInputCallRequest(payload=messages_pb2.Payload(body=b"\0" * n))
        for n in inputs
    )
    assert stub.StreamingInputCall(requests).aggregated_payload_size == 74922

    def ping_pong() -> Iterator[messages_pb2.StreamingOutputCallRequest]:
        for size in sizes:
            yield messages_pb2.StreamingOutputCallRequest(
                response_parameters=[messages_pb2.ResponseParameters(size=size)]
            )

    assert [len(r.payload.body) for r in stub.FullDuplexCall(ping_pong())] == sizes
    assert [len(r.payload.body) for r in stub.HalfDuplexCall(ping_pong())] == sizes
    assert list(stub.FullDuplexCall(iter(()))) == []


def test_metadata_echo_and_status(stub: test_pb2_grpc.TestServiceStub) -> None:
    metadata = (
        ("x-grpc-test-echo-initial", "test_initial_metadata_value"),
        ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab"),
    )
    _, call = stub.UnaryCall.with_call(
        messages_pb2.SimpleRequest(response_size=1), metadata=metadata
    )
    assert ("x-grpc-test-echo-initial", "test_initial_metadata_value") in call.initial_metadata()
    assert ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab") in call.trailing_metadata()

    message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
    request = messages_pb2.SimpleRequest(
        response_status=messages_pb2.EchoStatus(code=2, message=message)
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.UnaryCall(request, metadata=metadata)
    assert info.value.code() == grpc.StatusCode.UNKNOWN
    assert info.value.details() == message
    assert ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab") in info.value.trailing_metadata()

    duplex = stub.FullDuplexCall(
        iter(
            [
                messages_pb2.StreamingOutputCallRequest(
                    response_status=messages_pb2.EchoStatus(code=2, message="test status message")
                )
            ]
        )
    )
    with pytest.raises(grpc.RpcError) as info:
        list(duplex)
    assert info.value.code() == grpc.StatusCode.UNKNOWN
    assert info.value.details() == "test status message"


def test_unimplemented(interop_server: RunningServer) -> None:
    with _channel(interop_server) as channel:
        for path in (
            "/grpc.testing.TestService/UnimplementedCall",
            "/grpc.testing.UnimplementedService/UnimplementedCall",
        ):
            with pytest.raises(grpc.RpcError) as info:
                channel.unary_unary(path)(b"")
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_deadline_on_sleeping_server(stub: test_pb2_grpc.TestServiceStub) -> None:
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=1, interval_us=500_000)]
    )
    with pytest.raises(grpc.RpcError) as info:
        list(stub.StreamingOutputCall(request, timeout=0.05))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_fill_server_id_and_recorder(interop_server: RunningServer) -> None:
    with _channel(interop_server) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        response = stub.UnaryCall(
            messages_pb2.SimpleRequest(fill_server_id=True), metadata=(("x-test", "1"),)
        )
    assert response.server_id == interop_server.address
    calls = interop_server.recorder.calls
    assert [c.method for c in calls] == ["/grpc.testing.TestService/UnaryCall"]
    assert calls[0].get("x-test") == "1"
    assert interop_server.recorder.count("UnaryCall") == 1


def test_health_and_reflection(interop_server: RunningServer) -> None:
    with _channel(interop_server) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        check = health.Check
        assert (
            check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
        )
        service = "grpc.testing.TestService"
        assert check(health_pb2.HealthCheckRequest(service=service)).status == 1
        interop_server.health.set(service, NOT_SERVING)
        assert check(health_pb2.HealthCheckRequest(service=service)).status == NOT_SERVING
        with pytest.raises(grpc.RpcError) as info:
            check(health_pb2.HealthCheckRequest(service="nope"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        listed = health.List(health_pb2.HealthListRequest())
        assert listed.statuses[service].status == NOT_SERVING
        assert listed.statuses[""].status == health_pb2.HealthCheckResponse.SERVING

        watch = health.Watch(health_pb2.HealthCheckRequest(service="later"))
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        interop_server.health.set("later", health_pb2.HealthCheckResponse.SERVING)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()

        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (answer,) = reflect.ServerReflectionInfo(iter([request]))
        names = {s.name for s in answer.list_services_response.service}
        assert {
            "grpc.testing.TestService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        } <= names
        request = reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="grpc.testing.TestService"
        )
        (answer,) = reflect.ServerReflectionInfo(iter([request]))
        assert answer.file_descriptor_response.file_descriptor_proto


def test_tls_server(tls_interop_server: RunningServer, tls_material: TLSMaterial) -> None:
    assert tls_interop_server.tls is tls_material
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_material.ca_pem)
    for target in (tls_interop_server.address, f"localhost:{tls_interop_server.port}"):
        with grpc.secure_channel(target, credentials) as channel:
            stub = test_pb2_grpc.TestServiceStub(channel)
            assert stub.EmptyCall(empty_pb2.Empty(), timeout=10) == empty_pb2.Empty()
    context = tls_material.client_ssl_context(client_cert=True)
    assert context.verify_mode.name == "CERT_REQUIRED"


def test_mutual_tls(grpc_server_factory: ServerFactory, tls_material: TLSMaterial) -> None:
    server = grpc_server_factory.interop(tls=tls_material, require_client_auth=True)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls_material.ca_pem,
        private_key=tls_material.client_key_pem,
        certificate_chain=tls_material.client_cert_chain_pem,
    )
    with grpc.secure_channel(server.address, credentials) as channel:
        assert test_pb2_grpc.TestServiceStub(channel).EmptyCall(empty_pb2.Empty(), timeout=10)


def test_unix_server(unix_interop_server: RunningServer) -> None:
    assert unix_interop_server.address.startswith("unix:/tmp/")
    assert unix_interop_server.port is None
    with _channel(unix_interop_server) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        assert stub.EmptyCall(empty_pb2.Empty(), timeout=10) == empty_pb2.Empty()


def test_greeter_backends_share_a_port(greeter_backends: list[RunningServer]) -> None:
    hosts = [s.host for s in greeter_backends]
    assert hosts == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert len({s.port for s in greeter_backends}) == 1
    for server in greeter_backends:
        with _channel(server) as channel:
            reply = helloworld_pb2_grpc.GreeterStub(channel).SayHello(
                helloworld_pb2.HelloRequest(name="lite"), timeout=10
            )
        assert reply.message == f"Hello lite from {server.address}"
        assert server.recorder.count("SayHello") == 1


def test_greeter_stream_and_injected_failure(greeter_server: RunningServer) -> None:
    with _channel(greeter_server) as channel:
        stub = helloworld_pb2_grpc.GreeterStub(channel)
        replies = [
            r.message for r in stub.SayHelloStreamReply(helloworld_pb2.HelloRequest(name="x"))
        ]
        assert replies == [f"Hello x from {greeter_server.address} #{i}" for i in range(3)]
        greeter_server.servicer.fail_with = grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.RpcError) as info:
            stub.SayHello(helloworld_pb2.HelloRequest(name="x"), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_server_compression_and_request_detection(grpc_server_factory: ServerFactory) -> None:
    server = grpc_server_factory.interop(detect_request_compression=True)
    with _channel(server) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        expect = messages_pb2.SimpleRequest(
            response_size=10,
            payload=messages_pb2.Payload(body=b"\0" * 1000),
            expect_compressed=messages_pb2.BoolValue(value=True),
        )
        with pytest.raises(grpc.RpcError) as info:
            stub.UnaryCall(expect)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        for algorithm in (grpc.Compression.Gzip, grpc.Compression.Deflate):
            assert len(stub.UnaryCall(expect, compression=algorithm).payload.body) == 10
        not_expected = messages_pb2.SimpleRequest(
            response_size=10,
            payload=messages_pb2.Payload(body=b"\0" * 1000),  # grpcio skips tiny messages
            expect_compressed=messages_pb2.BoolValue(value=False),
        )
        assert len(stub.UnaryCall(not_expected).payload.body) == 10
        with pytest.raises(grpc.RpcError) as info:
            stub.UnaryCall(not_expected, compression=grpc.Compression.Gzip)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        requests = [
            messages_pb2.StreamingInputCallRequest(
                payload=messages_pb2.Payload(body=b"\0" * 27182),
                expect_compressed=messages_pb2.BoolValue(value=True),
            )
        ]
        with pytest.raises(grpc.RpcError) as info:
            stub.StreamingInputCall(iter(requests))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        got = stub.StreamingInputCall(iter(requests), compression=grpc.Compression.Gzip)
        assert got.aggregated_payload_size == 27182

        # The response side: the server honours response_compressed (the client cannot
        # see the per-message flag through grpcio, but the call succeeds either way).
        for flag in (True, False):
            response = stub.UnaryCall(
                messages_pb2.SimpleRequest(
                    response_size=314159, response_compressed=messages_pb2.BoolValue(value=flag)
                )
            )
            assert len(response.payload.body) == 314159
    assert gzip.compress(b"x")[:2] == b"\x1f\x8b"  # the magic the server sniffs


def test_stop_with_grace_lets_calls_finish(interop_server: RunningServer) -> None:
    with _channel(interop_server) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        request = messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=1, interval_us=200_000)]
        )
        responses = stub.StreamingOutputCall(request, timeout=10)
        time.sleep(0.05)
        done = interop_server.stop(grace=5, wait=False)
        assert [len(r.payload.body) for r in responses] == [1]
        assert done.wait(5)
    assert interop_server.stopped


async def test_stop_async_does_not_block_the_loop(interop_server: RunningServer) -> None:
    await interop_server.stop_async(grace=0.1)
    assert interop_server.stopped
    interop_server.stop()  # idempotent

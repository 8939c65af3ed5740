"""What the ``grpc-lite`` subcommands share: the one-line error type, the server
reflection client (``call`` and ``load`` find their methods with it) and the
``--prometheus-port`` endpoint.

It sits below the command modules (``_cli``, ``_load``, ``_demo``) and imports none of
them, so the command line can defer loading a subcommand's module without any module
importing back into the command that loads it.
"""

import argparse
import sys
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool

import grpc_lite
from grpc_lite._proto import reflection_v1_pb2, reflection_v1alpha_pb2

__all__ = ["CliError", "Reflection", "prometheus_endpoint", "rpc_error"]


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def rpc_error(exc: grpc_lite.RpcError) -> CliError:
    """A failed call as a one-line CLI error: ``CODE: details``."""
    return CliError(f"{exc.code().name}: {exc.details()}")


def prometheus_endpoint(args: argparse.Namespace) -> Any:
    """The ``--prometheus-port`` endpoint (``grpc_lite.opentelemetry``), or None without it.
    Its address goes to stderr, so that ``--json`` output stays JSON."""
    if getattr(args, "prometheus_port", None) is None:
        return None
    try:
        from grpc_lite._prometheus import PrometheusEndpoint

        endpoint = PrometheusEndpoint(args.prometheus_port, args.prometheus_host)
    except ImportError:
        raise CliError(
            "--prometheus-port needs the OpenTelemetry API, SDK and Prometheus exporter: "
            "pip install 'grpc-lite[prometheus]'"
        ) from None
    except RuntimeError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(
            f"cannot serve metrics on {args.prometheus_host}:{args.prometheus_port}: {exc}"
        ) from None
    print(f"metrics for Prometheus: {endpoint.url}", file=sys.stderr, flush=True)
    return endpoint


class Reflection:
    """A server reflection client: grpc.reflection.v1, falling back to v1alpha."""

    def __init__(self, channel: grpc_lite.Channel, timeout: float) -> None:
        self._channel = channel
        self._timeout = timeout
        self._pool = descriptor_pool.DescriptorPool()
        self._loaded: set[str] = set()

    async def _ask(self, **request: Any) -> Any:
        errors = []
        for module, service in (
            (reflection_v1_pb2, "grpc.reflection.v1.ServerReflection"),
            (reflection_v1alpha_pb2, "grpc.reflection.v1alpha.ServerReflection"),
        ):
            method = self._channel.stream_stream(
                f"/{service}/ServerReflectionInfo",
                request_serializer=module.ServerReflectionRequest.SerializeToString,
                response_deserializer=module.ServerReflectionResponse.FromString,
            )
            call = method(iter([module.ServerReflectionRequest(**request)]), timeout=self._timeout)
            try:
                async for reply in call:
                    return reply
            except grpc_lite.RpcError as exc:
                if exc.code() is grpc_lite.StatusCode.UNIMPLEMENTED:
                    errors.append(service)
                    continue
                raise rpc_error(exc) from None
        raise CliError(
            "the server has no reflection service (tried grpc.reflection.v1 and v1alpha); "
            "enable server reflection to use 'grpc-lite call'"
        )

    async def _load_file_containing(self, symbol: str) -> None:
        reply = await self._ask(file_containing_symbol=symbol)
        if reply.HasField("error_response"):
            raise CliError(
                f"reflection: {reply.error_response.error_message or 'symbol not found'}: {symbol}"
            )
        await self._add(list(reply.file_descriptor_response.file_descriptor_proto))

    async def _add(self, blobs: list[bytes]) -> None:
        protos = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in blobs]
        by_name = {p.name: p for p in protos}

        async def add(proto: descriptor_pb2.FileDescriptorProto) -> None:
            if proto.name in self._loaded:
                return
            for dep in proto.dependency:
                if dep in self._loaded:
                    continue
                if dep not in by_name:
                    reply = await self._ask(file_by_filename=dep)
                    for blob in reply.file_descriptor_response.file_descriptor_proto:
                        p = descriptor_pb2.FileDescriptorProto.FromString(blob)
                        by_name.setdefault(p.name, p)
                if dep in by_name:
                    await add(by_name[dep])
            self._pool.Add(proto)
            self._loaded.add(proto.name)

        for proto in protos:
            await add(proto)

    async def method(self, service: str, name: str) -> Any:
        await self._load_file_containing(service)
        try:
            svc = self._pool.FindServiceByName(service)
        except KeyError:
            raise CliError(f"reflection: service {service!r} not found") from None
        method = svc.methods_by_name.get(name)
        if method is None:
            raise CliError(f"service {service!r} has no method {name!r}")
        return method

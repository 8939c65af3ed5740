"""Stubs without code generation: one multi-callable per method of a ServiceDescriptor."""

from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor

from ._channel import Channel


class Stub:
    """``Stub(channel, descriptor).Method(request)`` for every method of the service."""

    def __init__(self, channel: Channel, service_descriptor: ServiceDescriptor) -> None:
        if not isinstance(service_descriptor, ServiceDescriptor):
            raise TypeError("service_descriptor must be a protobuf ServiceDescriptor")
        self._service = service_descriptor.full_name
        for method in service_descriptor.methods:
            request_cls = message_factory.GetMessageClass(method.input_type)
            response_cls = message_factory.GetMessageClass(method.output_type)
            path = f"/{service_descriptor.full_name}/{method.name}"
            if method.client_streaming and method.server_streaming:
                factory: Any = channel.stream_stream
            elif method.client_streaming:
                factory = channel.stream_unary
            elif method.server_streaming:
                factory = channel.unary_stream
            else:
                factory = channel.unary_unary
            setattr(
                self,
                method.name,
                factory(
                    path,
                    request_serializer=request_cls.SerializeToString,
                    response_deserializer=response_cls.FromString,
                    _registered_method=True,
                ),
            )

    def __repr__(self) -> str:
        return f"<grpc_lite.Stub {self._service}>"

"""The Envoy/xDS protobuf messages, from a private descriptor pool built at first use.

``protos.binpb`` (beside this module; rebuilt by ``scripts/xds-protos``, attribution in
``NOTICE``) is a ``FileDescriptorSet`` of the ``.proto`` files the xDS client reads: the ADS
and LRS services, Listener, RouteConfiguration, Cluster, ClusterLoadAssignment, the
HttpConnectionManager and router filter, the load-balancing policy extensions, the aggregate
cluster, TypedStruct and google.rpc.Status, with all their imports, each file after the files
it imports.

The files go into a ``DescriptorPool`` of our own, never ``descriptor_pool.Default()``: an
application that also imports ``xds-protos`` or ``grpcio-csds`` (of any version) registers its
own ``envoy/...`` files in the default pool, and a second registration of the same file name
there would fail. Classes come from ``message_factory.GetMessageClass``; they share the wire
format with any other copy of the same messages.
"""

from __future__ import annotations

import functools
import threading
from importlib import resources

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

__all__ = ["DESCRIPTOR_SET", "message_class", "parse", "pool", "unpack_any"]

#: The package-data file holding the descriptor set.
DESCRIPTOR_SET = "protos.binpb"

_lock = threading.Lock()
_pool: descriptor_pool.DescriptorPool | None = None


def _build() -> descriptor_pool.DescriptorPool:
    data = resources.files(__package__).joinpath(DESCRIPTOR_SET).read_bytes()
    fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    built = descriptor_pool.DescriptorPool()
    for file_proto in fds.file:  # dependency order: every import is already in the pool
        built.Add(file_proto)
    return built


def pool() -> descriptor_pool.DescriptorPool:
    """The private pool, built from ``protos.binpb`` on the first call (thread-safe)."""
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = _build()
    return _pool


@functools.cache
def message_class(full_name: str) -> type[Message]:
    """The class of message ``full_name`` (e.g. ``"envoy.config.listener.v3.Listener"``).

    Raises KeyError naming the message when the descriptor set does not hold it.
    """
    try:
        descriptor = pool().FindMessageTypeByName(full_name)
    except KeyError:
        raise KeyError(f"message {full_name!r} is not in grpc_lite/xds/{DESCRIPTOR_SET}") from None
    return message_factory.GetMessageClass(descriptor)


def parse(full_name: str, data: bytes) -> Message:
    """``data`` parsed as message ``full_name``; DecodeError when it is not one."""
    msg = message_class(full_name)()
    msg.ParseFromString(data)
    return msg


def type_name(type_url: str) -> str:
    """The message name of a ``google.protobuf.Any`` type URL: the part after the last '/'."""
    return type_url.rpartition("/")[2]


def unpack_any(any_msg: Message) -> Message:
    """The message packed in ``any_msg`` (a ``google.protobuf.Any`` of any pool).

    Raises KeyError for a type the descriptor set does not hold, DecodeError when the value
    does not parse as the type its URL names.
    """
    type_url: str = any_msg.type_url  # type: ignore[attr-defined]
    value: bytes = any_msg.value  # type: ignore[attr-defined]
    name = type_name(type_url)
    if not name:
        raise DecodeError(f"Any has no type name in its type_url {type_url!r}")
    return parse(name, value)

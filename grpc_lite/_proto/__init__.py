"""Protobuf messages grpc_lite ships, held in a private descriptor pool.

Each ``*_pb2`` module here is written by ``scripts/gen_protos.py`` from ``proto/``. Unlike
protoc's own output they never touch ``descriptor_pool.Default()``: the files are added to
:data:`POOL` and the message classes come from ``message_factory.GetMessageClass``. So a
user's (or grpcio's) generated module for the same ``.proto`` (helloworld, grpc.health.v1,
grpc.testing) imports fine in the same process; tests/test_protos_fresh.py checks it.

Messages from this pool and from the default pool share the wire format, so one side's
``SerializeToString()`` parses with the other side's class; they are distinct Python types.

Modules: ``health_pb2`` (grpc.health.v1), ``testing_pb2`` (grpc.testing empty, messages and
test), ``helloworld_pb2``, ``reflection_v1_pb2`` and ``reflection_v1alpha_pb2``.
"""

from __future__ import annotations

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FileDescriptor

__all__ = ["POOL", "load_files"]

#: The pool every grpc_lite ``*_pb2`` module adds its files to.
POOL = descriptor_pool.DescriptorPool()


def load_files(*files: tuple[str, bytes]) -> tuple[FileDescriptor, ...]:
    """Add serialized ``FileDescriptorProto`` s to :data:`POOL`, dependencies first.

    ``files`` are ``(name, serialized)`` pairs. A file already in the pool (for example a
    dependency shared by two modules) is reused, so loading is idempotent. Called by the
    generated modules at import time only.
    """
    loaded: list[FileDescriptor] = []
    for name, serialized in files:
        try:
            loaded.append(POOL.FindFileByName(name))
        except KeyError:
            loaded.append(POOL.AddSerializedFile(serialized))
    return tuple(loaded)

"""grpc_lite's test suite (a package, so helpers import as ``tests.protos``, ``tests.servers``)."""

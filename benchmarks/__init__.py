"""grpc_lite benchmarks: ``python -m benchmarks`` (see README.md)."""

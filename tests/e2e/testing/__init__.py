"""grpc_lite.testing.Backend end to end: grpc_lite, grpcio and raw h2
clients."""

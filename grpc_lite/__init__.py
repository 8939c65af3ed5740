"""grpc_lite: a pure-asyncio gRPC client stack."""

"""grpc_lite against real grpcio servers (interop cases, transports, channel lifecycle)."""

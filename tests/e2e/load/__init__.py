"""grpc-lite load and Locust's GrpcUser end to end."""

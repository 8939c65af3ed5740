"""gRPC's cross-language interop client, on grpc_lite.

``python -m grpc_lite.interop.client`` runs the client side of grpc/grpc
``doc/interop-test-descriptions.md`` against any TestService server.
"""
